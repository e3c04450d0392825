"""The deliveries registers as files and print pages (REC-01 to REC-04, DEL-09, DEL-10).

Four registers, each one row list built from the day's records for a date range (and one
courier, if asked): the delivery status register (送货情况登记表, REC-04), the driving log
(行车日志, REC-03), the weekly slip archive (送货小票, REC-01) and the monthly vehicle summary
(车位汇总单, REC-02). Rows hold plain strings, as the CSV has them (codes, ``yes``/``no``,
yuan with two decimals); the XLSX and the print page show the same rows with translated
headers and values, numbers as numbers. Scope is the user's supervised teams: a supervisor of
another team gets no rows.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta

from flask_babel import lazy_gettext as _l

from fieldapp import exports
from fieldapp.deliveries import service
from fieldapp.deliveries.models import (
    REFUSAL_REASONS,
    SETTLEMENT_LABELS,
    STOP_STATE_LABELS,
    VEHICLE_CHECK_LABELS,
    StopState,
)
from fieldapp.models import User


def _yes_no(flag: bool) -> str:
    return "yes" if flag else "no"


# ----- REC-01: the weekly slip archive -------------------------------------------------------

SLIP_ARCHIVE_HEADER = (
    "week",
    "date",
    "route",
    "courier",
    "ticket_no",
    "customer_code",
    "customer",
    "tote_boxes",
    "items",
    "quantity",
    "special",
    "amount_due",
    "settlement",
    "cash_collected",
    "signature",
    "delivered_at",
    "state",
    "e_receipt",
)


def slip_archive(
    user: User, start: date, end: date, courier_id: int | None = None
) -> list[list[str]]:
    """送货小票 (REC-01): one row per delivery slip, with its items, for binding by week."""
    tz = service.org_tz(user.org_id)
    rows = []
    for route in service._routes_between(user, start, end, courier_id):
        stops = list(route.stops)
        proofs = service.effective_proofs([s.id for s in stops])
        iso = route.date.isocalendar()
        for stop in stops:
            proof = proofs.get(stop.id)
            items = list(stop.items)
            rows.append(
                [
                    f"{iso.year}-W{iso.week:02d}",
                    route.date.isoformat(),
                    route.name,
                    route.courier.display_name if route.courier else "",
                    stop.ticket_no,
                    stop.customer_code,
                    stop.customer_name,
                    stop.tote_boxes,
                    "; ".join(f"{i.variety} ×{i.quantity} [{i.code}]" for i in items),
                    str(sum(i.quantity for i in items)),
                    _yes_no(any(i.special_shape for i in items)),
                    service._yuan(stop.amount_due_fen),
                    stop.settlement,
                    service._yuan(proof.cash_received_fen) if proof else "",
                    _yes_no(bool(proof and proof.signature)),
                    service._local(proof.device_time if proof else None, tz),
                    stop.state,
                    # The customer's copy (the blue slip) is the e-receipt of a proof.
                    _yes_no(proof is not None),
                ]
            )
    return rows


# ----- REC-02: the monthly vehicle summary ---------------------------------------------------

VEHICLE_SUMMARY_HEADER = (
    "month",
    "date",
    "vehicle",
    "route",
    "driver",
    "two_person_crew",
    "stops",
    "delivered",
    "refused",
    "loaded",
    "delivered_items",
    "returned_items",
    "cash_collected",
    "cash_deposited",
)


def vehicle_summary(
    user: User, start: date, end: date, courier_id: int | None = None
) -> list[list[str]]:
    """车位汇总单 (REC-02): one row per vehicle and day (one per route), sorted by vehicle."""
    rows = []
    routes = service._routes_between(user, start, end, courier_id)
    for route in sorted(routes, key=lambda r: (r.vehicle_plate, r.date, r.name, r.id)):
        stops = list(route.stops)
        close = service.day_close_of(route)
        handover = service.latest_handover(route)
        rows.append(
            [
                route.date.strftime("%Y-%m"),
                route.date.isoformat(),
                route.vehicle_plate,
                route.name,
                route.courier.display_name if route.courier else "",
                _yes_no(route.two_person_crew),
                str(len(stops)),
                str(sum(1 for s in stops if s.state == StopState.DELIVERED)),
                str(sum(1 for s in stops if s.state in (StopState.REFUSED, StopState.RETURNED))),
                str(sum(service.loaded_counts(route).values())),
                str(sum(service.delivered_counts(route).values())),
                "" if close is None else str(sum(close.returned.values())),
                service._yuan(
                    handover.collected_fen if handover else service.cash_collected_fen(route)
                ),
                service._yuan(handover.deposited_fen) if handover else "",
            ]
        )
    return rows


# ----- the catalogue ------------------------------------------------------------------------

COLUMN_LABELS = {
    "date": _l("Date"),
    "route": _l("Route"),
    "courier": _l("Courier"),
    "vehicle": _l("Vehicle"),
    "sequence": _l("No."),
    "customer_code": _l("Customer code"),
    "customer": _l("Customer"),
    "ticket_no": _l("Ticket no."),
    "promised": _l("Promised by"),
    "arrived": _l("Arrived at"),
    "state": _l("Status"),
    "refusal_reason": _l("Refusal reason"),
    "on_time": _l("On time"),
    "discrepancies": _l("Discrepancies"),
    "signature": _l("Signed by the customer"),
    "amount_due": _l("Amount due (yuan)"),
    "cash_collected": _l("Cash collected (yuan)"),
    "cash_deposited": _l("Cash deposited (yuan)"),
    "notes": _l("Notes"),
    "driver": _l("Driver"),
    "pre_trip_check": _l("Pre-trip check"),
    "failed_items": _l("Failed check items"),
    "departure": _l("Departure"),
    "return": _l("Return"),
    "odometer_start": _l("Odometer out (km)"),
    "odometer_end": _l("Odometer in (km)"),
    "stops": _l("Stops"),
    "delivered": _l("Delivered"),
    "refused": _l("Refused"),
    "cleaned": _l("Vehicle cleaned"),
    "parked_at_designated": _l("Parked at the designated place"),
    "week": _l("Week"),
    "tote_boxes": _l("Tote boxes"),
    "items": _l("Items"),
    "quantity": _l("Quantity"),
    "special": _l("Special-shape items"),
    "settlement": _l("Settlement"),
    "delivered_at": _l("Delivered at"),
    "e_receipt": _l("E-receipt issued"),
    "month": _l("Month"),
    "two_person_crew": _l("Driver and deliverer"),
    "loaded": _l("Items loaded"),
    "delivered_items": _l("Items delivered"),
    "returned_items": _l("Items returned"),
}
YES_NO = {"yes": _l("Yes"), "no": _l("No")}
CHECK_RESULT = {"passed": _l("Passed"), "failed": _l("Failed")}
VALUE_LABELS = {
    "state": STOP_STATE_LABELS,
    "refusal_reason": REFUSAL_REASONS,
    "settlement": SETTLEMENT_LABELS,
    "pre_trip_check": CHECK_RESULT,
    **{
        name: YES_NO
        for name in (
            "on_time",
            "signature",
            "cleaned",
            "parked_at_designated",
            "special",
            "e_receipt",
            "two_person_crew",
        )
    },
}
INTEGER_COLUMNS = frozenset(
    {
        "sequence",
        "odometer_start",
        "odometer_end",
        "stops",
        "delivered",
        "refused",
        "quantity",
        "loaded",
        "delivered_items",
        "returned_items",
    }
)
MONEY_COLUMNS = frozenset({"amount_due", "cash_collected", "cash_deposited"})


@dataclass(frozen=True)
class Register:
    key: str  # in the URL and the file name
    title: object  # lazy text
    rule: str
    header: tuple[str, ...]
    rows: Callable[..., list[list[str]]]
    period: str  # the default range: "week" (the last 7 days), "iso_week" or "month"


REGISTERS = {
    r.key: r
    for r in (
        Register(
            "status",
            _l("Delivery status register"),
            "REC-04",
            service.STATUS_REGISTER_HEADER,
            service.status_register,
            "week",
        ),
        Register(
            "driving-log",
            _l("Driving log"),
            "REC-03",
            service.DRIVING_LOG_HEADER,
            service.driving_log,
            "week",
        ),
        Register(
            "slips",
            _l("Weekly slip archive"),
            "REC-01",
            SLIP_ARCHIVE_HEADER,
            slip_archive,
            "iso_week",
        ),
        Register(
            "vehicles",
            _l("Monthly vehicle summary"),
            "REC-02",
            VEHICLE_SUMMARY_HEADER,
            vehicle_summary,
            "month",
        ),
    )
}


def default_range(register: Register, today: date) -> tuple[date, date]:
    if register.period == "iso_week":
        monday = today - timedelta(days=today.weekday())
        return monday, monday + timedelta(days=6)
    if register.period == "month":
        first = today.replace(day=1)
        following = (first + timedelta(days=32)).replace(day=1)
        return first, following - timedelta(days=1)
    return today - timedelta(days=6), today


def _failed_items(value: str) -> str:
    return "; ".join(str(VEHICLE_CHECK_LABELS.get(k, k)) for k in value.split())


COLUMNS = exports.Columns(
    labels=COLUMN_LABELS,
    values=VALUE_LABELS,
    integers=INTEGER_COLUMNS,
    money=MONEY_COLUMNS,
    dates=frozenset({"date"}),
    wide=frozenset({"items", "notes"}),
    formatters={"failed_items": _failed_items},
)
