"""Client files, planned visits, and the append-only facts of a rep's visit.

A ``ClientFile`` (客户档案, VIS-03) is kept per client site, with its contacts and its tier
(core clients, VIS-04). A ``Visit`` is one planned visit of one rep to one site on one date.
What happens on the visit is recorded as facts that are never edited or deleted
(``VisitCheckIn``, ``VisitCheckOut``, ``VisitReport``): a correction is a new report that names
the one it replaces (AUD-04). A follow-up promised in a report becomes a ``FollowUpTask`` for a
named person. ``ReturnVisit`` (回访) is planned after every closed complaint and by the monthly
sample (VIS-05, VIS-08, VIS-09).
"""

from enum import StrEnum

from flask_babel import lazy_gettext as _l
from sqlalchemy import JSON, Date, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from fieldapp.extensions import db
from fieldapp.models.facts import append_only
from fieldapp.models.types import UTCDateTime, new_uuid, utcnow


class ClientTier(StrEnum):
    CORE = "core"  # the ~20 % of clients that bring ~80 % of the business (VIS-04)
    NORMAL = "normal"


CLIENT_TIER_LABELS = {ClientTier.CORE: _l("Core client"), ClientTier.NORMAL: _l("Client")}


class VisitState(StrEnum):
    PLANNED = "planned"
    ON_SITE = "on_site"
    DONE = "done"
    CANCELLED = "cancelled"


VISIT_STATE_LABELS = {
    VisitState.PLANNED: _l("Planned"),
    VisitState.ON_SITE: _l("On site"),
    VisitState.DONE: _l("Done"),
    VisitState.CANCELLED: _l("Cancelled"),
}


class ClientFile(db.Model):
    """The client file of one client site (VIS-03): contacts, tier, notes."""

    __tablename__ = "visit_client_file"
    __table_args__ = (UniqueConstraint("org_id", "site_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("site.id"))
    tier: Mapped[str] = mapped_column(String(16), default=ClientTier.NORMAL)
    # [{"name": …, "role": …, "phone": …}]
    contacts = mapped_column(JSON, nullable=False, default=list)
    account_manager_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    # The home-service agreement (居家服务协议书): its clients get on-site return visits (VIS-09).
    agreement_signed_on = mapped_column(Date)
    notes: Mapped[str] = mapped_column(Text, default="")
    created_at = mapped_column(UTCDateTime, default=utcnow, nullable=False)

    site = relationship("Site")
    account_manager = relationship("User")

    @property
    def tier_label(self) -> str:
        return str(CLIENT_TIER_LABELS.get(self.tier, self.tier))


class Visit(db.Model):
    """One planned visit of a rep to a client site on a date, with its purpose (VIS-01)."""

    __tablename__ = "visit"
    __table_args__ = (Index("ix_visit_org_date", "org_id", "planned_date"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_uuid)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("team.id"), index=True)
    rep_id: Mapped[int] = mapped_column(ForeignKey("user.id"), index=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("site.id"), index=True)
    planned_date = mapped_column(Date, nullable=False)
    purpose: Mapped[str] = mapped_column(String(200), default="")
    state: Mapped[str] = mapped_column(String(16), default=VisitState.PLANNED)
    checked_in_at = mapped_column(UTCDateTime)
    checked_out_at = mapped_column(UTCDateTime)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    created_at = mapped_column(UTCDateTime, default=utcnow, nullable=False)

    rep = relationship("User", foreign_keys=[rep_id])
    site = relationship("Site")

    @property
    def state_label(self) -> str:
        return str(VISIT_STATE_LABELS.get(self.state, self.state))


class _Presence:
    """A check-in or check-out: when (phone clock), where (GPS), and the geofence verdict."""

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id"))
    at = mapped_column(UTCDateTime, nullable=False)  # the phone's time (device_time)
    received_at = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    latitude: Mapped[float | None]
    longitude: Mapped[float | None]
    accuracy_m: Mapped[float | None]
    # Distance to the site's centre; outside is allowed but flagged (None: no GPS fix).
    distance_m: Mapped[int | None]
    inside: Mapped[bool | None]
    note: Mapped[str] = mapped_column(Text, default="")


class VisitCheckIn(_Presence, db.Model):
    __tablename__ = "visit_check_in"

    visit_id: Mapped[str] = mapped_column(ForeignKey("visit.id"), index=True)


class VisitCheckOut(_Presence, db.Model):
    __tablename__ = "visit_check_out"

    visit_id: Mapped[str] = mapped_column(ForeignKey("visit.id"), index=True)
    seconds_on_site: Mapped[int | None]


class VisitReport(db.Model):
    """What the visit was about and what the client said (VIS-01, REC-10), with ratings.

    Satisfaction is rated 1..5 on timeliness, skill and attitude (VIS-08, KPI-18).
    """

    __tablename__ = "visit_report"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)
    visit_id: Mapped[str] = mapped_column(ForeignKey("visit.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id"))
    replaces_id: Mapped[str | None] = mapped_column(String(36))
    purpose: Mapped[str] = mapped_column(Text, default="")
    discussed: Mapped[str] = mapped_column(Text, default="")
    problems_solved: Mapped[str] = mapped_column(Text, default="")
    client_opinions: Mapped[str] = mapped_column(Text, default="")
    survey_handed_out: Mapped[bool] = mapped_column(default=False)
    photos = mapped_column(JSON, nullable=False, default=list)  # SHA-256 of each photo
    timeliness: Mapped[int]
    skill: Mapped[int]
    attitude: Mapped[int]
    satisfaction_score: Mapped[int]
    satisfied: Mapped[bool]
    signature: Mapped[str | None] = mapped_column(String(64))
    signed_by: Mapped[str] = mapped_column(String(80), default="")
    at = mapped_column(UTCDateTime, nullable=False)
    received_at = mapped_column(UTCDateTime, default=utcnow, nullable=False)

    user = relationship("User")


class FollowUpTask(db.Model):
    """A follow-up promised to a client, for a named person, due on a date (VIS-01, VIS-13)."""

    __tablename__ = "visit_follow_up"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)
    # Promised in a visit report, or a new need raised on a return visit (VIS-05 c).
    report_id: Mapped[str | None] = mapped_column(ForeignKey("visit_report.id"), index=True)
    return_visit_id: Mapped[str | None] = mapped_column(String(36), index=True)
    complaint_id: Mapped[str | None] = mapped_column(String(36), index=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("site.id"), index=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("user.id"), index=True)
    action: Mapped[str] = mapped_column(Text)
    due_date = mapped_column(Date, nullable=False)
    done_at = mapped_column(UTCDateTime)
    created_at = mapped_column(UTCDateTime, default=utcnow, nullable=False)

    owner = relationship("User")
    site = relationship("Site")


class ReturnVisitReason(StrEnum):
    COMPLAINT_CLOSED = "complaint_closed"  # after every closed complaint (VIS-05)
    CALL_AGAIN = "call_again"  # the client disagreed: call again at another time (VIS-05b)
    MONTHLY_SAMPLE = "monthly_sample"  # VIS-08
    FORCED_ONSITE = "forced_onsite"  # VIS-09: generated at the service's check-out


RETURN_VISIT_REASON_LABELS = {
    ReturnVisitReason.COMPLAINT_CLOSED: _l("After a closed complaint"),
    ReturnVisitReason.CALL_AGAIN: _l("Call again"),
    ReturnVisitReason.MONTHLY_SAMPLE: _l("Monthly sample"),
    ReturnVisitReason.FORCED_ONSITE: _l("Mandatory on-site visit"),
}
ONSITE_REASON_LABELS = {
    "new_agreement": _l("New service agreement"),
    "new_staff": _l("Service by new staff"),
    "staff_complained": _l("Staff complained about last time"),
}
RETURN_VISIT_RESULT_LABELS = {
    "accepted": _l("Understood and satisfied"),
    "disagreed": _l("Disagrees: call again"),
    "new_need": _l("A new need"),
}


class ReturnVisit(db.Model):
    """A return visit or call (回访) to a client, linked to the case it follows up (VIS-05).

    ``source_key`` makes scheduling idempotent: one return visit per closed complaint, one
    per sampled client and month.
    """

    __tablename__ = "visit_return_visit"
    __table_args__ = (UniqueConstraint("org_id", "source_key"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_uuid)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)
    site_id: Mapped[int | None] = mapped_column(ForeignKey("site.id"), index=True)
    complaint_id: Mapped[str | None] = mapped_column(String(36), index=True)
    source_key: Mapped[str] = mapped_column(String(120))
    reason: Mapped[str] = mapped_column(String(24))
    month: Mapped[str] = mapped_column(String(7), default="")  # 2026-11 for the sample
    due_date = mapped_column(Date, nullable=False)
    onsite: Mapped[bool] = mapped_column(default=False)  # VIS-09: must be in person
    assigned_to_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    done_at = mapped_column(UTCDateTime)
    result: Mapped[str] = mapped_column(String(16), default="")
    notes: Mapped[str] = mapped_column(Text, default="")
    created_at = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    # VIS-09: the service that forced it, whose service it was, and why (OnsiteReason values).
    visit_id: Mapped[str | None] = mapped_column(String(36), index=True)
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"), index=True)
    onsite_reasons = mapped_column(JSON, nullable=False, default=list)
    done_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    # The client's ratings of the staff member's service, 1..5 (VIS-08, KPI-18).
    timeliness: Mapped[int | None]
    skill: Mapped[int | None]
    attitude: Mapped[int | None]
    # A new need raised on it opened this complaint case (VIS-05 c); a follow-up task points
    # back with FollowUpTask.return_visit_id.
    new_complaint_id: Mapped[str | None] = mapped_column(String(36))

    site = relationship("Site")
    assigned_to = relationship("User", foreign_keys=[assigned_to_id])
    staff = relationship("User", foreign_keys=[staff_id])

    @property
    def onsite_reason_labels(self) -> list[str]:
        return [str(ONSITE_REASON_LABELS.get(r, r)) for r in self.onsite_reasons or []]

    @property
    def result_label(self) -> str:
        return str(RETURN_VISIT_RESULT_LABELS.get(self.result, self.result))

    @property
    def reason_label(self) -> str:
        return str(RETURN_VISIT_REASON_LABELS.get(self.reason, self.reason))


FACTS = (VisitCheckIn, VisitCheckOut, VisitReport)


append_only(*FACTS)
