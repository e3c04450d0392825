"""PAT-09: presence intervals from a supervisor's arrive/leave taps, hand-computed cases."""

from datetime import UTC, datetime, timedelta

import pytest

from fieldapp.rules.patrols import local_day_bounds, supervisor_onsite_hours
from fieldapp.rules.presence import (
    ARRIVE,
    LEAVE,
    MAX_PRESENCE_SPAN,
    Pairing,
    PresenceTap,
    pair_taps,
    presence_intervals,
    unpaired_departures,
)

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
        # A departure the next day, within the span: the part of the stay inside the day.
        ([tap(ARRIVE, at(3, 20)), tap(LEAVE, at(4, 9))], 4.0),
        # A departure the next day beyond the span does not stretch the arrival past its day.
        ([tap(ARRIVE, at(3, 8)), tap(LEAVE, at(4, 9))], 16.0),
        # On the same day, a stay longer than the span ends at its departure all the same.
        ([tap(ARRIVE, at(3, 1)), tap(LEAVE, at(3, 23))], 22.0),
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
        # ... and a departure at the instant of the next arrival ends the stay before it.
        (
            [
                tap(ARRIVE, at(3, 8)),
                tap(ARRIVE, at(3, 12)),
                tap(LEAVE, at(3, 12)),
                tap(LEAVE, at(3, 14)),
            ],
            4.0,
        ),
        # Leaving twice: the second departure counts nothing.
        ([tap(ARRIVE, at(3, 8)), tap(LEAVE, at(3, 12)), tap(LEAVE, at(3, 15))], 4.0),
    ],
)
def test_hours_from_taps(taps, hours):
    assert hours_on(3, taps) == hours


def test_an_open_arrival_counts_until_now_not_into_the_future():
    assert hours_on(3, [tap(ARRIVE, at(3, 8))], now=at(3, 10, 30)) == 2.5


def test_the_next_day_gets_nothing_from_an_open_arrival():
    assert hours_on(4, [tap(ARRIVE, at(3, 20))]) == 0.0
    # The next morning's arrival counts from itself on: nothing before it from the night.
    assert hours_on(4, [tap(ARRIVE, at(3, 20)), tap(ARRIVE, at(4, 9))], now=at(4, 10)) == 1.0


def test_a_night_shift_counts_on_each_day_for_its_part_of_the_night():
    night = [tap(ARRIVE, at(3, 20)), tap(LEAVE, at(4, 4))]
    assert (hours_on(3, night), hours_on(4, night)) == (4.0, 4.0)
    assert presence_intervals(night, LATER) == [(at(3, 20), at(4, 4))]
    # Next morning at 09:00, 13 h later, is still within the span: 4 h, then 9 h.
    late = [tap(ARRIVE, at(3, 20)), tap(LEAVE, at(4, 9))]
    assert (hours_on(3, late), hours_on(4, late)) == (4.0, 9.0)
    # Still on site the next morning: the night counts only once the departure is known.
    assert hours_on(4, night[:1], now=at(4, 3)) == 0.0


def test_the_span_is_the_limit_of_one_stay():
    assert MAX_PRESENCE_SPAN.total_seconds() == 16 * 3600
    arrive = tap(ARRIVE, at(3, 20))
    at_limit = [arrive, tap(LEAVE, at(3, 20) + MAX_PRESENCE_SPAN)]  # 12:00 the next day
    assert (hours_on(3, at_limit), hours_on(4, at_limit)) == (4.0, 12.0)
    beyond = [arrive, tap(LEAVE, at(3, 20) + MAX_PRESENCE_SPAN + timedelta(minutes=1))]
    assert (hours_on(3, beyond), hours_on(4, beyond)) == (4.0, 0.0)  # until midnight only
    assert unpaired_departures(beyond, LATER) == [beyond[1]]
    assert unpaired_departures(at_limit, LATER) == []


def test_a_departure_delivered_before_its_arrival_pairs_the_same():
    """The server gets the taps in the order phones deliver them, not the order they happened."""
    arrive, leave = tap(ARRIVE, at(3, 20)), tap(LEAVE, at(4, 4))
    early = [leave, arrive]  # the departure reached the server first (another phone)
    assert presence_intervals(early, LATER) == presence_intervals([arrive, leave], LATER)
    assert (hours_on(3, early), hours_on(4, early)) == (4.0, 4.0)
    # Before its arrival is known, the departure counts nothing, and is reported as unpaired.
    assert presence_intervals([leave], LATER) == []
    assert unpaired_departures([leave], LATER) == [leave]
    assert unpaired_departures(early, LATER) == []
    day = [
        tap(LEAVE, at(3, 15)),
        tap(LEAVE, at(3, 12)),
        tap(ARRIVE, at(3, 13)),
        tap(ARRIVE, at(3, 8)),
    ]
    assert hours_on(3, day) == 6.0
    assert pair_taps(day, LATER).unpaired == []


def test_unpaired_departures_are_those_that_end_no_arrival():
    first, second = tap(LEAVE, at(3, 12)), tap(LEAVE, at(3, 15))
    pairing = pair_taps([second, tap(ARRIVE, at(3, 8)), first], LATER)
    assert pairing.unpaired == [second]
    assert supervisor_onsite_hours(pairing.intervals) == 4.0
    # One after an arrival outside the geofence ends that arrival: paired, counts nothing.
    outside = [tap(ARRIVE, at(3, 8), inside=False), tap(LEAVE, at(3, 12))]
    assert pair_taps(outside, LATER) == Pairing(intervals=[], unpaired=[])
    # Sites are paired apart: a departure from the annex does not end the gate's arrival.
    annex = tap(LEAVE, at(3, 10), "annex")
    pairing = pair_taps([tap(ARRIVE, at(3, 8)), annex, tap(LEAVE, at(3, 12))], LATER)
    assert pairing.unpaired == [annex] and pairing.intervals == [(at(3, 8), at(3, 12))]


def test_an_overnight_stay_across_a_daylight_saving_change_counts_real_hours():
    zone = "Europe/Berlin"  # clocks go back 03:00 → 02:00 on 2026-10-25: a 25 h day
    arrive = PresenceTap("gate", ARRIVE, datetime(2026, 10, 24, 18, tzinfo=UTC), zone)  # 20:00
    leave = PresenceTap("gate", LEAVE, datetime(2026, 10, 25, 5, tzinfo=UTC), zone)  # 06:00
    spans = presence_intervals([leave, arrive], LATER)
    first = local_day_bounds(datetime(2026, 10, 24).date(), zone)
    second = local_day_bounds(datetime(2026, 10, 25).date(), zone)
    assert supervisor_onsite_hours(spans, within=first) == 4.0
    assert supervisor_onsite_hours(spans, within=second) == 7.0  # 00:00–06:00 local, 7 h real


def test_naive_times_are_refused():
    with pytest.raises(ValueError):
        presence_intervals([tap(ARRIVE, datetime(2026, 11, 3, 8))], LATER)
