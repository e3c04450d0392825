"""Delivery rules: SLA-01/DEL-11 promised time, DEL-06/08 cash, DEL-02/14 items, VEH-01, DEL-01."""

from datetime import UTC, datetime, timedelta

import pytest

from fieldapp.rules.deliveries import (
    DEFAULT_VEHICLE_CHECK_ITEMS,
    DayCloseBlock,
    ItemDifference,
    RouteKind,
    ScannedItem,
    VehicleCheckItem,
    cash_variance,
    check_item_codes,
    day_close_check,
    is_on_time,
    out_of_order,
    promised_deadline,
    reconcile_items,
    vehicle_check_blocks_start,
)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# --- Promised time -----------------------------------------------------------------------


def test_flexible_route_is_due_24_hours_after_phone_confirmation() -> None:
    got = promised_deadline(RouteKind.FLEXIBLE, phone_confirmed_at=utc(2026, 11, 23, 10, 15))
    assert got == utc(2026, 11, 24, 10, 15)


def test_flexible_window_is_configurable_and_kind_accepts_strings() -> None:
    got = promised_deadline(
        "flexible", utc(2026, 11, 23, 10, 15), flexible_window=timedelta(hours=48)
    )
    assert got == utc(2026, 11, 25, 10, 15)


def test_fixed_route_is_due_at_the_end_of_the_window() -> None:
    window_end = utc(2026, 11, 23, 4, 0)
    # The phone confirmation does not matter on a fixed route.
    got = promised_deadline(
        RouteKind.FIXED, phone_confirmed_at=utc(2026, 11, 20, 1, 0), window_end=window_end
    )
    assert got == window_end


@pytest.mark.parametrize(
    ("kind", "kwargs"),
    [
        (RouteKind.FLEXIBLE, {"window_end": utc(2026, 11, 23, 4, 0)}),
        (RouteKind.FIXED, {"phone_confirmed_at": utc(2026, 11, 23, 4, 0)}),
        (RouteKind.FLEXIBLE, {"phone_confirmed_at": datetime(2026, 11, 23, 4, 0)}),  # naive
    ],
)
def test_promised_deadline_needs_the_right_input(kind: RouteKind, kwargs: dict) -> None:
    with pytest.raises(ValueError):
        promised_deadline(kind, **kwargs)


DEADLINE = utc(2026, 11, 24, 10, 15)


@pytest.mark.parametrize(
    ("delivered", "expected"),
    [
        (DEADLINE - timedelta(minutes=1), True),
        (DEADLINE, True),
        (DEADLINE + timedelta(seconds=1), False),
    ],
)
def test_is_on_time(delivered: datetime, expected: bool) -> None:
    assert is_on_time(delivered, DEADLINE) is expected


# --- Cash --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("due", "received", "expected"),
    [
        (12_345, 12_345, 0),
        (12_345, 12_400, 55),  # over-collected 0.55 yuan
        (12_345, 12_000, -345),  # short 3.45 yuan
        (0, 100, 100),
    ],
)
def test_cash_variance(due: int, received: int, expected: int) -> None:
    assert cash_variance(due, received) == expected


@pytest.mark.parametrize(
    ("due", "received", "error"),
    [(123.45, 12_345, TypeError), (12_345, True, TypeError), (-1, 0, ValueError)],
)
def test_cash_variance_refuses_non_fen(due: object, received: object, error: type) -> None:
    with pytest.raises(error):
        cash_variance(due, received)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("collected", "deposited", "explanation", "ok", "variance"),
    [
        (50_000, 50_000, None, True, 0),
        (50_000, 49_900, None, False, -100),
        (50_000, 49_900, "   ", False, -100),
        (50_000, 49_900, "gave 1 yuan too much change at stop 4", True, -100),
        (50_000, 50_100, None, False, 100),  # a surplus needs explaining too
    ],
)
def test_day_close_check(
    collected: int, deposited: int, explanation: str | None, ok: bool, variance: int
) -> None:
    got = day_close_check(collected, deposited, explanation)
    assert got.ok is ok
    assert got.variance_fen == variance
    assert got.reason == (None if ok else DayCloseBlock.UNEXPLAINED_VARIANCE)


# --- Items -------------------------------------------------------------------------------


def test_check_item_codes_sorts_out_foreign_and_unknown_cartons() -> None:
    scans = [
        ScannedItem("6901028001", "C001"),
        ScannedItem("6901028002", "C002"),  # another retailer's carton
        ScannedItem("6901028003", None),  # not on today's load
        ScannedItem("6901028004", "C001"),
        ScannedItem("6901028005", "C003"),
    ]
    got = check_item_codes("C001", scans)
    assert got.wrong_customer == ("6901028002", "6901028005")
    assert got.unknown == ("6901028003",)
    assert got.blocks_completion is True


@pytest.mark.parametrize(
    "scans", [[], [ScannedItem("6901028001", "C001"), ScannedItem("6901028004", "C001")]]
)
def test_matching_cartons_do_not_block(scans: list[ScannedItem]) -> None:
    assert check_item_codes("C001", scans).blocks_completion is False


@pytest.mark.parametrize(
    ("loaded", "delivered", "returned", "expected"),
    [
        # Balanced, including a refused carton brought back.
        ({"A": 10, "B": 5}, {"A": 7, "B": 5}, {"A": 3}, ()),
        # One carton of A missing.
        ({"A": 10, "B": 5}, {"A": 9, "B": 5}, {}, (ItemDifference("A", 10, 9, 0),)),
        # Two cartons of A swapped for B at a stop.
        (
            {"A": 10, "B": 10},
            {"A": 8, "B": 12},
            {},
            (ItemDifference("A", 10, 8, 0), ItemDifference("B", 10, 12, 0)),
        ),
        # Delivered a code that was never loaded.
        ({"A": 1}, {"A": 1, "Z": 1}, {}, (ItemDifference("Z", 0, 1, 0),)),
    ],
)
def test_reconcile_items(
    loaded: dict, delivered: dict, returned: dict, expected: tuple[ItemDifference, ...]
) -> None:
    assert reconcile_items(loaded, delivered, returned) == expected


def test_reconcile_difference_sign() -> None:
    missing, surplus = reconcile_items({"A": 10, "B": 10}, {"A": 8, "B": 12}, {})
    assert missing.difference == 2  # missing from the van
    assert surplus.difference == -2  # more handed out than loaded


@pytest.mark.parametrize("bad", [-1, 1.5])
def test_reconcile_refuses_bad_quantities(bad: object) -> None:
    with pytest.raises(ValueError):
        reconcile_items({"A": 1}, {"A": bad}, {})


# --- Vehicle check -----------------------------------------------------------------------

ALL_PASSED = [VehicleCheckItem(name, True) for name in DEFAULT_VEHICLE_CHECK_ITEMS]


@pytest.mark.parametrize(
    ("items", "blocks"),
    [
        (ALL_PASSED, False),
        ([*ALL_PASSED[:-1], VehicleCheckItem("insurance", False)], True),
        (ALL_PASSED[:-1], True),  # insurance never checked
        ([], True),
        ([*ALL_PASSED, VehicleCheckItem("tyre_pressure", False)], True),
    ],
)
def test_vehicle_check_blocks_start(items: list[VehicleCheckItem], blocks: bool) -> None:
    assert vehicle_check_blocks_start(items) is blocks


def test_vehicle_check_required_items_are_configurable() -> None:
    assert vehicle_check_blocks_start([], required=()) is False
    assert (
        vehicle_check_blocks_start([VehicleCheckItem("brakes", True)], required=["brakes"]) is False
    )


# --- Stop order --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("planned", "done", "next_stop", "expected"),
    [
        ([1, 2, 3, 4], set(), 1, False),
        ([1, 2, 3, 4], set(), 2, True),  # stop 1 skipped
        ([1, 2, 3, 4], {1}, 2, False),
        ([1, 2, 3, 4], {1}, 3, True),  # stop 2 skipped
        ([1, 2, 3, 4], {1, 3}, 2, False),  # going back to 2: everything before it is done
        ([1, 2, 3, 4], {1, 2, 3}, 4, False),
        ([30, 10, 20], set(), 30, False),  # planned order, not numeric order
        ([30, 10, 20], set(), 10, True),
    ],
)
def test_out_of_order(planned: list[int], done: set[int], next_stop: int, expected: bool) -> None:
    assert out_of_order(planned, done, next_stop) is expected


def test_stop_not_on_route_is_an_error() -> None:
    with pytest.raises(ValueError):
        out_of_order([1, 2, 3], set(), 9)


# --- Amounts typed in yuan, codes typed or scanned -------------------------------------------

from fieldapp.rules.deliveries import parse_yuan_to_fen, split_codes  # noqa: E402


@pytest.mark.parametrize(
    ("text", "fen"),
    [
        ("0", 0),
        ("12", 1200),
        ("12.5", 1250),
        ("12.50", 1250),
        ("0.1", 10),
        ("0.07", 7),
        (" ¥1,234.56 ", 123456),
        ("88元", 8800),
        ("12.", 1200),
    ],
)
def test_yuan_become_integer_fen_without_floats(text, fen):
    assert parse_yuan_to_fen(text) == fen


@pytest.mark.parametrize("text", ["", "-5", "1.234", "abc", "1e3", "12.5.1", "."])
def test_what_is_not_an_amount_is_refused(text):
    with pytest.raises(ValueError):
        parse_yuan_to_fen(text)


def test_codes_split_on_any_separator_keep_their_order():
    assert split_codes("B2 A1,C3\nD4，E5;F6") == ("B2", "A1", "C3", "D4", "E5", "F6")
    assert split_codes("  ") == ()
    assert split_codes(None) == ()
