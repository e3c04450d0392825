"""WorkingCalendar: working days, 调休 makeup days and working-day deadlines (CMP-07, SLA-13).

All instants are written in UTC with the Asia/Shanghai local time (UTC+8) in a comment, so the
time-zone conversion is part of what is tested.
"""

from datetime import UTC, date, datetime, time, timedelta

import pytest

from fieldapp.rules.calendar import WorkingCalendar

SH = "Asia/Shanghai"
PLAIN = WorkingCalendar()
# 2025 National Day: 1-8 October off, paid for by Sunday 28 Sep and Saturday 11 Oct.
NATIONAL_DAY_2025 = WorkingCalendar(
    holidays=frozenset(date(2025, 10, d) for d in range(1, 9)),
    makeup_workdays=frozenset({date(2025, 9, 28), date(2025, 10, 11)}),
)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (date(2025, 10, 9), True),  # Thursday
        (date(2025, 10, 1), False),  # Wednesday, holiday
        (date(2025, 10, 11), True),  # Saturday, makeup working day
        (date(2025, 10, 12), False),  # ordinary Sunday
        (date(2025, 9, 28), True),  # Sunday, makeup working day
    ],
)
def test_is_working_day(day: date, expected: bool) -> None:
    assert NATIONAL_DAY_2025.is_working_day(day) is expected


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (date(2025, 9, 30), date(2025, 10, 9)),  # over the whole holiday
        (date(2025, 10, 10), date(2025, 10, 11)),  # Friday -> makeup Saturday
        (date(2025, 9, 27), date(2025, 9, 28)),  # Saturday -> makeup Sunday
        (date(2025, 10, 11), date(2025, 10, 13)),  # makeup Saturday -> Monday
        (date(2025, 10, 8), date(2025, 10, 9)),  # strictly after, even from a holiday
    ],
)
def test_next_working_day(day: date, expected: date) -> None:
    assert NATIONAL_DAY_2025.next_working_day(day) == expected


@pytest.mark.parametrize(
    ("received", "n", "expected"),
    [
        # Friday 2026-11-20 18:00 local, after hours: Monday is day 1.
        (utc(2026, 11, 20, 10, 0), 1, utc(2026, 11, 23, 9, 30)),  # Mon 17:30
        (utc(2026, 11, 20, 10, 0), 2, utc(2026, 11, 24, 9, 30)),  # Tue 17:30
        # Monday 10:00 local, mid-day: the rest of Monday does not count as a full day.
        (utc(2026, 11, 23, 2, 0), 1, utc(2026, 11, 24, 9, 30)),  # Tue 17:30
        # Monday 08:30 local exactly: the whole of Monday is available.
        (utc(2026, 11, 23, 0, 30), 1, utc(2026, 11, 23, 9, 30)),  # Mon 17:30
        # Monday 07:00 local is Sunday 23:00 UTC: counted on the local Monday.
        (utc(2026, 11, 22, 23, 0), 1, utc(2026, 11, 23, 9, 30)),  # Mon 17:30
        # Monday 17:29 local is still in working hours; 17:30 is already after hours.
        (utc(2026, 11, 23, 9, 29), 1, utc(2026, 11, 24, 9, 30)),  # Tue 17:30
        (utc(2026, 11, 23, 9, 30), 1, utc(2026, 11, 24, 9, 30)),  # Tue 17:30
        (utc(2026, 11, 23, 9, 30), 2, utc(2026, 11, 25, 9, 30)),  # Wed 17:30
        # Saturday 10:00 local.
        (utc(2026, 11, 21, 2, 0), 1, utc(2026, 11, 23, 9, 30)),  # Mon 17:30
        (utc(2026, 11, 21, 2, 0), 2, utc(2026, 11, 24, 9, 30)),  # Tue 17:30
        # Thursday 17:00 UTC is already Friday 01:00 local: Friday is day 1.
        (utc(2026, 11, 19, 17, 0), 1, utc(2026, 11, 20, 9, 30)),  # Fri 17:30
        (utc(2026, 11, 19, 17, 0), 2, utc(2026, 11, 23, 9, 30)),  # Mon 17:30
        # n = 0: close of business of the day the clock starts.
        (utc(2026, 11, 23, 2, 0), 0, utc(2026, 11, 23, 9, 30)),  # Mon 10:00 -> Mon 17:30
        (utc(2026, 11, 21, 2, 0), 0, utc(2026, 11, 23, 9, 30)),  # Sat -> Mon 17:30
    ],
)
def test_add_working_days_plain_week(received: datetime, n: int, expected: datetime) -> None:
    assert PLAIN.add_working_days(received, n, SH) == expected


@pytest.mark.parametrize(
    ("received", "n", "expected"),
    [
        # Tuesday 30 Sep 18:00 local: the holiday pushes day 1 to Thursday 9 Oct.
        (utc(2025, 9, 30, 10, 0), 1, utc(2025, 10, 9, 9, 30)),
        (utc(2025, 9, 30, 10, 0), 2, utc(2025, 10, 10, 9, 30)),
        # Friday 10 Oct 18:00 local: the makeup Saturday is a working day.
        (utc(2025, 10, 10, 10, 0), 1, utc(2025, 10, 11, 9, 30)),
        (utc(2025, 10, 10, 10, 0), 2, utc(2025, 10, 13, 9, 30)),
        # Saturday 27 Sep 10:00 local: the makeup Sunday is day 1.
        (utc(2025, 9, 27, 2, 0), 1, utc(2025, 9, 28, 9, 30)),
        (utc(2025, 9, 27, 2, 0), 2, utc(2025, 9, 29, 9, 30)),
        # Mid-day on the makeup Sunday: due the end of Monday.
        (utc(2025, 9, 28, 2, 0), 1, utc(2025, 9, 29, 9, 30)),
    ],
)
def test_add_working_days_with_holidays_and_makeup_days(
    received: datetime, n: int, expected: datetime
) -> None:
    assert NATIONAL_DAY_2025.add_working_days(received, n, SH) == expected


def test_single_holiday_in_between_pushes_by_a_day() -> None:
    cal = WorkingCalendar(holidays=frozenset({date(2026, 11, 23)}))  # that Monday off
    friday_evening = utc(2026, 11, 20, 10, 0)  # Fri 18:00 local
    assert cal.add_working_days(friday_evening, 1, SH) == utc(2026, 11, 24, 9, 30)  # Tue
    assert cal.add_working_days(friday_evening, 2, SH) == utc(2026, 11, 25, 9, 30)  # Wed


def test_six_day_week_and_custom_hours() -> None:
    cal = WorkingCalendar(weekend=frozenset({6}), workday_end=time(18, 0))
    friday_evening = utc(2026, 11, 20, 10, 30)  # Fri 18:30 local
    assert cal.add_working_days(friday_evening, 1, SH) == utc(2026, 11, 21, 10, 0)  # Sat 18:00


def test_other_time_zone() -> None:
    # Urumqi is UTC+6: 10:00 UTC on Friday is 16:00 local, still working hours.
    assert PLAIN.add_working_days(utc(2026, 11, 20, 10, 0), 1, "Asia/Urumqi") == utc(
        2026, 11, 23, 11, 30
    )  # Mon 17:30 UTC+6


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        # Fri 16:30 -> Mon 09:30 local: one hour each side of the weekend.
        (utc(2026, 11, 20, 8, 30), utc(2026, 11, 23, 1, 30), timedelta(hours=2)),
        # Mon 10:00 -> 12:00 local.
        (utc(2026, 11, 23, 2, 0), utc(2026, 11, 23, 4, 0), timedelta(hours=2)),
        # Mon 00:00 local -> next Mon 00:00 local: five 9-hour days.
        (utc(2026, 11, 22, 16, 0), utc(2026, 11, 29, 16, 0), timedelta(hours=45)),
        # Saturday only.
        (utc(2026, 11, 21, 0, 0), utc(2026, 11, 21, 12, 0), timedelta(0)),
        # End before start.
        (utc(2026, 11, 23, 4, 0), utc(2026, 11, 23, 2, 0), timedelta(0)),
    ],
)
def test_working_time_between(start: datetime, end: datetime, expected: timedelta) -> None:
    assert PLAIN.working_time_between(start, end, SH) == expected


def test_working_time_skips_holidays() -> None:
    # Tue 30 Sep 09:00 local -> Thu 9 Oct 10:00 local: 8.5 h + 1.5 h.
    got = NATIONAL_DAY_2025.working_time_between(utc(2025, 9, 30, 1, 0), utc(2025, 10, 9, 2, 0), SH)
    assert got == timedelta(hours=10)


@pytest.mark.parametrize(
    "kwargs",
    [
        {
            "holidays": frozenset({date(2025, 10, 11)}),
            "makeup_workdays": frozenset({date(2025, 10, 11)}),
        },
        {"weekend": frozenset({7})},
        {"workday_start": time(18, 0), "workday_end": time(9, 0)},
    ],
)
def test_contradictory_calendar_is_refused(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        WorkingCalendar(**kwargs)


def test_calendar_without_working_days_raises_instead_of_looping() -> None:
    with pytest.raises(ValueError):
        WorkingCalendar(weekend=frozenset(range(7))).next_working_day(date(2026, 1, 1))


def test_naive_datetime_and_negative_n_are_refused() -> None:
    with pytest.raises(ValueError):
        PLAIN.add_working_days(datetime(2026, 11, 20, 18, 0), 1, SH)
    with pytest.raises(ValueError):
        PLAIN.add_working_days(utc(2026, 11, 20, 10, 0), -1, SH)
