"""What push notifications keep: subscriptions, events, the inbox, deliveries, preferences.

The inbox (``Notification``) is the truth; a ``Delivery`` is one best-effort attempt to make one
phone buzz about it. Everything a worker needs is in these tables, so a worker that dies loses
nothing: the rule clock hands unfinished deliveries to the next one.
"""

from sqlalchemy import JSON, ForeignKey, Index, String, Text, Time, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from fieldapp.extensions import db
from fieldapp.models.types import UTCDateTime, utcnow


class PushSubscription(db.Model):
    """A browser's push endpoint and keys, for one user on one phone."""

    __tablename__ = "push_subscription"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id"), index=True)
    device_id: Mapped[str | None] = mapped_column(ForeignKey("device.id"), index=True)
    endpoint: Mapped[str] = mapped_column(String(1024), unique=True)
    p256dh: Mapped[str] = mapped_column(String(128))
    auth: Mapped[str] = mapped_column(String(64))
    user_agent: Mapped[str] = mapped_column(String(255), default="")
    created_at = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    last_seen_at = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    last_success_at = mapped_column(UTCDateTime)

    user = relationship("User")
    device = relationship("Device")


class PushEvent(db.Model):
    """Something happened that people must hear about. ``dedupe_key`` makes it happen once."""

    __tablename__ = "push_event"
    __table_args__ = (UniqueConstraint("org_id", "dedupe_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"))
    kind: Mapped[str] = mapped_column(String(64))
    dedupe_key: Mapped[str | None] = mapped_column(String(200))
    url: Mapped[str] = mapped_column(String(512))
    params = mapped_column(JSON, nullable=False)
    alarm: Mapped[bool] = mapped_column(default=False)
    ttl: Mapped[int]
    urgency: Mapped[str] = mapped_column(String(8))
    created_at = mapped_column(UTCDateTime, default=utcnow, nullable=False, index=True)


class PushDedupe(db.Model):
    """What is left of a deleted event with a ``dedupe_key``: that it was raised.

    Retention (``retention.py``) deletes old events once no inbox line needs them, but some
    rule-clock conditions hold for ever (an open complaint past its deadline, a forced visit
    never made); ``notify`` looks here too, so such an alarm is not raised a second time.
    A row goes once the code that builds its key says it can never be raised again
    (``dedupe.py``).
    """

    __tablename__ = "push_dedupe"

    org_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), primary_key=True)
    dedupe_key: Mapped[str] = mapped_column(String(200), primary_key=True)
    raised_at = mapped_column(UTCDateTime, nullable=False)


class Notification(db.Model):
    """One line of one person's inbox, rendered in their language when it was raised."""

    __tablename__ = "push_notification"
    __table_args__ = (
        UniqueConstraint("event_id", "user_id"),
        Index("ix_push_notification_user_created", "user_id", "created_at"),
        # Retention: "read before X" and "unread and created before Y" (read_at IS NULL).
        Index("ix_push_notification_read_created", "read_at", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("push_event.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id"))
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    channel: Mapped[str] = mapped_column(String(8))  # push | inapp, as the user chose
    created_at = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    read_at = mapped_column(UTCDateTime)

    event = relationship("PushEvent", lazy="joined")

    @property
    def url(self) -> str:
        return self.event.url

    @property
    def kind(self) -> str:
        return self.event.kind


class Delivery(db.Model):
    """Sending one notification to one subscription: pending until sent, given up or expired.

    ``next_attempt_at`` is when it may go (later for quiet hours and retries); a worker claims
    it with ``claim`` until ``claimed_until``, so two workers never send it twice, and a claim
    left by a dead worker runs out.
    """

    __tablename__ = "push_delivery"
    __table_args__ = (Index("ix_push_delivery_due", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    notification_id: Mapped[int] = mapped_column(ForeignKey("push_notification.id"), index=True)
    subscription_id: Mapped[int] = mapped_column(
        ForeignKey("push_subscription.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[str] = mapped_column(String(12), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at = mapped_column(UTCDateTime, nullable=False)
    claim: Mapped[str | None] = mapped_column(String(32), index=True)
    claimed_until = mapped_column(UTCDateTime)
    last_status: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(String(200))
    sent_at = mapped_column(UTCDateTime)
    created_at = mapped_column(UTCDateTime, default=utcnow, nullable=False, index=True)


class Preference(db.Model):
    """A user's choice for one kind: push, or in-app only. No row: the kind's default."""

    __tablename__ = "push_preference"

    user_id: Mapped[int] = mapped_column(ForeignKey("user.id"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(64), primary_key=True)
    channel: Mapped[str] = mapped_column(String(8))


class QuietHours(db.Model):
    """When a user's phone stays silent for everything but alarms (local time)."""

    __tablename__ = "push_quiet_hours"

    user_id: Mapped[int] = mapped_column(ForeignKey("user.id"), primary_key=True)
    start = mapped_column(Time, nullable=False)
    end = mapped_column(Time, nullable=False)
