"""Account use cases: authenticate with throttling, register the phone, manage people."""

import secrets
import uuid
from datetime import datetime

from flask import current_app
from flask_babel import gettext as _

from fieldapp.extensions import db
from fieldapp.models import Device, LoginAttempt, Site, User, utcnow
from fieldapp.sync import changes

MIN_PASSWORD_LENGTH = 8


class LoginRefused(Exception):
    """Why a login did not succeed, in words the user can act on."""

    def __init__(self, code: str, message: str, status: int = 200):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


def _recent_failures(column, value, since: datetime) -> int:
    return db.session.scalar(
        db.select(db.func.count(LoginAttempt.id)).where(
            column == value, LoginAttempt.succeeded.is_(False), LoginAttempt.at >= since
        )
    )


def authenticate(username: str, password: str, address: str) -> User:
    """Check a password, counting failures per account and per address.

    Raises ``LoginRefused``. Every outcome is written, so throttling holds across workers.
    """
    cfg = current_app.config
    now = utcnow()
    username = username.strip().lower()
    since = now - cfg["LOGIN_FAILURE_WINDOW"]
    if (
        _recent_failures(LoginAttempt.address, address, since)
        >= cfg["LOGIN_MAX_FAILURES_PER_ADDRESS"]
    ):
        raise LoginRefused(
            "address_throttled",
            _("Too many failed logins from this network. Please wait 15 minutes."),
            429,
        )
    user = db.session.scalar(db.select(User).where(User.username == username))
    if user and user.locked_until and user.locked_until > now:
        raise LoginRefused(
            "locked",
            _(
                "This account is locked after too many failed logins. Ask your administrator to "
                "unlock it, or try again later."
            ),
        )
    ok = user is not None and user.check_password(password)
    db.session.add(LoginAttempt(username=username, address=address, succeeded=ok, at=now))
    if not ok:
        if user is not None:
            user.failed_logins += 1
            if user.failed_logins >= cfg["LOGIN_MAX_FAILURES_PER_ACCOUNT"]:
                user.locked_until = now + cfg["LOGIN_LOCKOUT"]
        db.session.commit()
        raise LoginRefused("bad_credentials", _("Wrong username or password."))
    if not user.active:
        db.session.commit()
        raise LoginRefused("disabled", _("This account has been disabled."))
    user.failed_logins = 0
    user.locked_until = None
    user.last_login_at = now
    db.session.commit()
    return user


def register_device(user: User, device_id: str | None, label: str) -> Device:
    """Remember the phone a user signs in on; a revoked phone cannot sign in again."""
    try:
        device_id = str(uuid.UUID(device_id)) if device_id else None
    except ValueError:
        device_id = None
    device = db.session.get(Device, device_id) if device_id else None
    if device is not None and device.user_id != user.id:
        device = None  # a shared phone: each user gets a device record of their own
        device_id = None
    if device is None:
        device = Device(id=device_id or str(uuid.uuid4()), user_id=user.id, label=label[:255])
        db.session.add(device)
    elif device.is_revoked:
        raise LoginRefused(
            "device_revoked",
            _("This phone was revoked by an administrator. Ask them to register it again."),
            403,
        )
    device.last_seen_at = utcnow()
    device.session_nonce = secrets.token_hex(16)
    db.session.commit()
    return device


def end_device_session(device_id: str | None) -> None:
    """Logging out: a copy of the old session cookie no longer signs anyone in on this phone."""
    device = db.session.get(Device, device_id) if device_id else None
    if device is not None:
        device.session_nonce = None
        db.session.commit()


def password_problem(password: str) -> str | None:
    """The password rule in one place: long enough and not just digits or letters."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return _("Use at least %(n)d characters.", n=MIN_PASSWORD_LENGTH)
    if password.isdigit() or password.isalpha():
        return _("Mix letters with digits or symbols.")
    return None


def set_active(user: User, active: bool) -> None:
    user.active = active
    if not active:
        user.end_all_sessions()
    db.session.commit()


def reset_password(user: User, password: str) -> None:
    user.set_password(password)
    user.end_all_sessions()
    user.failed_logins = 0
    user.locked_until = None
    db.session.commit()


def unlock(user: User) -> None:
    user.failed_logins = 0
    user.locked_until = None
    db.session.commit()


def revoke_device(device: Device, by: User) -> None:
    device.revoked_at = utcnow()
    device.revoked_by_id = by.id
    db.session.commit()


def site_for_phone(site: Site) -> dict:
    """What a phone keeps about a site for offline work."""
    return {
        "id": site.id,
        "kind": site.kind,
        "name": site.name,
        "address": site.address,
        "latitude": site.latitude,
        "longitude": site.longitude,
        "geofence_radius_m": site.geofence_radius_m,
        "timezone": site.timezone,
        "contact_phone": site.contact_phone,
        "team_id": site.team_id,
    }


def save_site(site: Site, previous_team_id: int | None) -> None:
    """Save a site and tell the phones of its team (and of its old team, if it moved)."""
    db.session.add(site)
    db.session.flush()  # may raise IntegrityError for a duplicate name; nothing is kept then
    if previous_team_id and previous_team_id != site.team_id:
        changes.publish(site.org_id, "site", site.id, None, team_id=previous_team_id, deleted=True)
    changes.publish(site.org_id, "site", site.id, site_for_phone(site), team_id=site.team_id)
    db.session.commit()


def sites_for_user(user: User) -> list[dict]:
    """The day pack's sites: those of the user's team."""
    if not user.team_id:
        return []
    rows = db.session.scalars(db.select(Site).where(Site.team_id == user.team_id))
    return [site_for_phone(site) for site in rows]


changes.DAYPACK_DATA["sites"] = sites_for_user
