"""The monthly assessment (考核, KPI-03, KPI-09, KPI-12) and the penalty ledger (KPI-07, KPI-10,
KPI-11): use cases over ``fieldapp.dashboard.models``.

Counts come from the database in one ``GROUP BY`` query per source; the scoring and the
penalty amounts are ``fieldapp.rules.kpi``. The ledger is append-only: a supervisor (or the
office) *proposes* a penalty with evidence, only the office (an admin) approves or rejects it
and may later void an approval; nothing is ever edited. The repeat counter is the number of the
person's earlier approved, not voided penalties under the same rule (all time).
Scope: a supervisor sees and proposes for the people of the teams they lead; an admin the whole
organisation.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, replace
from datetime import date, datetime

from sqlalchemy import String, and_, cast, func, or_
from sqlalchemy.orm import aliased

from fieldapp.access import supervised_team_ids
from fieldapp.dashboard.models import AssessmentWeight, PenaltyEntry
from fieldapp.dashboard.service import (
    _count_if,
    _workers,
    delivery_counts,
    month_bounds,
    org_zone,
)
from fieldapp.extensions import db
from fieldapp.models import Role, Site, Team, User, utcnow
from fieldapp.patrols.models import Incident, Shift, ShiftSignIn, SpotCheck
from fieldapp.rules import kpi
from fieldapp.rules.errors import RuleViolation
from fieldapp.rules.kpi import LedgerKind

SCHEME_OF_ROLE = {Role.COURIER: "courier", Role.GUARD: "guard"}


# ----- weights --------------------------------------------------------------------------------


def weights(org_id: int, scheme: str) -> dict[str, float]:
    overrides = dict(
        db.session.execute(
            db.select(AssessmentWeight.input, AssessmentWeight.weight).where(
                AssessmentWeight.org_id == org_id, AssessmentWeight.scheme == scheme
            )
        ).all()
    )
    defaults = kpi.ASSESSMENT_SCHEMES[scheme]
    return kpi.resolve_weights(defaults, {k: v for k, v in overrides.items() if k in defaults})


def set_weights(user: User, scheme: str, values: dict[str, float]) -> None:
    """An admin sets the organisation's weights of one scheme (checked by the rules first)."""
    if user.role != Role.ADMIN:
        raise RuleViolation("assessment.weights_admin_only", "only the office sets weights")
    try:
        resolved = kpi.resolve_weights(kpi.ASSESSMENT_SCHEMES[scheme], values)
    except ValueError as error:
        raise RuleViolation("assessment.bad_weights", str(error)) from None
    existing = {
        w.input: w
        for w in db.session.scalars(
            db.select(AssessmentWeight).where(
                AssessmentWeight.org_id == user.org_id, AssessmentWeight.scheme == scheme
            )
        )
    }
    for key, value in resolved.items():
        row = existing.get(key)
        if row is None:
            row = AssessmentWeight(org_id=user.org_id, scheme=scheme, input=key)
            db.session.add(row)
        row.weight = value
        row.updated_by_id = user.id
        row.updated_at = utcnow()
    db.session.commit()


# ----- counts per worker ----------------------------------------------------------------------


def guard_counts(org_id: int, teams: list[int], start: datetime, end: datetime, now: datetime):
    """Per guard: (shifts started in the month and by now, with an incident, signed in)."""
    with_incident = db.select(Incident.shift_id).where(
        Incident.org_id == org_id, Incident.shift_id.is_not(None)
    )
    signed_in = db.select(ShiftSignIn.shift_id).where(
        ShiftSignIn.org_id == org_id, ShiftSignIn.action == "in"
    )
    query = (
        db.select(
            Shift.guard_id,
            func.count(Shift.id),
            _count_if(Shift.id.in_(with_incident)),
            _count_if(Shift.id.in_(signed_in)),
        )
        .join(Site, Site.id == Shift.site_id)
        .where(
            Shift.org_id == org_id,
            Site.team_id.in_(teams),
            Shift.starts_at >= start,
            Shift.starts_at < end,
            Shift.starts_at <= now,
        )
        .group_by(Shift.guard_id)
    )
    return {row[0]: tuple(int(v) for v in row[1:]) for row in db.session.execute(query)}


def inspection_counts(org_id: int, teams: list[int], start: datetime, end: datetime):
    """Per guard: (spot checks of the month, passed: present, in uniform, no violation)."""
    clean = or_(SpotCheck.violations.is_(None), cast(SpotCheck.violations, String) == "[]")
    passed = and_(SpotCheck.guard_present.is_(True), SpotCheck.in_uniform.is_(True), clean)
    query = (
        db.select(SpotCheck.guard_id, func.count(SpotCheck.id), _count_if(passed))
        .join(Site, Site.id == SpotCheck.site_id)
        .where(
            SpotCheck.org_id == org_id,
            Site.team_id.in_(teams),
            SpotCheck.guard_id.is_not(None),
            SpotCheck.at >= start,
            SpotCheck.at < end,
        )
        .group_by(SpotCheck.guard_id)
    )
    return {row[0]: (int(row[1]), int(row[2])) for row in db.session.execute(query)}


def _effective_approvals():
    """Approvals that no later entry voided."""
    voided = db.select(PenaltyEntry.refers_to_id).where(
        PenaltyEntry.kind == str(LedgerKind.VOID), PenaltyEntry.refers_to_id.is_not(None)
    )
    return and_(PenaltyEntry.kind == str(LedgerKind.APPROVAL), PenaltyEntry.id.not_in(voided))


def penalty_totals(org_id: int, teams: list[int] | None, first: date, following: date):
    """Per person: (approved penalties, fines in fen, points) for offences of the month."""
    query = (
        db.select(
            PenaltyEntry.person_id,
            func.count(PenaltyEntry.id),
            func.coalesce(func.sum(PenaltyEntry.amount_fen), 0),
            func.coalesce(func.sum(PenaltyEntry.points), 0),
        )
        .where(
            PenaltyEntry.org_id == org_id,
            _effective_approvals(),
            PenaltyEntry.occurred_on >= first,
            PenaltyEntry.occurred_on < following,
        )
        .group_by(PenaltyEntry.person_id)
    )
    if teams is not None:
        query = query.where(PenaltyEntry.team_id.in_(teams))
    return {row[0]: tuple(int(v) for v in row[1:]) for row in db.session.execute(query)}


# ----- the sheet --------------------------------------------------------------------------------


@dataclass
class SheetRow:
    user_id: int
    name: str
    team: str
    scheme: str
    inputs: dict
    sheet: kpi.AssessmentSheet


@dataclass
class Assessment:
    month: date
    weights: dict[str, dict[str, float]]
    rows: list[SheetRow]

    def of(self, scheme: str) -> list[SheetRow]:
        return [r for r in self.rows if r.scheme == scheme]


def _scope(user: User) -> tuple[list[int], list[int] | None]:
    teams = supervised_team_ids(user) or [-1]
    return teams, (None if user.role == Role.ADMIN else teams)


def monthly(user: User, first: date, now: datetime | None = None) -> Assessment:
    """Every courier's and guard's sheet for the month of ``first``."""
    now = now or utcnow()
    teams, scope = _scope(user)
    following, start, end = month_bounds(first, org_zone(user.org_id))
    scheme_weights = {s: weights(user.org_id, s) for s in kpi.ASSESSMENT_SCHEMES}
    deliveries = delivery_counts(user.org_id, teams, first, following)
    guards = guard_counts(user.org_id, teams, start, end, now)
    checks = inspection_counts(user.org_id, teams, start, end)
    penalties = penalty_totals(user.org_id, scope, first, following)
    rows = []
    for worker in _workers(user.org_id, teams).values():
        scheme = SCHEME_OF_ROLE.get(worker.role)
        if scheme is None:
            continue
        if scheme == "courier":
            delivered, accurate, on_time, promised, signed = deliveries.get(
                worker.user_id, (0,) * 5
            )
            inputs = kpi.courier_assessment_inputs(
                delivered=delivered,
                accurate=accurate,
                on_time=on_time,
                promised=promised,
                signed=signed,
            )
        else:
            shifts, incident, signed_in = guards.get(worker.user_id, (0, 0, 0))
            inspections, passed = checks.get(worker.user_id, (0, 0))
            inputs = kpi.guard_assessment_inputs(
                shifts=shifts,
                shifts_with_incident=incident,
                inspections=inspections,
                inspections_passed=passed,
                shifts_signed_in=signed_in,
            )
        count, fines, points = penalties.get(worker.user_id, (0, 0, 0))
        # The month's penalties arrive summed by the database: one (fines, points) pair.
        sheet = kpi.monthly_assessment(
            inputs, scheme_weights[scheme], [(fines, points)] if count else []
        )
        sheet = replace(sheet, penalties=count)
        rows.append(SheetRow(worker.user_id, worker.name, worker.team, scheme, inputs, sheet))
    return Assessment(first, scheme_weights, rows)


# ----- the ledger ---------------------------------------------------------------------------


def proposable_people(user: User) -> list[User]:
    """Whom the user may propose a penalty for: people of their teams (an admin: anyone)."""
    query = db.select(User).where(User.org_id == user.org_id, User.active.is_(True))
    if user.role != Role.ADMIN:
        query = query.where(User.team_id.in_(supervised_team_ids(user) or [-1]), User.id != user.id)
    return list(db.session.scalars(query.order_by(User.display_name)))


def _check_evidence(url: str) -> str:
    url = (url or "").strip()
    if not url.startswith("/") or url.startswith("//") or any(c.isspace() for c in url):
        raise RuleViolation(
            "penalty.evidence_required", "evidence must be a link to a record in the app"
        )
    if len(url) > 255:
        raise RuleViolation("penalty.evidence_required", "evidence link too long")
    return url


def propose(
    user: User,
    person_id: int,
    rule_code: str,
    occurred_on: date,
    evidence_url: str,
    *,
    units: int = 0,
    note: str = "",
) -> PenaltyEntry:
    """A penalty proposed with evidence (KPI-11): it waits for the office."""
    if not kpi.ledger_step_allowed(user.role, LedgerKind.PROPOSAL, None):
        raise RuleViolation("penalty.not_allowed", "this role may not propose penalties")
    person = next((p for p in proposable_people(user) if p.id == person_id), None)
    if person is None:
        raise RuleViolation("penalty.person_out_of_scope", "not a person of your teams")
    if rule_code not in kpi.PENALTY_SCHEDULE:
        raise RuleViolation("penalty.unknown_rule", f"unknown rule {rule_code!r}")
    if units < 0:
        raise RuleViolation("penalty.bad_units", "units cannot be negative")
    entry = PenaltyEntry(
        org_id=user.org_id,
        kind=str(LedgerKind.PROPOSAL),
        person_id=person.id,
        team_id=person.team_id,
        rule_code=rule_code,
        occurred_on=occurred_on,
        evidence_url=_check_evidence(evidence_url),
        units=units,
        note=note.strip(),
        by_id=user.id,
    )
    db.session.add(entry)
    db.session.commit()
    return entry


def _entry_in_scope(user: User, entry_id: int) -> PenaltyEntry | None:
    entry = db.session.get(PenaltyEntry, entry_id)
    if entry is None or entry.org_id != user.org_id:
        return None
    if user.role != Role.ADMIN and entry.team_id not in supervised_team_ids(user):
        return None
    return entry


def _answered(entry_id: int) -> bool:
    return (
        db.session.scalar(
            db.select(func.count(PenaltyEntry.id)).where(PenaltyEntry.refers_to_id == entry_id)
        )
        > 0
    )


def prior_offences(org_id: int, person_id: int, rule_code: str) -> int:
    """The repeat counter: earlier approved, not voided penalties of the person under the rule."""
    return db.session.scalar(
        db.select(func.count(PenaltyEntry.id)).where(
            PenaltyEntry.org_id == org_id,
            PenaltyEntry.person_id == person_id,
            PenaltyEntry.rule_code == rule_code,
            _effective_approvals(),
        )
    )


def _answer(user: User, entry_id: int, kind: LedgerKind) -> PenaltyEntry:
    entry = _entry_in_scope(user, entry_id)
    if entry is None:
        raise RuleViolation("penalty.not_found", "no such ledger entry")
    if not kpi.ledger_step_allowed(user.role, kind, LedgerKind(entry.kind)):
        raise RuleViolation("penalty.office_only", "only the office decides on penalties")
    if _answered(entry.id):
        raise RuleViolation("penalty.already_decided", "this entry was already answered")
    return entry


def _copy(entry: PenaltyEntry, user: User, kind: LedgerKind, note: str) -> PenaltyEntry:
    return PenaltyEntry(
        org_id=entry.org_id,
        kind=str(kind),
        refers_to_id=entry.id,
        person_id=entry.person_id,
        team_id=entry.team_id,
        rule_code=entry.rule_code,
        occurred_on=entry.occurred_on,
        evidence_url=entry.evidence_url,
        units=entry.units,
        note=note.strip(),
        by_id=user.id,
    )


def approve(
    user: User, entry_id: int, *, amount_fen: int | None = None, note: str = ""
) -> PenaltyEntry:
    """The office approves a proposal: the default amount and points of KPI-07/KPI-10 for the
    person's offence number under the rule; within a range (KPI-07 T1) the office may choose."""
    proposal = _answer(user, entry_id, LedgerKind.APPROVAL)
    # Two office clerks approving two offences of one person at once must not both count the
    # same prior offences: the person's row is locked until this approval is committed
    # (SQLite serialises writers anyway).
    db.session.execute(db.select(User.id).where(User.id == proposal.person_id).with_for_update())
    prior = prior_offences(user.org_id, proposal.person_id, proposal.rule_code)
    penalty = kpi.penalty_for(proposal.rule_code, prior, units=proposal.units)
    amount = penalty.amount_fen
    if amount_fen is not None and amount_fen != amount:
        ceiling = penalty.max_amount_fen
        if ceiling is None or not amount <= amount_fen <= ceiling:
            raise RuleViolation(
                "penalty.amount_out_of_range", "the amount must stay within the schedule's range"
            )
        amount = amount_fen
    approval = _copy(proposal, user, LedgerKind.APPROVAL, note)
    approval.offence_number = penalty.offence_number
    approval.amount_fen = amount
    approval.points = penalty.points
    db.session.add(approval)
    db.session.commit()
    return approval


def reject(user: User, entry_id: int, note: str) -> PenaltyEntry:
    proposal = _answer(user, entry_id, LedgerKind.REJECTION)
    db.session.add(rejection := _copy(proposal, user, LedgerKind.REJECTION, note))
    db.session.commit()
    return rejection


def void(user: User, entry_id: int, reason: str) -> PenaltyEntry:
    """A correction: the office voids an approval (with a reason); it stays in the ledger."""
    if not reason.strip():
        raise RuleViolation("penalty.reason_required", "say why the approval is voided")
    approval = _answer(user, entry_id, LedgerKind.VOID)
    db.session.add(entry := _copy(approval, user, LedgerKind.VOID, reason))
    db.session.commit()
    return entry


@dataclass
class LedgerLine:
    proposal: PenaltyEntry
    person: str
    proposer: str
    decision: PenaltyEntry | None
    void: PenaltyEntry | None

    @property
    def status(self) -> str:
        if self.decision is None:
            return "pending"
        if self.decision.kind == LedgerKind.REJECTION:
            return "rejected"
        return "voided" if self.void is not None else "approved"


def ledger(user: User, first: date, person_id: int | None = None) -> list[LedgerLine]:
    """The month's proposals (by day of offence) with their decision and any void."""
    following, _start, _end = month_bounds(first, org_zone(user.org_id))
    _teams, scope = _scope(user)
    decision = aliased(PenaltyEntry)
    voiding = aliased(PenaltyEntry)
    person = aliased(User)
    proposer = aliased(User)
    query = (
        db.select(PenaltyEntry, person.display_name, proposer.display_name, decision, voiding)
        .join(person, person.id == PenaltyEntry.person_id)
        .join(proposer, proposer.id == PenaltyEntry.by_id)
        .outerjoin(decision, decision.refers_to_id == PenaltyEntry.id)
        .outerjoin(voiding, voiding.refers_to_id == decision.id)
        .where(
            PenaltyEntry.org_id == user.org_id,
            PenaltyEntry.kind == str(LedgerKind.PROPOSAL),
            PenaltyEntry.occurred_on >= first,
            PenaltyEntry.occurred_on < following,
        )
        .order_by(PenaltyEntry.occurred_on, PenaltyEntry.id)
    )
    if scope is not None:
        query = query.where(PenaltyEntry.team_id.in_(scope))
    if person_id is not None:
        query = query.where(PenaltyEntry.person_id == person_id)
    return [LedgerLine(*row) for row in db.session.execute(query)]


# ----- payroll ------------------------------------------------------------------------------

PAYROLL_HEADER = ("month", "username", "name", "team", "penalties", "deduction_yuan", "points")


def payroll_rows(user: User, first: date) -> list[list[str]]:
    """Per person, the month's approved, not voided penalties (by day of offence): the
    deduction for the payroll (KPI-11), summed in the database."""
    following, _start, _end = month_bounds(first, org_zone(user.org_id))
    _teams, scope = _scope(user)
    query = (
        db.select(
            User.username,
            User.display_name,
            func.coalesce(Team.name, ""),
            func.count(PenaltyEntry.id),
            func.sum(PenaltyEntry.amount_fen),
            func.sum(PenaltyEntry.points),
        )
        .join(User, User.id == PenaltyEntry.person_id)
        .outerjoin(Team, Team.id == User.team_id)
        .where(
            PenaltyEntry.org_id == user.org_id,
            _effective_approvals(),
            PenaltyEntry.occurred_on >= first,
            PenaltyEntry.occurred_on < following,
        )
        .group_by(User.id, User.username, User.display_name, Team.name)
        .order_by(User.username)
    )
    if scope is not None:
        query = query.where(PenaltyEntry.team_id.in_(scope))
    month = first.strftime("%Y-%m")
    return [
        [
            month,
            username,
            name,
            team,
            str(count),
            f"{int(fen) // 100}.{int(fen) % 100:02d}",
            str(int(points)),
        ]
        for username, name, team, count, fen, points in db.session.execute(query)
    ]


def to_csv(header, rows) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    return "\ufeff" + buffer.getvalue()  # Excel opens UTF-8 Chinese only with the BOM
