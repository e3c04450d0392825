"""People who sign in, the phones they sign in on, and the record of login attempts."""

import secrets
from enum import StrEnum

from flask_babel import lazy_gettext as _l
from flask_login import UserMixin
from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship
from werkzeug.security import check_password_hash, generate_password_hash

from fieldapp.extensions import db
from fieldapp.models.types import UTCDateTime, utcnow


class Role(StrEnum):
    COURIER = "courier"
    GUARD = "guard"
    REP = "rep"
    SUPERVISOR = "supervisor"
    ADMIN = "admin"


ROLE_LABELS = {
    Role.COURIER: _l("Courier"),
    Role.GUARD: _l("Security guard"),
    Role.REP: _l("Field rep"),
    Role.SUPERVISOR: _l("Supervisor"),
    Role.ADMIN: _l("Administrator"),
}

WORKER_ROLES = frozenset({Role.COURIER, Role.GUARD, Role.REP})


def new_session_token() -> str:
    return secrets.token_urlsafe(16)


class User(UserMixin, db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("team.id"), index=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(80))
    role: Mapped[str] = mapped_column(String(16))
    phone: Mapped[str] = mapped_column(String(32), default="")
    password_hash: Mapped[str] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(default=True)
    locale: Mapped[str | None] = mapped_column(String(8))
    # Part of the login cookie: changing it (disable, password reset) ends every session of the
    # user on every phone at once, remember-me cookies included.
    session_token: Mapped[str] = mapped_column(String(32), default=new_session_token)
    failed_logins: Mapped[int] = mapped_column(default=0)
    locked_until = mapped_column(UTCDateTime)
    last_login_at = mapped_column(UTCDateTime)
    created_at = mapped_column(UTCDateTime, default=utcnow, nullable=False)

    organisation = relationship("Organisation")
    team = relationship("Team", foreign_keys=[team_id], back_populates="members")

    def set_password(self, password: str) -> None:
        self.password_hash = generate_password_hash(password)

    def check_password(self, password: str) -> bool:
        return check_password_hash(self.password_hash, password)

    def end_all_sessions(self) -> None:
        self.session_token = new_session_token()

    def get_id(self) -> str:
        return f"{self.id}:{self.session_token}"

    @property
    def is_active(self) -> bool:
        return self.active

    @property
    def role_label(self) -> str:
        return str(ROLE_LABELS.get(self.role, self.role))

    @property
    def is_worker(self) -> bool:
        return self.role in WORKER_ROLES

    @property
    def is_manager(self) -> bool:
        return self.role in (Role.SUPERVISOR, Role.ADMIN)


class Device(db.Model):
    """A phone or browser a user signs in on. The ID is a UUID the phone made itself."""

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id"), index=True)
    label: Mapped[str] = mapped_column(String(255), default="")
    created_at = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    last_seen_at = mapped_column(UTCDateTime, default=utcnow)
    revoked_at = mapped_column(UTCDateTime)
    revoked_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    # Set at each sign-in and copied into the session; cleared at logout. The session is a
    # cookie, so a response still in flight when the user logs out can put the old cookie
    # back: without a server-side mark that stale cookie would sign the user in again.
    session_nonce: Mapped[str | None] = mapped_column(String(32))
    # Sync state: the last mutation sequence number applied from this phone, and what the
    # phone last said it still holds (so a supervisor sees "12 records not yet received").
    last_seq: Mapped[int] = mapped_column(default=0)
    pending_count: Mapped[int] = mapped_column(default=0)
    oldest_pending_at = mapped_column(UTCDateTime)
    last_sync_at = mapped_column(UTCDateTime)

    user = relationship("User", foreign_keys=[user_id])

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None


class LoginAttempt(db.Model):
    """One try at the login form; failures in a window throttle an account and an address."""

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), index=True)
    address: Mapped[str] = mapped_column(String(64), index=True)
    succeeded: Mapped[bool]
    at = mapped_column(UTCDateTime, default=utcnow, nullable=False, index=True)
