"""The inbox, notification settings, and the API the page uses to subscribe to Web Push."""

import os
from datetime import time

from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user, login_required, user_logged_out

from fieldapp.errors import error_response
from fieldapp.extensions import csrf, db
from fieldapp.push import cli, kinds, retention, service  # retention: the push.retention check
from fieldapp.push.sender import get_sender

# cli_group=None: the commands are ``flask vapid-keys``, ``flask worker``, ``flask rule-clock``.
bp = Blueprint("push", __name__, cli_group=None)
bp.cli.add_command(cli.vapid_keys_command)
bp.cli.add_command(cli.worker_command)
bp.cli.add_command(cli.rule_clock_command)


@bp.record_once
def _setup(state) -> None:
    app: Flask = state.app
    env = os.environ
    app.config.setdefault("PUSH_QUEUE", env.get("FIELDAPP_QUEUE", "fieldapp"))
    app.config.setdefault(
        "PUSH_EXTRA_HOSTS", [h for h in env.get("FIELDAPP_PUSH_HOSTS", "").split(",") if h]
    )
    app.config.setdefault("RULE_CLOCK_INTERVAL", int(env.get("FIELDAPP_RULE_CLOCK", "60")))
    app.config.setdefault("PUSH_HTTP_TIMEOUT", (5.0, 10.0))  # connect, read (seconds)
    app.config.setdefault("PUSH_HTTP_CONCURRENCY", 8)
    app.config.setdefault("PUSH_RETRY_BASE", 30)
    app.config.setdefault("PUSH_MAX_ATTEMPTS", 6)
    for key, days in retention.DEFAULTS.items():  # how long push rows are kept (retention.py)
        app.config.setdefault(key, days)


@bp.before_app_request
def _start_rule_clock():
    """Without Redis the web process runs the rule clock itself, from its first request."""
    app = current_app._get_current_object()
    state = app.extensions.setdefault("fieldapp.push", {})
    if "clock" not in state:
        state["clock"] = False
        if not app.config.get("TESTING"):
            from fieldapp.jobs.clock import start_in_process

            state["clock"] = start_in_process(app)


@bp.app_context_processor
def _inbox_helpers():
    def push_unread_count() -> int:
        return service.unread_count(current_user) if current_user.is_authenticated else 0

    return {"push_unread_count": push_unread_count}


def _logged_out(sender, user, **extra):
    """Logging out of a phone stops its pushes for that user."""
    if user is not None and getattr(user, "id", None):
        service.forget_device(user, session.get("device_id"))


user_logged_out.connect(_logged_out)


# ----- the inbox ----------------------------------------------------------------------------


@bp.get("/notifications")
@login_required
def inbox():
    """Everything the user was notified about, newest first, unread marked."""
    return render_template(
        "push/inbox.html",
        notifications=service.inbox(current_user),
        unread=service.unread_count(current_user),
    )


@bp.get("/notifications/<int:notification_id>/open")
@login_required
def open_notification(notification_id: int):
    """Mark one notification read and go to its record."""
    notification = service.own_notification(current_user, notification_id)
    if notification is None:
        abort(404)
    service.mark_read(notification)
    return redirect(notification.url)


@bp.post("/notifications/read")
@login_required
def read_all():
    """Mark the whole inbox read."""
    service.mark_all_read(current_user)
    return redirect(url_for("push.inbox"))


# ----- settings -----------------------------------------------------------------------------


def _parse_time(value: str | None) -> time | None:
    if not value:
        return None
    try:
        return time.fromisoformat(value)
    except ValueError:
        return None


@bp.route("/notifications/settings", methods=["GET", "POST"])
@login_required
def settings():
    """Per kind of event: push or in-app only; and quiet hours for everything but alarms."""
    errors = {}
    if request.method == "POST":
        channels = {
            k.name: request.form.get(f"channel-{k.name}", k.default_channel.value)
            for k in service.kinds_for(current_user)
        }
        if any(c not in (kinds.Channel.PUSH, kinds.Channel.INAPP) for c in channels.values()):
            abort(400)
        start = _parse_time(request.form.get("quiet_start"))
        end = _parse_time(request.form.get("quiet_end"))
        if bool(request.form.get("quiet_start")) != bool(request.form.get("quiet_end")):
            errors["quiet"] = _("Give both the start and the end of the quiet hours.")
        elif (request.form.get("quiet_start") and start is None) or (
            request.form.get("quiet_end") and end is None
        ):
            errors["quiet"] = _("Enter times like 22:00.")
        if not errors:
            service.save_preferences(current_user, channels, start, end)
            flash(_("Saved."), "success")
            return redirect(url_for("push.settings"))
    start, end = service.quiet_hours_of(current_user)
    if errors:  # show what the user typed next to the error
        quiet = (request.form.get("quiet_start", ""), request.form.get("quiet_end", ""))
    else:
        quiet = tuple(t.strftime("%H:%M") if t else "" for t in (start, end))
    return render_template(
        "push/settings.html",
        kinds=service.kinds_for(current_user),
        channels=service.channels_of(current_user),
        quiet_start=quiet[0],
        quiet_end=quiet[1],
        errors=errors,
        subscriptions=service.subscriptions_of(current_user),
    ), (400 if errors else 200)


@bp.post("/notifications/test")
@login_required
def send_test():
    """Send the user a test notification, to see that this phone buzzes."""
    service.notify(
        "push.test",
        user_ids=[current_user.id],
        org_id=current_user.org_id,
        url=url_for("push.inbox"),
        params={"name": current_user.display_name},
    )
    db.session.commit()
    flash(_("A test notification is on its way. It is in your inbox too."), "success")
    return redirect(url_for("push.settings"))


# ----- the API the page and the service worker use ------------------------------------------


@bp.get("/api/push/key")
def public_key():
    """The VAPID public key the page subscribes with (applicationServerKey)."""
    sender = get_sender()
    if sender is None:
        return error_response(
            503, _("Push notifications are not set up on this server."), "push_not_configured"
        )
    response = jsonify(publicKey=sender.keys.application_server_key)
    response.headers["Cache-Control"] = "no-cache"
    return response


@bp.post("/api/push/subscription")
@login_required
def save_subscription():
    """Store this phone's subscription; the page sends it again every time the app opens."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return error_response(400, _("The request body must be a JSON object."), "malformed_json")
    try:
        subscription = service.subscribe(
            current_user, session.get("device_id"), body, request.headers.get("User-Agent", "")
        )
    except service.InvalidSubscription as error:
        current_app.logger.info("push subscription refused: %s", error)
        return error_response(
            400, _("This phone's push subscription cannot be used."), "invalid_subscription"
        )
    return jsonify(id=subscription.id), 200


@bp.delete("/api/push/subscription")
@login_required
def delete_subscription():
    """Forget this phone's subscription (the user turned notifications off)."""
    body = request.get_json(silent=True) or {}
    endpoint = body.get("endpoint") if isinstance(body, dict) else None
    if not isinstance(endpoint, str):
        return error_response(400, _("The request body must be a JSON object."), "malformed_json")
    service.unsubscribe(current_user, endpoint)
    return "", 204


@bp.get("/api/push/unread")
@login_required
def unread():
    """The unread count for the header badge."""
    return jsonify(unread=service.unread_count(current_user))


# The service worker has no CSRF token. Marking one's own notification read is harmless, the
# session cookie is SameSite=Lax (no cross-site POST carries it) and JSON is required.
@bp.post("/api/push/notifications/<int:notification_id>/read")
@csrf.exempt
@login_required
def mark_read(notification_id: int):
    """The service worker reports a tapped notification."""
    if not request.is_json:
        abort(415)
    notification = service.own_notification(current_user, notification_id)
    if notification is None:
        abort(404)
    service.mark_read(notification)
    return "", 204
