"""Visit use cases: today's visits, check in and out against the geofence, the visit report
with its follow-ups, client files, and return visits with the monthly sample.

The ``apply_*`` functions serve the sync engine (and so the phone, online or not): they take
``(ctx, payload)``, refuse with ``RuleViolation`` and never commit.
"""

import random
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from flask_babel import lazy_gettext as _l

from fieldapp import jobs, push
from fieldapp.access import supervised_team_ids
from fieldapp.extensions import db
from fieldapp.models import Organisation, Role, Site, SiteKind, Team, User, utcnow
from fieldapp.rules.errors import RuleViolation
from fieldapp.rules.geo import geofence_check
from fieldapp.rules.visits import (
    FORCED_VISIT_WITHIN_WORKING_DAYS,
    Rating,
    ServiceRecord,
    StaffSatisfaction,
    complained_about_last_time,
    forced_onsite_visits,
    forced_visit_assignee,
    forced_visit_missed,
    is_new_staff,
    newly_signed_since,
    return_visit_sample_size,
    satisfaction_by_staff,
    time_on_site,
    visit_satisfaction,
)
from fieldapp.sync import changes
from fieldapp.sync.messages import register_rule_messages
from fieldapp.visits.models import (
    ClientFile,
    FollowUpTask,
    ReturnVisit,
    ReturnVisitReason,
    Visit,
    VisitCheckIn,
    VisitCheckOut,
    VisitReport,
    VisitState,
)

register_rule_messages(
    {
        "visit.not_yours": _l("This visit is not yours."),
        "visit.cancelled": _l("This visit was cancelled."),
        "visit.checkout_without_checkin": _l("Check in before checking out."),
        "visit.checkout_before_checkin": _l(
            "The check-out time is before the check-in time. Check the phone's clock."
        ),
        "visit.unknown_owner": _l("The person for the follow-up is not known."),
        "visit.follow_up_needs_due": _l("Give the follow-up a due date."),
        "visit.unknown_report": _l("The report to correct is not known."),
        "visit.unknown_site": _l("This client site is not known."),
        "visit.unknown_rep": _l("Choose a field rep of your teams."),
        "visit.onsite_required": _l(
            "This return visit must be made on site. Confirm that you met the client there."
        ),
        "visit.ratings_incomplete": _l(
            "Rate timeliness, skill and attitude from 1 to 5, or leave all three empty."
        ),
        "visit.already_recorded": _l("This return visit is already recorded."),
        "visit.bad_result": _l("Choose the result of the return visit."),
        "visit.new_need_text": _l("Describe the client's new need."),
        "visit.new_need_kind": _l("Choose whether the new need opens a complaint or a follow-up."),
        "visit.new_need_no_site": _l(
            "A follow-up needs the client's site; open a complaint case instead."
        ),
    }
)

FORCED_ASSIGNED = push.declare(
    push.Kind(
        name="visit.onsite_assigned",
        label=_l("A mandatory on-site visit was given to you"),
        title=_l("On-site visit: %(client)s"),
        body=_l("Visit the client in person by %(due)s."),
    )
)
FORCED_MISSED = push.declare(
    push.Kind(
        name="visit.onsite_missed",
        label=_l("A mandatory on-site visit was missed"),
        title=_l("On-site visit missed: %(client)s"),
        body=_l("%(who)s did not visit the client in person by %(due)s."),
        alarm=True,
    )
)
NEW_NEED = push.declare(
    push.Kind(
        name="visit.new_need",
        label=_l("A client's new need was raised on a return visit"),
        title=_l("New need: %(client)s"),
        body=_l("%(need)s (raised by %(by)s)"),
    )
)


# ----- who sees what ------------------------------------------------------------------------


def visible_query(user: User):
    """A rep sees their own visits, a supervisor their teams', an admin every one."""
    query = db.select(Visit).where(Visit.org_id == user.org_id)
    if user.role == Role.ADMIN:
        return query
    if user.role == Role.SUPERVISOR:
        teams = supervised_team_ids(user)
        return query.where(Visit.team_id.in_(teams) if teams else False)
    return query.where(Visit.rep_id == user.id)


def visible(user: User, visit_id: str) -> Visit | None:
    return db.session.scalar(visible_query(user).where(Visit.id == visit_id))


def local_today(user: User) -> date:
    tz = db.session.get(Organisation, user.org_id).timezone
    return utcnow().astimezone(ZoneInfo(tz)).date()


def visits_on(user: User, day: date) -> list[Visit]:
    return list(
        db.session.scalars(
            visible_query(user)
            .where(Visit.planned_date == day, Visit.state != VisitState.CANCELLED)
            .order_by(Visit.created_at)
        )
    )


def _own_visit(ctx, visit_id: str) -> Visit:
    visit = db.session.get(Visit, visit_id)
    if visit is None or visit.org_id != ctx.user.org_id:
        raise RuleViolation("visit.not_yours", "no such visit")
    if visit.rep_id != ctx.user.id:
        raise RuleViolation("visit.not_yours", "the visit belongs to another rep")
    if visit.state == VisitState.CANCELLED:
        raise RuleViolation("visit.cancelled", "the visit was cancelled")
    return visit


# ----- client files (VIS-03, VIS-04) --------------------------------------------------------


def client_file(site: Site) -> ClientFile | None:
    return db.session.scalar(
        db.select(ClientFile).where(ClientFile.org_id == site.org_id, ClientFile.site_id == site.id)
    )


def history(site: Site, limit: int = 10) -> list[Visit]:
    return list(
        db.session.scalars(
            db.select(Visit)
            .where(Visit.org_id == site.org_id, Visit.site_id == site.id)
            .order_by(Visit.planned_date.desc())
            .limit(limit)
        )
    )


def open_follow_ups(site: Site) -> list[FollowUpTask]:
    return list(
        db.session.scalars(
            db.select(FollowUpTask)
            .where(
                FollowUpTask.org_id == site.org_id,
                FollowUpTask.site_id == site.id,
                FollowUpTask.done_at.is_(None),
            )
            .order_by(FollowUpTask.due_date)
        )
    )


def reports_of(visit: Visit) -> list[VisitReport]:
    return list(
        db.session.scalars(
            db.select(VisitReport).where(VisitReport.visit_id == visit.id).order_by(VisitReport.at)
        )
    )


def check_ins_of(visit: Visit) -> list[VisitCheckIn]:
    return list(
        db.session.scalars(
            db.select(VisitCheckIn)
            .where(VisitCheckIn.visit_id == visit.id)
            .order_by(VisitCheckIn.at)
        )
    )


def check_outs_of(visit: Visit) -> list[VisitCheckOut]:
    return list(
        db.session.scalars(
            db.select(VisitCheckOut)
            .where(VisitCheckOut.visit_id == visit.id)
            .order_by(VisitCheckOut.at)
        )
    )


def rep_colleagues(user: User) -> list[User]:
    """People a follow-up can be given to: the rep's team and its supervisor."""
    query = db.select(User).where(User.org_id == user.org_id, User.active.is_(True))
    if user.team_id:
        query = query.where(
            db.or_(User.team_id == user.team_id, User.id == (user.team.supervisor_id or 0))
        )
    return list(db.session.scalars(query.order_by(User.display_name)))


def set_agreement(by: User, site: Site, signed_on: date) -> ClientFile:
    """The client signed a home-service agreement on ``signed_on`` (VIS-09); a client file is
    made at first contact if there is none (VIS-03)."""
    file = client_file(site)
    if file is None:
        file = ClientFile(org_id=site.org_id, site_id=site.id, contacts=[], notes="")
        db.session.add(file)
    file.agreement_signed_on = signed_on
    return file


def agreements(user: User) -> list[ClientFile]:
    return list(
        db.session.scalars(
            db.select(ClientFile)
            .where(ClientFile.org_id == user.org_id, ClientFile.agreement_signed_on.is_not(None))
            .order_by(ClientFile.agreement_signed_on.desc())
        )
    )


# ----- planning ------------------------------------------------------------------------------


def plan_visit(by: User, rep: User, site: Site, day: date, purpose: str) -> Visit:
    """A supervisor plans a visit of one of their reps to a client site (VIS-01)."""
    if rep.org_id != by.org_id or rep.role != Role.REP:
        raise RuleViolation("visit.unknown_rep", "not a rep of the organisation")
    if by.role == Role.SUPERVISOR and rep.team_id not in supervised_team_ids(by):
        raise RuleViolation("visit.unknown_rep", "not a rep of your teams")
    if site.org_id != by.org_id:
        raise RuleViolation("visit.unknown_site", "no such site")
    visit = Visit(
        org_id=by.org_id,
        team_id=rep.team_id,
        rep_id=rep.id,
        site_id=site.id,
        planned_date=day,
        purpose=purpose.strip()[:200],
        created_by_id=by.id,
    )
    db.session.add(visit)
    db.session.flush()
    _publish(visit)
    return visit


def for_phone(visit: Visit) -> dict:
    site = visit.site
    return {
        "id": visit.id,
        "site_id": visit.site_id,
        "site": site.name,
        "address": site.address,
        "latitude": site.latitude,
        "longitude": site.longitude,
        "geofence_radius_m": site.geofence_radius_m,
        "planned_date": visit.planned_date.isoformat(),
        "purpose": visit.purpose,
        "state": visit.state,
    }


def _publish(visit: Visit) -> None:
    changes.publish(visit.org_id, "visit", visit.id, for_phone(visit), user_id=visit.rep_id)


# ----- facts from the phone -----------------------------------------------------------------


def _fence(site: Site, payload) -> tuple[int | None, bool | None]:
    if payload.latitude is None or payload.longitude is None:
        return None, None  # no GPS fix: recorded, and shown as "no location"
    if site.latitude is None or site.longitude is None:
        return None, None
    result = geofence_check(
        site.latitude,
        site.longitude,
        site.geofence_radius_m,
        payload.latitude,
        payload.longitude,
        payload.accuracy,
    )
    return result.distance_m, result.inside


def _presence_fields(ctx, payload, visit: Visit) -> dict:
    distance, inside = _fence(visit.site, payload)
    return {
        "id": payload.id,
        "org_id": visit.org_id,
        "visit_id": visit.id,
        "user_id": ctx.user.id,
        "at": ctx.device_time.astimezone(UTC),
        "received_at": ctx.received_at,
        "latitude": payload.latitude,
        "longitude": payload.longitude,
        "accuracy_m": payload.accuracy,
        "distance_m": distance,
        "inside": inside,
        "note": (payload.note or "").strip(),
    }


def apply_check_in(ctx, payload) -> VisitCheckIn:
    """Arrived at the client: time and GPS; outside the geofence is allowed but flagged."""
    visit = _own_visit(ctx, payload.visit_id)
    record = VisitCheckIn(**_presence_fields(ctx, payload, visit))
    db.session.add(record)
    if visit.checked_in_at is None:
        visit.checked_in_at = record.at
    if visit.state == VisitState.PLANNED:
        visit.state = VisitState.ON_SITE
    _publish(visit)
    return record


def apply_check_out(ctx, payload) -> VisitCheckOut:
    """Left the client: the time on site is counted from the first check-in (VIS-01)."""
    visit = _own_visit(ctx, payload.visit_id)
    if visit.checked_in_at is None:
        raise RuleViolation("visit.checkout_without_checkin", "no check-in for this visit")
    fields = _presence_fields(ctx, payload, visit)
    on_site = time_on_site(visit.checked_in_at, fields["at"])
    record = VisitCheckOut(**fields, seconds_on_site=int(on_site.total_seconds()))
    db.session.add(record)
    visit.checked_out_at = record.at
    visit.state = VisitState.DONE
    _publish(visit)
    forced_visit_for(visit)
    return record


def apply_report(ctx, payload) -> VisitReport:
    """The visit report, with ratings and follow-ups that become tasks (VIS-01, VIS-08)."""
    visit = _own_visit(ctx, payload.visit_id)
    if payload.replaces_id:
        replaced = db.session.get(VisitReport, payload.replaces_id)
        if replaced is None or replaced.visit_id != visit.id:
            raise RuleViolation("visit.unknown_report", "no such report on this visit")
    score = visit_satisfaction(payload.timeliness, payload.skill, payload.attitude)
    report = VisitReport(
        id=payload.id,
        org_id=visit.org_id,
        visit_id=visit.id,
        user_id=ctx.user.id,
        replaces_id=payload.replaces_id,
        purpose=(payload.purpose or visit.purpose or "").strip(),
        discussed=(payload.discussed or "").strip(),
        problems_solved=(payload.problems_solved or "").strip(),
        client_opinions=(payload.client_opinions or "").strip(),
        survey_handed_out=bool(payload.survey_handed_out),
        photos=list(payload.photos or []),
        timeliness=payload.timeliness,
        skill=payload.skill,
        attitude=payload.attitude,
        satisfaction_score=score.score,
        satisfied=score.satisfied,
        signature=payload.signature,
        signed_by=(payload.signed_by or "").strip(),
        at=ctx.device_time.astimezone(UTC),
        received_at=ctx.received_at,
    )
    db.session.add(report)
    db.session.flush()
    for n, follow_up in enumerate(payload.all_follow_ups(), start=1):
        owner = db.session.get(User, follow_up.owner_id) if follow_up.owner_id else ctx.user
        if owner is None or owner.org_id != visit.org_id:
            raise RuleViolation("visit.unknown_owner", "no such person")
        if follow_up.due_date is None:
            raise RuleViolation("visit.follow_up_needs_due", "a follow-up needs a due date")
        db.session.add(
            FollowUpTask(
                # Derived from the report, so the same report never makes a task twice.
                id=str(uuid.uuid5(uuid.UUID(payload.id), f"follow-up-{n}")),
                org_id=visit.org_id,
                report_id=report.id,
                site_id=visit.site_id,
                owner_id=owner.id,
                action=follow_up.action.strip(),
                due_date=follow_up.due_date,
            )
        )
    return report


def finish_follow_up(user: User, task: FollowUpTask) -> None:
    if task.done_at is None:
        task.done_at = utcnow()


def my_follow_ups(user: User) -> list[FollowUpTask]:
    return list(
        db.session.scalars(
            db.select(FollowUpTask)
            .where(FollowUpTask.owner_id == user.id, FollowUpTask.done_at.is_(None))
            .order_by(FollowUpTask.due_date)
        )
    )


# ----- return visits (VIS-05, VIS-08) -------------------------------------------------------


def return_visits(user: User, include_done: bool = False) -> list[ReturnVisit]:
    query = db.select(ReturnVisit).where(ReturnVisit.org_id == user.org_id)
    if user.role not in (Role.SUPERVISOR, Role.ADMIN):
        query = query.where(ReturnVisit.assigned_to_id == user.id)
    if not include_done:
        query = query.where(ReturnVisit.done_at.is_(None))
    return list(db.session.scalars(query.order_by(ReturnVisit.due_date)))


RESULTS = ("accepted", "disagreed", "new_need")
CASE_KINDS = ("complaint", "follow_up")


def record_return_visit(
    user: User,
    rv: ReturnVisit,
    result: str,
    notes: str,
    *,
    ratings: tuple | None = None,
    onsite: bool = False,
    new_need: str = "",
    case_kind: str = "",
    owner: User | None = None,
    due: date | None = None,
):
    """Record a return visit or call (VIS-05): the result, the client's ratings (VIS-08,
    KPI-18), in person when it was mandatory (VIS-09), and a new need opens a linked case
    (VIS-05 c). Returns the case opened, if any. Refuses with ``RuleViolation``."""
    if rv.done_at is not None:
        raise RuleViolation("visit.already_recorded", "already recorded")
    if result not in RESULTS:
        raise RuleViolation("visit.bad_result", f"unknown result {result!r}")
    if rv.onsite and not onsite:
        raise RuleViolation("visit.onsite_required", "a mandatory visit must be on site")
    values = [r for r in (ratings or ()) if r not in (None, "")]
    if values:
        try:
            timeliness, skill, attitude = (int(v) for v in ratings)
            visit_satisfaction(timeliness, skill, attitude)
        except (TypeError, ValueError):
            raise RuleViolation("visit.ratings_incomplete", "three ratings 1..5") from None
        rv.timeliness, rv.skill, rv.attitude = timeliness, skill, attitude
    case = None
    if result == "new_need":
        case = open_linked_case(user, rv, case_kind, new_need, owner, due)
    rv.result = result[:16]
    rv.notes = notes.strip()
    rv.done_at = utcnow()
    rv.done_by_id = user.id
    return case


def open_linked_case(user: User, rv: ReturnVisit, kind: str, need: str, owner, due):
    """A new need raised on a return visit opens a case linked to the original (VIS-05 c):
    a complaint case (its ``parent_id`` is the original complaint, its ``visit_id`` the
    service) or a follow-up task for a named person; the responsible person is told."""
    from fieldapp.complaints import service as complaints
    from fieldapp.complaints.models import Complaint
    from fieldapp.complaints.records import IntakePayload

    need = (need or "").strip()
    if not need:
        raise RuleViolation("visit.new_need_text", "the new need is missing")
    if kind not in CASE_KINDS:
        raise RuleViolation("visit.new_need_kind", "complaint or follow-up")
    original = db.session.get(Complaint, rv.complaint_id) if rv.complaint_id else None
    client = original.client_name if original else (rv.site.name if rv.site else "")
    if kind == "follow_up":
        if rv.site_id is None:
            raise RuleViolation("visit.new_need_no_site", "a follow-up needs a site")
        if owner is None or owner.org_id != rv.org_id:
            raise RuleViolation("visit.unknown_owner", "no such person")
        if due is None:
            raise RuleViolation("visit.follow_up_needs_due", "a follow-up needs a due date")
        case = FollowUpTask(
            id=str(uuid.uuid4()),
            org_id=rv.org_id,
            return_visit_id=rv.id,
            complaint_id=rv.complaint_id,
            site_id=rv.site_id,
            owner_id=owner.id,
            action=need,
            due_date=due,
        )
        db.session.add(case)
        told = {owner.id}
    else:
        now = utcnow()
        file = client_file(rv.site) if rv.site else None
        contact = (file.contacts[0] if file and file.contacts else {}) or {}
        payload = IntakePayload(
            id=str(uuid.uuid4()),
            site_id=rv.site_id,
            client_name=client or None,
            visit_id=rv.visit_id,
            complainant=(original.complainant if original else contact.get("name")) or client,
            complainant_phone=(original.complainant_phone if original else contact.get("phone"))
            or None,
            channel="field",
            subject=need[:200],
            content=need,
            category="other",
            cause_class="other",
            severity="minor",
            request=need,
        )
        ctx = _Ctx(user=user, device=None, device_time=now, received_at=now)
        case = complaints.take_complaint(ctx, payload)
        case.parent_id = rv.complaint_id
        rv.new_complaint_id = case.id
        told = {original.owner_id, original.handler_id} if original else set()
        if not told - {None, user.id}:
            told |= _supervisors_of(rv.org_id, case.team_id)
    told = {u for u in told if u and u != user.id}
    if told:
        push.notify(
            NEW_NEED,
            user_ids=told,
            org_id=rv.org_id,
            url=(
                f"/complaints/{case.id}"
                if kind == "complaint"
                else (f"/complaints/{rv.complaint_id}" if rv.complaint_id else "/visits/")
            ),
            params={"client": client, "need": need[:120], "by": user.display_name},
            dedupe_key=f"visit-new-need:{rv.id}",
        )
    return case


@push.forget_keys("visit-new-need")
def _dead_new_need_keys(now: datetime, keys: list[str]) -> list[str]:
    """Raised only while ``record`` marks the visit done, which it refuses to do twice."""
    return push.dead_if(keys, ReturnVisit.id, ReturnVisit.done_at.is_not(None))


@dataclass
class _Ctx:
    """What the complaint intake needs of the sync context, for a case opened online."""

    user: User
    device: object
    device_time: datetime
    received_at: datetime
    mutation_id: str = ""


def _supervisors_of(org_id: int, team_id: int | None) -> set[int]:
    """The team's supervisor, or the organisation's administrators when there is none."""
    team = db.session.get(Team, team_id) if team_id else None
    if team is not None and team.supervisor_id:
        return {team.supervisor_id}
    return set(
        db.session.scalars(db.select(User.id).where(User.org_id == org_id, User.role == Role.ADMIN))
    )


# ----- mandatory on-site visits (VIS-09) ------------------------------------------------------


def forced_visit_for(visit: Visit) -> ReturnVisit | None:
    """At a service's check-out: if the client has a service agreement and the agreement is
    new, the staff member is new, or they were complained about last time, generate the
    on-site return visit, assign it and set its deadline (VIS-09). Idempotent per visit."""
    from fieldapp.complaints.models import Complaint
    from fieldapp.complaints.service import working_calendar
    from fieldapp.rules.complaints import ComplaintState

    site = visit.site
    file = client_file(site)
    if file is None or file.agreement_signed_on is None or visit.checked_in_at is None:
        return None
    key = f"onsite:{visit.id}"
    existing = db.session.scalar(
        db.select(ReturnVisit).where(
            ReturnVisit.org_id == visit.org_id, ReturnVisit.source_key == key
        )
    )
    if existing is not None:
        return existing
    tz = ZoneInfo(site.timezone)
    service_at = visit.checked_in_at
    service_on = service_at.astimezone(tz).date()
    if file.agreement_signed_on > service_on:
        return None  # the agreement was not signed yet when the service was done
    earlier = (
        db.select(Visit)
        .where(
            Visit.org_id == visit.org_id,
            Visit.id != visit.id,
            Visit.state == VisitState.DONE,
            Visit.checked_in_at < service_at,
        )
        .order_by(Visit.checked_in_at.desc())
        .limit(1)
    )
    previous_here = db.session.scalar(earlier.where(Visit.site_id == site.id))
    previous_mine = db.session.scalar(earlier.where(Visit.rep_id == visit.rep_id))
    staff = visit.rep
    complained = complained_about_last_time(
        db.session.scalars(
            db.select(Complaint.first_known_at).where(
                Complaint.org_id == visit.org_id,
                Complaint.staff_id == staff.id,
                Complaint.state != ComplaintState.INVALID_CLOSED,
            )
        ),
        previous_mine.checked_in_at if previous_mine else None,
        service_at,
    )
    new_staff = is_new_staff(staff.created_at.astimezone(tz).date(), service_on)
    start = newly_signed_since(
        previous_here.checked_in_at.astimezone(tz).date() if previous_here else None, service_on
    )
    found = forced_onsite_visits(
        [ServiceRecord(str(site.id), str(staff.id), file.agreement_signed_on)],
        period_start=start,
        new_staff_ids=frozenset({str(staff.id)} if new_staff else ()),
        complained_staff_ids=frozenset({str(staff.id)} if complained else ()),
    )
    if not found:
        return None
    team = db.session.get(Team, visit.team_id) if visit.team_id else None
    assignee = forced_visit_assignee(
        staff.id, file.account_manager_id, team.supervisor_id if team else None
    )
    done_at = visit.checked_out_at or service_at
    due = (
        working_calendar(visit.org_id)
        .add_working_days(done_at, FORCED_VISIT_WITHIN_WORKING_DAYS, site.timezone)
        .astimezone(tz)
        .date()
    )
    rv = ReturnVisit(
        org_id=visit.org_id,
        site_id=site.id,
        visit_id=visit.id,
        staff_id=staff.id,
        source_key=key,
        reason=ReturnVisitReason.FORCED_ONSITE,
        month=f"{service_on:%Y-%m}",
        due_date=due,
        onsite=True,
        onsite_reasons=[str(r) for r in found[0].reasons],
        assigned_to_id=assignee,
    )
    db.session.add(rv)
    db.session.flush()
    if assignee:
        push.notify(
            FORCED_ASSIGNED,
            user_ids=[assignee],
            org_id=visit.org_id,
            url="/visits/return-visits",
            params={"client": site.name, "due": due.isoformat()},
            dedupe_key=f"visit-onsite-assigned:{rv.id}",
        )
    return rv


push.forget_once_stored(ReturnVisit.id, "visit-onsite-assigned")


@jobs.rule_check("visits.forced_onsite_missed")
def forced_visits_missed(now: datetime) -> None:
    """A mandatory on-site visit not made by the end of its due day goes to the supervisor
    (VIS-09), once per visit."""
    rows = db.session.scalars(
        db.select(ReturnVisit).where(
            ReturnVisit.reason == ReturnVisitReason.FORCED_ONSITE,
            ReturnVisit.done_at.is_(None),
            ReturnVisit.due_date < (now + timedelta(days=1)).date(),
        )
    ).all()
    for rv in rows:
        tz = rv.site.timezone if rv.site else db.session.get(Organisation, rv.org_id).timezone
        if not forced_visit_missed(now.astimezone(ZoneInfo(tz)).date(), rv.due_date):
            continue
        staff = rv.staff
        team_id = (staff.team_id if staff else None) or (rv.site.team_id if rv.site else None)
        push.notify(
            FORCED_MISSED,
            user_ids=_supervisors_of(rv.org_id, team_id),
            org_id=rv.org_id,
            url="/visits/return-visits",
            params={
                "client": rv.site.name if rv.site else "",
                "who": rv.assigned_to.display_name if rv.assigned_to else "—",
                "due": rv.due_date.isoformat(),
            },
            dedupe_key=f"visit-onsite-missed:{rv.id}",
        )


@push.forget_keys("visit-onsite-missed")
def _dead_missed_visit_keys(now: datetime, keys: list[str]) -> list[str]:
    """The check reads visits not done, and a visit done stays done (``record`` refuses)."""
    return push.dead_unless(keys, ReturnVisit.id, ReturnVisit.done_at.is_(None))


# ----- satisfaction per staff member and month (KPI-18) ---------------------------------------


def _month_bounds(org_id: int, month: date) -> tuple[datetime, datetime]:
    tz = ZoneInfo(db.session.get(Organisation, org_id).timezone)
    start = month.replace(day=1)
    end = (start + timedelta(days=32)).replace(day=1)
    return (
        datetime.combine(start, datetime.min.time(), tzinfo=tz).astimezone(UTC),
        datetime.combine(end, datetime.min.time(), tzinfo=tz).astimezone(UTC),
    )


def satisfaction_month(org_id: int, month: date) -> list[StaffSatisfaction]:
    """KPI-18 for the month (any day in it, the organisation's local month): per staff member,
    the clients' ratings of timeliness, skill and attitude from the visit reports of their
    visits (the latest report of each visit; a correction replaces the one it names) and from
    the return visits rated about their service."""
    start, end = _month_bounds(org_id, month)
    reports = db.session.execute(
        db.select(VisitReport, Visit.rep_id)
        .join(Visit, Visit.id == VisitReport.visit_id)
        .where(VisitReport.org_id == org_id, VisitReport.at >= start, VisitReport.at < end)
        .order_by(VisitReport.at)
    ).all()
    replaced = {r.replaces_id for r, _rep in reports if r.replaces_id}
    latest: dict[str, tuple] = {}
    for report, rep_id in reports:
        if report.id not in replaced:
            latest[report.visit_id] = (rep_id, report)
    ratings = [Rating(rep, r.timeliness, r.skill, r.attitude) for rep, r in latest.values()]
    ratings += [
        Rating(rv.staff_id, rv.timeliness, rv.skill, rv.attitude)
        for rv in db.session.scalars(
            db.select(ReturnVisit).where(
                ReturnVisit.org_id == org_id,
                ReturnVisit.staff_id.is_not(None),
                ReturnVisit.timeliness.is_not(None),
                ReturnVisit.done_at >= start,
                ReturnVisit.done_at < end,
            )
        )
    ]
    return satisfaction_by_staff(ratings)


def served_sites(org_id: int, month: date) -> list[int]:
    """Client sites with a visit done in the month: the households served (VIS-08)."""
    start = month.replace(day=1)
    end = (start + timedelta(days=32)).replace(day=1)
    return sorted(
        set(
            db.session.scalars(
                db.select(Visit.site_id).where(
                    Visit.org_id == org_id,
                    Visit.state == VisitState.DONE,
                    Visit.planned_date >= start,
                    Visit.planned_date < end,
                )
            )
        )
    )


def sample_month(user: User, month: date) -> list[ReturnVisit]:
    """Draw the month's return-visit sample at the regulation's rate (VIS-08), once.

    The draw is random but reproducible for the month; drawing again only tops up to the
    required size (e.g. after more visits of that month synced late).
    """
    label = f"{month:%Y-%m}"
    served = served_sites(user.org_id, month)
    size = return_visit_sample_size(len(served))
    existing = db.session.scalars(
        db.select(ReturnVisit).where(
            ReturnVisit.org_id == user.org_id,
            ReturnVisit.reason == ReturnVisitReason.MONTHLY_SAMPLE,
            ReturnVisit.month == label,
        )
    ).all()
    have = {rv.site_id for rv in existing}
    candidates = [s for s in served if s not in have]
    wanted = max(0, size - len(existing))
    drawn = random.Random(f"{user.org_id}:{label}").sample(candidates, min(wanted, len(candidates)))
    next_month = (month.replace(day=1) + timedelta(days=32)).replace(day=1)
    created = []
    for site_id in drawn:
        served_by = db.session.scalar(
            db.select(Visit.rep_id)
            .where(
                Visit.org_id == user.org_id,
                Visit.site_id == site_id,
                Visit.state == VisitState.DONE,
                Visit.planned_date >= month.replace(day=1),
                Visit.planned_date < next_month,
            )
            .order_by(Visit.checked_out_at.desc())
            .limit(1)
        )
        rv = ReturnVisit(
            staff_id=served_by,
            org_id=user.org_id,
            site_id=site_id,
            source_key=f"sample:{label}:{site_id}",
            reason=ReturnVisitReason.MONTHLY_SAMPLE,
            month=label,
            due_date=next_month + timedelta(days=14),
        )
        db.session.add(rv)
        created.append(rv)
    return created


def client_sites(user: User) -> list[Site]:
    """Every client site of the organisation: anyone may log a complaint for any (CMP-11)."""
    return list(
        db.session.scalars(
            db.select(Site)
            .where(Site.org_id == user.org_id)
            .order_by(db.case((Site.kind == SiteKind.CLIENT_OFFICE, 0), else_=1), Site.name)
        )
    )


def today_start(user: User) -> datetime:
    tz = ZoneInfo(db.session.get(Organisation, user.org_id).timezone)
    return datetime.combine(local_today(user), datetime.min.time(), tzinfo=tz)
