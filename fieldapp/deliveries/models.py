"""Routes, stops with their delivery slips, and the append-only facts of a courier's day.

A ``Route`` is one courier's run on one date; its ``Stop``s carry the delivery slip (送货小票)
and the promised time. What happens in the field is recorded as facts that are never edited
or deleted (``VehicleCheck``, ``StopArrival``, ``ProofOfDelivery``, ``Refusal``,
``CashHandover``, ``DayClose``): a correction is a new record naming the one it corrects.
Amounts are integer fen.
"""

from enum import StrEnum

from flask_babel import lazy_gettext as _l
from sqlalchemy import JSON, Date, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from fieldapp.extensions import db
from fieldapp.models.facts import append_only
from fieldapp.models.types import UTCDateTime, new_uuid, utcnow


class StopState(StrEnum):
    PENDING = "pending"
    ARRIVED = "arrived"
    DELIVERED = "delivered"
    REFUSED = "refused"  # open until the dispatcher resolves it (DEL-07)
    RETURNED = "returned"  # refused, and the goods go back: closed
    SKIPPED = "skipped"


STOP_STATE_LABELS = {
    StopState.PENDING: _l("To do"),
    StopState.ARRIVED: _l("Arrived"),
    StopState.DELIVERED: _l("Delivered"),
    StopState.REFUSED: _l("Refused"),
    StopState.RETURNED: _l("Returned"),
    StopState.SKIPPED: _l("Skipped"),
}
# Served (or given up with a reason) for the stop-order check (DEL-01).
DONE_STATES = frozenset(
    {StopState.DELIVERED, StopState.REFUSED, StopState.RETURNED, StopState.SKIPPED}
)
OPEN_STATES = frozenset({StopState.PENDING, StopState.ARRIVED})


class Settlement(StrEnum):
    CASH = "cash"
    ELECTRONIC = "electronic"


SETTLEMENT_LABELS = {Settlement.CASH: _l("Cash"), Settlement.ELECTRONIC: _l("Electronic")}

ROUTE_KIND_LABELS = {"fixed": _l("Fixed route"), "flexible": _l("Flexible route")}

REFUSAL_REASONS = {
    "customer_absent": _l("Customer absent, shop closed"),
    "refused_goods": _l("Customer refused the goods"),
    "wrong_goods": _l("Goods do not match the order"),
    "damaged": _l("Goods damaged"),
    "payment": _l("Customer cannot pay"),
    "other": _l("Other (say what)"),
}

VEHICLE_CHECK_LABELS = {
    "no_faults": _l("No faults (brakes, lights, tyres)"),
    "condition": _l("Vehicle in good condition, load secured"),
    "licence": _l("Driving licence with me"),
    "registration": _l("Vehicle registration on board"),
    "insurance": _l("Insurance papers on board"),
}


class Route(db.Model):
    """One courier's delivery run on one date, with a vehicle."""

    __tablename__ = "delivery_route"
    __table_args__ = (Index("ix_delivery_route_org_date", "org_id", "date"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("team.id"), index=True)
    date = mapped_column(Date, nullable=False)
    name: Mapped[str] = mapped_column(String(80))
    kind: Mapped[str] = mapped_column(String(16), default="fixed")
    courier_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"), index=True)
    vehicle_plate: Mapped[str] = mapped_column(String(16), default="")
    two_person_crew: Mapped[bool] = mapped_column(default=False)
    # VEH-02: where the vehicle must be parked at the day's end (no coordinates: no GPS check).
    parking_name: Mapped[str] = mapped_column(String(80), default="", server_default="")
    parking_latitude: Mapped[float | None]
    parking_longitude: Mapped[float | None]
    parking_radius_m: Mapped[int] = mapped_column(default=150, server_default="150")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    created_at = mapped_column(UTCDateTime, default=utcnow, nullable=False)

    team = relationship("Team")
    courier = relationship("User", foreign_keys=[courier_id])
    stops = relationship("Stop", back_populates="route", order_by="Stop.sequence")

    @property
    def kind_label(self) -> str:
        return str(ROUTE_KIND_LABELS.get(self.kind, self.kind))

    @property
    def has_parking_place(self) -> bool:
        return self.parking_latitude is not None and self.parking_longitude is not None


class Stop(db.Model):
    """A customer on a route, with its delivery slip; versioned (dispatcher and courier)."""

    __tablename__ = "delivery_stop"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_uuid)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)
    route_id: Mapped[int] = mapped_column(ForeignKey("delivery_route.id"), index=True)
    sequence: Mapped[int]
    site_id: Mapped[int | None] = mapped_column(ForeignKey("site.id"))
    customer_name: Mapped[str] = mapped_column(String(120))
    customer_code: Mapped[str] = mapped_column(String(32), index=True)
    address: Mapped[str] = mapped_column(String(255), default="")
    customer_phone: Mapped[str] = mapped_column(String(32), default="")
    # SLA-01: flexible routes from the phone confirmation, fixed routes by the window.
    phone_confirmed_at = mapped_column(UTCDateTime)
    window_start = mapped_column(UTCDateTime)
    window_end = mapped_column(UTCDateTime)
    promised_at = mapped_column(UTCDateTime, index=True)
    # The delivery slip (送货小票).
    ticket_no: Mapped[str] = mapped_column(String(32), default="")
    tote_boxes: Mapped[str] = mapped_column(String(120), default="")
    amount_due_fen: Mapped[int] = mapped_column(default=0)
    settlement: Mapped[str] = mapped_column(String(16), default=Settlement.ELECTRONIC)
    # Status: what the courier did and what the dispatcher decided.
    state: Mapped[str] = mapped_column(String(16), default=StopState.PENDING)
    arrived_at = mapped_column(UTCDateTime)
    delivered_at = mapped_column(UTCDateTime)
    on_time: Mapped[bool | None]
    resolution: Mapped[str | None] = mapped_column(String(16))
    resolved_at = mapped_column(UTCDateTime)
    resolved_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    version: Mapped[int] = mapped_column(default=1)
    created_at = mapped_column(UTCDateTime, default=utcnow, nullable=False)

    route = relationship("Route", back_populates="stops")
    site = relationship("Site")
    items = relationship("SlipItem", back_populates="stop", order_by="SlipItem.id")

    @property
    def state_label(self) -> str:
        return str(STOP_STATE_LABELS.get(self.state, self.state))

    @property
    def is_cash(self) -> bool:
        return self.settlement == Settlement.CASH

    @property
    def settlement_label(self) -> str:
        return str(SETTLEMENT_LABELS.get(self.settlement, self.settlement))


class SlipItem(db.Model):
    """One line of a delivery slip: an item code (条烟码号), its variety and quantity."""

    __tablename__ = "delivery_slip_item"

    id: Mapped[int] = mapped_column(primary_key=True)
    stop_id: Mapped[str] = mapped_column(ForeignKey("delivery_stop.id"), index=True)
    code: Mapped[str] = mapped_column(String(64), index=True)
    variety: Mapped[str] = mapped_column(String(120))
    quantity: Mapped[int]
    special_shape: Mapped[bool] = mapped_column(default=False)  # 异型 (DEL-03)

    stop = relationship("Stop", back_populates="items")


class _Fact:
    """Columns every field fact has: who, from which phone, when (phone and server clocks)."""

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id"), index=True)
    device_time = mapped_column(UTCDateTime, nullable=False)
    received_at = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    latitude: Mapped[float | None]
    longitude: Mapped[float | None]
    accuracy_m: Mapped[float | None]


class VehicleCheck(_Fact, db.Model):
    """The pre-trip check (VEH-01): each item passed or not; a failure blocks the start."""

    __tablename__ = "delivery_vehicle_check"

    route_id: Mapped[int] = mapped_column(ForeignKey("delivery_route.id"), index=True)
    results: Mapped[dict] = mapped_column(JSON)
    passed: Mapped[bool]
    odometer_km: Mapped[int | None]
    note: Mapped[str] = mapped_column(Text, default="")


class StopArrival(_Fact, db.Model):
    """Arrived at a stop: time and GPS stamp, inside the shop's geofence or not (DEL-01)."""

    __tablename__ = "delivery_stop_arrival"

    stop_id: Mapped[str] = mapped_column(ForeignKey("delivery_stop.id"), index=True)
    inside_geofence: Mapped[bool | None]
    distance_m: Mapped[int | None]
    out_of_order_reason: Mapped[str] = mapped_column(Text, default="")


class ProofOfDelivery(_Fact, db.Model):
    """Goods checked, paid and signed for (DEL-02 to DEL-06, DEL-12, DEL-13)."""

    __tablename__ = "delivery_proof"
    __table_args__ = (  # the KPI page's discrepant proofs (performance.md)
        Index(
            "ix_delivery_proof_discrepant",
            "stop_id",
            postgresql_where=db.text("corrects_id IS NOT NULL OR condition <> 'ok'"),
            sqlite_where=db.text("corrects_id IS NOT NULL OR condition <> 'ok'"),
        ),
    )

    stop_id: Mapped[str] = mapped_column(ForeignKey("delivery_stop.id"), index=True)
    checked_codes: Mapped[list] = mapped_column(JSON)
    scanned_codes: Mapped[list] = mapped_column(JSON)
    special_confirmed: Mapped[bool] = mapped_column(default=False)
    amount_due_fen: Mapped[int] = mapped_column(default=0)
    cash_received_fen: Mapped[int | None]
    cash_variance_fen: Mapped[int | None]
    signature: Mapped[str | None] = mapped_column(String(64))
    photo: Mapped[str | None] = mapped_column(String(64))
    condition: Mapped[str] = mapped_column(String(16), default="ok")
    damage_quantity: Mapped[int | None]
    damage_photo: Mapped[str | None] = mapped_column(String(64))
    damage_note: Mapped[str] = mapped_column(Text, default="")
    market_note: Mapped[str] = mapped_column(Text, default="")
    product_info_explained: Mapped[bool] = mapped_column(default=False)
    driver_confirmed: Mapped[bool] = mapped_column(default=False)
    deliverer_confirmed: Mapped[bool] = mapped_column(default=False)
    on_time: Mapped[bool | None]
    corrects_id: Mapped[str | None] = mapped_column(ForeignKey("delivery_proof.id"))
    correction_reason: Mapped[str] = mapped_column(Text, default="")


class Refusal(_Fact, db.Model):
    """The customer refused, or the delivery failed (DEL-07): the dispatcher is alerted."""

    __tablename__ = "delivery_refusal"

    stop_id: Mapped[str] = mapped_column(ForeignKey("delivery_stop.id"), index=True)
    reason_code: Mapped[str] = mapped_column(String(32))
    note: Mapped[str] = mapped_column(Text, default="")
    photo: Mapped[str | None] = mapped_column(String(64))

    @property
    def reason_label(self) -> str:
        return str(REFUSAL_REASONS.get(self.reason_code, self.reason_code))


class CashHandover(_Fact, db.Model):
    """Cash collected vs deposited, handed to the bookkeeper with both signatures (DEL-08)."""

    __tablename__ = "delivery_cash_handover"

    route_id: Mapped[int] = mapped_column(ForeignKey("delivery_route.id"), index=True)
    collected_fen: Mapped[int]
    deposited_fen: Mapped[int]
    variance_fen: Mapped[int]
    deposit_reference: Mapped[str] = mapped_column(String(64), default="")
    variance_explanation: Mapped[str] = mapped_column(Text, default="")
    bookkeeper_name: Mapped[str] = mapped_column(String(80))
    courier_signature: Mapped[str] = mapped_column(String(64))
    bookkeeper_signature: Mapped[str] = mapped_column(String(64))
    corrects_id: Mapped[str | None] = mapped_column(ForeignKey("delivery_cash_handover.id"))


class DayClose(_Fact, db.Model):
    """The day's end: goods brought back, vehicle cleaned and parked (DEL-14, VEH-02)."""

    __tablename__ = "delivery_day_close"

    route_id: Mapped[int] = mapped_column(ForeignKey("delivery_route.id"), index=True)
    returned: Mapped[dict] = mapped_column(JSON)
    vehicle_cleaned: Mapped[bool]
    parked_at_designated: Mapped[bool]
    parking_distance_m: Mapped[int | None]  # from the designated place, by the phone's GPS
    odometer_km: Mapped[int | None]
    note: Mapped[str] = mapped_column(Text, default="")


class DeliveryRating(db.Model):
    """The customer's rating of a delivery (DEL-15), from the e-receipt: one per stop, kept."""

    __tablename__ = "delivery_rating"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_uuid)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)
    stop_id: Mapped[str] = mapped_column(ForeignKey("delivery_stop.id"), unique=True)
    stars: Mapped[int]
    comment: Mapped[str] = mapped_column(Text, default="")
    created_at = mapped_column(UTCDateTime, default=utcnow, nullable=False)


FACTS = (
    VehicleCheck,
    StopArrival,
    ProofOfDelivery,
    Refusal,
    CashHandover,
    DayClose,
    DeliveryRating,
)


append_only(*FACTS)
