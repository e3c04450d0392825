"""Complaints with first-contact responsibility, working-day deadlines and a timeline.

A ``Complaint`` is logged by whoever the client contacted first (CMP-11, CMP-12); that person
owns it until the client has an answer, and the client gets a numbered acceptance slip (承办单).
The complaint row is the case as it stands now; every step (triage, routing, plan, approval,
answer, callback, closure, next-reply time) is a ``ComplaintEvent`` with who, when and what,
numbered per case and never changed (AUD-04): the timeline is the record.

Deadlines are computed with ``rules.complaints.complaint_deadlines`` on the organisation's
working calendar (``ComplaintCalendarDay``: holidays and makeup working days) in the site's
time zone, with the profile the organisation chose (``ComplaintSettings``, CMP-07).
"""

from flask_babel import lazy_gettext as _l
from sqlalchemy import JSON, Date, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

import fieldapp.visits.models  # noqa: F401  (complaints point at visits; both need registering)
from fieldapp.extensions import db
from fieldapp.models.facts import append_only
from fieldapp.models.types import UTCDateTime, utcnow
from fieldapp.rules.complaints import ComplaintSeverity, ComplaintState

CHANNEL_LABELS = {
    "field": _l("In person, to field staff"),
    "phone": _l("Phone hotline"),
    "email": _l("Email"),
    "suggestion_box": _l("Suggestion box"),
    "walk_in": _l("Walk-in"),
    "app": _l("App or e-receipt link"),
}
CATEGORY_LABELS = {
    "attitude": _l("Service attitude"),
    "competence": _l("Professional competence"),
    "efficiency": _l("Service efficiency"),
    "other": _l("Other"),
}
CAUSE_CLASS_LABELS = {
    "quality": _l("Quality defect"),
    "human": _l("Not quality: human factor"),
    "other": _l("Other"),
}
SEVERITY_LABELS = {
    ComplaintSeverity.MINOR: _l("Minor"),
    ComplaintSeverity.SERIOUS: _l("Serious"),
    ComplaintSeverity.MAJOR: _l("Major"),
}
STATE_LABELS = {
    ComplaintState.RECEIVED: _l("Received"),
    ComplaintState.TRIAGED: _l("Judged valid"),
    ComplaintState.INVALID_CLOSED: _l("Closed as invalid"),
    ComplaintState.ROUTED: _l("Routed"),
    ComplaintState.PLANNED: _l("Plan proposed"),
    ComplaintState.APPROVED: _l("Plan approved"),
    ComplaintState.ANSWERED: _l("Answered"),
    ComplaintState.CALLBACK_DONE: _l("Called back"),
    ComplaintState.CLOSED: _l("Closed"),
}
CLOSED_STATES = frozenset({ComplaintState.CLOSED, ComplaintState.INVALID_CLOSED})
# Until the case reaches one of these, the investigation has not started (CMP-07).
INVESTIGATION_STARTED = frozenset(
    {
        ComplaintState.ROUTED,
        ComplaintState.PLANNED,
        ComplaintState.APPROVED,
        ComplaintState.ANSWERED,
        ComplaintState.CALLBACK_DONE,
        *CLOSED_STATES,
    }
)
# ... and until one of these, the client has had no reply.
REPLIED = frozenset(
    {
        ComplaintState.ANSWERED,
        ComplaintState.CALLBACK_DONE,
        *CLOSED_STATES,
    }
)
PROFILES = {
    "standard": _l("Investigate in 1, reply in 2 working days"),
    "property": _l("Investigate in 1, reply in 3 working days"),
}


class ComplaintSettings(db.Model):
    """Per organisation: which deadline profile its complaints run on (CMP-07)."""

    __tablename__ = "complaint_settings"

    org_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), primary_key=True)
    profile: Mapped[str] = mapped_column(String(16), default="standard")


class ComplaintCalendarDay(db.Model):
    """A public holiday or a makeup working day (调休) of the organisation's calendar."""

    __tablename__ = "complaint_calendar_day"
    __table_args__ = (UniqueConstraint("org_id", "day"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)
    day = mapped_column(Date, nullable=False)
    workday: Mapped[bool] = mapped_column(default=False)  # True: a makeup working day
    name: Mapped[str] = mapped_column(String(80), default="")


class Complaint(db.Model):
    """One complaint case (CMP-01..03, REC-06, REC-20). Its ID is the UUID the phone made."""

    __tablename__ = "complaint"
    __table_args__ = (
        UniqueConstraint("org_id", "slip_number"),
        Index("ix_complaint_org_state", "org_id", "state"),
        # The KPI page's complaints of a month; the today board's open ones (performance.md).
        Index("ix_complaint_org_logged", "org_id", "logged_at"),
        # The KPI page's complaint rate by unit: the complaints first known in a month.
        Index("ix_complaint_org_known", "org_id", "first_known_at"),
        Index(
            "ix_complaint_open_reply_by",
            "org_id",
            "reply_by",
            postgresql_where=db.text("state NOT IN ('closed', 'invalid_closed')"),
            sqlite_where=db.text("state NOT IN ('closed', 'invalid_closed')"),
        ),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)
    site_id: Mapped[int | None] = mapped_column(ForeignKey("site.id"), index=True)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("team.id"), index=True)
    visit_id: Mapped[str | None] = mapped_column(ForeignKey("visit.id"))
    parent_id: Mapped[str | None] = mapped_column(ForeignKey("complaint.id"))
    # The acceptance slip (承办单): SH-20261123-0007, the site's local date and daily sequence.
    slip_number: Mapped[str] = mapped_column(String(40))
    client_name: Mapped[str] = mapped_column(String(120))
    complainant: Mapped[str] = mapped_column(String(80))
    complainant_phone: Mapped[str] = mapped_column(String(32), default="")
    channel: Mapped[str] = mapped_column(String(16))
    subject: Mapped[str] = mapped_column(String(200))  # who or what is complained about
    content: Mapped[str] = mapped_column(Text, default="")
    category: Mapped[str] = mapped_column(String(16))
    cause_class: Mapped[str] = mapped_column(String(16))
    severity: Mapped[str] = mapped_column(String(16))
    request: Mapped[str] = mapped_column(Text, default="")  # what the complainant asks for
    solved_on_spot: Mapped[bool] = mapped_column(default=False)  # CMP-08
    # CMP-20: when the company first knew, as the taker says, and when it was logged.
    first_known_at = mapped_column(UTCDateTime, nullable=False)
    logged_at = mapped_column(UTCDateTime, nullable=False)  # the phone's time
    received_at = mapped_column(UTCDateTime, default=utcnow, nullable=False)  # the server's
    logged_by_id: Mapped[int] = mapped_column(ForeignKey("user.id"))
    owner_id: Mapped[int] = mapped_column(ForeignKey("user.id"), index=True)  # CMP-12
    state: Mapped[str] = mapped_column(String(16), default=ComplaintState.RECEIVED)
    investigate_by = mapped_column(UTCDateTime, nullable=False)
    reply_by = mapped_column(UTCDateTime, nullable=False)
    next_reply_at = mapped_column(UTCDateTime)  # CMP-10
    version: Mapped[int] = mapped_column(default=1)
    # Filled in by the office steps; every value is also on the step's event.
    department: Mapped[str] = mapped_column(String(80), default="")
    handler_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    # The staff member complained about (CMP-05 "具体负责人"): attributes the case to a unit
    # (CMP-17) and forces an on-site visit after their next service (VIS-09, KPI-18).
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"), index=True)
    plan: Mapped[str] = mapped_column(Text, default="")
    approved_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    answer: Mapped[str] = mapped_column(Text, default="")
    callback_result: Mapped[str] = mapped_column(String(16), default="")
    client_opinion: Mapped[str] = mapped_column(Text, default="")
    root_cause: Mapped[str] = mapped_column(Text, default="")
    corrective_action: Mapped[str] = mapped_column(Text, default="")
    lessons: Mapped[str] = mapped_column(Text, default="")
    explanation: Mapped[str] = mapped_column(Text, default="")  # why it was invalid (CMP-04)
    closed_at = mapped_column(UTCDateTime)

    site = relationship("Site")
    owner = relationship("User", foreign_keys=[owner_id])
    logged_by = relationship("User", foreign_keys=[logged_by_id])
    handler = relationship("User", foreign_keys=[handler_id])
    approved_by = relationship("User", foreign_keys=[approved_by_id])
    staff = relationship("User", foreign_keys=[staff_id])
    parent = relationship("Complaint", remote_side=[id])

    @property
    def is_open(self) -> bool:
        return self.state not in CLOSED_STATES

    @property
    def state_label(self) -> str:
        return str(STATE_LABELS.get(self.state, self.state))

    @property
    def severity_label(self) -> str:
        return str(SEVERITY_LABELS.get(self.severity, self.severity))

    @property
    def channel_label(self) -> str:
        return str(CHANNEL_LABELS.get(self.channel, self.channel))

    @property
    def category_label(self) -> str:
        return str(CATEGORY_LABELS.get(self.category, self.category))

    @property
    def cause_class_label(self) -> str:
        return str(CAUSE_CLASS_LABELS.get(self.cause_class, self.cause_class))


class ComplaintEvent(db.Model):
    """One step on a complaint's timeline: who, when, what. Never changed (AUD-04)."""

    __tablename__ = "complaint_event"
    __table_args__ = (UniqueConstraint("complaint_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)
    complaint_id: Mapped[str] = mapped_column(ForeignKey("complaint.id"), index=True)
    version: Mapped[int]  # the complaint's version this step made
    step: Mapped[str] = mapped_column(String(24))
    from_state: Mapped[str] = mapped_column(String(16), default="")
    to_state: Mapped[str] = mapped_column(String(16))
    by_id: Mapped[int] = mapped_column(ForeignKey("user.id"))
    at = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    data = mapped_column(JSON, nullable=False, default=dict)

    by = relationship("User")


append_only(ComplaintEvent)  # the timeline: a new step, never an edit (AUD-04)
