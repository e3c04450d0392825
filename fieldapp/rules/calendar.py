"""Working-day calendar for the working-day SLA clocks (SLA-06, SLA-13, CMP-07).

China's public holidays move every year and are paid for with "makeup" working days (调休) that
fall on a Saturday or Sunday, so a calendar is data: the admin enters the holidays and makeup
days each year, and these functions only apply them.

Profile A of SLA-13 (08:30-17:30) is the default working day. Profile B (08:00-12:00 and
14:00-18:00) has a lunch break; a calendar with ``workday_start=08:00`` and ``workday_end=18:00``
gives the same deadlines (they fall at close of business), only ``working_time_between``
would count the lunch break.
"""

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from fieldapp.rules.clock import ensure_aware

# SLA-13 profile A: 上班时间 早8:30——17:30.
DEFAULT_WORKDAY_START = time(8, 30)
DEFAULT_WORKDAY_END = time(17, 30)
# Monday is 0, so Saturday and Sunday are 5 and 6 (``date.weekday()``).
DEFAULT_WEEKEND = frozenset({5, 6})
# Longest run of non-working days we search through before declaring the calendar broken
# (Spring Festival plus weekends is about 9 days; a year covers any sane configuration).
MAX_NON_WORKING_RUN = 366


@dataclass(frozen=True)
class WorkingCalendar:
    """Which local dates are working days, and when the working day starts and ends.

    A date is a working day when it is a makeup working day, or when it is neither a holiday
    nor a weekend day. A date may not be both a holiday and a makeup day.
    """

    holidays: frozenset[date] = frozenset()
    makeup_workdays: frozenset[date] = frozenset()
    weekend: frozenset[int] = field(default=DEFAULT_WEEKEND)
    workday_start: time = DEFAULT_WORKDAY_START
    workday_end: time = DEFAULT_WORKDAY_END

    def __post_init__(self) -> None:
        # Admins type these in once a year; refuse contradictions at once rather than
        # computing deadlines from a calendar that means two things.
        if not self.weekend <= set(range(7)):
            raise ValueError(f"weekend days must be 0..6 (Monday=0), got {sorted(self.weekend)}")
        clash = self.holidays & self.makeup_workdays
        if clash:
            raise ValueError(f"dates are both holiday and makeup workday: {sorted(clash)}")
        if self.workday_start >= self.workday_end:
            raise ValueError("workday_start must be before workday_end")
        if self.workday_start.tzinfo is not None or self.workday_end.tzinfo is not None:
            raise ValueError("workday_start/workday_end are local wall-clock times, without tz")

    def is_working_day(self, d: date) -> bool:
        """True when ``d`` (a local date) is a working day."""
        if d in self.makeup_workdays:
            return True
        if d in self.holidays:
            return False
        return d.weekday() not in self.weekend

    def next_working_day(self, d: date) -> date:
        """The first working day strictly after ``d``."""
        candidate = d
        for _ in range(MAX_NON_WORKING_RUN):
            candidate += timedelta(days=1)
            if self.is_working_day(candidate):
                return candidate
        raise ValueError(f"no working day within {MAX_NON_WORKING_RUN} days after {d}")

    def add_working_days(self, moment_utc: datetime, n: int, tz_name: str) -> datetime:
        """Deadline for "within ``n`` working days" of ``moment_utc`` (CMP-07), as UTC.

        Semantics: the clock gets ``n`` full working days, and the deadline is rounded up to
        close of business (``workday_end``, local time of the site):

        * received on a working day before ``workday_start``, or on a non-working day, or at
          or after ``workday_end``: the clock starts at the start of the next (or same)
          working day, which therefore counts as day 1; the deadline is the end of the
          ``n``-th working day counted from it. Friday 18:00 with ``n=1`` is due Monday 17:30.
        * received during working hours: the rest of that day is a partial day, so the
          deadline is the end of the ``n``-th working day *after* it. Monday 10:00 with
          ``n=1`` is due Tuesday 17:30 (never less than a full working day).
        * ``n=0`` means "by close of business of the day the clock starts".

        The local date is taken in ``tz_name``, so a UTC instant that is already the next
        day at the site counts on the site's day.
        """
        ensure_aware(moment_utc, "moment_utc")
        if n < 0:
            raise ValueError("n must be >= 0")
        tz = ZoneInfo(tz_name)
        local = moment_utc.astimezone(tz)
        day = local.date()
        if self.is_working_day(day) and local.time() < self.workday_end:
            # Before opening the whole day is still ahead: it counts as day 1.
            whole_first_day = local.time() <= self.workday_start
        else:
            day = self.next_working_day(day)
            whole_first_day = True
        steps = n - 1 if (whole_first_day and n >= 1) else n
        for _ in range(steps):
            day = self.next_working_day(day)
        return datetime.combine(day, self.workday_end, tzinfo=tz).astimezone(UTC)

    def working_time_between(
        self, start_utc: datetime, end_utc: datetime, tz_name: str
    ) -> timedelta:
        """Working hours between two instants: the overlap with working days' opening hours.

        Returns ``timedelta(0)`` when ``end_utc`` is not after ``start_utc``. Used to show how
        much of a working-day SLA is left or was used.
        """
        ensure_aware(start_utc, "start_utc")
        ensure_aware(end_utc, "end_utc")
        if end_utc <= start_utc:
            return timedelta(0)
        tz = ZoneInfo(tz_name)
        total = timedelta(0)
        day = start_utc.astimezone(tz).date()
        last = end_utc.astimezone(tz).date()
        while day <= last:
            if self.is_working_day(day):
                opens = datetime.combine(day, self.workday_start, tzinfo=tz)
                closes = datetime.combine(day, self.workday_end, tzinfo=tz)
                overlap = min(closes, end_utc) - max(opens, start_utc)
                if overlap > timedelta(0):
                    total += overlap
            day += timedelta(days=1)
        return total
