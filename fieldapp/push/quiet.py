"""Quiet hours as plain functions: no Flask, no database.

Quiet hours are wall-clock times in the user's time zone, e.g. 22:00 to 07:00 (across midnight)
or 12:00 to 13:30 (within a day). Non-alarm pushes that fall inside them wait until they end;
the inbox gets the notification at once either way.
"""

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from fieldapp.rules.clock import ensure_aware


def is_quiet(local: time, start: time, end: time) -> bool:
    """Whether a local wall-clock time lies in [start, end); start == end means never."""
    if start == end:
        return False
    if start < end:
        return start <= local < end
    return local >= start or local < end  # across midnight


def quiet_until(now: datetime, start: time | None, end: time | None, tz: str) -> datetime | None:
    """The UTC instant the quiet hours around ``now`` end, or None when it is not quiet now."""
    ensure_aware(now, "now")
    if start is None or end is None:
        return None
    zone = ZoneInfo(tz)
    local = now.astimezone(zone)
    if not is_quiet(local.time().replace(tzinfo=None), start, end):
        return None
    day = local.date()
    if start > end and local.time().replace(tzinfo=None) >= start:
        day += timedelta(days=1)  # before midnight: the quiet hours end tomorrow morning
    ends = datetime.combine(day, end, tzinfo=zone)
    # A wall-clock time skipped by a DST jump still maps to an instant after "now".
    return max(ends.astimezone(UTC), now.astimezone(UTC))
