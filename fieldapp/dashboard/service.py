"""What a supervisor sees of their teams: today's board and each worker's KPIs for a month.

Counts are aggregated in the database (``GROUP BY`` with conditional sums); the KPI arithmetic
(rates, targets, "met") is ``fieldapp.rules.kpi``. Patrol rounds are not stored rows but are
judged from the roster, the plan and the scans, so they come from the patrols service.
Scope: a supervisor sees the teams they lead, an admin every team of the organisation
(``access.supervised_team_ids``); nothing here reaches another organisation.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

from sqlalchemy import and_, case, func, or_

from fieldapp.access import supervised_team_ids
from fieldapp.complaints import service as complaints_service
from fieldapp.complaints.models import (
    INVESTIGATION_STARTED,
    REPLIED,
    Complaint,
    ComplaintEvent,
)
from fieldapp.deliveries.models import OPEN_STATES, ProofOfDelivery, Route, Stop, StopState
from fieldapp.extensions import db
from fieldapp.models import Device, Organisation, Role, Site, Team, TeamKind, User, utcnow
from fieldapp.models.user import WORKER_ROLES
from fieldapp.patrols import presence as presence_service
from fieldapp.patrols import service as patrols_service
from fieldapp.patrols.models import Shift
from fieldapp.rules import kpi
from fieldapp.rules.complaints import ComplaintState, UnitComplaintRate
from fieldapp.rules.patrols import GuardMonthFigures
from fieldapp.rules.visits import StaffSatisfaction
from fieldapp.visits import service as visits_service
from fieldapp.visits.models import Visit, VisitState

_OPEN = [str(s) for s in OPEN_STATES]
_REFUSED = [str(StopState.REFUSED), str(StopState.RETURNED)]


def _count_if(condition):
    """``SUM(CASE WHEN condition THEN 1 ELSE 0 END)``, 0 for an empty group."""
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def org_zone(org_id: int) -> ZoneInfo:
    name = db.session.scalar(db.select(Organisation.timezone).where(Organisation.id == org_id))
    return ZoneInfo(name or "Asia/Shanghai")


def local_today(user: User, now: datetime | None = None) -> date:
    return (now or utcnow()).astimezone(org_zone(user.org_id)).date()


# ----- today ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RouteRow:
    route_id: int
    name: str
    courier: str | None
    stops: int
    done: int  # delivered
    due: int  # still to do (pending or arrived)
    late: int  # open past the promised time, or delivered after it
    refused: int  # refused or returned


@dataclass(frozen=True)
class VisitRow:
    rep: str
    planned: int
    on_site: int
    done: int


@dataclass(frozen=True)
class SyncRow:
    worker: str
    pending: int
    oldest_pending_at: datetime | None
    last_sync_at: datetime | None


@dataclass
class Today:
    day: date
    now: datetime
    zone: ZoneInfo
    routes: list[RouteRow] = field(default_factory=list)
    sites: list = field(default_factory=list)  # patrols_service.BoardSite
    visits: list[VisitRow] = field(default_factory=list)
    complaints: list[tuple[Complaint, object]] = field(default_factory=list)
    waiting: list[SyncRow] = field(default_factory=list)

    @property
    def open_incidents(self) -> int:
        return sum(len(s.incidents) for s in self.sites)


def route_rows(teams: list[int], org_id: int, day: date, now: datetime) -> list[RouteRow]:
    late = or_(
        and_(Stop.state.in_(_OPEN), Stop.promised_at.is_not(None), Stop.promised_at < now),
        and_(Stop.state == StopState.DELIVERED, Stop.on_time.is_(False)),
    )
    query = (
        db.select(
            Route.id,
            Route.name,
            User.display_name,
            func.count(Stop.id),
            _count_if(Stop.state == StopState.DELIVERED),
            _count_if(Stop.state.in_(_OPEN)),
            _count_if(late),
            _count_if(Stop.state.in_(_REFUSED)),
        )
        .outerjoin(Stop, Stop.route_id == Route.id)
        .outerjoin(User, User.id == Route.courier_id)
        .where(Route.org_id == org_id, Route.team_id.in_(teams), Route.date == day)
        .group_by(Route.id, Route.name, User.display_name)
        .order_by(Route.name, Route.id)
    )
    return [RouteRow(*row) for row in db.session.execute(query)]


def visit_rows(teams: list[int], org_id: int, day: date) -> list[VisitRow]:
    query = (
        db.select(
            User.display_name,
            _count_if(Visit.state == VisitState.PLANNED),
            _count_if(Visit.state == VisitState.ON_SITE),
            _count_if(Visit.state == VisitState.DONE),
        )
        .join(User, User.id == Visit.rep_id)
        .where(Visit.org_id == org_id, Visit.team_id.in_(teams), Visit.planned_date == day)
        .group_by(User.id, User.display_name)
        .order_by(User.display_name)
    )
    return [VisitRow(*row) for row in db.session.execute(query)]


def waiting_rows(teams: list[int], org_id: int) -> list[SyncRow]:
    """Per worker, what their phones last said they still hold (not yet received here)."""
    query = (
        db.select(
            User.display_name,
            func.sum(Device.pending_count),
            func.min(Device.oldest_pending_at),
            func.max(Device.last_sync_at),
        )
        .join(User, User.id == Device.user_id)
        .where(
            User.org_id == org_id,
            User.team_id.in_(teams),
            Device.revoked_at.is_(None),
            Device.pending_count > 0,
        )
        .group_by(User.id, User.display_name)
        .order_by(func.min(Device.oldest_pending_at), User.display_name)
    )
    return [
        SyncRow(name, int(pending), _aware(oldest), _aware(last))
        for name, pending, oldest, last in db.session.execute(query)
    ]


def _aware(value) -> datetime | None:
    """MIN/MAX of a UTC column: SQLite hands back a naive value or text; PostgreSQL an aware."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def open_complaints(user: User, teams: list[int], now: datetime) -> list[tuple[Complaint, object]]:
    """Open complaints of the teams, soonest reply deadline first, with the deadline status."""
    query = complaints_service.visible_query(user).where(
        Complaint.state.not_in([str(ComplaintState.CLOSED), str(ComplaintState.INVALID_CLOSED)])
    )
    if user.role != Role.ADMIN:
        query = query.where(Complaint.team_id.in_(teams))
    rows = db.session.scalars(query.order_by(Complaint.reply_by).limit(100))
    return [(c, complaints_service.worst_status(c, now)) for c in rows]


def today(user: User, now: datetime | None = None) -> Today:
    now = now or utcnow()
    teams = supervised_team_ids(user) or [-1]
    zone = org_zone(user.org_id)
    day = now.astimezone(zone).date()
    board = Today(day=day, now=now, zone=zone)
    board.routes = route_rows(teams, user.org_id, day, now)
    board.sites = patrols_service.board(user, now)
    board.visits = visit_rows(teams, user.org_id, day)
    board.complaints = open_complaints(user, teams, now)
    board.waiting = waiting_rows(teams, user.org_id)
    return board


# ----- KPIs per worker and month --------------------------------------------------------------


def parse_month(text: str | None, default: date) -> date | None:
    """``2026-11`` -> 1 November 2026; empty -> the default month; malformed -> None."""
    if not text:
        return default.replace(day=1)
    try:
        year, month = (int(part) for part in text.split("-"))
        return date(year, month, 1)
    except ValueError:
        return None


def month_bounds(first: date, zone: ZoneInfo) -> tuple[date, datetime, datetime]:
    """The month's last day + 1 and its start and end as UTC instants of the local calendar."""
    following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    start = datetime.combine(first, time.min, tzinfo=zone).astimezone(UTC)
    end = datetime.combine(following, time.min, tzinfo=zone).astimezone(UTC)
    return following, start, end


@dataclass
class WorkerKpis:
    user_id: int
    name: str
    role: str
    team: str
    slip_accuracy: kpi.KpiResult = field(default_factory=lambda: kpi.slip_accuracy(0, 0))
    on_time: kpi.KpiResult = field(default_factory=lambda: kpi.on_time_delivery_rate(0, 0))
    handover_signatures: kpi.KpiResult = field(
        default_factory=lambda: kpi.handover_signature_rate(0, 0)
    )
    patrol_completion: kpi.KpiResult = field(
        default_factory=lambda: kpi.patrol_completion_rate(0, 0)
    )
    patrol_lateness: kpi.KpiResult = field(default_factory=lambda: kpi.patrol_lateness_rate(0, 0))
    complaints_started: kpi.KpiResult = field(
        default_factory=lambda: kpi.complaints_started_in_time(0, 0)
    )
    complaints_answered: kpi.KpiResult = field(
        default_factory=lambda: kpi.complaints_answered_in_time(0, 0)
    )
    # KPI-18 (reps): the visits service's ratings; None when no visit of theirs was rated.
    satisfaction: StaffSatisfaction | None = None
    satisfied: kpi.KpiResult = field(default_factory=lambda: kpi.return_visits_satisfied(0, 0))
    # KPI-12 inputs (guards) from the patrols service: ended shifts, incidents, spot checks.
    guard: GuardMonthFigures | None = None
    attendance: kpi.KpiResult = field(default_factory=lambda: kpi.guard_attendance_rate(0, 0))
    incident_free: kpi.KpiResult = field(default_factory=lambda: kpi.incident_free_shift_rate(0, 0))
    inspections: kpi.KpiResult = field(default_factory=lambda: kpi.inspection_pass_rate(0, 0))


def _workers(org_id: int, teams: list[int]) -> dict[int, WorkerKpis]:
    rows = db.session.execute(
        db.select(User.id, User.display_name, User.role, Team.name)
        .join(Team, Team.id == User.team_id)
        .where(
            User.org_id == org_id,
            User.team_id.in_(teams),
            User.role.in_([str(r) for r in WORKER_ROLES]),
        )
        .order_by(Team.name, User.display_name)
    )
    return {uid: WorkerKpis(uid, name, role, team) for uid, name, role, team in rows}


def delivery_counts(org_id: int, teams: list[int], first: date, following: date):
    """Per courier: (delivered, accurate, on time, with a promise, signed) for routes of the
    month.

    A delivered stop is accurate (KPI-02) unless a proof of it was corrected or reported goods
    damaged or short: a variety, quantity or code discrepancy at handover. It is signed
    (DEL-05) when a proof of it carries the customer's signature.
    """
    # Correlated NOT EXISTS: reads only this stop's proofs (ix_delivery_proof_discrepant), not
    # every discrepant proof ever made as ``NOT IN (…)`` did; same result (stop_id is NOT NULL).
    discrepant = (
        db.select(ProofOfDelivery.id)
        .where(
            ProofOfDelivery.stop_id == Stop.id,
            or_(ProofOfDelivery.corrects_id.is_not(None), ProofOfDelivery.condition != "ok"),
        )
        .exists()
    )
    # Likewise per stop (ix_delivery_proof_stop_id): ``IN (…)`` read every proof ever made.
    signed = (
        db.select(ProofOfDelivery.id)
        .where(
            ProofOfDelivery.stop_id == Stop.id,
            ProofOfDelivery.signature.is_not(None),
            ProofOfDelivery.signature != "",
        )
        .exists()
    )
    query = (
        db.select(
            Route.courier_id,
            func.count(Stop.id),
            _count_if(~discrepant),
            _count_if(Stop.on_time.is_(True)),
            _count_if(Stop.on_time.is_not(None)),
            _count_if(signed),
        )
        .join(Route, Route.id == Stop.route_id)
        .where(
            Route.org_id == org_id,
            Route.team_id.in_(teams),
            Route.date >= first,
            Route.date < following,
            Route.courier_id.is_not(None),
            Stop.state == StopState.DELIVERED,
        )
        .group_by(Route.courier_id)
    )
    return {row[0]: tuple(int(v) for v in row[1:]) for row in db.session.execute(query)}


def complaint_counts(org_id: int, teams: list[int] | None, start, end, now):
    """Per owner (CMP-12, the first contact): complaints of the month logged in ``[start, end)``
    judged on CMP-07: (due to start, started in time, due to answer, answered in time).

    A complaint counts once its outcome is known: the step happened, or the deadline passed.
    Complaints closed as invalid (CMP-04) are left out.
    """
    started_states = [str(s) for s in INVESTIGATION_STARTED]
    replied_states = [str(s) for s in REPLIED]
    steps = (
        db.select(
            ComplaintEvent.complaint_id.label("cid"),
            func.min(case((ComplaintEvent.to_state.in_(started_states), ComplaintEvent.at))).label(
                "started_at"
            ),
            func.min(case((ComplaintEvent.to_state.in_(replied_states), ComplaintEvent.at))).label(
                "replied_at"
            ),
        )
        .where(
            ComplaintEvent.org_id == org_id,
            # Only the month's complaints' events, not the organisation's whole history.
            ComplaintEvent.complaint_id.in_(
                db.select(Complaint.id).where(
                    Complaint.org_id == org_id,
                    Complaint.logged_at >= start,
                    Complaint.logged_at < end,
                )
            ),
        )
        .group_by(ComplaintEvent.complaint_id)
        .subquery()
    )
    started_due = or_(steps.c.started_at.is_not(None), Complaint.investigate_by < now)
    replied_due = or_(steps.c.replied_at.is_not(None), Complaint.reply_by < now)
    query = (
        db.select(
            Complaint.owner_id,
            _count_if(started_due),
            _count_if(steps.c.started_at <= Complaint.investigate_by),
            _count_if(replied_due),
            _count_if(steps.c.replied_at <= Complaint.reply_by),
        )
        .outerjoin(steps, steps.c.cid == Complaint.id)
        .where(
            Complaint.org_id == org_id,
            Complaint.logged_at >= start,
            Complaint.logged_at < end,
            Complaint.state != str(ComplaintState.INVALID_CLOSED),
        )
        .group_by(Complaint.owner_id)
    )
    if teams is not None:
        query = query.where(Complaint.team_id.in_(teams))
    return {row[0]: tuple(int(v) for v in row[1:]) for row in db.session.execute(query)}


def patrol_counts(
    org_id: int, teams: list[int], start, end, now
) -> dict[int, kpi.PatrolRoundCounts]:
    """Per guard: final round outcomes of the month's shifts, judged by the patrols service."""
    shifts = list(
        db.session.scalars(
            db.select(Shift)
            .join(Site, Site.id == Shift.site_id)
            .where(
                Shift.org_id == org_id,
                Site.team_id.in_(teams),
                Shift.starts_at >= start,
                Shift.starts_at < end,
            )
        )
    )
    scans = patrols_service.shift_scans([s.id for s in shifts])
    plans: dict[int, object] = {}
    statuses = defaultdict(list)
    for shift in shifts:
        if shift.site_id not in plans:
            plans[shift.site_id] = patrols_service.plan_of(shift.site_id)
        for view in patrols_service.round_views(
            shift, now, plans[shift.site_id], scans.get(shift.id, [])
        ):
            statuses[shift.guard_id].append(view.status)
    return {guard: kpi.patrol_round_counts(s) for guard, s in statuses.items()}


def unit_services(org_id: int, first: date, following: date, start, end, now) -> dict[str, int]:
    """CMP-17 denominators, one per team of the organisation (0 when it did nothing): stops
    delivered for delivery teams, shifts worked (started in the month, ended by now) for
    security teams, visits done for visit teams. One ``GROUP BY`` per source."""
    delivered = dict(
        db.session.execute(
            db.select(Route.team_id, func.count(Stop.id))
            .join(Stop, Stop.route_id == Route.id)
            .where(
                Route.org_id == org_id,
                Route.date >= first,
                Route.date < following,
                Stop.state == StopState.DELIVERED,
            )
            .group_by(Route.team_id)
        ).all()
    )
    shifts = dict(
        db.session.execute(
            db.select(Site.team_id, func.count(Shift.id))
            .join(Site, Site.id == Shift.site_id)
            .where(
                Shift.org_id == org_id,
                Shift.starts_at >= start,
                Shift.starts_at < end,
                Shift.ends_at <= now,
            )
            .group_by(Site.team_id)
        ).all()
    )
    visits = dict(
        db.session.execute(
            db.select(Visit.team_id, func.count(Visit.id))
            .where(
                Visit.org_id == org_id,
                Visit.state == VisitState.DONE,
                Visit.planned_date >= first,
                Visit.planned_date < following,
            )
            .group_by(Visit.team_id)
        ).all()
    )
    source = {TeamKind.DELIVERY: delivered, TeamKind.SECURITY: shifts, TeamKind.VISITS: visits}
    services = {}
    for team_id, name, kind in db.session.execute(
        db.select(Team.id, Team.name, Team.kind).where(Team.org_id == org_id)
    ):
        services[name] = int(source.get(kind, {}).get(team_id, 0))
    return services


def unit_complaint_rates(
    user: User, teams: list[int], first: date, following: date, start, end, now
) -> list[UnitComplaintRate]:
    """CMP-17 per unit from the complaints service, with every team's services passed in.

    An admin sees every unit (departments too); a supervisor only the teams they lead."""
    services = unit_services(user.org_id, first, following, start, end, now)
    rates = complaints_service.complaint_rates(user.org_id, first, services)
    if user.role == Role.ADMIN:
        return rates
    names = set(
        db.session.scalars(
            db.select(Team.name).where(Team.org_id == user.org_id, Team.id.in_(teams))
        )
    )
    return [r for r in rates if r.unit in names]


@dataclass
class SupervisorOnsite:
    """PAT-09 for one supervisor and month: working days with at least 6 h on site."""

    user_id: int
    name: str
    days: list  # presence_service.PresenceDay, the month's days before today
    result: kpi.KpiResult

    @property
    def short_days(self) -> list:
        return [day for day in self.days if day.short]


def supervisors_onsite(user: User, first: date, following: date, now: datetime):
    """Each supervisor in view (an admin sees all, a supervisor themself) with PAT-09."""
    if user.role not in (Role.ADMIN, Role.SUPERVISOR):
        return []
    zone = org_zone(user.org_id)
    query = db.select(User).where(User.org_id == user.org_id, User.role == Role.SUPERVISOR)
    if user.role == Role.SUPERVISOR:
        query = query.where(User.id == user.id)
    rows = []
    today = now.astimezone(zone).date()
    for supervisor in db.session.scalars(query.order_by(User.display_name)):
        days = presence_service.month_days(supervisor, first, following, today, zone.key)
        working = [day for day in days if day.working]
        met = sum(1 for day in working if not day.short)
        rows.append(
            SupervisorOnsite(
                supervisor.id,
                supervisor.display_name,
                days,
                kpi.supervisor_onsite_rate(met, len(working)),
            )
        )
    return rows


@dataclass
class MonthKpis:
    month: date
    workers: list[WorkerKpis]
    units: list[UnitComplaintRate] = field(default_factory=list)
    supervisors: list[SupervisorOnsite] = field(default_factory=list)

    @property
    def reps(self) -> list[WorkerKpis]:
        return [w for w in self.workers if w.role == Role.REP]

    @property
    def guards(self) -> list[WorkerKpis]:
        return [w for w in self.workers if w.role == Role.GUARD]


def month_kpis(user: User, first: date, now: datetime | None = None) -> MonthKpis:
    now = now or utcnow()
    teams = supervised_team_ids(user) or [-1]
    following, start, end = month_bounds(first, org_zone(user.org_id))
    workers = _workers(user.org_id, teams)
    for uid, (delivered, accurate, on_time, promised, signed) in delivery_counts(
        user.org_id, teams, first, following
    ).items():
        if uid in workers:
            workers[uid].slip_accuracy = kpi.slip_accuracy(accurate, delivered)
            workers[uid].on_time = kpi.on_time_delivery_rate(on_time, promised)
            workers[uid].handover_signatures = kpi.handover_signature_rate(signed, delivered)
    for uid, counts in patrol_counts(user.org_id, teams, start, end, now).items():
        if uid in workers:
            workers[uid].patrol_completion = kpi.patrol_completion_rate(
                counts.completed, counts.due
            )
            workers[uid].patrol_lateness = kpi.patrol_lateness_rate(counts.late, counts.completed)
    scope = None if user.role == Role.ADMIN else teams
    for uid, (s_due, s_ok, r_due, r_ok) in complaint_counts(
        user.org_id, scope, start, end, now
    ).items():
        if uid in workers:
            workers[uid].complaints_started = kpi.complaints_started_in_time(s_ok, s_due)
            workers[uid].complaints_answered = kpi.complaints_answered_in_time(r_ok, r_due)
    for rated in visits_service.satisfaction_month(user.org_id, first):
        if rated.staff_id in workers:
            workers[rated.staff_id].satisfaction = rated
            workers[rated.staff_id].satisfied = kpi.return_visits_satisfied(
                rated.satisfied, rated.rated
            )
    for uid, figures in patrols_service.guard_month_figures(user, first, now=now).items():
        if uid in workers:
            worker = workers[uid]
            worker.guard = figures
            worker.attendance = kpi.guard_attendance_rate(figures.shifts_signed_in, figures.shifts)
            worker.incident_free = kpi.incident_free_shift_rate(
                figures.shifts_without_safety_incident, figures.shifts
            )
            worker.inspections = kpi.inspection_pass_rate(
                figures.inspections_passed, figures.inspections
            )
    units = unit_complaint_rates(user, teams, first, following, start, end, now)
    supervisors = supervisors_onsite(user, first, following, now)
    return MonthKpis(first, list(workers.values()), units, supervisors)
