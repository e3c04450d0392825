"""Plain functions of push: quiet hours, kind defaults, Retry-After (no Flask, no database)."""

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from fieldapp.push.kinds import ALARM_TTL, ASSIGNMENT_TTL, Channel, Kind
from fieldapp.push.quiet import is_quiet, quiet_until
from fieldapp.push.sender import retry_after_seconds

SH = ZoneInfo("Asia/Shanghai")
NY = ZoneInfo("America/New_York")


@pytest.mark.parametrize(
    ("local", "start", "end", "quiet"),
    [
        (time(23, 0), time(22, 0), time(7, 0), True),
        (time(2, 0), time(22, 0), time(7, 0), True),
        (time(7, 0), time(22, 0), time(7, 0), False),  # the end is not quiet any more
        (time(21, 59), time(22, 0), time(7, 0), False),
        (time(22, 0), time(22, 0), time(7, 0), True),
        (time(12, 30), time(12, 0), time(13, 30), True),
        (time(14, 0), time(12, 0), time(13, 30), False),
        (time(3, 0), time(0, 0), time(0, 0), False),  # start == end: no quiet hours
    ],
)
def test_is_quiet(local, start, end, quiet):
    assert is_quiet(local, start, end) is quiet


def _at(zone, *args):
    return datetime(*args, tzinfo=zone)


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (_at(SH, 2026, 11, 20, 23, 15), _at(SH, 2026, 11, 21, 7, 0)),  # before midnight
        (_at(SH, 2026, 11, 21, 2, 0), _at(SH, 2026, 11, 21, 7, 0)),  # after midnight
        (_at(SH, 2026, 11, 21, 7, 0), None),
        (_at(SH, 2026, 11, 21, 12, 0), None),
    ],
)
def test_quiet_until_across_midnight(now, expected):
    until = quiet_until(now.astimezone(UTC), time(22, 0), time(7, 0), "Asia/Shanghai")
    assert until == (expected.astimezone(UTC) if expected else None)
    assert until is None or until.tzinfo == UTC


def test_quiet_until_follows_daylight_saving_time():
    # New York springs forward on 2026-03-08: 02:00 local becomes 03:00.
    now = _at(NY, 2026, 3, 8, 1, 30)
    until = quiet_until(now, time(23, 0), time(7, 0), "America/New_York")
    assert until == _at(NY, 2026, 3, 8, 7, 0).astimezone(UTC)
    assert until - now == timedelta(hours=4, minutes=30)  # one hour less that night


def test_quiet_until_needs_both_times_and_an_aware_now():
    assert quiet_until(datetime.now(UTC), None, time(7), "UTC") is None
    with pytest.raises(ValueError):
        quiet_until(datetime(2026, 1, 1), time(22), time(7), "UTC")


def test_a_kind_gets_its_ttl_urgency_and_quiet_hours_from_being_an_alarm():
    assignment = Kind("x.new_stop", "l", "t", "b")
    alarm = Kind("x.round_missed", "l", "t", "b", alarm=True)
    assert (assignment.ttl, assignment.urgency, assignment.quiet) == (
        ASSIGNMENT_TTL,
        "normal",
        True,
    )
    assert (alarm.ttl, alarm.urgency, alarm.quiet) == (ALARM_TTL, "high", False)
    assert (ASSIGNMENT_TTL, ALARM_TTL) == (86400, 3600)
    assert assignment.default_channel is Channel.PUSH
    assert Kind("x.y", "l", "t", "b", default_channel="inapp").default_channel is Channel.INAPP
    with pytest.raises(ValueError):
        Kind("x.y", "l", "t", "b", urgency="urgent")
    with pytest.raises(ValueError):
        Kind("x.y", "l", "t", "b", default_channel="sms")


def test_retry_after_in_seconds_or_as_a_date():
    now = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    assert retry_after_seconds("120", now) == 120
    assert retry_after_seconds("Mon, 23 Nov 2026 12:00:30 GMT", now) == 30
    assert retry_after_seconds("Mon, 23 Nov 2026 11:00:00 GMT", now) == 0
    assert retry_after_seconds("soon", now) is None
    assert retry_after_seconds(None, now) is None
