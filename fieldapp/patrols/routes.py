"""Guard duty pages: the guard's shift (offline), and the supervisor's set-up and live board."""

import json
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import segno
from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from markupsafe import Markup
from sqlalchemy.exc import IntegrityError

import fieldapp.patrols.records  # noqa: F401  (registers the record types)
from fieldapp import demo, jobs
from fieldapp.access import roles_required
from fieldapp.extensions import db
from fieldapp.models import Role, User, utcnow
from fieldapp.patrols import service
from fieldapp.patrols.demo import seed_patrols
from fieldapp.patrols.forms import (
    CheckpointEditForm,
    CheckpointForm,
    EquipmentCheckForm,
    EquipmentForm,
    LicenceForm,
    PlanForm,
    PostForm,
    ShiftForm,
)
from fieldapp.patrols.models import (
    EQUIPMENT_CHECK_LABELS,
    EQUIPMENT_CONDITION_LABELS,
    Checkpoint,
    GuardProfile,
    Incident,
    Post,
    SpotCheck,
)
from fieldapp.rules.errors import RuleViolation
from fieldapp.sync import changes
from fieldapp.sync.messages import rule_message

bp = Blueprint("patrols", __name__, url_prefix="/patrols")
MANAGERS = (Role.SUPERVISOR, Role.ADMIN)

changes.DAYPACK_DATA["patrol_shifts"] = service.daypack_shifts
if service.daypack_pages not in changes.DAYPACK_PAGES:
    changes.DAYPACK_PAGES.append(service.daypack_pages)
if seed_patrols not in demo.DEMO_SEEDERS:
    demo.DEMO_SEEDERS.append(seed_patrols)
jobs.register("patrol.rounds", service.check_rounds)


def _site_or_404(site_id: int):
    site = service.supervised_site(current_user, site_id)
    if site is None:
        abort(404)
    return site


def _refusal(violation: RuleViolation) -> str:
    return rule_message(violation.code, violation.message)


# ----- the guard ----------------------------------------------------------------------------


def _guard_context():
    shift = service.current_shift(current_user)
    site = shift.site if shift else None
    return {"shift": shift, "site": site, "tz": site.timezone if site else "Asia/Shanghai"}


@bp.get("/duty")
@roles_required(Role.GUARD)
def duty():
    """The guard's shift: sign in, the rounds with what is left, scanning checkpoints."""
    context = _guard_context()
    shift = context["shift"]
    rounds, checkpoints, scans = [], [], []
    if shift is not None:
        now = utcnow()
        rounds = service.round_views(shift, now)
        checkpoints = service.site_checkpoints(shift.site_id)
        scans = db.session.scalars(
            db.select(service.CheckpointScan).where(service.CheckpointScan.shift_id == shift.id)
        ).all()
    names = {c.code: c.name for c in checkpoints}
    data = None
    if shift is not None:
        plan = service.plan_of(shift.site_id)
        data = {
            "shift_id": shift.id,
            "site_id": str(shift.site_id),
            "ends_at": shift.ends_at.isoformat(),
            "codes": list(plan.checkpoint_codes) if plan else [],
            "names": names,
            "rounds": [
                {
                    "n": v.number,
                    "start": v.round.window_start.isoformat(),
                    "end": v.round.window_end.isoformat(),
                    "until": v.round.late_cutoff.isoformat(),
                }
                for v in rounds
            ],
            "scans": [
                {"id": s.id, "code": s.checkpoint.code, "at": s.scanned_at.isoformat()}
                for s in scans
            ],
            "ended_early": sorted({n for _s, n in service.rounds_ended_early([shift.id])}),
        }
    return render_template(
        "patrols/duty.html",
        **context,
        rounds=rounds,
        names=names,
        sign_ins=service.sign_ins(shift.id) if shift else [],
        data=json.dumps(data, ensure_ascii=False),
        upcoming=service.upcoming_shifts(current_user, shift, utcnow()),
        now=utcnow(),
    )


@bp.get("/incident")
@roles_required(Role.GUARD)
def incident_form():
    """Report an incident, walking the five emergency steps (PAT-12)."""
    return render_template(
        "patrols/incident_form.html",
        **_guard_context(),
        types=service.INCIDENT_TYPES,
        steps=service.EMERGENCY_STEPS,
    )


@bp.get("/gate")
@roles_required(Role.GUARD)
def gate():
    """The gate register: visitors and vehicles in and out, and who is still inside."""
    context = _guard_context()
    site = context["site"]
    since = utcnow() - timedelta(hours=24)
    return render_template(
        "patrols/gate.html",
        **context,
        inside=service.visitors_inside(site.id) if site else [],
        register=service.gate_register(site.id, since) if site else [],
        id_types=service.ID_TYPES,
    )


@bp.get("/handover")
@roles_required(Role.GUARD)
def handover_form():
    """Hand the post over: equipment, open incidents, visitors inside, both signatures."""
    context = _guard_context()
    site = context["site"]
    guards = [g for g in service.site_guards(site) if g.id != current_user.id] if site else []
    inside = service.visitors_inside(site.id) if site else []
    incidents = service.open_incidents([site.id]) if site else []
    shift = context["shift"]
    return render_template(
        "patrols/handover_form.html",
        **context,
        equipment=service.post_equipment(shift.post_id) if shift else [],
        conditions=EQUIPMENT_CONDITION_LABELS,
        guards=guards,
        inside=inside,
        incidents=incidents,
        types=service.INCIDENT_TYPES,
    )


# ----- the supervisor -----------------------------------------------------------------------


@bp.get("/sites")
@roles_required(*MANAGERS)
def sites():
    """The guarded sites the supervisor looks after."""
    return render_template("patrols/sites.html", sites=service.supervised_sites(current_user))


def _site_page(site, post_form=None, checkpoint_form=None, plan_form=None, status=200):
    checkpoints = service.site_checkpoints(site.id)
    plan = service.plan_of(site.id)
    if plan_form is None:
        plan_form = PlanForm(
            data={
                "checkpoints": plan.checkpoint_codes if plan else [c.code for c in checkpoints],
                "ordered": plan.ordered if plan else False,
                "every_minutes": plan.every_minutes if plan else None,
                "rounds_per_shift": plan.rounds_per_shift if plan else None,
                "window_minutes": plan.window_minutes if plan else 60,
            }
        )
    plan_form.checkpoints.choices = [(c.code, f"{c.code} · {c.name}") for c in checkpoints]
    posts = db.session.scalars(db.select(Post).where(Post.site_id == site.id)).all()
    spot_checks = db.session.scalars(
        db.select(SpotCheck)
        .where(SpotCheck.site_id == site.id)
        .order_by(SpotCheck.at.desc())
        .limit(20)
    ).all()
    return render_template(
        "patrols/site.html",
        site=site,
        posts=posts,
        checkpoints=checkpoints,
        plan=plan,
        post_form=post_form or PostForm(),
        checkpoint_form=checkpoint_form or CheckpointForm(),
        plan_form=plan_form,
        spot_checks=spot_checks,
        prohibitions=dict(service.PROHIBITIONS),
    ), status


@bp.get("/sites/<int:site_id>")
@roles_required(*MANAGERS)
def site(site_id: int):
    """One guarded site: its posts, checkpoints, patrol plan and recent spot checks."""
    return _site_page(_site_or_404(site_id))


@bp.post("/sites/<int:site_id>/posts")
@roles_required(*MANAGERS)
def add_post(site_id: int):
    """Add a post (gate, patrol, guarding, escort) to the site."""
    site = _site_or_404(site_id)
    form = PostForm()
    if not form.validate_on_submit():
        return _site_page(site, post_form=form, status=400)
    db.session.add(
        Post(org_id=site.org_id, site_id=site.id, name=form.name.data, kind=form.kind.data)
    )
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        form.name.errors.append(_("This site already has a post of that name."))
        return _site_page(site, post_form=form, status=400)
    return redirect(url_for("patrols.site", site_id=site.id))


@bp.post("/sites/<int:site_id>/checkpoints")
@roles_required(*MANAGERS)
def add_checkpoint(site_id: int):
    """Add a checkpoint; its signed QR code is on the printable sheet."""
    site = _site_or_404(site_id)
    form = CheckpointForm()
    if not form.validate_on_submit():
        return _site_page(site, checkpoint_form=form, status=400)
    db.session.add(
        Checkpoint(
            org_id=site.org_id,
            site_id=site.id,
            code=form.code.data,
            name=form.name.data,
            position=form.position.data or 0,
        )
    )
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        form.code.errors.append(_("This site already has a checkpoint with that code."))
        return _site_page(site, checkpoint_form=form, status=400)
    return redirect(url_for("patrols.site", site_id=site.id))


@bp.post("/sites/<int:site_id>/plan")
@roles_required(*MANAGERS)
def save_plan(site_id: int):
    """Set the patrol plan: which checkpoints, in order or not, how often, how long."""
    site = _site_or_404(site_id)
    form = PlanForm()
    form.checkpoints.choices = [(c.code, c.name) for c in service.site_checkpoints(site.id)]
    if form.validate_on_submit():
        try:
            service.save_plan(
                site,
                form.checkpoints.data,
                form.ordered.data,
                form.every_minutes.data,
                form.rounds_per_shift.data,
                form.window_minutes.data,
            )
        except RuleViolation as violation:
            form.window_minutes.errors.append(_refusal(violation))
        else:
            db.session.commit()
            flash(_("Patrol plan saved."), "ok")
            return redirect(url_for("patrols.site", site_id=site.id))
    return _site_page(site, plan_form=form, status=400)


@bp.get("/sites/<int:site_id>/qr")
@roles_required(*MANAGERS)
def qr_sheet(site_id: int):
    """A printable sheet: one signed, labelled QR code per checkpoint."""
    site = _site_or_404(site_id)
    codes = []
    for checkpoint in service.site_checkpoints(site.id):
        payload = service.checkpoint_payload(checkpoint)
        svg = segno.make(payload, error="m").svg_inline(scale=5, border=2)
        codes.append((checkpoint, payload, Markup(svg)))
    return render_template("patrols/qr_sheet.html", site=site, codes=codes)


def _local_day(site) -> date:
    text = request.args.get("day") or request.form.get("day")
    try:
        return date.fromisoformat(text) if text else datetime.now(ZoneInfo(site.timezone)).date()
    except ValueError:
        abort(400)


@bp.route("/sites/<int:site_id>/roster", methods=["GET", "POST"])
@roles_required(*MANAGERS)
def roster(site_id: int):
    """The day's roster of the site with the hours nobody covers (PAT-02); add a shift."""
    site = _site_or_404(site_id)
    day = _local_day(site)
    form = ShiftForm(data={"day": day} if request.method == "GET" else None)
    guards = service.site_guards(site)
    posts = db.session.scalars(db.select(Post).where(Post.site_id == site.id)).all()
    form.guard_id.choices = [(g.id, g.display_name) for g in guards]
    form.post_id.choices = [(p.id, f"{p.name} · {p.kind_label}") for p in posts]
    status = 200
    if form.validate_on_submit():
        guard = next(g for g in guards if g.id == form.guard_id.data)
        post = next(p for p in posts if p.id == form.post_id.data)
        start, end = service.shift_from_local(site, form.day.data, form.start.data, form.end.data)
        try:
            service.roster_shift(current_user, site, post, guard, start, end)
        except RuleViolation as violation:
            form.guard_id.errors.append(_refusal(violation))
            db.session.rollback()
            status = 400
        else:
            db.session.commit()
            return redirect(url_for("patrols.roster", site_id=site.id, day=form.day.data))
    elif request.method == "POST":
        status = 400
    shifts, gaps = service.roster(site, day)
    return render_template(
        "patrols/roster.html",
        site=site,
        day=day,
        form=form,
        shifts=shifts,
        gaps=gaps,
        tz=ZoneInfo(site.timezone),
        previous=day - timedelta(days=1),
        following=day + timedelta(days=1),
    ), status


# ----- editing the set-up -------------------------------------------------------------------


def _edit_page(form, title: str, back: str, status: int = 200, **extra):
    return render_template("patrols/edit.html", form=form, title=title, back=back, **extra), status


@bp.route("/posts/<int:post_id>/edit", methods=["GET", "POST"])
@roles_required(*MANAGERS)
def edit_post(post_id: int):
    """Rename a post or change its kind (PAT-01)."""
    post = service.supervised_post(current_user, post_id) or abort(404)
    site_id = post.site_id
    form = PostForm(obj=post) if request.method == "GET" else PostForm()
    back = url_for("patrols.site", site_id=site_id)
    if form.validate_on_submit():
        service.update_post(post, form.name.data, form.kind.data)
        try:
            db.session.commit()
        except IntegrityError:
            db.session.rollback()
            form.name.errors.append(_("This site already has a post of that name."))
        else:
            flash(_("Post saved."), "ok")
            return redirect(back)
    status = 400 if request.method == "POST" else 200
    return _edit_page(form, _("Edit the post"), back, status)


@bp.route("/checkpoints/<int:checkpoint_id>/edit", methods=["GET", "POST"])
@roles_required(*MANAGERS)
def edit_checkpoint(checkpoint_id: int):
    """Rename, reorder or retire a checkpoint (its printed code stays the same)."""
    checkpoint = service.supervised_checkpoint(current_user, checkpoint_id) or abort(404)
    form = CheckpointEditForm(obj=checkpoint) if request.method == "GET" else CheckpointEditForm()
    back = url_for("patrols.site", site_id=checkpoint.site_id)
    if form.validate_on_submit():
        service.update_checkpoint(
            checkpoint, form.name.data, form.position.data or 0, form.active.data
        )
        db.session.commit()
        flash(_("Checkpoint saved."), "ok")
        return redirect(back)
    status = 400 if request.method == "POST" else 200
    return _edit_page(form, _("Edit checkpoint %(code)s", code=checkpoint.code), back, status)


SHIFT_ERROR_FIELDS = {"patrol.shift_times": "end"}


@bp.route("/shifts/<int:shift_id>/edit", methods=["GET", "POST"])
@roles_required(*MANAGERS)
def edit_shift(shift_id: int):
    """Move a shift not yet started to another guard, post or time, or remove it."""
    shift = service.supervised_shift(current_user, shift_id) or abort(404)
    site = shift.site
    tz = ZoneInfo(site.timezone)
    if request.method == "GET":
        start, end = shift.starts_at.astimezone(tz), shift.ends_at.astimezone(tz)
        form = ShiftForm(
            data={
                "guard_id": shift.guard_id,
                "post_id": shift.post_id,
                "day": start.date(),
                "start": start.time(),
                "end": end.time(),
            }
        )
    else:
        form = ShiftForm()
    guards = service.site_guards(site)
    if shift.guard not in guards:
        guards.append(shift.guard)
    posts = db.session.scalars(db.select(Post).where(Post.site_id == site.id)).all()
    form.guard_id.choices = [(g.id, g.display_name) for g in guards]
    form.post_id.choices = [(p.id, f"{p.name} · {p.kind_label}") for p in posts]
    back = url_for("patrols.roster", site_id=site.id, day=shift.starts_at.astimezone(tz).date())
    status, form_error = 200, None
    if form.validate_on_submit():
        guard = next(g for g in guards if g.id == form.guard_id.data)
        post = next(p for p in posts if p.id == form.post_id.data)
        start, end = service.shift_from_local(site, form.day.data, form.start.data, form.end.data)
        try:
            service.change_shift(shift, post, guard, start, end)
        except RuleViolation as violation:
            db.session.rollback()
            status = 400
            if violation.code in ("patrol.shift_started", "patrol.shift_has_records"):
                form_error = _refusal(violation)
            else:
                getattr(form, SHIFT_ERROR_FIELDS.get(violation.code, "guard_id")).errors.append(
                    _refusal(violation)
                )
        else:
            db.session.commit()
            flash(_("Shift saved."), "ok")
            return redirect(url_for("patrols.roster", site_id=site.id, day=form.day.data))
    elif request.method == "POST":
        status = 400
    return _edit_page(
        form,
        _("Edit the shift"),
        back,
        status,
        form_error=form_error,
        remove_url=url_for("patrols.remove_shift", shift_id=shift.id),
    )


@bp.post("/shifts/<int:shift_id>/remove")
@roles_required(*MANAGERS)
def remove_shift(shift_id: int):
    """Take a shift not yet started off the roster."""
    shift = service.supervised_shift(current_user, shift_id) or abort(404)
    site_id, day = shift.site_id, shift.starts_at.astimezone(ZoneInfo(shift.site.timezone)).date()
    try:
        service.remove_shift(shift)
    except RuleViolation as violation:
        db.session.rollback()
        flash(_refusal(violation), "error")
        return redirect(url_for("patrols.edit_shift", shift_id=shift_id))
    db.session.commit()
    flash(_("Shift removed."), "ok")
    return redirect(url_for("patrols.roster", site_id=site_id, day=day))


# ----- the equipment register (PAT-23) -------------------------------------------------------


def _equipment_form(site, form=None):
    form = form or EquipmentForm()
    posts = db.session.scalars(db.select(Post).where(Post.site_id == site.id)).all()
    form.post_id.choices = [(p.id, f"{p.name} · {p.kind_label}") for p in posts]
    form.guard_id.choices = [(0, _("Nobody: kit of the post"))] + [
        (g.id, g.display_name) for g in service.site_guards(site)
    ]
    return form, posts


@bp.route("/sites/<int:site_id>/equipment", methods=["GET", "POST"])
@roles_required(*MANAGERS)
def equipment(site_id: int):
    """The site's equipment register: what is issued per post and guard, its condition."""
    site = _site_or_404(site_id)
    form, posts = _equipment_form(site)
    status = 200
    if form.validate_on_submit():
        post = next(p for p in posts if p.id == form.post_id.data)
        guard = db.session.get(User, form.guard_id.data) if form.guard_id.data else None
        value = form.value_yuan.data
        service.issue_equipment(
            current_user,
            site,
            post,
            guard,
            form.kind.data,
            form.label.data or "",
            int(round(value * 100)) if value is not None else None,
        )
        db.session.commit()
        flash(_("Equipment issued."), "ok")
        return redirect(url_for("patrols.equipment", site_id=site.id))
    if request.method == "POST":
        status = 400
    items = service.site_equipment(site.id)
    latest = service.latest_checks([i.id for i in items])
    return render_template(
        "patrols/equipment.html",
        site=site,
        form=form,
        items=items,
        latest=latest,
        charge=service.equipment_charge_fen,
        conditions=EQUIPMENT_CONDITION_LABELS,
        check_kinds=EQUIPMENT_CHECK_LABELS,
    ), status


@bp.get("/sites/<int:site_id>/equipment.csv")
@roles_required(*MANAGERS)
def equipment_csv(site_id: int):
    """The equipment register as a spreadsheet (PAT-23, REC-24)."""
    site = _site_or_404(site_id)
    body = service.to_csv(service.EQUIPMENT_CSV_HEADER, service.equipment_rows(site))
    return Response(
        body,
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="equipment-{site.id}.csv"'},
    )


@bp.route("/equipment/<int:item_id>", methods=["GET", "POST"])
@roles_required(*MANAGERS)
def equipment_item(item_id: int):
    """One item's history; record an inspection, maintenance or its return."""
    item = service.supervised_equipment(current_user, item_id) or abort(404)
    form = EquipmentCheckForm()
    status = 200
    if form.validate_on_submit():
        try:
            service.record_equipment_check(
                current_user, item, form.check_kind.data, form.condition.data, form.notes.data
            )
        except RuleViolation as violation:
            db.session.rollback()
            form.check_kind.errors.append(_refusal(violation))
            status = 400
        else:
            db.session.commit()
            flash(_("Saved."), "ok")
            return redirect(url_for("patrols.equipment_item", item_id=item.id))
    elif request.method == "POST":
        status = 400
    return render_template(
        "patrols/equipment_item.html",
        item=item,
        site=item.post.site,
        form=form,
        history=service.equipment_history(item.id),
        conditions=EQUIPMENT_CONDITION_LABELS,
        check_kinds=EQUIPMENT_CHECK_LABELS,
    ), status


@bp.route("/guards", methods=["GET", "POST"])
@roles_required(*MANAGERS)
def guards():
    """Guards' security licences (PAT-24): without a valid one a guard cannot be rostered."""
    sites = service.supervised_sites(current_user)
    people = {g.id: g for site in sites for g in service.site_guards(site)}
    status = 200
    if request.method == "POST":
        guard = people.get(request.form.get("guard_id", type=int))
        form = LicenceForm()
        if guard is None:
            abort(404)
        if form.validate_on_submit():
            service.save_licence(
                guard,
                form.licence_number.data or "",
                form.licence_expires.data,
                form.rapid_response.data,
            )
            db.session.commit()
            flash(_("Licence saved."), "ok")
            return redirect(url_for("patrols.guards"))
        status = 400
    profiles = {
        p.user_id: p
        for p in db.session.scalars(
            db.select(GuardProfile).where(GuardProfile.user_id.in_(list(people) or [-1]))
        )
    }
    today = utcnow().date()
    rows = [
        (g, profiles.get(g.id), service.licence_valid(g, today))
        for g in sorted(people.values(), key=lambda u: u.display_name)
    ]
    return render_template("patrols/guards.html", rows=rows), status


@bp.get("/call-outs")
@roles_required(Role.GUARD)
def call_outs():
    """PAT-13: open major incidents the rapid-response team is called to."""
    if not service.is_rapid_responder(current_user):
        abort(404)
    incidents = service.open_major_incidents(current_user.org_id)
    mine = {
        incident_id: [r for r in responses if r.user_id == current_user.id]
        for incident_id, responses in service.incident_responses([i.id for i in incidents]).items()
    }
    return render_template("patrols/call_outs.html", incidents=incidents, mine=mine)


@bp.app_template_global("patrol_rapid_responder")
def patrol_rapid_responder(user) -> bool:
    return user.is_authenticated and user.role == Role.GUARD and service.is_rapid_responder(user)


@bp.get("/board")
@roles_required(*MANAGERS)
def board():
    """Live board: who is on duty where, rounds done/late/missed, incidents, visitors inside."""
    return render_template("patrols/board.html", sites=service.board(current_user))


@bp.get("/spot-check")
@roles_required(*MANAGERS)
def spot_check_form():
    """An unannounced post inspection with the duty checklist (PAT-07/08), offline too."""
    sites = service.supervised_sites(current_user)
    guards = {s.id: service.site_guards(s) for s in sites}
    today = datetime.now(ZoneInfo(current_user.organisation.timezone)).date()
    return render_template(
        "patrols/spot_check_form.html",
        sites=sites,
        guards=guards,
        prohibitions=service.PROHIBITIONS,
        hours=service.onsite_hours(current_user, today, current_user.organisation.timezone),
    )


def _incident_or_404(incident_id: str) -> Incident:
    incident = db.session.get(Incident, incident_id)
    if incident is None or incident.org_id != current_user.org_id:
        abort(404)
    if current_user.role == Role.GUARD:
        called_out = incident.severity == "major" and service.is_rapid_responder(current_user)
        if incident.reported_by_id != current_user.id and not called_out:
            abort(404)
    elif service.supervised_site(current_user, incident.site_id) is None:
        abort(404)
    return incident


@bp.get("/incidents/<incident_id>")
@roles_required(Role.GUARD, *MANAGERS)
def incident(incident_id: str):
    """One incident: what happened, the emergency steps as timed, photos, who answered."""
    found = _incident_or_404(incident_id)
    responses = service.incident_responses([found.id]).get(found.id, [])
    mine = next((r for r in responses if r.user_id == current_user.id), None)
    return render_template(
        "patrols/incident.html",
        incident=found,
        types=service.INCIDENT_TYPES,
        steps=service.EMERGENCY_STEPS,
        severities=service.SEVERITY_LABELS,
        responses=responses,
        mine=mine,
        can_respond=_can_respond(found),
        response_minutes=service.response_minutes,
    )


def _can_respond(incident: Incident) -> bool:
    """PAT-13: the site's supervisors and the rapid-response team answer a major incident."""
    if incident.severity != "major" or incident.closed_at is not None:
        return False
    return current_user.role in MANAGERS or service.is_rapid_responder(current_user)


def _respond(incident_id: str, arrived: bool):
    incident = _incident_or_404(incident_id)
    if current_user.role == Role.GUARD and not service.is_rapid_responder(current_user):
        abort(403)
    try:
        service.respond_to_incident(current_user, incident, arrived)
    except RuleViolation as violation:
        db.session.rollback()
        flash(_refusal(violation), "error")
    else:
        try:
            db.session.commit()
        except IntegrityError:  # the same person pressed twice at once: the first press counts
            db.session.rollback()
        flash(_("Arrival recorded.") if arrived else _("Acknowledged."), "ok")
    return redirect(url_for("patrols.incident", incident_id=incident.id))


@bp.post("/incidents/<incident_id>/acknowledge")
@roles_required(Role.GUARD, *MANAGERS)
def acknowledge_incident(incident_id: str):
    """PAT-13: an alarm recipient acknowledges a major incident (time recorded)."""
    return _respond(incident_id, arrived=False)


@bp.post("/incidents/<incident_id>/arrived")
@roles_required(Role.GUARD, *MANAGERS)
def incident_arrival(incident_id: str):
    """PAT-13: an alarm recipient records arriving at the scene (time recorded)."""
    return _respond(incident_id, arrived=True)


@bp.post("/incidents/<incident_id>/close")
@roles_required(*MANAGERS)
def close_incident(incident_id: str):
    """The supervisor closes an incident once it is dealt with."""
    incident = _incident_or_404(incident_id)
    if incident.closed_at is None:
        incident.closed_at = utcnow()
        incident.closed_by_id = current_user.id
        db.session.commit()
    return redirect(url_for("patrols.board"))


@bp.app_template_filter("patrol_time")
def patrol_time(value: datetime | None, tz_name: str = "Asia/Shanghai", fmt: str = "%H:%M") -> str:
    """A UTC instant shown in the site's time zone."""
    if value is None:
        return ""
    return value.astimezone(ZoneInfo(tz_name)).strftime(fmt)


def user_name(user_id: int | None) -> str:
    user = db.session.get(User, user_id) if user_id else None
    return user.display_name if user else ""


bp.add_app_template_global(user_name, "patrol_user_name")

ROUND_STATE_LABELS = {
    "pending": _l("not due yet"),
    "in_progress": _l("in progress"),
    "done": _l("done"),
    "late": _l("late"),
    "missed": _l("missed"),
}


@bp.app_template_global("patrol_round_state")
def patrol_round_state(state) -> str:
    return str(ROUND_STATE_LABELS.get(str(state), state))


@bp.app_template_global("patrol_incident_type")
def patrol_incident_type(value: str) -> str:
    return str(service.INCIDENT_TYPES.get(value, value))


from fieldapp.patrols import presence_views  # noqa: E402, F401  (PAT-09 page + patrol.presence)
