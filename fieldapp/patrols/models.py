"""Guard duty records (PAT): set-up by the supervisor, and append-only facts from the phones.

Set-up (changed online by supervisors): ``GuardProfile`` (licence, PAT-24), ``Post`` (PAT-01),
``Checkpoint``, ``PatrolPlan`` (PAT-02/03) and ``Shift`` (the roster, PAT-02).

Facts (made on the phone, sent through the sync engine, never edited): ``ShiftSignIn``
(PAT-15), ``CheckpointScan`` (PAT-03), ``Incident`` (PAT-06/12/13), ``GateEntry`` and
``GateExit`` (PAT-04/05, REC-15), ``Handover`` (PAT-10) and ``SpotCheck`` (PAT-07/08, REC-13).
Their ``id`` is the UUID the phone made; times said "device" are the phone's clock.
"""

from enum import StrEnum

from flask_babel import lazy_gettext as _l
from sqlalchemy import JSON, Date, ForeignKey, Index, String, Text, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from fieldapp.extensions import db
from fieldapp.models.facts import append_only
from fieldapp.models.types import UTCDateTime, utcnow


class PostKind(StrEnum):
    GATE = "gate"
    PATROL = "patrol"
    GUARDING = "guarding"
    ESCORT = "escort"
    TECHNICAL = "technical"


POST_KIND_LABELS = {
    PostKind.GATE: _l("Gate"),
    PostKind.PATROL: _l("Patrol"),
    PostKind.GUARDING: _l("Guarding a target"),
    PostKind.ESCORT: _l("Escort of valuables"),
    PostKind.TECHNICAL: _l("Alarm response"),
}


class GuardProfile(db.Model):
    """A guard's security licence (PAT-24): without a valid one they cannot be rostered."""

    __tablename__ = "patrol_guard_profile"

    user_id: Mapped[int] = mapped_column(ForeignKey("user.id"), primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)
    licence_number: Mapped[str] = mapped_column(String(40), default="")
    licence_expires = mapped_column(Date)
    # PAT-13: a member of the rapid-response (mobile special-duty) team, alerted by every
    # major incident of the organisation, who acknowledges and records arrival at the scene.
    rapid_response: Mapped[bool] = mapped_column(default=False, server_default=false())
    updated_at = mapped_column(UTCDateTime, default=utcnow, nullable=False)


class Post(db.Model):
    """A post at a guarded site: the gate, a patrol beat, a target, an escort (PAT-01)."""

    __tablename__ = "patrol_post"
    __table_args__ = (UniqueConstraint("site_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("site.id"), index=True)
    name: Mapped[str] = mapped_column(String(80))
    kind: Mapped[str] = mapped_column(String(16))
    created_at = mapped_column(UTCDateTime, default=utcnow, nullable=False)

    site = relationship("Site")

    @property
    def kind_label(self) -> str:
        return str(POST_KIND_LABELS.get(self.kind, self.kind))


class Checkpoint(db.Model):
    """A place on the patrol route with a signed QR code; ``code`` is what the code names."""

    __tablename__ = "patrol_checkpoint"
    __table_args__ = (UniqueConstraint("site_id", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("site.id"), index=True)
    code: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(80))
    position: Mapped[int] = mapped_column(default=0)
    active: Mapped[bool] = mapped_column(default=True)
    created_at = mapped_column(UTCDateTime, default=utcnow, nullable=False)


class PatrolPlan(db.Model):
    """How a site is patrolled (PAT-02/03): which checkpoints, in order or not, how often."""

    __tablename__ = "patrol_plan"

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("site.id"), unique=True)
    checkpoint_codes = mapped_column(JSON, nullable=False)  # in walking order
    ordered: Mapped[bool] = mapped_column(default=False)
    every_minutes: Mapped[int | None]
    rounds_per_shift: Mapped[int | None]
    window_minutes: Mapped[int] = mapped_column(default=60)
    updated_at = mapped_column(UTCDateTime, default=utcnow, nullable=False)


class Shift(db.Model):
    """One guard on one post from ``starts_at`` to ``ends_at`` (UTC): a line of the roster."""

    __tablename__ = "patrol_shift"
    __table_args__ = (
        Index("ix_patrol_shift_site_time", "site_id", "starts_at"),
        # A guard's shifts of a month (KPI page) without reading the guard's whole history.
        Index("ix_patrol_shift_guard_time", "guard_id", "starts_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("site.id"))
    post_id: Mapped[int] = mapped_column(ForeignKey("patrol_post.id"), index=True)
    guard_id: Mapped[int] = mapped_column(ForeignKey("user.id"))
    starts_at = mapped_column(UTCDateTime, nullable=False)
    ends_at = mapped_column(UTCDateTime, nullable=False, index=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    created_at = mapped_column(UTCDateTime, default=utcnow, nullable=False)

    site = relationship("Site")
    post = relationship("Post")
    guard = relationship("User", foreign_keys=[guard_id])


# ----- facts from the phones ----------------------------------------------------------------


class ShiftSignIn(db.Model):
    """A sign-in or sign-out at the post (PAT-15), flagged when outside the geofence."""

    __tablename__ = "patrol_sign_in"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)
    shift_id: Mapped[int] = mapped_column(ForeignKey("patrol_shift.id"), index=True)
    guard_id: Mapped[int] = mapped_column(ForeignKey("user.id"))
    action: Mapped[str] = mapped_column(String(8))  # in | out
    at = mapped_column(UTCDateTime, nullable=False)  # device time
    received_at = mapped_column(UTCDateTime, nullable=False)
    latitude: Mapped[float | None]
    longitude: Mapped[float | None]
    accuracy_m: Mapped[float | None]
    distance_m: Mapped[int | None]
    outside_geofence: Mapped[bool] = mapped_column(default=False)


class CheckpointScan(db.Model):
    """A checkpoint's QR code scanned on a round (PAT-03), timed by the phone."""

    __tablename__ = "patrol_scan"
    __table_args__ = (Index("ix_patrol_scan_shift", "shift_id", "scanned_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)
    shift_id: Mapped[int] = mapped_column(ForeignKey("patrol_shift.id"))
    checkpoint_id: Mapped[int] = mapped_column(ForeignKey("patrol_checkpoint.id"))
    guard_id: Mapped[int] = mapped_column(ForeignKey("user.id"))
    round_number: Mapped[int | None]  # 1-based, the round whose window the device time is in
    scanned_at = mapped_column(UTCDateTime, nullable=False)  # device time
    received_at = mapped_column(UTCDateTime, nullable=False)
    manual: Mapped[bool] = mapped_column(default=False)
    latitude: Mapped[float | None]
    longitude: Mapped[float | None]
    note: Mapped[str] = mapped_column(Text, default="")
    hazard: Mapped[bool] = mapped_column(default=False)
    photo: Mapped[str | None] = mapped_column(String(64))

    checkpoint = relationship("Checkpoint")


class IncidentSeverity(StrEnum):
    MINOR = "minor"
    MAJOR = "major"


class Incident(db.Model):
    """An incident with the emergency steps timed one by one (PAT-12).

    There is deliberately no "searched by guard" field: guards may not search anyone (PAT-06),
    only record whether the person opened their bag voluntarily.
    """

    __tablename__ = "patrol_incident"
    __table_args__ = (Index("ix_patrol_incident_site_closed", "site_id", "closed_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("site.id"), index=True)
    shift_id: Mapped[int | None] = mapped_column(ForeignKey("patrol_shift.id"))
    reported_by_id: Mapped[int] = mapped_column(ForeignKey("user.id"))
    incident_type: Mapped[str] = mapped_column(String(16))
    severity: Mapped[str] = mapped_column(String(8))
    place: Mapped[str] = mapped_column(String(120), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    people: Mapped[str] = mapped_column(Text, default="")
    opened_voluntarily: Mapped[bool | None]
    photos = mapped_column(JSON, nullable=False, default=list)
    reported_at = mapped_column(UTCDateTime, nullable=False)  # device time
    received_at = mapped_column(UTCDateTime, nullable=False)
    step_report_at = mapped_column(UTCDateTime)
    step_disperse_at = mapped_column(UTCDateTime)
    step_protect_at = mapped_column(UTCDateTime)
    step_rescue_at = mapped_column(UTCDateTime)
    step_stop_at = mapped_column(UTCDateTime)
    closed_at = mapped_column(UTCDateTime)
    closed_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))

    site = relationship("Site")
    reported_by = relationship("User", foreign_keys=[reported_by_id])


class IncidentResponse(db.Model):
    """PAT-13: an alarm recipient acknowledged a major incident, then arrived at the scene.

    Server time of each button press; one row per person and incident.
    """

    __tablename__ = "patrol_incident_response"
    __table_args__ = (UniqueConstraint("incident_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)
    incident_id: Mapped[str] = mapped_column(ForeignKey("patrol_incident.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id"))
    acknowledged_at = mapped_column(UTCDateTime, nullable=False)
    arrived_at = mapped_column(UTCDateTime)

    user = relationship("User")


class GateEntry(db.Model):
    """A line of the gate register (PAT-04/05): a visitor in, or goods/a vehicle in or out."""

    __tablename__ = "patrol_gate_entry"
    # The visitors still inside (performance.md), without reading the site's whole register.
    # entry_kind is a column, not in the condition: vehicles never get an exit, so they stay in
    # the index, and the query's 'visitor' skips them.
    __table_args__ = (
        Index(
            "ix_patrol_gate_entry_inside",
            "site_id",
            "entry_kind",
            postgresql_where=db.text("exited_at IS NULL"),
            sqlite_where=db.text("exited_at IS NULL"),
        ),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("site.id"), index=True)
    guard_id: Mapped[int] = mapped_column(ForeignKey("user.id"))
    entry_kind: Mapped[str] = mapped_column(String(8))  # visitor | vehicle
    direction: Mapped[str] = mapped_column(String(4), default="in")  # in | out
    at = mapped_column(UTCDateTime, nullable=False)  # device time
    received_at = mapped_column(UTCDateTime, nullable=False)
    name: Mapped[str] = mapped_column(String(80), default="")
    id_type: Mapped[str] = mapped_column(String(16), default="")
    id_number: Mapped[str] = mapped_column(String(40), default="")
    organisation: Mapped[str] = mapped_column(String(120), default="")
    host: Mapped[str] = mapped_column(String(80), default="")
    purpose: Mapped[str] = mapped_column(String(200), default="")
    host_notified: Mapped[bool] = mapped_column(default=False)
    plate: Mapped[str] = mapped_column(String(16), default="")
    driver: Mapped[str] = mapped_column(String(80), default="")
    goods: Mapped[str] = mapped_column(String(200), default="")
    pass_number: Mapped[str] = mapped_column(String(40), default="")
    # The time of its GateExit (device time), copied when the exit is recorded; None while the
    # visitor is inside (and for vehicles and goods, which have no exit).
    exited_at = mapped_column(UTCDateTime)


class GateExit(db.Model):
    """A registered visitor left (time out); one per entry."""

    __tablename__ = "patrol_gate_exit"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)
    entry_id: Mapped[str] = mapped_column(ForeignKey("patrol_gate_entry.id"), unique=True)
    guard_id: Mapped[int] = mapped_column(ForeignKey("user.id"))
    at = mapped_column(UTCDateTime, nullable=False)


class Handover(db.Model):
    """A shift handed over (PAT-10), signed by both guards."""

    __tablename__ = "patrol_handover"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("site.id"), index=True)
    shift_id: Mapped[int] = mapped_column(ForeignKey("patrol_shift.id"))
    outgoing_guard_id: Mapped[int] = mapped_column(ForeignKey("user.id"))
    incoming_guard_id: Mapped[int] = mapped_column(ForeignKey("user.id"))
    scheduled_at = mapped_column(UTCDateTime, nullable=False)
    actual_at = mapped_column(UTCDateTime, nullable=False)  # device time
    late: Mapped[bool] = mapped_column(default=False)
    equipment: Mapped[str] = mapped_column(Text, default="")
    open_incidents: Mapped[str] = mapped_column(Text, default="")
    visitors_inside: Mapped[str] = mapped_column(Text, default="")
    notes: Mapped[str] = mapped_column(Text, default="")
    outgoing_signature: Mapped[str] = mapped_column(String(64))
    incoming_signature: Mapped[str] = mapped_column(String(64))
    received_at = mapped_column(UTCDateTime, nullable=False)

    outgoing_guard = relationship("User", foreign_keys=[outgoing_guard_id])
    incoming_guard = relationship("User", foreign_keys=[incoming_guard_id])


class SpotCheck(db.Model):
    """An unannounced post inspection (PAT-07/08, REC-13)."""

    __tablename__ = "patrol_spot_check"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("site.id"), index=True)
    supervisor_id: Mapped[int] = mapped_column(ForeignKey("user.id"))
    guard_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    at = mapped_column(UTCDateTime, nullable=False)  # device time
    received_at = mapped_column(UTCDateTime, nullable=False)
    latitude: Mapped[float | None]
    longitude: Mapped[float | None]
    distance_m: Mapped[int | None]
    outside_geofence: Mapped[bool] = mapped_column(default=False)
    guard_present: Mapped[bool]
    in_uniform: Mapped[bool]
    violations = mapped_column(JSON, nullable=False, default=list)  # PAT-07 items seen
    findings: Mapped[str] = mapped_column(Text, default="")
    photo: Mapped[str | None] = mapped_column(String(64))

    site = relationship("Site")
    supervisor = relationship("User", foreign_keys=[supervisor_id])
    guard = relationship("User", foreign_keys=[guard_id])


class MissedSignIn(db.Model):
    """PAT-15: the guard had not signed in by the deadline after the shift start (rule clock).

    One per shift, never removed: a sign-in made before the deadline that arrives later (a
    phone in a dead zone) withdraws it with an ``AlarmWithdrawal``; the board shows both.
    """

    __tablename__ = "patrol_missed_sign_in"

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)
    shift_id: Mapped[int] = mapped_column(ForeignKey("patrol_shift.id"), unique=True)
    guard_id: Mapped[int] = mapped_column(ForeignKey("user.id"), index=True)
    deadline = mapped_column(UTCDateTime, nullable=False)
    recorded_at = mapped_column(UTCDateTime, default=utcnow, nullable=False)


class RoundEndedEarly(db.Model):
    """The guard closed a round with checkpoints unscanned, and said why (device time)."""

    __tablename__ = "patrol_round_ended_early"
    __table_args__ = (Index("ix_patrol_round_ended_early_shift", "shift_id", "round_number"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)
    shift_id: Mapped[int] = mapped_column(ForeignKey("patrol_shift.id"))
    guard_id: Mapped[int] = mapped_column(ForeignKey("user.id"))
    round_number: Mapped[int]
    reason: Mapped[str] = mapped_column(Text, default="")
    remaining = mapped_column(JSON, nullable=False, default=list)  # codes unscanned then
    ended_at = mapped_column(UTCDateTime, nullable=False)  # device time
    received_at = mapped_column(UTCDateTime, nullable=False)


class EquipmentKind(StrEnum):
    UNIFORM = "uniform"
    KIT8 = "kit8"
    SHIELD = "shield"
    FORK = "fork"
    ID_CARD = "id_card"
    RADIO = "radio"
    KEYS = "keys"
    OTHER = "other"


EQUIPMENT_KIND_LABELS = {
    EquipmentKind.UNIFORM: _l("Uniform"),
    EquipmentKind.KIT8: _l("8-piece security kit"),
    EquipmentKind.SHIELD: _l("Riot shield"),
    EquipmentKind.FORK: _l("Steel restraint fork"),
    EquipmentKind.ID_CARD: _l("Guard ID card"),
    EquipmentKind.RADIO: _l("Radio"),
    EquipmentKind.KEYS: _l("Keys"),
    EquipmentKind.OTHER: _l("Other equipment"),
}

EQUIPMENT_CONDITION_LABELS = {
    "ok": _l("In order"),
    "damaged": _l("Damaged"),
    "missing": _l("Missing"),
}

EQUIPMENT_CHECK_LABELS = {
    "issue": _l("Issued"),
    "inspection": _l("Inspection"),
    "maintenance": _l("Maintenance"),
    "handover": _l("Checked at handover"),
    "returned": _l("Returned"),
}


class EquipmentItem(db.Model):
    """A piece of kit issued for a post, or to one guard (PAT-23, REC-24 equipment register).

    Set up and closed by the supervisor; its history (issue, inspections, maintenance, checks at
    each handover, return) is in ``EquipmentCheck``. ``value_fen`` is what it is charged at if
    lost or damaged.
    """

    __tablename__ = "patrol_equipment"

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("site.id"), index=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("patrol_post.id"), index=True)
    guard_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    kind: Mapped[str] = mapped_column(String(16))
    label: Mapped[str] = mapped_column(String(80), default="")
    value_fen: Mapped[int | None]
    issued_at = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    issued_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    returned_at = mapped_column(UTCDateTime)

    post = relationship("Post")
    guard = relationship("User", foreign_keys=[guard_id])

    @property
    def kind_label(self) -> str:
        return str(EQUIPMENT_KIND_LABELS.get(self.kind, self.kind))


class EquipmentCheck(db.Model):
    """One line of an item's history: issued, inspected, maintained, checked at a handover,
    returned; with the condition found (ok, damaged, missing)."""

    __tablename__ = "patrol_equipment_check"
    __table_args__ = (Index("ix_patrol_equipment_check_item", "equipment_id", "at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)
    equipment_id: Mapped[int] = mapped_column(ForeignKey("patrol_equipment.id"))
    check_kind: Mapped[str] = mapped_column(String(16))
    condition: Mapped[str] = mapped_column(String(8), default="ok")
    at = mapped_column(UTCDateTime, nullable=False)
    by_id: Mapped[int] = mapped_column(ForeignKey("user.id"))
    handover_id: Mapped[str | None] = mapped_column(ForeignKey("patrol_handover.id"))
    notes: Mapped[str] = mapped_column(Text, default="")

    by = relationship("User")


class AlarmWithdrawal(db.Model):
    """A missed-sign-in, late/missed-round or no-takeover alarm that a record synced late
    contradicts.

    The alarm (and ``MissedSignIn``) stays for audit; this row marks it withdrawn, with the
    record that disproved it (``evidence_id``, its device time ``evidence_at``) and why.
    ``what`` is ``sign_in``, ``round_late``, ``round_missed`` or ``takeover``;
    ``round_number`` is 0 except for rounds. One per alarm.
    """

    __tablename__ = "patrol_alarm_withdrawal"
    __table_args__ = (UniqueConstraint("shift_id", "what", "round_number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)
    shift_id: Mapped[int] = mapped_column(ForeignKey("patrol_shift.id"), index=True)
    what: Mapped[str] = mapped_column(String(16))
    round_number: Mapped[int] = mapped_column(default=0)
    missed_sign_in_id: Mapped[int | None] = mapped_column(ForeignKey("patrol_missed_sign_in.id"))
    evidence_id: Mapped[str] = mapped_column(String(36))
    evidence_at = mapped_column(UTCDateTime, nullable=False)  # device time of the record
    reason: Mapped[str] = mapped_column(Text, default="")
    withdrawn_at = mapped_column(UTCDateTime, default=utcnow, nullable=False)  # when it synced


# Evidence of the shift; incidents and gate entries are closed later, so they are not here.
append_only(
    ShiftSignIn,
    CheckpointScan,
    GateExit,
    Handover,
    SpotCheck,
    MissedSignIn,
    RoundEndedEarly,
    AlarmWithdrawal,
    EquipmentCheck,
)


class SupervisorPresence(db.Model):
    """PAT-09: a supervisor tapped "Arrived on site" or "Leaving site" at a guarded site.

    Made on the phone (``id`` its UUID, ``at`` its clock), kept even outside the geofence
    (flagged, with the distance); ``fieldapp.patrols.presence`` pairs the taps into presence.
    """

    __tablename__ = "patrol_presence"
    __table_args__ = (Index("ix_patrol_presence_supervisor_at", "supervisor_id", "at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("site.id"), index=True)
    supervisor_id: Mapped[int] = mapped_column(ForeignKey("user.id"))
    action: Mapped[str] = mapped_column(String(8))  # arrive | leave
    at = mapped_column(UTCDateTime, nullable=False)  # device time
    received_at = mapped_column(UTCDateTime, nullable=False)
    latitude: Mapped[float]
    longitude: Mapped[float]
    accuracy_m: Mapped[float | None]
    distance_m: Mapped[int | None]
    outside_geofence: Mapped[bool] = mapped_column(default=False)

    site = relationship("Site")


append_only(SupervisorPresence)
