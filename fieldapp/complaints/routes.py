"""Complaints: take one (anyone, any client), the acceptance slip with its QR, the office
queue with countdowns, one complaint's timeline and next steps, and the working calendar."""

import uuid
from datetime import date
from zoneinfo import ZoneInfo

import segno
from babel.dates import format_datetime
from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user, login_required
from markupsafe import Markup

from fieldapp.access import roles_required
from fieldapp.complaints import (
    records,  # noqa: F401  (registers the record type)
    service,
)
from fieldapp.complaints.models import (
    CATEGORY_LABELS,
    CAUSE_CLASS_LABELS,
    CHANNEL_LABELS,
    PROFILES,
    SEVERITY_LABELS,
    Complaint,
)
from fieldapp.extensions import db
from fieldapp.models import Organisation, Role, User, utcnow
from fieldapp.rules.errors import RuleViolation
from fieldapp.sync.messages import rule_message
from fieldapp.visits import service as visits
from fieldapp.visits.models import FollowUpTask, ReturnVisit, Visit

bp = Blueprint("complaints", __name__, url_prefix="/complaints")
MANAGERS = (Role.SUPERVISOR, Role.ADMIN)


@bp.app_template_filter("site_time")
def site_time(value, tz_name: str) -> str:
    """A UTC time as the site's wall clock, in the reader's language."""
    if value is None:
        return "—"
    return format_datetime(value, "short", tzinfo=ZoneInfo(tz_name), locale=str(get_locale()))


def _complaint_or_404(complaint_id: str):
    """The one lookup every complaint view uses: visible to this user, or 404."""
    complaint = service.visible(current_user, complaint_id)
    if complaint is None:
        abort(404)
    return complaint


@bp.get("/")
@login_required
def queue():
    """The complaint queue, most urgent reply first, each with its countdowns."""
    show_closed = request.args.get("closed") == "1"
    complaints = service.queue(current_user, include_closed=show_closed)
    now = utcnow()
    return render_template(
        "complaints/queue.html",
        complaints=complaints,
        countdowns={c.id: service.countdowns(c, now) for c in complaints},
        worst={c.id: service.worst_status(c, now) for c in complaints},
        show_closed=show_closed,
    )


@bp.get("/new")
@login_required
def new():
    """Take a complaint: works offline; the client gets an acceptance slip at once."""
    mine = db.session.scalars(
        service.visible_query(current_user)
        .where(service.Complaint.logged_by_id == current_user.id)
        .order_by(service.Complaint.received_at.desc())
        .limit(10)
    ).all()
    return render_template(
        "complaints/new.html",
        sites=visits.client_sites(current_user),
        site_id=request.args.get("site_id", type=int),
        visit_id=request.args.get("visit_id", ""),
        channels=CHANNEL_LABELS,
        categories=CATEGORY_LABELS,
        causes=CAUSE_CLASS_LABELS,
        severities=SEVERITY_LABELS,
        reply_days=service.profile_of(current_user.org_id).reply_within,
        mine=mine,
        reserved=_reserved_slips(),
    )


# A page cached on the phone can give this many slips with a QR code while offline.
RESERVED_SLIPS = 5


def _reserved_slips() -> list[tuple[str, Markup]]:
    """IDs for complaints this phone may take offline, each with the QR code of its slip page
    (CMP-12): the phone takes the next unused one, so the client gets a slip with a QR code at
    once, without a QR encoder on the phone. The number follows when the phone syncs."""
    reserved = []
    for _n in range(RESERVED_SLIPS):
        complaint_id = str(uuid.uuid4())
        link = url_for("complaints.slip", complaint_id=complaint_id, _external=True)
        svg = segno.make(link, error="m").svg_inline(scale=4, border=2, dark="#000", light="#fff")
        reserved.append((complaint_id, Markup(svg)))
    return reserved


@bp.get("/<complaint_id>")
@login_required
def show(complaint_id):
    """One complaint: the case, its countdowns, its timeline and the steps you may take."""
    complaint = _complaint_or_404(complaint_id)
    return _render_show(complaint)


def _render_show(complaint, error: str | None = None, status: int = 200):
    handlers = db.session.scalars(
        db.select(User)
        .where(User.org_id == complaint.org_id, User.active.is_(True))
        .order_by(User.display_name)
    ).all()
    return_visits = db.session.scalars(
        db.select(ReturnVisit)
        .where(ReturnVisit.org_id == complaint.org_id, ReturnVisit.complaint_id == complaint.id)
        .order_by(ReturnVisit.created_at)
    ).all()
    parent = complaint.parent
    visit = db.session.get(Visit, complaint.visit_id) if complaint.visit_id else None
    return render_template(
        "complaints/show.html",
        complaint=complaint,
        parent=parent if parent is not None and service.may_read(current_user, parent) else None,
        visit=visit,
        visit_link=visit is not None and visits.visible(current_user, visit.id) is not None,
        children=[
            c
            for c in db.session.scalars(
                db.select(Complaint)
                .where(Complaint.org_id == complaint.org_id, Complaint.parent_id == complaint.id)
                .order_by(Complaint.received_at)
            )
            if service.may_read(current_user, c)
        ],
        follow_ups=db.session.scalars(
            db.select(FollowUpTask)
            .where(
                FollowUpTask.org_id == complaint.org_id,
                FollowUpTask.complaint_id == complaint.id,
            )
            .order_by(FollowUpTask.created_at)
        ).all(),
        countdowns=service.countdowns(complaint),
        timeline=service.timeline(complaint),
        steps=service.next_steps(current_user, complaint),
        step_labels=service.STEP_LABELS,
        handlers=handlers,
        categories=CATEGORY_LABELS,
        causes=CAUSE_CLASS_LABELS,
        return_visits=return_visits,
        error=error,
        form=request.form if error else {},
    ), status


@bp.post("/<complaint_id>/<step>")
@login_required
def step(complaint_id, step):
    """Take one step of the workflow (triage, route, plan, approve, answer, call back, close)."""
    complaint = _complaint_or_404(complaint_id)
    if step not in (*service.STEPS, "next_reply"):
        abort(404)
    try:
        service.advance(complaint, current_user, step, request.form.to_dict())
    except RuleViolation as violation:
        db.session.rollback()
        complaint = _complaint_or_404(complaint_id)
        return _render_show(complaint, rule_message(violation.code, violation.message), 422)
    db.session.commit()
    flash(str(service.STEP_LABELS.get(step, step)))
    return redirect(url_for("complaints.show", complaint_id=complaint.id))


@bp.get("/<complaint_id>/slip")
@login_required
def slip(complaint_id):
    """The acceptance slip (承办单) the client keeps: number, promise, owner, and a QR."""
    complaint = _complaint_or_404(complaint_id)
    link = url_for("complaints.slip", complaint_id=complaint.id, _external=True)
    qr = segno.make(f"{complaint.slip_number} {link}", error="m")
    svg = qr.svg_inline(scale=4, border=2, dark="#000", light="#fff")
    return render_template(
        "complaints/slip.html",
        complaint=complaint,
        qr=Markup(svg),
        org=db.session.get(Organisation, complaint.org_id),
    )


@bp.route("/calendar", methods=["GET", "POST"])
@roles_required(*MANAGERS)
def calendar():
    """The working calendar complaint deadlines run on: holidays, makeup days, the profile."""
    org_id = current_user.org_id
    if request.method == "POST":
        if current_user.role != Role.ADMIN:
            abort(403)
        action = request.form.get("action")
        if action == "profile" and request.form.get("profile") in PROFILES:
            service.settings_of(org_id).profile = request.form["profile"]
        elif action == "add":
            try:
                day = date.fromisoformat(request.form.get("day", ""))
            except ValueError:
                flash(_("Enter a valid date."), "error")
                return redirect(url_for("complaints.calendar"))
            service.set_calendar_day(
                org_id, day, request.form.get("workday") == "1", request.form.get("name", "")
            )
        elif action == "remove":
            service.remove_calendar_day(org_id, request.form.get("day_id", type=int))
        db.session.commit()
        return redirect(url_for("complaints.calendar"))
    return render_template(
        "complaints/calendar.html",
        days=service.calendar_days(org_id),
        profile=service.profile_of(org_id),
        settings=db.session.get(service.ComplaintSettings, org_id),
        profiles=PROFILES,
    )
