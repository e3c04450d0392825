"""Which round a checkpoint scan belongs to (PAT-03), by the phone's clock."""

from datetime import UTC, date, datetime, time, timedelta

import pytest

from fieldapp.rules.patrols import PatrolPlan, round_number_at, rounds_for_shift, shift_bounds

PLAN = PatrolPlan(("gate", "car-park", "roof"), window_minutes=60)


@pytest.fixture
def night_rounds():
    """20:00-08:00 Shanghai, a round every 2 hours: 20:00, 22:00, 00:00, ... 06:00."""
    start, end = shift_bounds(date(2026, 11, 20), time(20), time(8), "Asia/Shanghai")
    return rounds_for_shift(PLAN, start, end, every_minutes=120)


def local(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC) - timedelta(hours=8)


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        (local(20, 19, 59), None),  # before the shift: walking early is not a round
        (local(20, 20, 0), 1),
        (local(20, 21, 30), 1),  # after the window, before the next round: round 1, late
        (local(20, 22, 0), 2),  # the instant round 2 starts belongs to round 2
        (local(21, 0, 15), 3),  # across midnight
        (local(21, 7, 59), 6),
        (local(21, 8, 0), 6),  # the shift end still counts (late) for the last round
        (local(21, 8, 1), None),
    ],
)
def test_a_scan_belongs_to_the_round_walked_at_its_device_time(night_rounds, at, expected):
    assert len(night_rounds) == 6
    assert round_number_at(night_rounds, at) == expected


def test_naive_times_are_refused(night_rounds):
    with pytest.raises(ValueError):
        round_number_at(night_rounds, datetime(2026, 11, 20, 21))


def test_no_rounds_no_number():
    assert round_number_at([], datetime(2026, 11, 20, tzinfo=UTC)) is None
