"""The penalty ledger (KPI-11) and the organisation's assessment weights (KPI-03, KPI-12)."""

from sqlalchemy import Date, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from fieldapp.extensions import db
from fieldapp.models.facts import append_only
from fieldapp.models.types import UTCDateTime, utcnow


class PenaltyEntry(db.Model):
    """One line of the append-only penalty ledger (``fieldapp.rules.kpi.LedgerKind``).

    A proposal names the person, the rule (a code of ``kpi.PENALTY_SCHEDULE``), the day of the
    offence and the evidence (a link to the record in the app). The office's approval copies
    those and fixes the offence number (the repeat counter per rule per person), the amount and
    the points; a rejection or a void only refers to the entry it answers and says why. Each
    entry is answered at most once (``refers_to_id`` is unique).
    """

    __tablename__ = "dashboard_penalty_entry"
    __table_args__ = (
        UniqueConstraint("refers_to_id", name="uq_dashboard_penalty_entry_refers_to"),
        Index("ix_dashboard_penalty_entry_person", "org_id", "person_id", "kind", "occurred_on"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"))
    kind: Mapped[str] = mapped_column(String(12))
    refers_to_id: Mapped[int | None] = mapped_column(ForeignKey("dashboard_penalty_entry.id"))
    person_id: Mapped[int] = mapped_column(ForeignKey("user.id"))
    team_id: Mapped[int | None] = mapped_column(ForeignKey("team.id"), index=True)
    rule_code: Mapped[str] = mapped_column(String(32))
    occurred_on = mapped_column(Date, nullable=False)
    evidence_url: Mapped[str] = mapped_column(String(255), default="")
    units: Mapped[int] = mapped_column(default=0)
    offence_number: Mapped[int | None]
    amount_fen: Mapped[int] = mapped_column(default=0)
    points: Mapped[int] = mapped_column(default=0)
    note: Mapped[str] = mapped_column(Text, default="")
    by_id: Mapped[int] = mapped_column(ForeignKey("user.id"))
    at = mapped_column(UTCDateTime, default=utcnow, nullable=False)

    person = relationship("User", foreign_keys=[person_id])
    by = relationship("User", foreign_keys=[by_id])


append_only(PenaltyEntry)


class AssessmentWeight(db.Model):
    """An organisation's weight for one input of an assessment scheme (``courier``/``guard``);
    inputs without a row weigh the default of ``fieldapp.rules.kpi``."""

    __tablename__ = "dashboard_assessment_weight"
    __table_args__ = (UniqueConstraint("org_id", "scheme", "input"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)
    scheme: Mapped[str] = mapped_column(String(16))
    input: Mapped[str] = mapped_column(String(32))
    weight: Mapped[float]
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    updated_at = mapped_column(UTCDateTime, default=utcnow, nullable=False)
