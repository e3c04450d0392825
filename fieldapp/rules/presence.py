"""PAT-09: a supervisor's presence on site, from their "arrived" and "leaving" taps.

The taps are facts from the phone (device time, geofence checked by the server). Presence at a
site runs from an arrival inside the geofence to the next departure from that site. Hours per
day are then :func:`fieldapp.rules.patrols.supervisor_onsite_hours` of these intervals (overlaps,
e.g. two sites close together, count once).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from fieldapp.rules.patrols import Interval, local_day_bounds

ARRIVE = "arrive"
LEAVE = "leave"


@dataclass(frozen=True)
class PresenceTap:
    site: Hashable  # any key naming the site
    action: str  # ARRIVE | LEAVE
    at: datetime  # aware: the phone's time of the tap
    tz_name: str  # the site's time zone: its local working day
    inside: bool = True  # the position was inside the site's geofence


def _require_aware(value: datetime) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("tap times must be timezone-aware")


def local_date(at: datetime, tz_name: str) -> date:
    """The site's local date of an instant."""
    return at.astimezone(ZoneInfo(tz_name)).date()


def day_end(at: datetime, tz_name: str) -> datetime:
    """The end (next local midnight, UTC) of the site's local day that contains ``at``."""
    return local_day_bounds(local_date(at, tz_name), tz_name)[1]


def presence_intervals(taps: Iterable[PresenceTap], now: datetime) -> list[Interval]:
    """Arrive→leave intervals per site, in UTC, unsorted and possibly overlapping.

    - Only an arrival inside the geofence opens presence; one outside is kept by the server
      (flagged) but counts nothing.
    - The next departure from the same site closes it, wherever the phone was then (people
      tap "Leaving site" on their way out).
    - An arrival with no departure counts until the end of that local working day (the
      site's local midnight) at most, and never beyond ``now``. The same cap applies when the
      departure comes on a later day, and a new arrival at the same site closes the earlier
      one. Nothing else is assumed (no minimum, no automatic departure, no rounding).
    """
    _require_aware(now)
    by_site: dict[Hashable, list[PresenceTap]] = defaultdict(list)
    for tap in taps:
        _require_aware(tap.at)
        if tap.action not in (ARRIVE, LEAVE):
            raise ValueError(f"unknown action {tap.action!r}")
        by_site[tap.site].append(tap)

    intervals: list[Interval] = []

    def close(opened: PresenceTap, at: datetime) -> None:
        end = min(at, day_end(opened.at, opened.tz_name), now)
        if end > opened.at:
            intervals.append((opened.at, end))

    for site_taps in by_site.values():
        # Same instant: the arrival first, so an arrive/leave pair at one time is empty.
        site_taps.sort(key=lambda t: (t.at, t.action == LEAVE))
        opened: PresenceTap | None = None
        for tap in site_taps:
            if opened is not None:
                close(opened, tap.at)
                opened = None
            if tap.action == ARRIVE and tap.inside:
                opened = tap
        if opened is not None:
            close(opened, now)
    return intervals


def may_leave(earlier_taps: Iterable[PresenceTap], leave_at: datetime, tz_name: str) -> bool:
    """A departure needs an arrival: the supervisor's last tap at this site before
    ``leave_at``, on the same local day, is an arrival (inside the geofence or not)."""
    _require_aware(leave_at)
    day = local_date(leave_at, tz_name)
    same_day = [t for t in earlier_taps if t.at <= leave_at and local_date(t.at, tz_name) == day]
    if not same_day:
        return False
    last = max(same_day, key=lambda t: (t.at, t.action == LEAVE))
    return last.action == ARRIVE
