"""What the engine keeps: the mutation ledger, files, the change feed and open conflicts."""

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from fieldapp.extensions import db
from fieldapp.models.types import UTCDateTime, utcnow


class Mutation(db.Model):
    """One record sent by a phone, once. Its ID is the UUID the phone made.

    Applied and rejected mutations both stay here: a resend of either gets the same answer,
    and nothing is ever applied twice.
    """

    __tablename__ = "sync_mutation"
    __table_args__ = (Index("ix_sync_mutation_device_seq", "device_id", "seq", unique=True),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id"), index=True)
    device_id: Mapped[str] = mapped_column(ForeignKey("device.id"))
    seq: Mapped[int]
    record_type: Mapped[str] = mapped_column(String(64))
    record_id: Mapped[str] = mapped_column(String(36), index=True)
    content_hash: Mapped[str] = mapped_column(String(64))
    base_version: Mapped[int | None]
    payload = mapped_column(JSON, nullable=False)
    status: Mapped[str] = mapped_column(String(16))  # applied | rejected | conflict
    reason: Mapped[str | None] = mapped_column(String(64))
    message: Mapped[str | None] = mapped_column(Text)
    details = mapped_column(JSON)
    device_time = mapped_column(UTCDateTime, nullable=False)
    received_at = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    skew_seconds: Mapped[int] = mapped_column(default=0)
    skew_flagged: Mapped[bool] = mapped_column(default=False)


class StoredFile(db.Model):
    """A photo or signature, addressed by the SHA-256 of its bytes, uploaded in pieces."""

    __tablename__ = "sync_file"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)
    uploaded_by_id: Mapped[int] = mapped_column(ForeignKey("user.id"))
    content_type: Mapped[str] = mapped_column(String(32))
    size: Mapped[int] = mapped_column(BigInteger)
    received: Mapped[int] = mapped_column(BigInteger, default=0)
    complete: Mapped[bool] = mapped_column(default=False)
    created_at = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    completed_at = mapped_column(UTCDateTime)


class FileRef(db.Model):
    """A record that needs a file: it shows "photo pending" until the file is complete."""

    __tablename__ = "sync_file_ref"
    __table_args__ = (Index("ix_sync_file_ref_record", "record_type", "record_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"))
    mutation_id: Mapped[str] = mapped_column(ForeignKey("sync_mutation.id"))
    record_type: Mapped[str] = mapped_column(String(64))
    record_id: Mapped[str] = mapped_column(String(36))
    field: Mapped[str] = mapped_column(String(64))
    sha256: Mapped[str] = mapped_column(String(64), index=True)


class Change(db.Model):
    """The change feed phones pull from: a global sequence, never a clock.

    ``user_id`` / ``team_id`` say who needs the change (both empty: the whole organisation).
    ``data`` is the record as the phone needs it; ``deleted`` makes the row a tombstone.

    ``seq`` is the row's identity, numbered at INSERT. ``pos`` is its place in the feed (the
    phones' cursor), numbered at COMMIT in commit order, so a reader that sees ``pos`` n has
    already seen every change numbered below n. A database trigger sets it (migration
    ``7f28ae2e5d66``): on PostgreSQL a deferred constraint trigger that takes a transaction-scoped
    advisory lock, so the next transaction cannot number its changes before this one has
    committed; on SQLite (one writer at a time, so insert order is commit order) ``pos = seq``.
    It is NULL only while the inserting transaction is open, when no one else can see the row.
    """

    __tablename__ = "sync_change"
    __table_args__ = (Index("ix_sync_change_org_pos", "org_id", "pos", unique=True),)

    seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(db.Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    pos: Mapped[int | None] = mapped_column(BigInteger().with_variant(db.Integer, "sqlite"))
    org_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    team_id: Mapped[int | None] = mapped_column(ForeignKey("team.id"))
    entity: Mapped[str] = mapped_column(String(64))
    entity_id: Mapped[str] = mapped_column(String(64))
    deleted: Mapped[bool] = mapped_column(default=False)
    data = mapped_column(JSON)
    at = mapped_column(UTCDateTime, default=utcnow, nullable=False)


class Conflict(db.Model):
    """A change the ownership rules could not settle: both sides kept for a supervisor."""

    __tablename__ = "sync_conflict"

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)
    mutation_id: Mapped[str] = mapped_column(ForeignKey("sync_mutation.id"))
    record_type: Mapped[str] = mapped_column(String(64))
    record_id: Mapped[str] = mapped_column(String(36))
    server_version: Mapped[int]
    server_fields = mapped_column(JSON, nullable=False)
    phone_fields = mapped_column(JSON, nullable=False)
    created_at = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    resolved_at = mapped_column(UTCDateTime)
    resolved_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    resolution: Mapped[str | None] = mapped_column(String(16))  # server | phone

    mutation = relationship("Mutation")


class HeldBatch(db.Model):
    """A batch a revoked phone pushed: kept whole, applied or discarded only by the office.

    ``mutations`` is the batch as the phone sent it (new mutations only: one already held or
    in the ledger is not held again) and never changes; ``status`` goes once from ``held`` to
    ``applied`` (``results`` then says what the engine answered for each) or ``discarded``.
    """

    __tablename__ = "sync_held_batch"

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)
    device_id: Mapped[str] = mapped_column(ForeignKey("device.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id"))
    received_at = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    mutations = mapped_column(JSON, nullable=False)
    count: Mapped[int]
    status: Mapped[str] = mapped_column(String(16), default="held")  # held|applied|discarded
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    decided_at = mapped_column(UTCDateTime)
    note: Mapped[str] = mapped_column(String(500), default="")
    results = mapped_column(JSON)

    user = relationship("User", foreign_keys=[user_id])
    decided_by = relationship("User", foreign_keys=[decided_by_id])
