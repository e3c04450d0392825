"""The registers the regulations require that the other domains' records make (section 7, REC),
for a supervisor's teams, a date range, and optionally one site and one worker.

Built like ``fieldapp.deliveries.registers`` (whose four delivery registers, REC-01 to REC-04,
the registers page links to as they are): each register is a header of column keys and rows of
plain strings, as the CSV has them (codes, ``yes``/``no``, local times); the XLSX and the print
page show the same rows with translated headings and values, numbers and dates as such.
Scope: a supervisor sees the sites and complaints of the teams they lead, an admin all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import aliased

from fieldapp import exports
from fieldapp.access import supervised_team_ids
from fieldapp.complaints.models import (
    CATEGORY_LABELS,
    CHANNEL_LABELS,
    SEVERITY_LABELS,
    STATE_LABELS,
    Complaint,
)
from fieldapp.dashboard.service import org_zone
from fieldapp.extensions import db
from fieldapp.models import Role, Site, User
from fieldapp.patrols.models import (
    GateEntry,
    GateExit,
    Handover,
    Incident,
    Shift,
    ShiftSignIn,
    SpotCheck,
)

MAX_DAYS = 366


@dataclass(frozen=True)
class Filters:
    start: date
    end: date  # inclusive
    site_id: int | None = None
    worker_id: int | None = None


def _yes_no(flag) -> str:
    return "" if flag is None else ("yes" if flag else "no")


def _local(value: datetime | None, zone: ZoneInfo) -> str:
    return value.astimezone(zone).strftime("%Y-%m-%d %H:%M") if value else ""


def _bounds(filters: Filters, zone: ZoneInfo) -> tuple[datetime, datetime]:
    start = datetime.combine(filters.start, time.min, tzinfo=zone).astimezone(UTC)
    end = datetime.combine(filters.end + timedelta(days=1), time.min, tzinfo=zone).astimezone(UTC)
    return start, end


def _sites(user: User, query, site_column, filters: Filters):
    """Restrict ``query`` to the sites of the user's teams (and the chosen site)."""
    query = query.join(Site, Site.id == site_column).where(Site.org_id == user.org_id)
    if user.role != Role.ADMIN:
        query = query.where(Site.team_id.in_(supervised_team_ids(user) or [-1]))
    if filters.site_id:
        query = query.where(Site.id == filters.site_id)
    return query


# ----- REC-08: shift handover records -------------------------------------------------------

HANDOVER_HEADER = (
    "scheduled",
    "handed_over",
    "site",
    "outgoing",
    "incoming",
    "late",
    "equipment",
    "open_incidents",
    "visitors_inside",
    "notes",
    "signed_by_both",
)


def handovers(user: User, filters: Filters) -> list[list[str]]:
    zone = org_zone(user.org_id)
    start, end = _bounds(filters, zone)
    outgoing, incoming = aliased(User), aliased(User)
    query = (
        db.select(Handover, Site.name, outgoing.display_name, incoming.display_name)
        .join(outgoing, outgoing.id == Handover.outgoing_guard_id)
        .join(incoming, incoming.id == Handover.incoming_guard_id)
        .where(Handover.actual_at >= start, Handover.actual_at < end)
        .order_by(Handover.actual_at)
    )
    query = _sites(user, query, Handover.site_id, filters)
    if filters.worker_id:
        query = query.where(
            (Handover.outgoing_guard_id == filters.worker_id)
            | (Handover.incoming_guard_id == filters.worker_id)
        )
    return [
        [
            _local(h.scheduled_at, zone),
            _local(h.actual_at, zone),
            site,
            out_name,
            in_name,
            _yes_no(h.late),
            h.equipment,
            h.open_incidents,
            h.visitors_inside,
            h.notes,
            _yes_no(bool(h.outgoing_signature and h.incoming_signature)),
        ]
        for h, site, out_name, in_name in db.session.execute(query)
    ]


# ----- REC-13: post inspections (spot checks) -----------------------------------------------

SPOT_CHECK_HEADER = (
    "time",
    "site",
    "inspector",
    "guard",
    "guard_present",
    "in_uniform",
    "violations",
    "findings",
    "outside_geofence",
)


def spot_checks(user: User, filters: Filters) -> list[list[str]]:
    zone = org_zone(user.org_id)
    start, end = _bounds(filters, zone)
    inspector, guard = aliased(User), aliased(User)
    query = (
        db.select(SpotCheck, Site.name, inspector.display_name, guard.display_name)
        .join(inspector, inspector.id == SpotCheck.supervisor_id)
        .outerjoin(guard, guard.id == SpotCheck.guard_id)
        .where(SpotCheck.at >= start, SpotCheck.at < end)
        .order_by(SpotCheck.at)
    )
    query = _sites(user, query, SpotCheck.site_id, filters)
    if filters.worker_id:
        query = query.where(SpotCheck.guard_id == filters.worker_id)
    return [
        [
            _local(s.at, zone),
            site,
            inspector_name,
            guard_name or "",
            _yes_no(s.guard_present),
            _yes_no(s.in_uniform),
            "; ".join(str(v) for v in (s.violations or [])),
            s.findings,
            _yes_no(s.outside_geofence),
        ]
        for s, site, inspector_name, guard_name in db.session.execute(query)
    ]


# ----- REC-15: gate register ---------------------------------------------------------------

GATE_HEADER = (
    "time",
    "site",
    "guard",
    "entry_kind",
    "direction",
    "name",
    "id_type",
    "from_organisation",
    "host",
    "purpose",
    "plate",
    "driver",
    "goods",
    "pass_number",
    "time_out",
)


def gate_register(user: User, filters: Filters) -> list[list[str]]:
    zone = org_zone(user.org_id)
    start, end = _bounds(filters, zone)
    query = (
        db.select(GateEntry, Site.name, User.display_name, GateExit.at)
        .join(User, User.id == GateEntry.guard_id)
        .outerjoin(GateExit, GateExit.entry_id == GateEntry.id)
        .where(GateEntry.at >= start, GateEntry.at < end)
        .order_by(GateEntry.at)
    )
    query = _sites(user, query, GateEntry.site_id, filters)
    if filters.worker_id:
        query = query.where(GateEntry.guard_id == filters.worker_id)
    # The ID number stays out of the register (AUD-03): the phone and the office keep it.
    return [
        [
            _local(g.at, zone),
            site,
            guard,
            g.entry_kind,
            g.direction,
            g.name,
            g.id_type,
            g.organisation,
            g.host,
            g.purpose,
            g.plate,
            g.driver,
            g.goods,
            g.pass_number,
            _local(out_at, zone),
        ]
        for g, site, guard, out_at in db.session.execute(query)
    ]


# ----- incident log (PAT-12, PAT-14) -------------------------------------------------------

INCIDENT_HEADER = (
    "time",
    "site",
    "reported_by",
    "incident_type",
    "severity",
    "place",
    "description",
    "closed",
)


def incidents(user: User, filters: Filters) -> list[list[str]]:
    zone = org_zone(user.org_id)
    start, end = _bounds(filters, zone)
    query = (
        db.select(Incident, Site.name, User.display_name)
        .join(User, User.id == Incident.reported_by_id)
        .where(Incident.reported_at >= start, Incident.reported_at < end)
        .order_by(Incident.reported_at)
    )
    query = _sites(user, query, Incident.site_id, filters)
    if filters.worker_id:
        query = query.where(Incident.reported_by_id == filters.worker_id)
    return [
        [
            _local(i.reported_at, zone),
            site,
            reporter,
            i.incident_type,
            i.severity,
            i.place,
            i.description,
            _local(i.closed_at, zone),
        ]
        for i, site, reporter in db.session.execute(query)
    ]


# ----- REC-16: attendance sign-in ----------------------------------------------------------

SIGN_IN_HEADER = ("time", "site", "guard", "action", "outside_geofence", "distance_m")


def sign_ins(user: User, filters: Filters) -> list[list[str]]:
    zone = org_zone(user.org_id)
    start, end = _bounds(filters, zone)
    query = (
        db.select(ShiftSignIn, Site.name, User.display_name)
        .join(Shift, Shift.id == ShiftSignIn.shift_id)
        .join(User, User.id == ShiftSignIn.guard_id)
        .where(ShiftSignIn.at >= start, ShiftSignIn.at < end)
        .order_by(ShiftSignIn.at)
    )
    query = _sites(user, query, Shift.site_id, filters)
    if filters.worker_id:
        query = query.where(ShiftSignIn.guard_id == filters.worker_id)
    return [
        [
            _local(s.at, zone),
            site,
            guard,
            s.action,
            _yes_no(s.outside_geofence),
            "" if s.distance_m is None else str(s.distance_m),
        ]
        for s, site, guard in db.session.execute(query)
    ]


# ----- REC-06: complaint records -----------------------------------------------------------

COMPLAINT_HEADER = (
    "slip_number",
    "logged",
    "client",
    "channel",
    "subject",
    "category",
    "severity",
    "owner",
    "state",
    "investigate_by",
    "reply_by",
    "closed",
)


def complaints(user: User, filters: Filters) -> list[list[str]]:
    zone = org_zone(user.org_id)
    start, end = _bounds(filters, zone)
    query = (
        db.select(Complaint, User.display_name)
        .join(User, User.id == Complaint.owner_id)
        .where(
            Complaint.org_id == user.org_id,
            Complaint.logged_at >= start,
            Complaint.logged_at < end,
        )
        .order_by(Complaint.logged_at)
    )
    if user.role != Role.ADMIN:
        query = query.where(Complaint.team_id.in_(supervised_team_ids(user) or [-1]))
    if filters.site_id:
        query = query.where(Complaint.site_id == filters.site_id)
    if filters.worker_id:
        query = query.where(Complaint.owner_id == filters.worker_id)
    return [
        [
            c.slip_number,
            _local(c.logged_at, zone),
            c.client_name,
            c.channel,
            c.subject,
            c.category,
            c.severity,
            owner,
            c.state,
            _local(c.investigate_by, zone),
            _local(c.reply_by, zone),
            _local(c.closed_at, zone),
        ]
        for c, owner in db.session.execute(query)
    ]


# ----- the catalogue ------------------------------------------------------------------------

COLUMN_LABELS = {
    "scheduled": _l("Scheduled"),
    "handed_over": _l("Handed over at"),
    "site": _l("Site"),
    "outgoing": _l("Outgoing guard"),
    "incoming": _l("Incoming guard"),
    "late": _l("Late"),
    "equipment": _l("Equipment"),
    "open_incidents": _l("Open incidents"),
    "visitors_inside": _l("Visitors inside"),
    "notes": _l("Notes"),
    "signed_by_both": _l("Signed by both"),
    "time": _l("Time"),
    "inspector": _l("Inspector"),
    "guard": _l("Guard"),
    "guard_present": _l("Guard present"),
    "in_uniform": _l("In uniform"),
    "violations": _l("Violations"),
    "findings": _l("Findings"),
    "outside_geofence": _l("Outside the site"),
    "entry_kind": _l("Visitor or vehicle"),
    "direction": _l("In or out"),
    "name": _l("Name"),
    "id_type": _l("ID type"),
    "from_organisation": _l("From"),
    "host": _l("Host"),
    "purpose": _l("Purpose"),
    "plate": _l("Plate"),
    "driver": _l("Driver"),
    "goods": _l("Goods"),
    "pass_number": _l("Pass no."),
    "time_out": _l("Time out"),
    "reported_by": _l("Reported by"),
    "incident_type": _l("Type"),
    "severity": _l("Severity"),
    "place": _l("Place"),
    "description": _l("Description"),
    "closed": _l("Closed"),
    "action": _l("Sign-in or sign-out"),
    "distance_m": _l("Distance (m)"),
    "slip_number": _l("Slip no."),
    "logged": _l("Logged"),
    "client": _l("Client"),
    "channel": _l("Channel"),
    "subject": _l("Subject"),
    "category": _l("Category"),
    "owner": _l("First contact"),
    "state": _l("Status"),
    "investigate_by": _l("Investigate by"),
    "reply_by": _l("Reply by"),
}
YES_NO = {"yes": _l("Yes"), "no": _l("No")}
VALUE_LABELS = {
    "channel": CHANNEL_LABELS,
    "category": CATEGORY_LABELS,
    "severity": SEVERITY_LABELS,
    "state": STATE_LABELS,
    "entry_kind": {"visitor": _l("Visitor"), "vehicle": _l("Vehicle or goods")},
    "direction": {"in": _l("In"), "out": _l("Out")},
    "action": {"in": _l("Sign in"), "out": _l("Sign out")},
    **{
        name: YES_NO
        for name in (
            "late",
            "signed_by_both",
            "guard_present",
            "in_uniform",
            "outside_geofence",
        )
    },
}
INTEGER_COLUMNS = frozenset({"distance_m"})
TIME_COLUMNS = frozenset(
    {
        "scheduled",
        "handed_over",
        "time",
        "time_out",
        "closed",
        "logged",
        "investigate_by",
        "reply_by",
    }
)


@dataclass(frozen=True)
class Register:
    key: str
    title: object
    rule: str
    header: tuple[str, ...]
    rows: Callable[[User, Filters], list[list[str]]]


REGISTERS = {
    r.key: r
    for r in (
        Register("handovers", _l("Shift handover records"), "REC-08", HANDOVER_HEADER, handovers),
        Register("gate", _l("Gate register"), "REC-15", GATE_HEADER, gate_register),
        Register(
            "spot-checks", _l("Post inspection records"), "REC-13", SPOT_CHECK_HEADER, spot_checks
        ),
        Register("incidents", _l("Incident log"), "PAT-14", INCIDENT_HEADER, incidents),
        Register("sign-ins", _l("Attendance sign-in"), "REC-16", SIGN_IN_HEADER, sign_ins),
        Register("complaints", _l("Complaint records"), "REC-06", COMPLAINT_HEADER, complaints),
    )
}


COLUMNS = exports.Columns(
    labels=COLUMN_LABELS,
    values=VALUE_LABELS,
    integers=INTEGER_COLUMNS,
    times=TIME_COLUMNS,
    wide=frozenset({"notes", "description", "findings", "equipment", "subject"}),
)


def choices(user: User) -> tuple[list[Site], list[User]]:
    """The sites and the people the filter offers: those of the user's teams."""
    sites = db.select(Site).where(Site.org_id == user.org_id)
    people = db.select(User).where(User.org_id == user.org_id, User.active.is_(True))
    if user.role != Role.ADMIN:
        teams = supervised_team_ids(user) or [-1]
        sites = sites.where(Site.team_id.in_(teams))
        people = people.where(User.team_id.in_(teams))
    return (
        list(db.session.scalars(sites.order_by(Site.name))),
        list(db.session.scalars(people.order_by(User.display_name))),
    )
