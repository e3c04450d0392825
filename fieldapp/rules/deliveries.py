"""Delivery rules (DEL, SLA-01, CASH, VEH-01): promised times, item checks, reconciliation,
cash and the pre-trip vehicle gate. Money is integer fen (分) throughout."""

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from fieldapp.rules.clock import ensure_aware

# SLA-01 / DEL-11: 弹性送货线路卷烟在电访成功后24小时内送货到户.
FLEXIBLE_ROUTE_WINDOW = timedelta(hours=24)


def _require_fen(name: str, value: int) -> int:
    # Floats lose fen (0.1 + 0.2 yuan); bools are ints in Python but never an amount.
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int amount in fen, got {value!r}")
    if value < 0:
        raise ValueError(f"{name} must not be negative, got {value}")
    return value


# --- Promised time (DEL-11, SLA-01) -----------------------------------------------------


class RouteKind(StrEnum):
    FLEXIBLE = "flexible"  # 弹性线路: 24 h from the phone confirmation
    FIXED = "fixed"  # 固定线路: within the promised time window


def promised_deadline(
    route_kind: RouteKind | str,
    phone_confirmed_at: datetime | None = None,
    window_end: datetime | None = None,
    *,
    flexible_window: timedelta = FLEXIBLE_ROUTE_WINDOW,
) -> datetime:
    """Latest on-time delivery instant (DEL-11, SLA-01).

    Flexible route: ``phone_confirmed_at + 24 h`` (calendar hours, not working hours: the
    seed says 24小时). Fixed route: ``window_end``. The argument the kind needs is required.
    """
    kind = RouteKind(route_kind)
    if kind is RouteKind.FLEXIBLE:
        if phone_confirmed_at is None:
            raise ValueError("a flexible-route order needs phone_confirmed_at")
        return ensure_aware(phone_confirmed_at, "phone_confirmed_at") + flexible_window
    if window_end is None:
        raise ValueError("a fixed-route order needs window_end")
    return ensure_aware(window_end, "window_end")


def is_on_time(delivered_at: datetime, deadline: datetime) -> bool:
    """True when delivered at or before the deadline (the deadline instant is still on time)."""
    return ensure_aware(delivered_at, "delivered_at") <= ensure_aware(deadline, "deadline")


# --- Cash (DEL-06, DEL-08, CASH-01) -----------------------------------------------------


def cash_variance(amount_due_fen: int, amount_received_fen: int) -> int:
    """Received minus due, in fen (DEL-06): positive = over-collected, negative = short."""
    return _require_fen("amount_received_fen", amount_received_fen) - _require_fen(
        "amount_due_fen", amount_due_fen
    )


class DayCloseBlock(StrEnum):
    UNEXPLAINED_VARIANCE = "cash.unexplained_variance"


@dataclass(frozen=True)
class DayCloseCheck:
    """``variance_fen`` is deposited minus collected; ``reason`` is set when not ``ok``."""

    ok: bool
    variance_fen: int
    reason: DayCloseBlock | None = None


def day_close_check(
    cash_collected_fen: int,
    cash_deposited_fen: int,
    variance_explanation: str | None = None,
) -> DayCloseCheck:
    """May the courier close the day (DEL-08)?

    Yes when everything collected was deposited, or when the difference (either sign: a
    surplus is as suspicious as a shortfall) comes with a non-blank explanation.
    """
    variance = _require_fen("cash_deposited_fen", cash_deposited_fen) - _require_fen(
        "cash_collected_fen", cash_collected_fen
    )
    if variance != 0 and (variance_explanation is None or not variance_explanation.strip()):
        return DayCloseCheck(False, variance, DayCloseBlock.UNEXPLAINED_VARIANCE)
    return DayCloseCheck(True, variance)


# --- Item codes at the stop (DEL-02, DEL-14) --------------------------------------------


@dataclass(frozen=True)
class ScannedItem:
    """A scanned carton: its code and the customer code it is marked for (打码信息).

    ``customer_code`` is ``None`` when the code is not on the day's load (unknown item).
    """

    item_code: str
    customer_code: str | None


@dataclass(frozen=True)
class ItemCodeCheck:
    wrong_customer: tuple[str, ...]  # marked for another customer than the ticket's
    unknown: tuple[str, ...]  # not on the load at all

    @property
    def blocks_completion(self) -> bool:
        """DEL-02: any mismatch blocks completing the stop."""
        return bool(self.wrong_customer or self.unknown)


def check_item_codes(slip_customer_code: str, scanned: Iterable[ScannedItem]) -> ItemCodeCheck:
    """Sort the scans that do not belong on this ticket (DEL-02, DEL-14), in scan order."""
    wrong: list[str] = []
    unknown: list[str] = []
    for item in scanned:
        if item.customer_code is None:
            unknown.append(item.item_code)
        elif item.customer_code != slip_customer_code:
            wrong.append(item.item_code)
    return ItemCodeCheck(wrong_customer=tuple(wrong), unknown=tuple(unknown))


@dataclass(frozen=True)
class ItemDifference:
    """One item code whose counts do not balance.

    ``difference = loaded - delivered - returned``: positive means items are missing (loaded
    but neither delivered nor brought back), negative means more left the van than was
    loaded. A swapped variety shows up as one code missing and another in surplus.
    """

    code: str
    loaded: int
    delivered: int
    returned: int

    @property
    def difference(self) -> int:
        return self.loaded - self.delivered - self.returned


def reconcile_items(
    loaded: Mapping[str, int],
    delivered: Mapping[str, int],
    returned: Mapping[str, int],
) -> tuple[ItemDifference, ...]:
    """Chain of custody per item code: loaded must equal delivered + returned (DEL-14).

    Returns only the codes that do not balance, sorted by code; an empty tuple means the
    van balances. A code absent from a mapping counts as 0.
    """
    counts = (("loaded", loaded), ("delivered", delivered), ("returned", returned))
    for name, mapping in counts:
        for code, quantity in mapping.items():
            if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 0:
                raise ValueError(f"{name}[{code!r}] must be a non-negative int, got {quantity!r}")
    differences = []
    for code in sorted(set(loaded) | set(delivered) | set(returned)):
        row = ItemDifference(
            code, loaded.get(code, 0), delivered.get(code, 0), returned.get(code, 0)
        )
        if row.difference != 0:
            differences.append(row)
    return tuple(differences)


# --- Vehicle check (VEH-01) -------------------------------------------------------------

# 出车前要认真检查车辆有无故障,车况如何,手续是否齐全: faults, condition, and the documents
# (licence, registration, insurance) each as one checklist item.
DEFAULT_VEHICLE_CHECK_ITEMS = ("no_faults", "condition", "licence", "registration", "insurance")


@dataclass(frozen=True)
class VehicleCheckItem:
    name: str
    passed: bool


def vehicle_check_blocks_start(
    items: Iterable[VehicleCheckItem],
    required: Sequence[str] = DEFAULT_VEHICLE_CHECK_ITEMS,
) -> bool:
    """True when the route may not start (VEH-01).

    Any failed item blocks, and so does a required item that was not checked at all: an
    empty checklist is not a passed one.
    """
    items = list(items)
    if any(not item.passed for item in items):
        return True
    checked = {item.name for item in items}
    return any(name not in checked for name in required)


# --- Stop order (DEL-01) ----------------------------------------------------------------


def out_of_order(
    planned_sequence: Sequence[int], done_sequences: Iterable[int], next_sequence: int
) -> bool:
    """True when serving ``next_sequence`` now skips an earlier planned stop (DEL-01).

    ``planned_sequence`` lists the route's stop sequence numbers in planned order and
    ``done_sequences`` the stops already served or skipped with a reason. The app then asks
    the driver for a reason. A stop that is not on the route is a programming error.
    """
    if next_sequence not in planned_sequence:
        raise ValueError(f"stop {next_sequence} is not on the planned route")
    done = set(done_sequences)
    earlier = planned_sequence[: planned_sequence.index(next_sequence)]
    return any(stop not in done for stop in earlier)


# --- Amounts and codes as people type them -----------------------------------------------

_YUAN = re.compile(r"^(?P<whole>\d{1,9})(?:\.(?P<frac>\d{0,2}))?$")


def parse_yuan_to_fen(text: str) -> int:
    """``"12.5"`` yuan as typed (or from a CSV) -> ``1250`` fen, without passing through a float.

    Accepts digits with at most two decimals, an optional ``¥``/``元`` and thousands commas;
    anything else (a negative amount, three decimals, letters) raises ``ValueError``.
    """
    cleaned = text.strip().replace(",", "").replace("，", "").removeprefix("¥").removeprefix("￥")
    cleaned = cleaned.removesuffix("元").strip()
    match = _YUAN.match(cleaned)
    if not match:
        raise ValueError(f"not an amount in yuan: {text!r}")
    frac = (match.group("frac") or "").ljust(2, "0")
    return int(match.group("whole")) * 100 + int(frac)


def split_codes(text: str | None) -> tuple[str, ...]:
    """Item codes typed or scanned into one field: separated by spaces, commas or new lines.

    Order is kept (scan order matters for the report); blanks are dropped, case is kept.
    """
    if not text:
        return ()
    return tuple(code for code in re.split(r"[\s,，;；]+", text) if code)


# --- Pre-lateness warning (DEL-11, SLA-01) ----------------------------------------------

# A stop takes about this long, driving to it included: what the forecast assumes.
MINUTES_PER_STOP = timedelta(minutes=20)


@dataclass(frozen=True)
class OpenStop:
    """A stop still to serve, in route order; ``promised_at`` may be unknown."""

    stop_id: str
    promised_at: datetime | None


def at_risk_of_lateness(
    now: datetime,
    open_stops_in_order: Sequence[OpenStop],
    *,
    per_stop: timedelta = MINUTES_PER_STOP,
) -> list[tuple[str, datetime]]:
    """Stops that will miss their promised time if the courier keeps the route order.

    The k-th open stop (1-based) is forecast at ``now + k * per_stop``. A stop is at risk when
    that forecast is after its promise while the promise is still ahead (a stop already past
    its promise is late, not at risk). Returns ``(stop_id, forecast)`` in route order.
    """
    now = ensure_aware(now, "now")
    risky = []
    for position, stop in enumerate(open_stops_in_order, start=1):
        if stop.promised_at is None:
            continue
        promised = ensure_aware(stop.promised_at, "promised_at")
        forecast = now + position * per_stop
        if now < promised < forecast:
            risky.append((stop.stop_id, forecast))
    return risky


# --- Daily delivery report (DEL-09) -----------------------------------------------------

_DONE_REFUSED = frozenset({"refused", "returned"})
_OPEN = frozenset({"pending", "arrived"})


@dataclass(frozen=True)
class StopOutcome:
    """One stop of the day as the report counts it."""

    state: str  # pending, arrived, delivered, refused, returned, skipped
    on_time: bool | None = None
    cash_due_fen: int = 0  # the slip's amount when the customer pays cash, else 0
    cash_received_fen: int | None = None  # from the standing proof of delivery


@dataclass(frozen=True)
class DayTally:
    stops: int
    delivered: int
    refused: int
    skipped: int
    open: int
    on_time: int
    late: int
    cash_due_fen: int  # due from the cash customers who took their goods
    cash_collected_fen: int
    cash_handed_in_fen: int | None  # None: not handed over yet

    @property
    def cash_difference_fen(self) -> int | None:
        """Handed in minus collected; None until the cash is handed over."""
        if self.cash_handed_in_fen is None:
            return None
        return self.cash_handed_in_fen - self.cash_collected_fen


def tally_day(outcomes: Iterable[StopOutcome], cash_handed_in_fen: int | None) -> DayTally:
    """The figures of a courier's day for the department head (DEL-09)."""
    outcomes = list(outcomes)
    delivered = [o for o in outcomes if o.state == "delivered"]
    for o in outcomes:
        _require_fen("cash_due_fen", o.cash_due_fen)
        if o.cash_received_fen is not None:
            _require_fen("cash_received_fen", o.cash_received_fen)
    if cash_handed_in_fen is not None:
        _require_fen("cash_handed_in_fen", cash_handed_in_fen)
    return DayTally(
        stops=len(outcomes),
        delivered=len(delivered),
        refused=sum(o.state in _DONE_REFUSED for o in outcomes),
        skipped=sum(o.state == "skipped" for o in outcomes),
        open=sum(o.state in _OPEN for o in outcomes),
        on_time=sum(o.on_time is True for o in delivered),
        late=sum(o.on_time is False for o in delivered),
        cash_due_fen=sum(o.cash_due_fen for o in delivered),
        cash_collected_fen=sum(o.cash_received_fen or 0 for o in delivered),
        cash_handed_in_fen=cash_handed_in_fen,
    )
