"""Organisations, their teams and the sites where field work happens."""

from enum import StrEnum

from flask_babel import lazy_gettext as _l
from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from fieldapp.extensions import db
from fieldapp.models.types import UTCDateTime, utcnow


class Organisation(db.Model):
    """A client company running fieldapp; every other record belongs to exactly one."""

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(16), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    timezone: Mapped[str] = mapped_column(String(64), default="Asia/Shanghai")
    created_at = mapped_column(UTCDateTime, default=utcnow, nullable=False)


class TeamKind(StrEnum):
    DELIVERY = "delivery"
    SECURITY = "security"
    VISITS = "visits"


TEAM_KIND_LABELS = {
    TeamKind.DELIVERY: _l("Delivery"),
    TeamKind.SECURITY: _l("Security"),
    TeamKind.VISITS: _l("Site visits"),
}


class Team(db.Model):
    """A squad, a route crew or a rep group, led by one supervisor."""

    __table_args__ = (UniqueConstraint("org_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)
    name: Mapped[str] = mapped_column(String(80))
    kind: Mapped[str] = mapped_column(String(16))
    supervisor_id: Mapped[int | None] = mapped_column(
        ForeignKey("user.id", use_alter=True), index=True
    )
    created_at = mapped_column(UTCDateTime, default=utcnow, nullable=False)

    supervisor = relationship("User", foreign_keys=[supervisor_id])
    members = relationship("User", foreign_keys="User.team_id", back_populates="team")

    @property
    def kind_label(self) -> str:
        return str(TEAM_KIND_LABELS.get(self.kind, self.kind))


class SiteKind(StrEnum):
    SHOP = "shop"
    GUARDED_POST = "guarded_post"
    CLIENT_OFFICE = "client_office"


SITE_KIND_LABELS = {
    SiteKind.SHOP: _l("Client shop"),
    SiteKind.GUARDED_POST: _l("Guarded post"),
    SiteKind.CLIENT_OFFICE: _l("Client office"),
}


class Site(db.Model):
    """A place field staff go to: a shop on a route, a guarded post, a client's office."""

    __table_args__ = (UniqueConstraint("org_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("team.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(120))
    address: Mapped[str] = mapped_column(String(255), default="")
    latitude: Mapped[float | None]
    longitude: Mapped[float | None]
    geofence_radius_m: Mapped[int] = mapped_column(default=150)
    timezone: Mapped[str] = mapped_column(String(64), default="Asia/Shanghai")
    contact_phone: Mapped[str] = mapped_column(String(32), default="")
    created_at = mapped_column(UTCDateTime, default=utcnow, nullable=False)

    team = relationship("Team")

    @property
    def kind_label(self) -> str:
        return str(SITE_KIND_LABELS.get(self.kind, self.kind))
