"""PAT-09 supervisor presence: "Arrived on site" / "Leaving site" taps and the hours they make.

A supervisor taps on their phone at a guarded site of the teams they lead; each tap is a fact
(``SupervisorPresence``) sent by the sync engine and applied by :func:`apply_presence`, which
checks the position against the site's geofence and keeps (but flags) a tap outside it. Taps
are stored whatever order they reach the server in (a phone is offline for hours, a departure
from one phone may come before the arrival from another): a departure is never refused for
want of an arrival. The pairing of taps into presence intervals happens at read time, in the
order the taps happened, by the pure rule ``fieldapp.rules.presence``:

- arrival (inside the geofence) → next departure at that site within
  ``MAX_PRESENCE_SPAN`` (16 h) is one interval, across midnight for a night shift;
- an arrival without such a departure counts until its local midnight (nothing assumed);
- a departure with no arrival before it counts nothing until its arrival reaches the server
  (the page lists it as unpaired).

Hours per day are ``fieldapp.rules.patrols.supervisor_onsite_hours`` of those intervals clipped
to each local day (see ``fieldapp.patrols.service.onsite_hours`` and :func:`hours_by_day`).
"""

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from flask_babel import lazy_gettext as _l

from fieldapp.access import supervised_team_ids
from fieldapp.extensions import db
from fieldapp.models import Role, Site, SiteKind, User, utcnow
from fieldapp.patrols.models import SupervisorPresence
from fieldapp.rules import patrols as patrol_rules
from fieldapp.rules import presence as rules
from fieldapp.rules.errors import RuleViolation
from fieldapp.sync.messages import register_rule_messages

ARRIVE, LEAVE = rules.ARRIVE, rules.LEAVE
ACTION_LABELS = {ARRIVE: _l("Arrived on site"), LEAVE: _l("Leaving site")}
# How far back a day's figure looks for an arrival still open when the day began: an interval
# either ends at its arrival's local midnight (a day is at most 25 h long, on a DST day) or at a
# departure at most MAX_PRESENCE_SPAN (16 h) after the arrival; 26 h covers both.
LOOKBACK = max(timedelta(hours=26), rules.MAX_PRESENCE_SPAN + timedelta(hours=1))
# How far past a day's end to read for the departure of an overnight interval (so the intervals
# returned are exact, not only their part within the day).
LOOKAHEAD = rules.MAX_PRESENCE_SPAN
RECENT_DAYS = 7

register_rule_messages(
    {
        "patrol.presence_no_position": _l(
            "Your phone has no GPS position yet. Wait until the position is found, then tap again."
        ),
        "patrol.presence_unknown_site": _l("This site is not a guarded site of your company."),
        "patrol.presence_not_your_site": _l(
            "This site belongs to a team you do not supervise: your time there does not count."
        ),
    }
)


# ----- the sites a supervisor is present at ------------------------------------------------


def presence_sites(user: User) -> list[Site]:
    """Guarded sites of the teams the supervisor leads."""
    from fieldapp.patrols.service import supervised_sites  # it imports this module

    return supervised_sites(user)


def _presence_site(user: User, site_id: int) -> Site:
    site = db.session.get(Site, site_id)
    if site is None or site.org_id != user.org_id or site.kind != SiteKind.GUARDED_POST:
        raise RuleViolation("patrol.presence_unknown_site", "no such guarded site")
    if site.team_id not in supervised_team_ids(user):
        raise RuleViolation("patrol.presence_not_your_site", "site of a team not supervised")
    return site


def _tap(record: SupervisorPresence, tz_name: str) -> rules.PresenceTap:
    return rules.PresenceTap(
        site=record.site_id,
        action=record.action,
        at=record.at,
        tz_name=tz_name,
        inside=not record.outside_geofence,
    )


def apply_presence(ctx, payload) -> SupervisorPresence:
    """PAT-09: the supervisor arrives at or leaves a site of their teams (offline too).

    Refused: no GPS position, an unknown site or one of another team. Outside the geofence:
    kept, flagged. A departure is stored even when no arrival is known (yet): the tap is a fact,
    its arrival may come later from another phone; the hours pair them at read time.
    """
    site = _presence_site(ctx.user, payload.site_id)
    if payload.latitude is None or payload.longitude is None:
        raise RuleViolation("patrol.presence_no_position", "no GPS position")
    at = ctx.device_time.astimezone(UTC)
    from fieldapp.patrols.service import position_fields  # it imports this module

    record = SupervisorPresence(
        id=payload.id,
        org_id=site.org_id,
        site_id=site.id,
        supervisor_id=ctx.user.id,
        action=payload.action,
        at=at,
        received_at=ctx.received_at,
        **position_fields(site, payload),
    )
    db.session.add(record)
    return record


# ----- presence and hours ------------------------------------------------------------------


def taps(supervisor_id: int, start: datetime, end: datetime) -> list[SupervisorPresence]:
    """The supervisor's taps from ``start`` to ``end`` (UTC), oldest first."""
    return list(
        db.session.scalars(
            db.select(SupervisorPresence)
            .where(
                SupervisorPresence.supervisor_id == supervisor_id,
                SupervisorPresence.at >= start,
                SupervisorPresence.at < end,
            )
            .order_by(SupervisorPresence.at)
        )
    )


def intervals(
    user: User, start: datetime, end: datetime, now: datetime | None = None
) -> list[tuple[datetime, datetime]]:
    """Presence intervals touching ``start``..``end`` (UTC), from the taps (not clipped)."""
    records = taps(user.id, start - LOOKBACK, end + LOOKAHEAD)
    return rules.presence_intervals(_taps_of(records), now or utcnow())


def _taps_of(records: list[SupervisorPresence]) -> list[rules.PresenceTap]:
    zones = {
        site.id: site.timezone
        for site in db.session.scalars(
            db.select(Site).where(Site.id.in_({r.site_id for r in records} or {-1}))
        )
    }
    return [_tap(r, zones[r.site_id]) for r in records]


@dataclass
class PresenceDay:
    day: date
    hours: float
    working: bool  # a working day of the organisation's calendar

    @property
    def short(self) -> bool:
        """PAT-09: a working day with less than 6 h on site is flagged."""
        return self.working and not patrol_rules.meets_onsite_rule(self.hours)


@dataclass
class SiteState:
    site: Site
    since: datetime | None = None  # on site since (UTC) when the last tap is an arrival
    taps: list = field(default_factory=list)  # today's taps at this site
    unpaired: set = field(default_factory=set)  # ids of today's departures that end no arrival


def today_by_site(user: User, today: date, tz_name: str) -> list[SiteState]:
    """Each site of the supervisor with today's taps, whether they are on site now, and
    today's departures no arrival is known for (they count nothing until it reaches us)."""
    start, end = patrol_rules.local_day_bounds(today, tz_name)
    states = {site.id: SiteState(site) for site in presence_sites(user)}
    records = taps(user.id, start - LOOKBACK, end)  # earlier taps: an overnight arrival
    unpaired = {(t.site, t.at) for t in rules.unpaired_departures(_taps_of(records), utcnow())}
    for record in records:
        state = states.get(record.site_id)
        if state is None or record.at < start:  # not today, or no longer their team's site
            continue
        if record.action == LEAVE and (record.site_id, record.at) in unpaired:
            state.unpaired.add(record.id)
        state.taps.append(record)
        inside_arrival = record.action == ARRIVE and not record.outside_geofence
        state.since = record.at if inside_arrival else None
    return list(states.values())


def hours_by_day(user: User, days: list[date], tz_name: str) -> dict[date, float]:
    """PAT-09 hours on site for each of ``days`` (local days of ``tz_name``), from one read of
    the supervisor's taps over the whole span rather than one per day."""
    if not days:
        return {}
    bounds = {day: patrol_rules.local_day_bounds(day, tz_name) for day in days}
    spans = intervals(user, min(b[0] for b in bounds.values()), max(b[1] for b in bounds.values()))
    return {
        day: patrol_rules.supervisor_onsite_hours(spans, within=within)
        for day, within in bounds.items()
    }


def _presence_days(user: User, days: list[date], tz_name: str) -> list[PresenceDay]:
    from fieldapp.complaints.service import working_calendar  # the organisation's calendar

    calendar = working_calendar(user.org_id)
    hours = hours_by_day(user, days, tz_name)
    return [PresenceDay(day, hours[day], calendar.is_working_day(day)) for day in days]


def recent_days(user: User, today: date, tz_name: str, days: int = RECENT_DAYS):
    """The ``days`` days before ``today`` with the hours on site, flagged under 6 h."""
    return _presence_days(
        user, [today - timedelta(days=back) for back in range(1, days + 1)], tz_name
    )


def month_days(user: User, first: date, following: date, today: date, tz_name: str):
    """The days of a month before ``today`` (today is not over) with the hours on site."""
    last = min(following, today)
    return _presence_days(
        user, [first + timedelta(days=n) for n in range((last - first).days)], tz_name
    )


# ----- offline and demo --------------------------------------------------------------------


def daypack_pages(user: User) -> list[str]:
    """The presence page works offline for supervisors (the service worker keeps it)."""
    return ["/patrols/presence"] if user.role == Role.SUPERVISOR else []


DEMO_SITE = "外滩中心大门岗"
# Yesterday's (local) taps of the demo supervisor: 4 h in the morning, then a short visit.
DEMO_TAPS = (
    ("0a6f9e2c-7d1b-4c5e-9f3a-2b8d6e4c1a01", ARRIVE, 8, 30),
    ("0a6f9e2c-7d1b-4c5e-9f3a-2b8d6e4c1a02", LEAVE, 12, 30),
    ("0a6f9e2c-7d1b-4c5e-9f3a-2b8d6e4c1a03", ARRIVE, 15, 0),
    ("0a6f9e2c-7d1b-4c5e-9f3a-2b8d6e4c1a04", LEAVE, 16, 0),
)


def seed_presence(org, users, teams, sites) -> None:
    """Demo: yesterday the supervisor was 5 h at 外滩中心大门岗 (flagged under 6 h)."""
    from zoneinfo import ZoneInfo

    site, supervisor = sites.get(DEMO_SITE), users.get("supervisor")
    if site is None or supervisor is None or site.latitude is None:
        return
    zone = ZoneInfo(site.timezone)
    yesterday = datetime.now(zone).date() - timedelta(days=1)
    for record_id, action, hour, minute in DEMO_TAPS:
        if db.session.get(SupervisorPresence, record_id) is not None:
            continue
        at = datetime(
            yesterday.year, yesterday.month, yesterday.day, hour, minute, tzinfo=zone
        ).astimezone(UTC)
        db.session.add(
            SupervisorPresence(
                id=record_id,
                org_id=org.id,
                site_id=site.id,
                supervisor_id=supervisor.id,
                action=action,
                at=at,
                received_at=at,
                latitude=site.latitude,
                longitude=site.longitude,
                accuracy_m=10.0,
                distance_m=0,
                outside_geofence=False,
            )
        )
    db.session.flush()
