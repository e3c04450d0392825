"""Logging in and out, choosing a language, and managing people, teams, sites and devices."""

from flask import (
    Blueprint,
    abort,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user
from sqlalchemy.exc import IntegrityError

from fieldapp.access import (
    can_manage_user,
    get_in_org_or_404,
    manageable_roles,
    roles_required,
    supervised_team_ids,
)
from fieldapp.accounts import service
from fieldapp.accounts.forms import LoginForm, PasswordForm, SiteForm, TeamForm, UserForm
from fieldapp.errors import error_response, wants_json
from fieldapp.extensions import db, login_manager
from fieldapp.i18n import normalise
from fieldapp.models import Device, Role, Site, Team, User, utcnow
from fieldapp.sync import held

bp = Blueprint("accounts", __name__)
MANAGERS = (Role.SUPERVISOR, Role.ADMIN)

login_manager.login_view = "accounts.login"
login_manager.login_message = None


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    """Accept the cookie only while the user is active and their session token unchanged."""
    pk, _sep, token = user_id.partition(":")
    if not pk.isdigit():
        return None
    device_id = session.get("device_id")
    if device_id:
        # The session's phone, which every request checks next (``refuse_revoked_device``), in
        # the same round trip; kept on ``g`` so the session's identity map still holds it then.
        row = db.session.execute(
            db.select(User, Device)
            .outerjoin(Device, Device.id == device_id)
            .where(User.id == int(pk))
        ).first()
        user, g.session_device = row if row is not None else (None, None)
    else:
        user = db.session.get(User, int(pk))
    if user is None or not user.active or user.session_token != token:
        return None
    return user


@login_manager.unauthorized_handler
def unauthorized():
    """Pages send the user to the login form; the API answers 401 so the phone keeps its data."""
    if request.path.startswith("/api/"):
        return error_response(401, reason="login_required")
    return redirect(url_for("accounts.login"))


@bp.before_app_request
def refuse_revoked_device():
    """A phone logged out of is signed out on its next request; a revoked one is refused.

    A revoked phone keeps its session for one purpose: handing over its unsent records, which
    are held for the office (``_revoked``). Disabling the user or changing their password ends
    that session too.
    """
    if not current_user.is_authenticated:
        return None
    device_id = session.get("device_id")
    device = db.session.get(Device, device_id) if device_id else None
    if device is None or device.session_nonce != session.get("device_nonce"):
        logout_user()
        session.clear()
        return None  # on as a visitor: pages send them to the login form, the API says 401
    if device.is_revoked:
        return _revoked(device)
    return None


# What a revoked phone's session may still do: hand its outbox over (the push is held for the
# office, see fieldapp.sync.held; photos and signatures are inert until a record refers to
# them), load the app's static files, and log out. Nothing it could read.
HANDOVER = frozenset({"sync.push", "sync.begin_upload", "sync.append_upload", "accounts.logout"})
STATIC = frozenset({"static", "shell.versioned_static", "shell.service_worker", "shell.manifest"})


def _revoked(device: Device):
    if request.endpoint in HANDOVER:
        g.revoked_device_id = device.id
        return None
    if request.endpoint in STATIC:
        return None
    if request.endpoint == "accounts.login":
        logout_user()  # the login page ends the hand-over session: a new login, or none
        session.clear()
        return None
    message = _(
        "This phone was revoked by an administrator. Your unsent records stay on the phone."
    )
    if wants_json():
        return error_response(403, message, "device_revoked")
    # The user's pages are gone; this one carries only the phone's ID and the session's CSRF
    # token, so the app's scripts can still hand the outbox over (held for the office).
    return render_template("accounts/revoked.html", message=message, device_id=device.id), 403


def client_address() -> str:
    return request.remote_addr or "unknown"


@bp.route("/login", methods=["GET", "POST"])
def login():
    """The login page: username, password, and whether to keep this phone signed in."""
    if current_user.is_authenticated:
        return redirect(url_for("shell.home"))
    form = LoginForm()
    status = 200
    if form.validate_on_submit():
        try:
            user = service.authenticate(form.username.data, form.password.data, client_address())
            device = service.register_device(
                user, form.device_id.data, request.headers.get("User-Agent", "")
            )
        except service.LoginRefused as refused:
            form.password.errors.append(refused.message)
            status = refused.status
        else:
            session.clear()  # a fresh session on every login: nothing carries over
            login_user(user)
            session.permanent = bool(form.remember.data)
            session["device_id"] = device.id
            session["device_nonce"] = device.session_nonce
            return redirect(url_for("shell.home"))
    elif request.method == "POST":
        status = 400
    return render_template("accounts/login.html", form=form), status


@bp.post("/logout")
@login_required
def logout():
    """Sign out of this phone; records waiting on the phone stay there."""
    service.end_device_session(session.get("device_id"))
    logout_user()
    session.clear()
    return redirect(url_for("accounts.login"))


@bp.post("/language")
def set_language():
    """Switch the interface language, remembered for the user on every phone."""
    lang = normalise(request.form.get("lang"))
    if lang:
        session["lang"] = lang
        if current_user.is_authenticated:
            current_user.locale = lang
            db.session.commit()
    target = request.form.get("next") or ""
    if not target.startswith("/") or target.startswith("//"):
        target = url_for("shell.home")
    return redirect(target)


# ----- people ---------------------------------------------------------------------------


def _teams_for(manager: User) -> list[Team]:
    ids = supervised_team_ids(manager)
    return list(db.session.scalars(db.select(Team).where(Team.id.in_(ids)).order_by(Team.name)))


def _own_team_ids() -> list[int]:
    return supervised_team_ids(current_user)


def _managed_user_or_404(user_id: int) -> User:
    user = get_in_org_or_404(User, user_id)
    if not can_manage_user(current_user, user):
        abort(404)
    return user


@bp.get("/people")
@roles_required(*MANAGERS)
def people():
    """Everyone the manager is responsible for, with their state."""
    query = db.select(User).where(User.org_id == current_user.org_id)
    if current_user.role != Role.ADMIN:
        query = query.where(User.team_id.in_(supervised_team_ids(current_user)))
    users = db.session.scalars(query.order_by(User.role, User.display_name)).all()
    return render_template("admin/people.html", users=users, now=utcnow())


@bp.route("/people/new", methods=["GET", "POST"])
@roles_required(*MANAGERS)
def new_person():
    """Add a courier, guard, rep (or, for an admin, a supervisor or admin)."""
    form = UserForm()
    form.set_choices(manageable_roles(current_user), _teams_for(current_user))
    form.password.flags.required = True
    if form.validate_on_submit():
        if not form.password.data:
            form.password.errors.append(_("Set a first password."))
        else:
            user = User(org_id=current_user.org_id)
            _fill_user(user, form)
            user.set_password(form.password.data)
            if _save(user, form.username):
                flash(_("%(name)s can now log in.", name=user.display_name), "success")
                return redirect(url_for("accounts.people"))
    return render_template("admin/form.html", form=form, title=_("Add a person"))


@bp.route("/people/<int:user_id>", methods=["GET", "POST"])
@roles_required(*MANAGERS)
def edit_person(user_id: int):
    """Change a person's name, role, team or phone."""
    user = _managed_user_or_404(user_id)
    form = UserForm(obj=user)
    form.set_choices(manageable_roles(current_user), _teams_for(current_user))
    del form.password
    if form.validate_on_submit():
        _fill_user(user, form)
        if _save(user, form.username):
            flash(_("Saved."), "success")
            return redirect(url_for("accounts.people"))
    if request.method == "GET":
        form.team_id.data = user.team_id or 0
    return render_template("admin/person.html", form=form, user=user, password_form=PasswordForm())


def _fill_user(user: User, form: UserForm) -> None:
    user.username = form.username.data.strip().lower()
    user.display_name = form.display_name.data.strip()
    user.role = form.role.data
    user.team_id = form.team_id.data or None
    user.phone = (form.phone.data or "").strip()


def _save(record, unique_field) -> bool:
    """Commit, turning a duplicate name into an error shown next to the field."""
    db.session.add(record)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        unique_field.errors.append(_("This name is already taken."))
        return False
    return True


@bp.post("/people/<int:user_id>/active")
@roles_required(*MANAGERS)
def set_person_active(user_id: int):
    """Disable (signing the person out everywhere at once) or re-enable an account."""
    user = _managed_user_or_404(user_id)
    if user.id == current_user.id:
        abort(403)
    active = request.form.get("active") == "1"
    service.set_active(user, active)
    flash(_("Account enabled.") if active else _("Account disabled and signed out."), "success")
    return redirect(url_for("accounts.people"))


@bp.post("/people/<int:user_id>/password")
@roles_required(*MANAGERS)
def reset_person_password(user_id: int):
    """Set a new password; the person is signed out on every phone."""
    user = _managed_user_or_404(user_id)
    form = PasswordForm()
    if form.validate_on_submit():
        service.reset_password(user, form.password.data)
        flash(_("Password changed. %(name)s must log in again.", name=user.display_name), "success")
        return redirect(url_for("accounts.people"))
    edit_form = UserForm(obj=user)
    edit_form.set_choices(manageable_roles(current_user), _teams_for(current_user))
    del edit_form.password
    return render_template("admin/person.html", form=edit_form, user=user, password_form=form), 400


@bp.post("/people/<int:user_id>/unlock")
@roles_required(*MANAGERS)
def unlock_person(user_id: int):
    """Lift a lock-out after too many failed logins."""
    service.unlock(_managed_user_or_404(user_id))
    flash(_("Account unlocked."), "success")
    return redirect(url_for("accounts.people"))


# ----- teams ----------------------------------------------------------------------------


@bp.get("/teams")
@roles_required(*MANAGERS)
def teams():
    """The teams of the organisation with their supervisor and size."""
    rows = db.session.scalars(
        db.select(Team).where(Team.org_id == current_user.org_id).order_by(Team.name)
    ).all()
    return render_template("admin/teams.html", teams=rows)


def _supervisor_choices():
    supervisors = db.session.scalars(
        db.select(User).where(
            User.org_id == current_user.org_id, User.role.in_([Role.SUPERVISOR, Role.ADMIN])
        )
    )
    return [(0, _("None"))] + [(u.id, u.display_name) for u in supervisors]


@bp.route("/teams/new", methods=["GET", "POST"], defaults={"team_id": None})
@bp.route("/teams/<int:team_id>", methods=["GET", "POST"])
@roles_required(Role.ADMIN)
def edit_team(team_id: int | None):
    """Create or change a team and who supervises it."""
    team = get_in_org_or_404(Team, team_id) if team_id else Team(org_id=current_user.org_id)
    form = TeamForm(obj=team)
    form.supervisor_id.choices = _supervisor_choices()
    if form.validate_on_submit():
        team.name = form.name.data.strip()
        team.kind = form.kind.data
        team.supervisor_id = form.supervisor_id.data or None
        if _save(team, form.name):
            flash(_("Saved."), "success")
            return redirect(url_for("accounts.teams"))
    return render_template(
        "admin/form.html", form=form, title=_("Team") if team_id else _("Add a team")
    )


# ----- sites ----------------------------------------------------------------------------


@bp.get("/sites")
@roles_required(*MANAGERS)
def sites():
    """Shops, guarded posts and client offices, with their geofence."""
    rows = db.session.scalars(
        db.select(Site).where(Site.org_id == current_user.org_id).order_by(Site.kind, Site.name)
    ).all()
    return render_template("admin/sites.html", sites=rows)


@bp.route("/sites/new", methods=["GET", "POST"], defaults={"site_id": None})
@bp.route("/sites/<int:site_id>", methods=["GET", "POST"])
@roles_required(*MANAGERS)
def edit_site(site_id: int | None):
    """Create or change a site: where it is, how big its geofence is, its time zone."""
    site = get_in_org_or_404(Site, site_id) if site_id else Site(org_id=current_user.org_id)
    if site_id and current_user.role != Role.ADMIN and site.team_id not in _own_team_ids():
        abort(404)  # a supervisor changes only the sites of their own teams
    previous_team_id = site.team_id
    form = SiteForm(obj=site)
    form.set_choices(_teams_for(current_user))
    if form.validate_on_submit():
        form.populate_obj(site)
        site.team_id = form.team_id.data or None
        site.address = site.address or ""
        site.contact_phone = site.contact_phone or ""
        try:
            service.save_site(site, previous_team_id)
        except IntegrityError:
            db.session.rollback()
            form.name.errors.append(_("This name is already taken."))
        else:
            flash(_("Saved."), "success")
            return redirect(url_for("accounts.sites"))
    if request.method == "GET":
        form.team_id.data = site.team_id or 0
    return render_template(
        "admin/form.html", form=form, title=_("Site") if site_id else _("Add a site")
    )


# ----- devices --------------------------------------------------------------------------


@bp.get("/devices")
@roles_required(*MANAGERS)
def devices():
    """The phones people sign in on; a lost phone can be revoked here."""
    query = (
        db.select(Device)
        .join(User, Device.user_id == User.id)
        .where(User.org_id == current_user.org_id)
    )
    if current_user.role != Role.ADMIN:
        query = query.where(User.team_id.in_(supervised_team_ids(current_user)))
    rows = db.session.scalars(query.order_by(Device.last_seen_at.desc())).all()
    return render_template("admin/devices.html", devices=rows, held=held.open_counts(rows))


def _managed_device_or_404(device_id: str) -> Device:
    device = db.session.get(Device, device_id)
    if device is None or not can_manage_user(current_user, device.user):
        abort(404)
    return device


@bp.get("/devices/<device_id>/held")
@roles_required(*MANAGERS)
def held_batches(device_id: str):
    """What a revoked phone handed over: each batch, its records, and the decision on it."""
    device = _managed_device_or_404(device_id)
    batches = [(b, held.describe(b)) for b in held.visible_batches(current_user, device)]
    return render_template("accounts/held.html", device=device, batches=batches)


@bp.post("/devices/<device_id>/held")
@roles_required(*MANAGERS)
def decide_held_batch(device_id: str):
    """Apply a held batch (through the sync engine, once) or discard it with a reason."""
    device = _managed_device_or_404(device_id)
    action = request.form.get("action")
    batch_id = request.form.get("batch_id", type=int)
    if action not in ("apply", "discard") or batch_id is None:
        abort(400)
    try:
        if action == "apply":
            held.apply(current_user, device, batch_id)
            flash(_("The records were sent through the normal checks."), "success")
        else:
            held.discard(current_user, device, batch_id, request.form.get("note", ""))
            flash(_("The records were discarded."), "success")
    except LookupError:
        abort(404)
    except held.Refused as refused:
        batches = [(b, held.describe(b)) for b in held.visible_batches(current_user, device)]
        return render_template(
            "accounts/held.html",
            device=device,
            batches=batches,
            error=refused.message,
            error_batch=batch_id,
        ), 400
    return redirect(url_for("accounts.held_batches", device_id=device.id))


@bp.post("/devices/<device_id>/revoke")
@roles_required(*MANAGERS)
def revoke_device(device_id: str):
    """Revoke a lost phone: it is signed out and can no longer send records."""
    device = db.session.get(Device, device_id)
    if device is None or not can_manage_user(current_user, device.user):
        abort(404)
    service.revoke_device(device, current_user)
    flash(_("Phone revoked."), "success")
    return redirect(url_for("accounts.devices"))
