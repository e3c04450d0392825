"""PAT-09: a supervisor's presence on site, from their "arrived" and "leaving" taps.

The taps are facts from the phone (device time, geofence checked by the server). The server
stores every tap it is sent, in whatever order the phones deliver them (a departure may reach it
before its arrival, from another phone or after hours offline), and pairs them here, at read
time, in the order they happened:

- An arrival inside the geofence, followed (at the same site) by a departure no more than
  :data:`MAX_PRESENCE_SPAN` later, is one interval from the arrival to the departure, across
  local midnight if need be (a night shift 20:00→04:00 is one interval).
- An arrival with no departure, or whose departure comes later than :data:`MAX_PRESENCE_SPAN`
  on a later local day, counts until the end of its own local day (the site's midnight) at most.
- A departure with no arrival before it counts nothing (until an arrival reaches the server).

Hours per day are then :func:`fieldapp.rules.patrols.supervisor_onsite_hours` of these
intervals clipped to the day (``within=``): an overnight interval counts on each local day for
the part inside that day; overlaps (e.g. two sites close together) count once.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from fieldapp.rules.patrols import Interval, local_day_bounds

ARRIVE = "arrive"
LEAVE = "leave"

# The longest arrive→leave gap taken as one stay on site. A supervisor's longest real stay is a
# 12-hour night shift (e.g. 20:00→08:00) plus a handover and a late tap on the way out; 16 h
# covers that with room to spare, while a departure later than that (the next evening, say)
# more likely ends a day whose "Leaving site" tap was forgotten, so it must not turn a whole
# night and day into presence. Such an arrival counts until its local midnight, as one with no
# departure at all. Must stay within ``fieldapp.patrols.presence.LOOKBACK``.
MAX_PRESENCE_SPAN = timedelta(hours=16)


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


@dataclass(frozen=True)
class Pairing:
    """The taps of a supervisor paired in the order they happened (see the module docs)."""

    intervals: list[Interval]  # counted presence, UTC, unsorted, possibly overlapping
    # Departures that end no arrival: none before them at that site (not yet known to the
    # server, or a second departure), or only one too long before (see MAX_PRESENCE_SPAN).
    unpaired: list[PresenceTap]


def pair_taps(taps: Iterable[PresenceTap], now: datetime) -> Pairing:
    """Pair arrivals with departures per site, whatever order ``taps`` are given in."""
    _require_aware(now)
    by_site: dict[Hashable, list[PresenceTap]] = defaultdict(list)
    for tap in taps:
        _require_aware(tap.at)
        if tap.action not in (ARRIVE, LEAVE):
            raise ValueError(f"unknown action {tap.action!r}")
        by_site[tap.site].append(tap)

    intervals: list[Interval] = []
    unpaired: list[PresenceTap] = []

    def close(opened: PresenceTap, at: datetime, departure: bool) -> bool:
        """End the presence opened by an arrival: at its departure ``at`` if that is within
        the span; otherwise at ``at`` or the arrival's local midnight, whichever is first.
        True when ``at`` is where it ends (a departure then ends this arrival)."""
        midnight = day_end(opened.at, opened.tz_name)
        ends_here = (departure and at - opened.at <= MAX_PRESENCE_SPAN) or at <= midnight
        end = min(at if ends_here else midnight, now)
        if opened.inside and end > opened.at:
            intervals.append((opened.at, end))
        return ends_here

    for site_taps in by_site.values():
        # Same instant: the arrival first, so an arrive/leave pair at one time is empty.
        site_taps.sort(key=lambda t: (t.at, t.action == LEAVE))
        opened: PresenceTap | None = None  # the last arrival (inside or not), not yet closed
        for tap in site_taps:
            if tap.action == LEAVE:
                if opened is None or not close(opened, tap.at, departure=True):
                    unpaired.append(tap)
                opened = None
            else:  # a new arrival ends one left open, as if that one had no departure
                if opened is not None:
                    close(opened, tap.at, departure=False)
                opened = tap
        if opened is not None:
            close(opened, now, departure=False)
    return Pairing(intervals, unpaired)


def presence_intervals(taps: Iterable[PresenceTap], now: datetime) -> list[Interval]:
    """The counted arrive→leave intervals per site, in UTC, unsorted and possibly overlapping.

    ``taps`` may come in any order (the order the server received them does not matter); per
    site they are taken in the order they happened (at one instant, the arrival first):

    - Only an arrival inside the geofence opens presence; one outside is kept by the server
      (flagged) but counts nothing, and it ends a presence left open at that site.
    - The next departure from the same site closes the arrival before it, wherever the phone
      was then (people tap "Leaving site" on their way out), if it comes at most
      :data:`MAX_PRESENCE_SPAN` after the arrival: the interval runs to the departure, across
      local midnight if need be (its hours count on each local day for the part inside it).
    - An arrival with no departure counts until the end of its local working day (the site's
      local midnight) at most; so does one whose departure comes more than
      :data:`MAX_PRESENCE_SPAN` later (and, if that departure is earlier the same day, until
      the departure). A new arrival at the same site also closes the one left open, at the
      new arrival or that midnight, whichever comes first.
    - A departure with nothing open before it (no arrival yet, or the second of two
      departures) counts nothing; it pairs as soon as its arrival is known.
    - Nothing counts beyond ``now``. Nothing else is assumed (no minimum, no automatic
      departure, no rounding).
    """
    return pair_taps(taps, now).intervals


def unpaired_departures(taps: Iterable[PresenceTap], now: datetime) -> list[PresenceTap]:
    """Departures that end no arrival (:attr:`Pairing.unpaired`): they count nothing (yet)."""
    return pair_taps(taps, now).unpaired
