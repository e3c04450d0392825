"""Behind every figure: the records a KPI was computed from, and the month-over-month trend of
the supervised teams (each month one ``GROUP BY`` per source, as on the KPI page)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import case, func, literal, or_
from sqlalchemy.orm import aliased

from fieldapp.access import supervised_team_ids
from fieldapp.complaints.models import INVESTIGATION_STARTED, REPLIED, Complaint, ComplaintEvent
from fieldapp.dashboard.service import (
    _aware,
    _workers,
    complaint_counts,
    delivery_counts,
    month_bounds,
    org_zone,
    unit_complaint_rates,
)
from fieldapp.deliveries.models import ProofOfDelivery, Route, Stop, StopState
from fieldapp.extensions import db
from fieldapp.models import Role, Site, User, utcnow
from fieldapp.patrols.models import Shift, SpotCheck
from fieldapp.rules import kpi
from fieldapp.rules.complaints import ComplaintState
from fieldapp.visits import service as visits_service
from fieldapp.visits.models import ReturnVisit, Visit, VisitReport

DELIVERY_KPIS = ("slip_accuracy", "on_time", "handover_signatures")
PATROL_KPIS = ("patrol_completion", "patrol_lateness")
COMPLAINT_KPIS = ("complaints_started", "complaints_answered")
GUARD_SHIFT_KPIS = ("attendance", "incident_free")  # ended shifts (patrols' month figures)
GUARD_CHECK_KPIS = ("inspections",)
RATING_KPIS = ("satisfied",)  # KPI-18
UNIT_KPIS = ("complaint_rate",)  # CMP-17, trend only (per unit on the KPI page)
KPI_NAMES = (
    DELIVERY_KPIS + PATROL_KPIS + COMPLAINT_KPIS + GUARD_SHIFT_KPIS + GUARD_CHECK_KPIS + RATING_KPIS
)
LIMIT = 500


def shift_months(last: date, count: int) -> list[date]:
    """The ``count`` months ending with ``last`` (first days), oldest first."""
    months = []
    year, month = last.year, last.month
    for _ in range(count):
        months.append(date(year, month, 1))
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return months[::-1]


def _totals(per_person: dict[int, tuple[int, ...]], width: int) -> list[int]:
    """Column sums of the per-person count tuples (a handful of people, not records)."""
    return [sum(counts[i] for counts in per_person.values()) for i in range(width)]


@dataclass
class Trend:
    months: list[date]
    series: dict[str, list[kpi.KpiResult]]


def trend(user: User, last: date, count: int = 6, now: datetime | None = None) -> Trend:
    """The teams' delivery and complaint KPIs for each of the ``count`` months up to ``last``."""
    now = now or utcnow()
    teams = supervised_team_ids(user) or [-1]
    scope = None if user.role == Role.ADMIN else teams
    zone = org_zone(user.org_id)
    months = shift_months(last, count)
    names = DELIVERY_KPIS + COMPLAINT_KPIS + RATING_KPIS + UNIT_KPIS
    series: dict[str, list[kpi.KpiResult]] = {name: [] for name in names}
    staff = _staff_in_view(user, teams)
    for first in months:
        following, start, end = month_bounds(first, zone)
        deliveries = delivery_counts(user.org_id, teams, first, following)
        delivered, accurate, on_time, promised, signed = _totals(deliveries, 5)
        series["slip_accuracy"].append(kpi.slip_accuracy(accurate, delivered))
        series["on_time"].append(kpi.on_time_delivery_rate(on_time, promised))
        series["handover_signatures"].append(kpi.handover_signature_rate(signed, delivered))
        complaints = complaint_counts(user.org_id, scope, start, end, now)
        s_due, s_ok, r_due, r_ok = _totals(complaints, 4)
        series["complaints_started"].append(kpi.complaints_started_in_time(s_ok, s_due))
        series["complaints_answered"].append(kpi.complaints_answered_in_time(r_ok, r_due))
        ratings = visits_service.satisfaction_month(user.org_id, first)
        rated = [s for s in ratings if s.staff_id in staff]
        satisfied, total = sum(s.satisfied for s in rated), sum(s.rated for s in rated)
        series["satisfied"].append(kpi.return_visits_satisfied(satisfied, total))
        units = unit_complaint_rates(user, teams, first, following, start, end, now)
        series["complaint_rate"].append(
            kpi.complaint_rate(sum(u.complaints for u in units), sum(u.services for u in units))
        )
    return Trend(months, series)


def _staff_in_view(user: User, teams: list[int]) -> set[int]:
    """The people whose ratings count in the viewer's trend: the org (admin) or their teams."""
    query = db.select(User.id).where(User.org_id == user.org_id)
    if user.role != Role.ADMIN:
        query = query.where(User.team_id.in_(teams))
    return set(db.session.scalars(query))


@dataclass
class Records:
    worker: object  # service.WorkerKpis
    kind: str  # "deliveries" | "shifts" | "complaints"
    rows: list


def _rating_rows(org_id: int, worker_id: int, start: datetime, end: datetime) -> list:
    """KPI-18's ratings of one staff member: the latest report of each of their visits (one a
    correction replaced is left out) and the return visits rated about their service."""
    later = aliased(VisitReport)
    # As the visits service counts: a correction made in the same month replaces the report.
    replaced = (
        db.select(later.id)
        .where(later.replaces_id == VisitReport.id, later.at >= start, later.at < end)
        .exists()
    )
    reports = db.session.execute(
        db.select(
            VisitReport.at,
            literal("report"),
            Visit.id,
            Site.name,
            VisitReport.timeliness,
            VisitReport.skill,
            VisitReport.attitude,
        )
        .join(Visit, Visit.id == VisitReport.visit_id)
        .join(Site, Site.id == Visit.site_id)
        .where(
            VisitReport.org_id == org_id,
            Visit.rep_id == worker_id,
            VisitReport.at >= start,
            VisitReport.at < end,
            ~replaced,
        )
        .order_by(VisitReport.at)
        .limit(LIMIT)
    ).all()
    returns = db.session.execute(
        db.select(
            ReturnVisit.done_at,
            literal("return"),
            ReturnVisit.visit_id,
            Site.name,
            ReturnVisit.timeliness,
            ReturnVisit.skill,
            ReturnVisit.attitude,
        )
        .outerjoin(Site, Site.id == ReturnVisit.site_id)
        .where(
            ReturnVisit.org_id == org_id,
            ReturnVisit.staff_id == worker_id,
            ReturnVisit.timeliness.is_not(None),
            ReturnVisit.done_at >= start,
            ReturnVisit.done_at < end,
        )
        .order_by(ReturnVisit.done_at)
        .limit(LIMIT)
    ).all()
    return sorted([(_aware(at), *rest) for at, *rest in reports + returns], key=lambda row: row[0])


def kpi_records(user: User, worker_id: int, name: str, first: date) -> Records | None:
    """The records behind one worker's KPI for a month; None when the worker is not in scope."""
    teams = supervised_team_ids(user) or [-1]
    worker = _workers(user.org_id, teams).get(worker_id)
    if worker is None or name not in KPI_NAMES:
        return None
    following, start, end = month_bounds(first, org_zone(user.org_id))
    if name in DELIVERY_KPIS:
        discrepant = db.select(ProofOfDelivery.stop_id).where(
            or_(ProofOfDelivery.corrects_id.is_not(None), ProofOfDelivery.condition != "ok")
        )
        signed = db.select(ProofOfDelivery.stop_id).where(
            ProofOfDelivery.signature.is_not(None), ProofOfDelivery.signature != ""
        )
        query = (
            db.select(
                Route.date,
                Route.name,
                Stop.id,
                Stop.sequence,
                Stop.customer_name,
                Stop.on_time,
                Stop.id.in_(discrepant),
                Stop.id.in_(signed),
            )
            .join(Route, Route.id == Stop.route_id)
            .where(
                Route.org_id == user.org_id,
                Route.team_id.in_(teams),
                Route.courier_id == worker_id,
                Route.date >= first,
                Route.date < following,
                Stop.state == StopState.DELIVERED,
            )
            .order_by(Route.date, Route.name, Stop.sequence)
            .limit(LIMIT)
        )
        return Records(worker, "deliveries", db.session.execute(query).all())
    if name in PATROL_KPIS + GUARD_SHIFT_KPIS:
        query = (
            db.select(Shift.id, Shift.starts_at, Shift.ends_at, Site.id, Site.name)
            .join(Site, Site.id == Shift.site_id)
            .where(
                Shift.org_id == user.org_id,
                Site.team_id.in_(teams),
                Shift.guard_id == worker_id,
                Shift.starts_at >= start,
                Shift.starts_at < end,
            )
            .order_by(Shift.starts_at)
            .limit(LIMIT)
        )
        if name in GUARD_SHIFT_KPIS:  # the patrols service counts ended shifts only
            query = query.where(Shift.ends_at <= utcnow())
        return Records(worker, "shifts", db.session.execute(query).all())
    if name in GUARD_CHECK_KPIS:
        query = (
            db.select(SpotCheck, Site.name)
            .join(Site, Site.id == SpotCheck.site_id)
            .where(
                SpotCheck.org_id == user.org_id,
                SpotCheck.guard_id == worker_id,
                SpotCheck.at >= start,
                SpotCheck.at < end,
            )
            .order_by(SpotCheck.at)
            .limit(LIMIT)
        )
        return Records(worker, "spot_checks", db.session.execute(query).all())
    if name in RATING_KPIS:
        return Records(worker, "ratings", _rating_rows(user.org_id, worker_id, start, end))
    started = [str(s) for s in INVESTIGATION_STARTED]
    replied = [str(s) for s in REPLIED]
    steps = (
        db.select(
            ComplaintEvent.complaint_id.label("cid"),
            func.min(case((ComplaintEvent.to_state.in_(started), ComplaintEvent.at))).label("s"),
            func.min(case((ComplaintEvent.to_state.in_(replied), ComplaintEvent.at))).label("r"),
        )
        .where(ComplaintEvent.org_id == user.org_id)
        .group_by(ComplaintEvent.complaint_id)
        .subquery()
    )
    query = (
        db.select(Complaint, steps.c.s, steps.c.r)
        .outerjoin(steps, steps.c.cid == Complaint.id)
        .where(
            Complaint.org_id == user.org_id,
            Complaint.owner_id == worker_id,
            Complaint.logged_at >= start,
            Complaint.logged_at < end,
            Complaint.state != str(ComplaintState.INVALID_CLOSED),
        )
        .order_by(Complaint.logged_at)
        .limit(LIMIT)
    )
    if user.role != Role.ADMIN:
        query = query.where(Complaint.team_id.in_(teams))
    rows = [(c, _aware(s), _aware(r)) for c, s, r in db.session.execute(query)]
    return Records(worker, "complaints", rows)
