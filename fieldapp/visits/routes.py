"""The rep's visits (today's list, the visit page with check-in, report and check-out), the
supervisor's planning, and return visits with the monthly sample."""

from datetime import date, timedelta

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from fieldapp.access import (
    can_manage_user,
    get_in_org_or_404,
    roles_required,
    supervised_team_ids,
)
from fieldapp.complaints import service as complaints
from fieldapp.demo import DEMO_SEEDERS
from fieldapp.extensions import db
from fieldapp.models import Role, Site, SiteKind, User
from fieldapp.rules.errors import RuleViolation
from fieldapp.sync.changes import DAYPACK_DATA, DAYPACK_PAGES
from fieldapp.sync.messages import rule_message
from fieldapp.visits import demo as visits_demo
from fieldapp.visits import (
    records,  # noqa: F401  (registers the record types)
    service,
)
from fieldapp.visits.models import (
    CLIENT_TIER_LABELS,
    FollowUpTask,
    ReturnVisit,
    Visit,
)

bp = Blueprint("visits", __name__, url_prefix="/visits")
MANAGERS = (Role.SUPERVISOR, Role.ADMIN)


def _visit_or_404(visit_id: str) -> Visit:
    """The one lookup every visit view uses: the user's own (or supervised) visit, or 404."""
    visit = service.visible(current_user, visit_id)
    if visit is None:
        abort(404)
    return visit


@bp.get("/")
@login_required
def today():
    """Today's visits, with what is open for each client, and my follow-ups."""
    day = service.local_today(current_user)
    visits = service.visits_on(current_user, day)
    files = {v.site_id: service.client_file(v.site) for v in visits}
    open_now = complaints.queue(current_user)
    open_complaints = {v.site_id: [c for c in open_now if c.site_id == v.site_id] for v in visits}
    return render_template(
        "visits/today.html",
        day=day,
        visits=visits,
        files=files,
        open_complaints=open_complaints,
        follow_ups=service.my_follow_ups(current_user),
        return_visits=service.return_visits(current_user),
    )


@bp.get("/<visit_id>")
@login_required
def visit(visit_id):
    """One visit: the client file, check in, the report form, check out."""
    visit = _visit_or_404(visit_id)
    site = visit.site
    return render_template(
        "visits/visit.html",
        visit=visit,
        site=site,
        file=service.client_file(site),
        history=[v for v in service.history(site) if v.id != visit.id],
        follow_ups=service.open_follow_ups(site),
        complaints=[c for c in complaints.queue(current_user) if c.site_id == site.id],
        cases=db.session.scalars(
            complaints.visible_query(current_user)
            .where(complaints.Complaint.visit_id == visit.id)
            .order_by(complaints.Complaint.received_at)
        ).all(),
        check_ins=service.check_ins_of(visit),
        check_outs=service.check_outs_of(visit),
        reports=service.reports_of(visit),
        colleagues=service.rep_colleagues(current_user),
        tier_labels=CLIENT_TIER_LABELS,
    )


@bp.route("/plan", methods=["GET", "POST"])
@roles_required(*MANAGERS)
def plan():
    """A supervisor plans a visit of one of their reps to a client."""
    teams = supervised_team_ids(current_user)
    query = db.select(User).where(
        User.org_id == current_user.org_id, User.role == Role.REP, User.active.is_(True)
    )
    if current_user.role != Role.ADMIN:
        query = query.where(User.team_id.in_(teams))
    reps = db.session.scalars(query.order_by(User.display_name)).all()
    sites = db.session.scalars(
        db.select(Site)
        .where(Site.org_id == current_user.org_id, Site.kind == SiteKind.CLIENT_OFFICE)
        .order_by(Site.name)
    ).all()
    error = None
    if request.method == "POST":
        try:
            rep = get_in_org_or_404(User, request.form.get("rep_id", type=int))
            site = get_in_org_or_404(Site, request.form.get("site_id", type=int))
            day = date.fromisoformat(request.form.get("planned_date", ""))
            service.plan_visit(current_user, rep, site, day, request.form.get("purpose", ""))
        except RuleViolation as violation:
            error = rule_message(violation.code, violation.message)
        except ValueError:
            error = _("Enter a valid date.")
        else:
            db.session.commit()
            flash(_("Visit planned."))
            return redirect(url_for("visits.plan"))
    return render_template(
        "visits/plan.html",
        reps=reps,
        sites=sites,
        error=error,
        agreements=service.agreements(current_user),
        today=service.local_today(current_user),
        upcoming=db.session.scalars(
            service.visible_query(current_user)
            .where(Visit.planned_date >= service.local_today(current_user))
            .order_by(Visit.planned_date)
            .limit(50)
        ).all(),
    ), (400 if error else 200)


@bp.post("/follow-ups/<task_id>/done")
@login_required
def follow_up_done(task_id):
    """Mark a follow-up promised to a client as done."""
    task = get_in_org_or_404(FollowUpTask, task_id)
    if task.owner_id != current_user.id and not can_manage_user(current_user, task.owner):
        abort(403)  # a supervisor closes only the follow-ups of their own teams' people
    service.finish_follow_up(current_user, task)
    db.session.commit()
    return redirect(request.referrer or url_for("visits.today"))


@bp.get("/return-visits")
@login_required
def return_visits():
    """Return visits to make: after closed complaints, call-agains, mandatory on-site visits
    and the monthly sample."""
    return _render_return_visits()


def _render_return_visits(error: str | None = None, failed: str | None = None, status=200):
    today = service.local_today(current_user)
    last_month = (today.replace(day=1) - timedelta(days=1)).replace(day=1)
    return render_template(
        "visits/return_visits.html",
        return_visits=service.return_visits(current_user),
        month=last_month,
        today=today,
        is_manager=current_user.role in MANAGERS,
        colleagues=service.rep_colleagues(current_user),
        error=error,
        failed=failed,
        form=request.form if error else {},
    ), status


@bp.post("/return-visits/sample")
@roles_required(*MANAGERS)
def sample():
    """Draw the month's return-visit sample (VIS-08)."""
    try:
        month = date.fromisoformat(request.form.get("month", "") + "-01")
    except ValueError:
        abort(400)
    created = service.sample_month(current_user, month)
    db.session.commit()
    flash(_("%(n)d return visits drawn for %(month)s.", n=len(created), month=f"{month:%Y-%m}"))
    return redirect(url_for("visits.return_visits"))


@bp.post("/return-visits/<rv_id>/done")
@login_required
def return_visit_done(rv_id):
    """Record the result of a return visit or call; a new need opens a linked case."""
    rv = get_in_org_or_404(ReturnVisit, rv_id)
    if rv.assigned_to_id != current_user.id and current_user.role not in MANAGERS:
        abort(403)  # an unassigned one too: only the office hands it out (the list hides it)
    site = db.session.get(Site, rv.site_id) if rv.site_id else None
    others = site is not None and site.team_id not in supervised_team_ids(current_user)
    if current_user.role == Role.SUPERVISOR and rv.assigned_to_id != current_user.id and others:
        abort(404)  # a supervisor records only return visits to their own teams' clients
    form = request.form
    owner = None
    if form.get("owner_id"):
        owner = db.session.get(User, form.get("owner_id", type=int) or 0)
    try:
        due = date.fromisoformat(form["due"]) if form.get("due") else None
    except ValueError:
        return _render_return_visits(_("Enter a valid date."), rv.id, 422)
    try:
        case = service.record_return_visit(
            current_user,
            rv,
            form.get("result", ""),
            form.get("notes", ""),
            ratings=(form.get("timeliness"), form.get("skill"), form.get("attitude")),
            onsite=form.get("onsite") == "1",
            new_need=form.get("need", ""),
            case_kind=form.get("case_kind", ""),
            owner=owner,
            due=due,
        )
    except RuleViolation as violation:
        db.session.rollback()
        return _render_return_visits(rule_message(violation.code, violation.message), rv.id, 422)
    db.session.commit()
    flash(_("Return visit recorded."))
    if isinstance(case, complaints.Complaint):
        flash(_("New case %(slip)s opened.", slip=case.slip_number))
        return redirect(url_for("complaints.show", complaint_id=case.id))
    return redirect(url_for("visits.return_visits"))


@bp.post("/clients/agreement")
@roles_required(*MANAGERS)
def agreement_form():
    """Record the date a client signed the home-service agreement (居家服务协议书, VIS-09)."""
    site = get_in_org_or_404(Site, request.form.get("site_id", type=int))
    if current_user.role != Role.ADMIN and site.team_id not in supervised_team_ids(current_user):
        abort(404)  # another team's client
    try:
        signed = date.fromisoformat(request.form.get("signed_on", ""))
    except ValueError:
        flash(_("Enter a valid date."), "error")
        return redirect(url_for("visits.plan"))
    service.set_agreement(current_user, site, signed)
    db.session.commit()
    flash(_("Service agreement of %(client)s recorded.", client=site.name))
    return redirect(url_for("visits.plan"))


# ----- offline: today's visits and their pages in the day pack -------------------------------


def _daypack_visits(user) -> list[dict]:
    if user.role != Role.REP:
        return []
    return [service.for_phone(v) for v in service.visits_on(user, service.local_today(user))]


def _daypack_pages(user) -> list[str]:
    pages = ["/complaints/new"]
    if user.role == Role.REP:
        pages.append("/visits/")
        for v in service.visits_on(user, service.local_today(user)):
            pages.append(f"/visits/{v.id}")
            pages.append(f"/complaints/new?site_id={v.site_id}&visit_id={v.id}")
    return pages


DAYPACK_DATA["visits"] = _daypack_visits
if _daypack_pages not in DAYPACK_PAGES:
    DAYPACK_PAGES.append(_daypack_pages)

if visits_demo.seed not in DEMO_SEEDERS:
    DEMO_SEEDERS.append(visits_demo.seed)
