"""Complaint use cases: take a complaint (anyone, for any client), the office steps, the
deadline clock, and what each person may see.

``take_complaint(ctx, payload)`` serves the sync engine and the online form alike: it never
commits and refuses with ``RuleViolation``. The office steps go through ``advance``, which
enforces ``rules.complaints.check_transition`` and writes one ``ComplaintEvent`` per step.
"""

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from flask_babel import lazy_gettext as _l

from fieldapp import jobs, push
from fieldapp.access import supervised_team_ids
from fieldapp.complaints.models import (
    CATEGORY_LABELS,
    CAUSE_CLASS_LABELS,
    CHANNEL_LABELS,
    CLOSED_STATES,
    INVESTIGATION_STARTED,
    REPLIED,
    Complaint,
    ComplaintCalendarDay,
    ComplaintEvent,
    ComplaintSettings,
)
from fieldapp.extensions import db
from fieldapp.models import Organisation, Role, Site, Team, User, utcnow
from fieldapp.rules.calendar import WorkingCalendar
from fieldapp.rules.complaints import (
    PROPERTY_PROFILE,
    STANDARD_PROFILE,
    AttributedComplaint,
    CallbackResult,
    ComplaintState,
    DeadlineStatus,
    UnitComplaintRate,
    acceptance_slip_number,
    check_transition,
    complaint_deadlines,
    complaint_rate_by_unit,
    deadline_status,
    may_read_archived,
    needs_escalation,
)
from fieldapp.rules.errors import RuleViolation
from fieldapp.sync import changes
from fieldapp.sync.messages import register_rule_messages
from fieldapp.visits.models import ReturnVisit, ReturnVisitReason

register_rule_messages(
    {
        "complaint.transition_not_allowed": _l("This step is not possible at this stage."),
        "complaint.invalid_without_explanation": _l(
            "Write down the explanation given to the client before closing it as invalid."
        ),
        "complaint.callback_without_result": _l("Record what the client said on the callback."),
        "complaint.close_without_root_cause": _l("Closing needs the root cause of the complaint."),
        "complaint.close_without_corrective_action": _l(
            "Closing needs the corrective or preventive action."
        ),
        "complaint.close_without_satisfied_callback": _l(
            "Closing needs a callback in which the client said they were satisfied."
        ),
        "complaint.close_without_callback": _l(
            "Call the client back and record their opinion before closing."
        ),
        "complaint.reopen_without_disagreement": _l(
            "Only a callback that ended in disagreement sends the case back."
        ),
        "complaint.unknown_site": _l("This client site is not known."),
        "complaint.client_missing": _l("Say which client the complaint is from."),
        "complaint.first_known_in_future": _l("The time first known cannot be in the future."),
        "complaint.needs_handler": _l("Choose the department and the person responsible."),
        "complaint.needs_plan": _l("Write the resolution plan."),
        "complaint.needs_answer": _l("Write the answer given to the client."),
        "complaint.needs_opinion": _l("Write down the client's final opinion."),
        "complaint.needs_note": _l("Say why the plan goes back."),
        "complaint.needs_next_reply": _l("Set the time of the next reply to the client."),
        "complaint.next_reply_in_past": _l("The next reply must be in the future."),
        "complaint.not_yours": _l(
            "Only the owner, the person responsible or a supervisor can take this step."
        ),
        "complaint.supervisor_only": _l("Only a supervisor can approve or send back a plan."),
        "complaint.closed": _l("This complaint is closed."),
        "complaint.unknown_visit": _l("This visit is not known."),
        "complaint.unknown_staff": _l("Choose the staff member complained about from the list."),
    }
)

MAJOR = push.declare(
    push.Kind(
        name="complaint.major",
        label=_l("A major complaint was received"),
        title=_l("Major complaint: %(client)s"),
        body=_l("%(slip)s · %(subject)s. Taken by %(taker)s."),
        alarm=True,
    )
)
# One kind per clock, so each reads in the recipient's own language (CMP-07, CMP-10).
DUE_SOON = {
    "investigate": push.declare(
        push.Kind(
            name="complaint.investigate_due_soon",
            label=_l("A complaint investigation is due soon"),
            title=_l("Start the investigation: %(client)s"),
            body=_l("%(slip)s · the investigation must start by %(due)s."),
        )
    ),
    "reply": push.declare(
        push.Kind(
            name="complaint.reply_due_soon",
            label=_l("A complaint reply is due soon"),
            title=_l("Reply due soon: %(client)s"),
            body=_l("%(slip)s · the client must have a reply by %(due)s."),
        )
    ),
    "next_reply": push.declare(
        push.Kind(
            name="complaint.next_reply_due_soon",
            label=_l("A promised next reply is due soon"),
            title=_l("Next reply due soon: %(client)s"),
            body=_l("%(slip)s · you promised the client a reply by %(due)s."),
        )
    ),
}
OVERDUE = {
    "investigate": push.declare(
        push.Kind(
            name="complaint.investigate_overdue",
            label=_l("A complaint investigation is overdue"),
            title=_l("Investigation overdue: %(client)s"),
            body=_l("%(slip)s · the investigation was due to start by %(due)s."),
            alarm=True,
        )
    ),
    "reply": push.declare(
        push.Kind(
            name="complaint.reply_overdue",
            label=_l("A complaint reply is overdue"),
            title=_l("Reply overdue: %(client)s"),
            body=_l("%(slip)s · the client was due a reply by %(due)s."),
            alarm=True,
        )
    ),
    "next_reply": push.declare(
        push.Kind(
            name="complaint.next_reply_overdue",
            label=_l("A promised next reply is overdue"),
            title=_l("Next reply overdue: %(client)s"),
            body=_l("%(slip)s · the reply promised for %(due)s has not been given."),
            alarm=True,
        )
    ),
}
ROUTED = push.declare(
    push.Kind(
        name="complaint.routed",
        label=_l("A complaint was handed to you"),
        title=_l("Complaint for you: %(client)s"),
        body=_l("%(slip)s · %(subject)s. Reply by %(due)s."),
    )
)

DEADLINE_WHAT = {
    "investigate": _l("Start the investigation"),
    "reply": _l("Reply to the client"),
    "next_reply": _l("Next reply to the client"),
}

STEP_LABELS = {
    "received": _l("Complaint taken"),
    "triage": _l("Judged valid"),
    "invalid": _l("Closed as invalid"),
    "route": _l("Routed"),
    "plan": _l("Plan proposed"),
    "approve": _l("Plan approved"),
    "reject_plan": _l("Plan sent back"),
    "answer": _l("Answered"),
    "callback": _l("Called back"),
    "call_again": _l("Call again"),
    "rework": _l("Plan reworked"),
    "close": _l("Closed"),
    "next_reply": _l("Next reply set"),
}


# ----- who sees what ------------------------------------------------------------------------


def is_manager(user: User) -> bool:
    return user.role in (Role.SUPERVISOR, Role.ADMIN)


def visible_query(user: User):
    """Complaints a user may see (CMP-16, AUD-05). While a case is open: an admin every one, a
    supervisor their teams' (and those of no team), anyone else the ones they took, own or
    handle. Once closed it is in the archive, which only department heads (their teams' and
    those of no team) and the general manager (admin) may read: ``may_read_archived``."""
    query = db.select(Complaint).where(Complaint.org_id == user.org_id)
    if user.role == Role.ADMIN:
        return query
    closed = Complaint.state.in_([str(s) for s in CLOSED_STATES])
    if user.role == Role.SUPERVISOR:
        teams = supervised_team_ids(user)
        in_scope = db.or_(
            Complaint.team_id.in_(teams) if teams else False, Complaint.team_id.is_(None)
        )
        party = db.or_(Complaint.owner_id == user.id, Complaint.handler_id == user.id)
        return query.where(db.or_(in_scope, db.and_(db.not_(closed), party)))
    return query.where(
        db.not_(closed),
        db.or_(
            Complaint.owner_id == user.id,
            Complaint.handler_id == user.id,
            Complaint.logged_by_id == user.id,
        ),
    )


def may_read(user: User, complaint: Complaint) -> bool:
    """The same rule as ``visible_query`` for one complaint in memory."""
    if user.org_id != complaint.org_id:
        return False
    if complaint.state in CLOSED_STATES:
        teams = supervised_team_ids(user) if user.role == Role.SUPERVISOR else set()
        return may_read_archived(user.role, set(teams), complaint.team_id)
    return visible(user, complaint.id) is not None


def visible(user: User, complaint_id: str) -> Complaint | None:
    return db.session.scalar(visible_query(user).where(Complaint.id == complaint_id))


def queue(user: User, include_closed: bool = False) -> list[Complaint]:
    query = visible_query(user)
    if not include_closed:
        query = query.where(Complaint.state.not_in([str(s) for s in CLOSED_STATES]))
    return list(db.session.scalars(query.order_by(Complaint.reply_by, Complaint.received_at)))


def timeline(complaint: Complaint) -> list[ComplaintEvent]:
    return list(
        db.session.scalars(
            db.select(ComplaintEvent)
            .where(ComplaintEvent.complaint_id == complaint.id)
            .order_by(ComplaintEvent.version)
        )
    )


# ----- calendar and deadlines ---------------------------------------------------------------


def working_calendar(org_id: int) -> WorkingCalendar:
    """The organisation's calendar: weekends, plus the holidays and makeup days it entered."""
    days = db.session.scalars(
        db.select(ComplaintCalendarDay).where(ComplaintCalendarDay.org_id == org_id)
    ).all()
    return WorkingCalendar(
        holidays=frozenset(d.day for d in days if not d.workday),
        makeup_workdays=frozenset(d.day for d in days if d.workday),
    )


def profile_of(org_id: int):
    settings = db.session.get(ComplaintSettings, org_id)
    return PROPERTY_PROFILE if settings and settings.profile == "property" else STANDARD_PROFILE


def settings_of(org_id: int) -> ComplaintSettings:
    settings = db.session.get(ComplaintSettings, org_id)
    if settings is None:
        settings = ComplaintSettings(org_id=org_id, profile="standard")
        db.session.add(settings)
    return settings


def calendar_days(org_id: int) -> list[ComplaintCalendarDay]:
    return list(
        db.session.scalars(
            db.select(ComplaintCalendarDay)
            .where(ComplaintCalendarDay.org_id == org_id)
            .order_by(ComplaintCalendarDay.day)
        )
    )


def set_calendar_day(org_id: int, day: date, workday: bool, name: str) -> None:
    """Add or change one day of the calendar; deadlines of new complaints use it."""
    row = db.session.scalar(
        db.select(ComplaintCalendarDay).where(
            ComplaintCalendarDay.org_id == org_id, ComplaintCalendarDay.day == day
        )
    )
    if row is None:
        row = ComplaintCalendarDay(org_id=org_id, day=day)
        db.session.add(row)
    row.workday = workday
    row.name = name[:80]


def remove_calendar_day(org_id: int, day_id: int) -> None:
    row = db.session.get(ComplaintCalendarDay, day_id)
    if row is not None and row.org_id == org_id:
        db.session.delete(row)


def tz_of(complaint: Complaint) -> str:
    if complaint.site is not None:
        return complaint.site.timezone
    return db.session.get(Organisation, complaint.org_id).timezone


@dataclass(frozen=True)
class Countdown:
    what: str  # investigate | reply | next_reply
    label: str
    due: datetime
    status: DeadlineStatus
    met: bool


def countdowns(complaint: Complaint, now: datetime | None = None) -> list[Countdown]:
    """The clocks still running on a complaint, each with its traffic light (CMP-07, CMP-10)."""
    now = now or utcnow()
    result = []
    for what, due, met in _clocks(complaint):
        status = DeadlineStatus.OK if met else deadline_status(now, due)
        result.append(Countdown(what, str(DEADLINE_WHAT[what]), due, status, met))
    return result


def _clocks(complaint: Complaint):
    yield "investigate", complaint.investigate_by, complaint.state in INVESTIGATION_STARTED
    yield "reply", complaint.reply_by, complaint.state in REPLIED
    if complaint.next_reply_at is not None:
        yield "next_reply", complaint.next_reply_at, complaint.state in CLOSED_STATES


def worst_status(complaint: Complaint, now: datetime | None = None) -> DeadlineStatus:
    order = [DeadlineStatus.OK, DeadlineStatus.DUE_SOON, DeadlineStatus.OVERDUE]
    statuses = [c.status for c in countdowns(complaint, now) if not c.met]
    return max(statuses, key=order.index) if statuses else DeadlineStatus.OK


# ----- taking a complaint (CMP-01..03, CMP-08, CMP-11, CMP-12, CMP-20) ----------------------


def _local(value: datetime, tz_name: str) -> datetime:
    """A time from a form: without a zone it is the site's wall clock."""
    if value.tzinfo is None:
        return value.replace(tzinfo=ZoneInfo(tz_name)).astimezone(UTC)
    return value.astimezone(UTC)


def next_slip_number(org: Organisation, local_day: date) -> str:
    """The next number of the organisation's register for that day (REC-20 "一册登记").

    The organisation's row is locked for the rest of the transaction, so two phones syncing
    at once cannot take the same number (SQLite serialises writers anyway).
    """
    db.session.execute(
        db.select(Organisation.id).where(Organisation.id == org.id).with_for_update()
    )
    prefix = acceptance_slip_number(org.code, local_day, 1)[:-4]
    taken = db.session.scalar(
        db.select(db.func.count(Complaint.id)).where(
            Complaint.org_id == org.id, Complaint.slip_number.startswith(prefix)
        )
    )
    return acceptance_slip_number(org.code, local_day, taken + 1)


def take_complaint(ctx, payload) -> Complaint:
    """Log a complaint for any client, by anyone (CMP-11); the taker owns it (CMP-12)."""
    user = ctx.user
    org = db.session.get(Organisation, user.org_id)
    site = None
    if payload.site_id:
        site = db.session.get(Site, payload.site_id)
        if site is None or site.org_id != user.org_id:
            raise RuleViolation("complaint.unknown_site", "no such site in the organisation")
    client_name = (payload.client_name or "").strip() or (site.name if site else "")
    if not client_name:
        raise RuleViolation("complaint.client_missing", "a complaint needs its client")
    visit_id = None
    if payload.visit_id:
        from fieldapp.visits.models import Visit

        visit = db.session.get(Visit, payload.visit_id)
        if visit is None or visit.org_id != user.org_id:
            raise RuleViolation("complaint.unknown_visit", "no such visit")
        visit_id = visit.id
    tz_name = site.timezone if site else org.timezone
    logged_at = ctx.device_time.astimezone(UTC)
    first_known = _local(payload.first_known_at, tz_name) if payload.first_known_at else logged_at
    if first_known > max(logged_at, ctx.received_at) + timedelta(minutes=5):
        raise RuleViolation("complaint.first_known_in_future", "first known after it was logged")
    # The clock runs from when the company first knew (CMP-20): logging late buys no time.
    start = min(first_known, logged_at)
    deadlines = complaint_deadlines(start, working_calendar(org.id), tz_name, profile_of(org.id))
    local_day = logged_at.astimezone(ZoneInfo(tz_name)).date()
    complaint = Complaint(
        id=payload.id,
        org_id=org.id,
        site_id=site.id if site else None,
        team_id=(site.team_id if site and site.team_id else user.team_id),
        visit_id=visit_id,
        slip_number=next_slip_number(org, local_day),
        client_name=client_name[:120],
        complainant=payload.complainant.strip(),
        complainant_phone=(payload.complainant_phone or "").strip(),
        channel=payload.channel,
        subject=payload.subject.strip(),
        content=(payload.content or "").strip(),
        category=payload.category,
        cause_class=payload.cause_class,
        severity=payload.severity,
        request=(payload.request or "").strip(),
        solved_on_spot=bool(payload.solved_on_spot),
        first_known_at=first_known,
        logged_at=logged_at,
        received_at=ctx.received_at,
        logged_by_id=user.id,
        owner_id=user.id,
        state=ComplaintState.RECEIVED,
        investigate_by=deadlines.investigate_by,
        reply_by=deadlines.reply_by,
        version=1,
    )
    db.session.add(complaint)
    db.session.flush()
    _event(
        complaint,
        user,
        "received",
        "",
        ComplaintState.RECEIVED,
        {
            "slip_number": complaint.slip_number,
            "channel": complaint.channel,
            "severity": complaint.severity,
            "solved_on_spot": complaint.solved_on_spot,
            "first_known_at": first_known.isoformat(),
        },
        at=ctx.received_at,
    )
    if needs_escalation(complaint.severity):
        _escalate(complaint, user)
    _publish(complaint)
    return complaint


def _escalate(complaint: Complaint, taker: User) -> None:
    """A major complaint goes to the head at once (CMP-09): the team's supervisor, or the
    organisation's administrators when the team has none."""
    recipients = set()
    if complaint.team_id:
        team = db.session.get(Team, complaint.team_id)
        if team and team.supervisor_id:
            recipients.add(team.supervisor_id)
    if not recipients:
        recipients.update(
            db.session.scalars(
                db.select(User.id).where(User.org_id == complaint.org_id, User.role == Role.ADMIN)
            )
        )
    recipients.discard(taker.id)
    push.notify(
        MAJOR,
        user_ids=recipients,
        org_id=complaint.org_id,
        url=f"/complaints/{complaint.id}",
        params={
            "client": complaint.client_name,
            "slip": complaint.slip_number,
            "subject": complaint.subject,
            "taker": taker.display_name,
        },
        dedupe_key=f"complaint-major:{complaint.id}",
    )


push.forget_once_stored(Complaint.id, "complaint-major")  # raised only by take_complaint


def for_phone(complaint: Complaint) -> dict:
    """What the taker's phone keeps: enough to show the slip and the state."""
    return {
        "id": complaint.id,
        "slip_number": complaint.slip_number,
        "client_name": complaint.client_name,
        "site_id": complaint.site_id,
        "subject": complaint.subject,
        "state": complaint.state,
        "reply_by": complaint.reply_by.isoformat(),
        "version": complaint.version,
    }


def _publish(complaint: Complaint) -> None:
    changes.publish(
        complaint.org_id,
        "complaint",
        complaint.id,
        for_phone(complaint),
        user_id=complaint.owner_id,
    )


def _event(complaint, user, step, from_state, to_state, data, at=None) -> ComplaintEvent:
    event = ComplaintEvent(
        org_id=complaint.org_id,
        complaint_id=complaint.id,
        version=complaint.version,
        step=step,
        from_state=str(from_state),
        to_state=str(to_state),
        by_id=user.id,
        at=at or utcnow(),
        data=data,
    )
    db.session.add(event)
    return event


# ----- office steps (CMP-04..06, CMP-10, CMP-13, CMP-15, VIS-05) ----------------------------

# step -> (from states, to state); "triage" with valid=False goes to invalid_closed.
STEPS = {
    "triage": ComplaintState.TRIAGED,
    "route": ComplaintState.ROUTED,
    "plan": ComplaintState.PLANNED,
    "approve": ComplaintState.APPROVED,
    "reject_plan": ComplaintState.ROUTED,
    "answer": ComplaintState.ANSWERED,
    "callback": ComplaintState.CALLBACK_DONE,
    "call_again": ComplaintState.ANSWERED,
    "rework": ComplaintState.PLANNED,
    "close": ComplaintState.CLOSED,
}
SUPERVISOR_STEPS = frozenset({"approve", "reject_plan"})
HANDLER_STEPS = frozenset({"plan", "answer", "next_reply", "rework"})


def may_act(user: User, complaint: Complaint, step: str) -> bool:
    if user.org_id != complaint.org_id:
        return False
    if user.role == Role.ADMIN:
        return True
    supervises = user.role == Role.SUPERVISOR and (
        complaint.team_id is None or complaint.team_id in supervised_team_ids(user)
    )
    if step in SUPERVISOR_STEPS:
        return supervises
    if supervises or user.id == complaint.owner_id:
        return True
    return step in HANDLER_STEPS and user.id == complaint.handler_id


def next_steps(user: User, complaint: Complaint) -> list[str]:
    """The steps the workflow allows now and this user may take, for the complaint page."""
    state = ComplaintState(complaint.state)
    if state in CLOSED_STATES:
        return []
    candidates = {
        ComplaintState.RECEIVED: ["triage"],
        ComplaintState.TRIAGED: ["route"],
        ComplaintState.ROUTED: ["plan"],
        ComplaintState.PLANNED: ["approve", "reject_plan"],
        ComplaintState.APPROVED: ["answer"],
        ComplaintState.ANSWERED: ["callback"],
        ComplaintState.CALLBACK_DONE: (
            ["close"]
            if complaint.callback_result == CallbackResult.SATISFIED
            else ["call_again", "rework"]
        ),
    }[state]
    steps = [s for s in candidates if may_act(user, complaint, s)]
    if may_act(user, complaint, "next_reply"):
        steps.append("next_reply")
    return steps


def _text(fields: dict, name: str) -> str:
    return (fields.get(name) or "").strip()


def advance(complaint: Complaint, user: User, step: str, fields: dict) -> ComplaintEvent:
    """Take one office step on a complaint; refuse with ``RuleViolation``. Does not commit."""
    if complaint.state in CLOSED_STATES:
        raise RuleViolation("complaint.closed", "the complaint is closed")
    if not may_act(user, complaint, step):
        code = "complaint.supervisor_only" if step in SUPERVISOR_STEPS else "complaint.not_yours"
        raise RuleViolation(code, f"{user.username} may not {step} this complaint")
    src = ComplaintState(complaint.state)
    if step == "next_reply":
        return _set_next_reply(complaint, user, fields)
    if step not in STEPS:
        raise RuleViolation("complaint.transition_not_allowed", f"unknown step {step}")
    dst = STEPS[step]
    data: dict = {}
    if step == "triage":
        valid = fields.get("valid") not in (False, "no", "0", "false")
        for name, labels in (("category", CATEGORY_LABELS), ("cause_class", CAUSE_CLASS_LABELS)):
            value = _text(fields, name)
            if value in labels and value != getattr(complaint, name):
                data[name] = value
        if not valid:
            explanation = _text(fields, "explanation")
            check_transition(src, ComplaintState.TRIAGED)
            check_transition(
                ComplaintState.TRIAGED, ComplaintState.INVALID_CLOSED, explanation=explanation
            )
            step, dst = "invalid", ComplaintState.INVALID_CLOSED
            data["explanation"] = complaint.explanation = explanation
            complaint.closed_at = utcnow()
        else:
            check_transition(src, dst)
        for name in ("category", "cause_class"):
            if name in data:
                setattr(complaint, name, data[name])
    elif step == "close" and src is not ComplaintState.CALLBACK_DONE:
        raise RuleViolation("complaint.close_without_callback", "no callback yet")
    else:
        check_transition(
            src,
            dst,
            root_cause=_text(fields, "root_cause"),
            corrective_action=_text(fields, "corrective_action"),
            callback_result=(
                _callback_result(fields)
                if step == "callback"
                else complaint.callback_result or None
            ),
        )
        data = _apply_step(complaint, user, step, fields)
    complaint.version += 1
    complaint.state = dst
    event = _event(complaint, user, step, src, dst, data)
    _publish(complaint)
    return event


@push.forget_keys("complaint-routed")
def _dead_routed_keys(now: datetime, keys: list[str]) -> list[str]:
    """``complaint-routed:<id>:<n>`` is raised by the routing that makes version n, from n - 1;
    versions only go up, so it is dead once the complaint has reached n (or is gone)."""
    wanted = {}
    for key in keys:
        try:
            _, complaint_id, version = key.split(":")
            wanted[key] = (complaint_id, int(version))
        except ValueError:
            continue  # not a key of this step: kept
    ids = {complaint_id for complaint_id, _ in wanted.values()}
    reached = dict(
        db.session.execute(
            db.select(Complaint.id, Complaint.version).where(Complaint.id.in_(ids))
        ).all()
    )
    return [key for key, (cid, n) in wanted.items() if reached.get(cid, n) >= n]


def _apply_step(complaint: Complaint, user: User, step: str, fields: dict) -> dict:
    """The data each step needs (checked here) and records on the case and its event."""
    if step == "route":
        department = _text(fields, "department")
        handler = _org_user(complaint.org_id, fields.get("handler_id"))
        if not department or handler is None:
            raise RuleViolation("complaint.needs_handler", "route needs department and handler")
        complaint.department, complaint.handler_id = department, handler.id
        staff = None
        if fields.get("staff_id"):
            staff = _org_user(complaint.org_id, fields.get("staff_id"))
            if staff is None:
                raise RuleViolation("complaint.unknown_staff", "no such staff member")
            complaint.staff_id = staff.id
        push.notify(
            ROUTED,
            user_ids=[handler.id],
            org_id=complaint.org_id,
            url=f"/complaints/{complaint.id}",
            params={
                "client": complaint.client_name,
                "slip": complaint.slip_number,
                "subject": complaint.subject,
                "due": complaint.reply_by,
            },
            dedupe_key=f"complaint-routed:{complaint.id}:{complaint.version + 1}",
        )
        data = {"department": department, "handler_id": handler.id, "handler": handler.display_name}
        if staff is not None:
            data.update(staff_id=staff.id, staff=staff.display_name)
        return data
    if step in ("plan", "rework"):
        plan = _text(fields, "plan")
        if not plan:
            raise RuleViolation("complaint.needs_plan", "a plan is needed")
        complaint.plan = plan
        complaint.approved_by_id = None
        return {"plan": plan}
    if step == "approve":
        complaint.approved_by_id = user.id
        return {"note": _text(fields, "note")}
    if step == "reject_plan":
        note = _text(fields, "note")
        if not note:
            raise RuleViolation("complaint.needs_note", "say why the plan goes back")
        return {"note": note}
    if step == "answer":
        answer = _text(fields, "answer")
        if not answer:
            raise RuleViolation("complaint.needs_answer", "an answer is needed")
        complaint.answer = answer
        return {"answer": answer}
    if step == "callback":
        opinion = _text(fields, "client_opinion")
        if not opinion:
            raise RuleViolation("complaint.needs_opinion", "the client's opinion is needed")
        complaint.callback_result = CallbackResult(fields["callback_result"])
        complaint.client_opinion = opinion
        return {"callback_result": complaint.callback_result, "client_opinion": opinion}
    if step == "call_again":
        when = _future(complaint, fields.get("next_reply_at"))
        complaint.next_reply_at = when
        complaint.callback_result = ""
        due = when.astimezone(ZoneInfo(tz_of(complaint))).date()
        schedule_return_visit(
            complaint,
            ReturnVisitReason.CALL_AGAIN,
            f"complaint:{complaint.id}:call:{complaint.version + 1}",
            due,
        )
        return {"next_reply_at": when.isoformat()}
    if step == "close":
        complaint.root_cause = _text(fields, "root_cause")
        complaint.corrective_action = _text(fields, "corrective_action")
        complaint.lessons = _text(fields, "lessons")
        complaint.closed_at = utcnow()
        tz = ZoneInfo(tz_of(complaint))
        due = working_calendar(complaint.org_id).next_working_day(
            complaint.closed_at.astimezone(tz).date()
        )
        schedule_return_visit(
            complaint, ReturnVisitReason.COMPLAINT_CLOSED, f"complaint:{complaint.id}", due
        )
        return {
            "root_cause": complaint.root_cause,
            "corrective_action": complaint.corrective_action,
            "lessons": complaint.lessons,
        }
    return {}


def _callback_result(fields: dict) -> str | None:
    value = fields.get("callback_result")
    return value if value in (CallbackResult.SATISFIED, CallbackResult.DISAGREED) else None


def _org_user(org_id: int, user_id) -> User | None:
    try:
        user = db.session.get(User, int(user_id)) if user_id else None
    except (TypeError, ValueError):
        return None
    return user if user is not None and user.org_id == org_id and user.active else None


def _future(complaint: Complaint, value) -> datetime:
    if not value:
        raise RuleViolation("complaint.needs_next_reply", "next reply time needed")
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise RuleViolation("complaint.needs_next_reply", "bad next reply time") from None
    when = _local(value, tz_of(complaint))
    if when <= utcnow():
        raise RuleViolation("complaint.next_reply_in_past", "next reply in the past")
    return when


def _set_next_reply(complaint: Complaint, user: User, fields: dict) -> ComplaintEvent:
    """CMP-10: the owner cannot solve it yet and says when the client hears back."""
    when = _future(complaint, fields.get("next_reply_at"))
    complaint.next_reply_at = when
    complaint.version += 1
    event = _event(
        complaint,
        user,
        "next_reply",
        complaint.state,
        complaint.state,
        {"next_reply_at": when.isoformat(), "note": _text(fields, "note")},
    )
    _publish(complaint)
    return event


def schedule_return_visit(
    complaint: Complaint, reason: ReturnVisitReason, source_key: str, due: date
) -> ReturnVisit:
    """One return visit per closed complaint or call-again (VIS-05), for the owner."""
    existing = db.session.scalar(
        db.select(ReturnVisit).where(
            ReturnVisit.org_id == complaint.org_id, ReturnVisit.source_key == source_key
        )
    )
    if existing is not None:
        return existing
    visit = ReturnVisit(
        org_id=complaint.org_id,
        site_id=complaint.site_id,
        complaint_id=complaint.id,
        source_key=source_key,
        reason=reason,
        due_date=due,
        assigned_to_id=complaint.owner_id,
    )
    db.session.add(visit)
    return visit


# ----- the rule clock (CMP-07, CMP-10) ------------------------------------------------------


def _people(complaint: Complaint, with_supervisor: bool) -> set[int]:
    people = {complaint.owner_id}
    if complaint.handler_id:
        people.add(complaint.handler_id)
    if with_supervisor and complaint.team_id:
        team = db.session.get(Team, complaint.team_id)
        if team and team.supervisor_id:
            people.add(team.supervisor_id)
    return people


@jobs.rule_check("complaints.deadlines")
def deadline_check(now: datetime) -> None:
    """Due soon (a day before) and overdue for the investigation, reply and next-reply clocks,
    each raised once per complaint and clock."""
    horizon = now + timedelta(hours=24)
    open_states = [str(s) for s in ComplaintState if s not in CLOSED_STATES]
    rows = db.session.scalars(
        db.select(Complaint).where(
            Complaint.state.in_(open_states),
            db.or_(
                Complaint.investigate_by <= horizon,
                Complaint.reply_by <= horizon,
                Complaint.next_reply_at <= horizon,
            ),
        )
    ).all()
    for complaint in rows:
        for what, due, met in _clocks(complaint):
            if met:
                continue
            status = deadline_status(now, due)
            if status is DeadlineStatus.OK:
                continue
            overdue = status is DeadlineStatus.OVERDUE
            key = f"{what}:{due.isoformat()}" if what == "next_reply" else what
            push.notify(
                (OVERDUE if overdue else DUE_SOON)[what],
                user_ids=_people(complaint, with_supervisor=overdue),
                org_id=complaint.org_id,
                url=f"/complaints/{complaint.id}",
                params={
                    "client": complaint.client_name,
                    "slip": complaint.slip_number,
                    "due": due,
                },
                dedupe_key=f"complaint-{'overdue' if overdue else 'due-soon'}:{complaint.id}:{key}",
            )


@push.forget_keys("complaint-overdue", "complaint-due-soon")
def _dead_deadline_keys(now: datetime, keys: list[str]) -> list[str]:
    """The check reads open complaints only, and a closed complaint is never reopened."""
    still_open = Complaint.state.not_in([str(s) for s in CLOSED_STATES])
    return push.dead_unless(keys, Complaint.id, still_open)


CHANNELS = tuple(CHANNEL_LABELS)
CATEGORIES = tuple(CATEGORY_LABELS)
CAUSE_CLASSES = tuple(CAUSE_CLASS_LABELS)


# ----- the monthly complaint rate by unit (CMP-17) -----------------------------------------


def complaint_rates(
    org_id: int, month: date, services: dict[str, int] | None = None
) -> list[UnitComplaintRate]:
    """CMP-17 for the month (any day in it, the organisation's local month): per unit, the
    valid complaints first known in the month over the services done, in percent.

    A case is attributed to the team of the staff member complained about (set when it is
    routed), else to the team it was taken for, else to the department it was routed to.
    ``services`` maps unit names to the number of services of the month; by default it is
    the visits done by each team in the month (other domains' services can be passed in).
    """
    tz = ZoneInfo(db.session.get(Organisation, org_id).timezone)
    first = month.replace(day=1)
    after = (first + timedelta(days=32)).replace(day=1)
    start = datetime.combine(first, datetime.min.time(), tzinfo=tz).astimezone(UTC)
    end = datetime.combine(after, datetime.min.time(), tzinfo=tz).astimezone(UTC)
    teams = dict(
        db.session.execute(db.select(Team.id, Team.name).where(Team.org_id == org_id)).all()
    )
    staff_team = dict(
        db.session.execute(db.select(User.id, User.team_id).where(User.org_id == org_id)).all()
    )
    attributed = []
    for c in db.session.scalars(
        db.select(Complaint).where(
            Complaint.org_id == org_id,
            Complaint.first_known_at >= start,
            Complaint.first_known_at < end,
        )
    ):
        team_id = staff_team.get(c.staff_id) if c.staff_id else None
        unit = teams.get(team_id or c.team_id) or c.department or str(_l("No unit"))
        attributed.append(AttributedComplaint(unit, valid=c.state != ComplaintState.INVALID_CLOSED))
    if services is None:
        from fieldapp.visits.models import Visit, VisitState

        services = {}
        for team_id, n in db.session.execute(
            db.select(Visit.team_id, db.func.count(Visit.id))
            .where(
                Visit.org_id == org_id,
                Visit.state == VisitState.DONE,
                Visit.planned_date >= first,
                Visit.planned_date < after,
            )
            .group_by(Visit.team_id)
        ):
            unit = teams.get(team_id) or str(_l("No unit"))
            services[unit] = services.get(unit, 0) + n
    return complaint_rate_by_unit(attributed, services)
