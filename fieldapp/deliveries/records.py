"""The deliveries domain's sync record types, rule messages, notification kinds and clock check.

Imported by the blueprint module, so registering the blueprint registers all of this.
"""

import json
from typing import Annotated, Literal

from flask_babel import lazy_gettext as _l
from pydantic import AwareDatetime, BaseModel, BeforeValidator, Field, field_validator

from fieldapp import jobs, push
from fieldapp.deliveries import service
from fieldapp.deliveries.models import REFUSAL_REASONS
from fieldapp.rules.deliveries import parse_yuan_to_fen
from fieldapp.sync import registry
from fieldapp.sync.changes import DAYPACK_DATA, DAYPACK_PAGES
from fieldapp.sync.messages import register_rule_messages
from fieldapp.sync.registry import Kind, RecordType

UUID = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
SHA256 = r"^[0-9a-f]{64}$"
COURIER = frozenset({"courier"})


def _blank_is_none(value):
    """Hidden form inputs send "" when the phone had no GPS fix: that is no value."""
    return None if isinstance(value, str) and not value.strip() else value


OptionalFloat = Annotated[float | None, BeforeValidator(_blank_is_none)]
OptionalInt = Annotated[int | None, BeforeValidator(_blank_is_none)]
Sha = Annotated[str, Field(pattern=SHA256)]
OptionalSha = Annotated[Sha | None, BeforeValidator(_blank_is_none)]
Text = Annotated[str, Field(max_length=2000)]


class _Stamped(BaseModel):
    """GPS is stamped at each action, from the phone's fix at that moment (if it had one)."""

    id: str = Field(pattern=UUID)
    latitude: OptionalFloat = Field(default=None, ge=-90, le=90)
    longitude: OptionalFloat = Field(default=None, ge=-180, le=180)
    accuracy_m: OptionalFloat = Field(default=None, ge=0)


def _amount(value: str) -> str:
    if value.strip():
        parse_yuan_to_fen(value)  # raises ValueError: "This value is not valid."
    return value


class VehicleCheckIn(_Stamped):
    route_id: int
    no_faults: bool = False
    condition: bool = False
    licence: bool = False
    registration: bool = False
    insurance: bool = False
    odometer_km: OptionalInt = Field(default=None, ge=0)
    note: Text = ""


class ArrivalIn(_Stamped):
    stop_id: str = Field(pattern=UUID)
    out_of_order_reason: Text = ""


class ProofIn(_Stamped):
    stop_id: str = Field(pattern=UUID)
    checked_codes: Text = ""
    scanned_codes: Text = ""
    special_confirmed: bool = False
    cash_received: str = Field(default="", max_length=20)
    signature: OptionalSha = None
    photo: OptionalSha = None
    condition: Literal["ok", "damage"] = "ok"
    damage_quantity: OptionalInt = Field(default=None, ge=1)
    damage_photo: OptionalSha = None
    damage_note: Text = ""
    market_note: Text = ""
    product_info_explained: bool = False
    driver_confirmed: bool = False
    deliverer_confirmed: bool = False
    corrects_id: Annotated[str | None, BeforeValidator(_blank_is_none)] = None
    correction_reason: Text = ""

    _check_amount = field_validator("cash_received")(_amount)


class RefusalIn(_Stamped):
    stop_id: str = Field(pattern=UUID)
    reason_code: Literal[tuple(REFUSAL_REASONS)]  # type: ignore[valid-type]
    note: Text = ""
    photo: OptionalSha = None


class CashHandoverIn(_Stamped):
    route_id: int
    deposited: str = Field(min_length=1, max_length=20)
    deposit_reference: str = Field(default="", max_length=64)
    variance_explanation: Text = ""
    bookkeeper_name: str = Field(min_length=1, max_length=80)
    courier_signature: str = Field(pattern=SHA256)
    bookkeeper_signature: str = Field(pattern=SHA256)
    corrects_id: Annotated[str | None, BeforeValidator(_blank_is_none)] = None

    _check_amount = field_validator("deposited")(_amount)


class DayCloseIn(_Stamped):
    route_id: int
    returned: str = Field(default="{}", max_length=20000)
    vehicle_cleaned: bool = False
    parked_at_designated: bool = False
    odometer_km: OptionalInt = Field(default=None, ge=0)
    note: Text = ""

    @field_validator("returned")
    @classmethod
    def _returned_is_counts(cls, value: str) -> str:
        try:
            service.parse_returned(value)
        except (ValueError, json.JSONDecodeError) as error:
            raise ValueError(str(error)) from None
        return value

    def returned_counts(self) -> dict[str, int]:
        return service.parse_returned(self.returned)


class StopStatusIn(BaseModel):
    """The stop's status as a versioned record: sequence and promise are the dispatcher's,
    the state is the courier's."""

    id: str = Field(pattern=UUID)
    sequence: int | None = Field(default=None, ge=1)
    promised_at: AwareDatetime | None = None
    state: Literal["pending", "arrived", "skipped"] | None = None


GPS_LABELS = {"latitude": _l("Latitude"), "longitude": _l("Longitude")}

RECORD_TYPES = (
    RecordType(
        name="delivery.vehicle_check",
        schema=VehicleCheckIn,
        kind=Kind.FACT,
        apply=service.record_vehicle_check,
        roles=COURIER,
        label=_l("Vehicle check"),
        labels={"odometer_km": _l("Odometer (km)"), "note": _l("Notes"), **GPS_LABELS},
        summary_field="odometer_km",
    ),
    RecordType(
        name="delivery.arrival",
        schema=ArrivalIn,
        kind=Kind.FACT,
        apply=service.record_arrival,
        roles=COURIER,
        label=_l("Arrival at a stop"),
        labels={"out_of_order_reason": _l("Reason for the order"), **GPS_LABELS},
    ),
    RecordType(
        name="delivery.proof",
        schema=ProofIn,
        kind=Kind.FACT,
        apply=service.record_proof,
        file_fields=("signature", "photo", "damage_photo"),
        roles=COURIER,
        label=_l("Proof of delivery"),
        labels={
            "scanned_codes": _l("Scanned item codes"),
            "cash_received": _l("Cash received (yuan)"),
            "market_note": _l("Market information"),
            "damage_quantity": _l("Damaged quantity"),
        },
        summary_field="cash_received",
    ),
    RecordType(
        name="delivery.refusal",
        schema=RefusalIn,
        kind=Kind.FACT,
        apply=service.record_refusal,
        file_fields=("photo",),
        roles=COURIER,
        label=_l("Refused delivery"),
        labels={"reason_code": _l("Reason"), "note": _l("What happened")},
        summary_field="note",
    ),
    RecordType(
        name="delivery.cash_handover",
        schema=CashHandoverIn,
        kind=Kind.FACT,
        apply=service.record_cash_handover,
        file_fields=("courier_signature", "bookkeeper_signature"),
        roles=COURIER,
        label=_l("Cash handover"),
        labels={
            "deposited": _l("Cash deposited (yuan)"),
            "deposit_reference": _l("Deposit reference"),
            "variance_explanation": _l("Explanation of the difference"),
            "bookkeeper_name": _l("Bookkeeper"),
        },
        summary_field="deposited",
    ),
    RecordType(
        name="delivery.day_close",
        schema=DayCloseIn,
        kind=Kind.FACT,
        apply=service.record_day_close,
        roles=COURIER,
        label=_l("Day close"),
        labels={"odometer_km": _l("Odometer (km)"), "note": _l("Notes")},
        summary_field="odometer_km",
    ),
    RecordType(
        name="delivery.stop",
        schema=StopStatusIn,
        kind=Kind.VERSIONED,
        apply=service.apply_stop,
        load=service.load_stop,
        worker_fields=service.WORKER_FIELDS,
        office_fields=service.OFFICE_FIELDS,
        roles=frozenset({"courier", "supervisor", "admin"}),
        label=_l("Stop status"),
        labels={"sequence": _l("Order"), "promised_at": _l("Promised by"), "state": _l("State")},
        summary_field="state",
    ),
)

RULE_MESSAGES = {
    "delivery.stop_not_found": _l("This stop is not on your routes."),
    "delivery.route_not_found": _l("This route is not one of yours."),
    "delivery.vehicle_check_required": _l("Do the vehicle check before the first stop."),
    "delivery.vehicle_check_failed": _l(
        "The last vehicle check failed: the route may not start. The dispatcher was told."
    ),
    "delivery.stop_closed": _l("This stop is already finished."),
    "delivery.arrive_first": _l("Record your arrival at the stop first."),
    "delivery.out_of_order_reason_required": _l(
        "An earlier stop is still open: say why you take this one first."
    ),
    "delivery.wrong_customer_code": _l(
        "A scanned item belongs to another customer. Take it back to the van: "
        "this stop cannot be completed with it."
    ),
    "delivery.unknown_item_code": _l("A scanned item is not on today's load."),
    "delivery.items_not_checked": _l("Check every item on the slip (tick or scan it)."),
    "delivery.special_items_unconfirmed": _l("Confirm the special-shape items separately."),
    "delivery.two_roles_required": _l("Driver and deliverer must both confirm the goods."),
    "delivery.cash_required": _l("Enter the cash received from the customer."),
    "delivery.signature_required": _l("The customer must sign."),
    "delivery.damage_details_required": _l("A damage report needs the quantity and a photo."),
    "delivery.correction_unknown": _l("The record this corrects is unknown."),
    "delivery.correction_reason_required": _l("Say why you correct the record."),
    "delivery.correction_superseded": _l(
        "This record was corrected meanwhile: correct the record that stands now."
    ),
    "delivery.correction_no_change": _l("The correction changes nothing: enter a new value."),
    "delivery.refusal_note_required": _l("Say what happened."),
    "delivery.handover_done": _l("The cash of this route was already handed over."),
    "delivery.stops_still_open": _l("Some stops are still open: deliver or refuse them first."),
    "cash.unexplained_variance": _l(
        "The cash deposited differs from the cash collected: explain the difference."
    ),
    "delivery.deposit_reference_required": _l("Enter the reference of the deposit slip."),
    "delivery.day_closed": _l("This day is already closed."),
    "delivery.handover_first": _l("Hand over the cash before closing the day."),
    "delivery.vehicle_not_parked": _l(
        "Confirm the vehicle is cleaned and parked at the designated place."
    ),
    "delivery.parking_position_required": _l(
        "The phone has no GPS position: allow location, wait for a fix at the parking place, "
        "then close the day."
    ),
    "delivery.not_at_parking": _l(
        "The phone is not at the designated parking place: park the vehicle there, "
        "then close the day."
    ),
    "delivery.not_delivered_yet": _l("This delivery is not completed yet: rate it afterwards."),
    "delivery.already_rated": _l("This delivery was already rated. Thank you!"),
    "delivery.stars_out_of_range": _l("Choose 1 to 5 stars."),
    "delivery.items_unbalanced": _l(
        "The goods do not balance: loaded must equal delivered plus returned for every code."
    ),
    "delivery.office_field": _l("Only the dispatcher changes this."),
    "delivery.worker_field": _l("Only the courier changes this."),
    "delivery.state_needs_record": _l(
        "Delivered or refused is recorded with its proof of delivery or refusal."
    ),
    "delivery.team_not_yours": _l("This is not a team you manage."),
    "delivery.courier_not_in_team": _l("That courier is not in the route's team."),
    "delivery.site_unknown": _l("No such site."),
    "delivery.not_refused": _l("This stop has no open refusal."),
    "delivery.resolution_unknown": _l("Choose re-deliver or return."),
}

KINDS = (
    push.Kind(
        name="delivery.refused",
        label=_l("A delivery was refused"),
        title=_l("Refused: %(shop)s"),
        body=_l("%(courier)s: %(note)s"),
        alarm=True,
        roles=frozenset({"supervisor", "admin"}),
    ),
    push.Kind(
        name="delivery.vehicle_check_failed",
        label=_l("A vehicle check failed"),
        title=_l("Vehicle check failed: %(plate)s"),
        body=_l("%(courier)s may not start the route: %(failed)s"),
        alarm=True,
        roles=frozenset({"supervisor", "admin"}),
    ),
    push.Kind(
        name="delivery.late",
        label=_l("A delivery is late"),
        title=_l("Late: %(shop)s"),
        body=_l("It was promised by %(due)s."),
    ),
    push.Kind(
        name="delivery.corrected",
        label=_l("The office corrected one of my deliveries"),
        title=_l("Delivery record corrected: %(shop)s"),
        body=_l("%(who)s: %(reason)s"),
        roles=frozenset({"courier"}),
    ),
    push.Kind(
        name="delivery.late_soon",
        label=_l("A delivery is about to be late"),
        title=_l("Will be late: %(shop)s"),
        body=_l("Promised by %(due)s, with %(ahead)s stops before it. Call the customer."),
    ),
    push.Kind(
        name="delivery.route_changed",
        label=_l("My route changed"),
        title=_l("Your route changed"),
        body=_l("%(route)s: open today's route to see the change."),
        roles=frozenset({"courier"}),
    ),
)


@jobs.rule_check("delivery.late_stops")
def late_stops(now):
    """SLA-01: each open stop past its promised time raises one late alert."""
    return service.late_stops(now)


@jobs.rule_check("delivery.late_soon_stops")
def late_soon_stops(now):
    """DEL-11: warn before a stop misses its promise, once per stop and promise."""
    return service.late_soon_stops(now)


def register_all() -> None:
    for record_type in RECORD_TYPES:
        registry.register(record_type)
    for kind in KINDS:
        push.declare(kind)
    register_rule_messages(RULE_MESSAGES)
    DAYPACK_DATA["delivery.route"] = service.daypack_routes
    DAYPACK_DATA["delivery.stop"] = service.daypack_stops
    if service.daypack_pages not in DAYPACK_PAGES:
        DAYPACK_PAGES.append(service.daypack_pages)


register_all()
