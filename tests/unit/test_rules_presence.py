"""PAT-09: presence intervals from a supervisor's arrive/leave taps, hand-computed cases."""

from datetime import UTC, datetime, timedelta

import pytest

from fieldapp.rules.patrols import local_day_bounds, supervisor_onsite_hours
from fieldapp.rules.presence import ARRIVE, LEAVE, PresenceTap, may_leave, presence_intervals

TZ = "Asia/Shanghai"  # UTC+8, no daylight saving
LATER = datetime(2026, 12, 1, tzinfo=UTC)


def at(day: int, hour: int, minute: int = 0) -> datetime:
    """Shanghai wall-clock time on 2026-11-<day>, in UTC."""
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC) - timedelta(hours=8)


def tap(action, when, site="gate", inside=True):
    return PresenceTap(site=site, action=action, at=when, tz_name=TZ, inside=inside)


def hours_on(day: int, taps, now=LATER) -> float:
    start, end = local_day_bounds(datetime(2026, 11, day).date(), TZ)
    return supervisor_onsite_hours(presence_intervals(taps, now), within=(start, end))


@pytest.mark.parametrize(
    ("taps", "hours"),
    [
        ([], 0.0),
        ([tap(ARRIVE, at(3, 8)), tap(LEAVE, at(3, 12))], 4.0),
        ([tap(ARRIVE, at(3, 8)), tap(LEAVE, at(3, 14))], 6.0),
        # Two pairs at one site.
        (
            [
                tap(ARRIVE, at(3, 8)),
                tap(LEAVE, at(3, 12)),
                tap(ARRIVE, at(3, 13)),
                tap(LEAVE, at(3, 15)),
            ],
            6.0,
        ),
        # Overlap with a second site counts once.
        (
            [
                tap(ARRIVE, at(3, 8)),
                tap(LEAVE, at(3, 12)),
                tap(ARRIVE, at(3, 11), "annex"),
                tap(LEAVE, at(3, 14), "annex"),
            ],
            6.0,
        ),
        # No departure: until local midnight at most.
        ([tap(ARRIVE, at(3, 20))], 4.0),
        # A departure the next day does not stretch the arrival past its day.
        ([tap(ARRIVE, at(3, 20)), tap(LEAVE, at(4, 9))], 4.0),
        # A new arrival closes the one left open.
        ([tap(ARRIVE, at(3, 8)), tap(ARRIVE, at(3, 10)), tap(LEAVE, at(3, 11))], 3.0),
        # Outside the geofence: kept by the server, counts nothing.
        ([tap(ARRIVE, at(3, 8), inside=False), tap(LEAVE, at(3, 12))], 0.0),
        # ... and it ends a presence left open at that site.
        ([tap(ARRIVE, at(3, 8)), tap(ARRIVE, at(3, 9), inside=False), tap(LEAVE, at(3, 12))], 1.0),
        # A departure with nothing open, out of order taps: sorted by time.
        ([tap(LEAVE, at(3, 12)), tap(LEAVE, at(3, 7)), tap(ARRIVE, at(3, 10))], 2.0),
        # Arrive and leave at the same instant: nothing.
        ([tap(LEAVE, at(3, 9)), tap(ARRIVE, at(3, 9))], 0.0),
    ],
)
def test_hours_from_taps(taps, hours):
    assert hours_on(3, taps) == hours


def test_an_open_arrival_counts_until_now_not_into_the_future():
    assert hours_on(3, [tap(ARRIVE, at(3, 8))], now=at(3, 10, 30)) == 2.5


def test_the_next_day_gets_nothing_from_an_open_arrival():
    assert hours_on(4, [tap(ARRIVE, at(3, 20)), tap(LEAVE, at(4, 9))]) == 0.0


def test_naive_times_are_refused():
    with pytest.raises(ValueError):
        presence_intervals([tap(ARRIVE, datetime(2026, 11, 3, 8))], LATER)


@pytest.mark.parametrize(
    ("earlier", "leave", "allowed"),
    [
        ([], at(3, 12), False),
        ([tap(ARRIVE, at(3, 8))], at(3, 12), True),
        ([tap(ARRIVE, at(3, 8), inside=False)], at(3, 12), True),
        ([tap(ARRIVE, at(3, 8)), tap(LEAVE, at(3, 10))], at(3, 12), False),
        ([tap(ARRIVE, at(3, 8))], at(3, 8), True),  # same instant
        ([tap(ARRIVE, at(3, 13))], at(3, 12), False),  # the arrival is later
        ([tap(ARRIVE, at(2, 20))], at(3, 0, 30), False),  # yesterday's arrival
    ],
)
def test_may_leave(earlier, leave, allowed):
    assert may_leave(earlier, leave, TZ) is allowed
