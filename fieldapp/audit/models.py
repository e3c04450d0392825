"""The audit trail: one row per created, changed or deleted business record, chained by hash."""

import json

from sqlalchemy import Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from fieldapp.extensions import db
from fieldapp.models.types import UTCDateTime

GENESIS = "0" * 64


class AuditEntry(db.Model):
    """Who did what to which row, when; ``hash`` covers ``prev_hash`` and the entry itself.

    Append-only: rows are written in bulk at commit under a lock and never updated. The ID is
    the entry's position in the chain (assigned under the lock, no gaps), so a missing entry
    shows as a gap as well as a broken link.
    """

    __tablename__ = "audit_entry"
    # Few indexes: every one is paid on each append. The admin page filters within an
    # organisation (newest first by ID); a record's history is looked up by table and row.
    __table_args__ = (Index("ix_audit_entry_record", "table_name", "row_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at = mapped_column(UTCDateTime, nullable=False)
    org_id: Mapped[int | None] = mapped_column(index=True)
    actor: Mapped[str] = mapped_column(String(80))  # a username, "device:<id>" or "system"
    actor_user_id: Mapped[int | None]
    actor_device_id: Mapped[str | None] = mapped_column(String(36))
    action: Mapped[str] = mapped_column(String(16))  # create | update | reassign | delete
    table_name: Mapped[str] = mapped_column(String(64))
    row_id: Mapped[str] = mapped_column(String(64))
    # Compact JSON with sorted keys, exactly the text that was hashed: {field: value} for a
    # create or delete, {field: [old, new]} for an update.
    changes: Mapped[str] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))

    @property
    def fields(self) -> dict:
        return json.loads(self.changes)
