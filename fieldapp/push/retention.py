"""Retention: the push tables keep what someone may still need, not every push ever sent.

At 5,000 workers and a few notifications each a day, ``push_notification`` and
``push_delivery`` would grow for ever (issue 9: cost must not grow with history). The
``push.retention`` rule check deletes, at each tick of the rule clock:

* delivery attempts created more than ``PUSH_KEEP_DELIVERIES_DAYS`` (30) ago. A delivery is
  plumbing: it is finished within a day (quiet hours end, six retries of at most an hour, TTLs
  of hours), and a month is enough to look into "my phone did not buzz last week";
* inbox lines read more than ``PUSH_KEEP_READ_DAYS`` (90) ago: a quarter of looking back
  at what one was told, which covers a monthly appraisal and its disputes;
* inbox lines never read and older than ``PUSH_KEEP_UNREAD_DAYS`` (180): an unread line is
  the one a worker may still come back to, so it stays twice as long; after half a year it is
  no longer news. (The records the notifications point to are not touched: they have their
  own pages, history and audit trail.)
* events no inbox line refers to any more, once older than ``PUSH_KEEP_UNREAD_DAYS +
  PUSH_KEEP_READ_DAYS`` (270 days: the longest an inbox line can live, read on its last
  unread day). An event with a ``dedupe_key`` is the rule clock's memory that an alarm was
  raised, and some conditions hold for ever (an open complaint past its deadline, a forced
  visit never made): its ``(org_id, dedupe_key)`` is kept in ``push_dedupe``, which
  ``notify`` also looks at, so deleting the event never raises the alarm again. That small row
  (an organisation id, a key of some 40 characters and a time) is all that stays.

Each step deletes at most ``PUSH_RETENTION_BATCH`` (1,000) rows per tick, in the check's own
short transaction, and says when it left some: with the clock ticking every minute that is up
to 1.4 million rows a day per table, far above what comes in, so a backlog (the first run on a
year of history) drains in a few days without a long lock. When there is nothing to delete a
tick costs one query over the ``created_at`` / ``read_at`` indexes.

These tables are push plumbing, not field records: they are neither append-only nor audited
(``fieldapp.audit`` skips ``push_*`` tables), so deleting them bypasses no guard.
"""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy.dialects import postgresql, sqlite

from fieldapp import jobs
from fieldapp.extensions import db
from fieldapp.push.models import Delivery, Notification, PushDedupe, PushEvent

log = logging.getLogger(__name__)

CHECK = "push.retention"
# Config key -> default; each overridable in the app config (see the module docstring for why).
DEFAULTS = {
    "PUSH_KEEP_DELIVERIES_DAYS": 30,
    "PUSH_KEEP_READ_DAYS": 90,
    "PUSH_KEEP_UNREAD_DAYS": 180,
    "PUSH_RETENTION_BATCH": 1000,
}


def setting(key: str) -> int:
    return int(current_app.config.get(key, DEFAULTS[key]))


@dataclass
class Swept:
    """What one run deleted; ``more`` when a step hit the batch size and left rows behind."""

    deliveries: int = 0
    notifications: int = 0
    events: int = 0
    more: bool = False


@dataclass(frozen=True)
class Cutoffs:
    deliveries: datetime
    read: datetime
    unread: datetime
    events: datetime

    @classmethod
    def at(cls, now: datetime) -> "Cutoffs":
        read = timedelta(days=setting("PUSH_KEEP_READ_DAYS"))
        unread = timedelta(days=setting("PUSH_KEEP_UNREAD_DAYS"))
        return cls(
            deliveries=now - timedelta(days=setting("PUSH_KEEP_DELIVERIES_DAYS")),
            read=now - read,
            unread=now - unread,
            events=now - unread - read,
        )


def _old_deliveries(cut: Cutoffs):
    return db.select(Delivery.id).where(Delivery.created_at < cut.deliveries)


def _old_read_lines(cut: Cutoffs):
    return db.select(Notification.id).where(Notification.read_at < cut.read)


def _old_unread_lines(cut: Cutoffs):
    return db.select(Notification.id).where(
        Notification.read_at.is_(None), Notification.created_at < cut.unread
    )


def _old_events(cut: Cutoffs):
    referenced = db.select(Notification.id).where(Notification.event_id == PushEvent.id)
    return db.select(
        PushEvent.id, PushEvent.org_id, PushEvent.dedupe_key, PushEvent.created_at
    ).where(PushEvent.created_at < cut.events, ~referenced.exists())


def anything_to_do(cut: Cutoffs) -> bool:
    """One query, each part an index range scan that is empty when there is nothing old."""
    old_events = db.select(PushEvent.id).where(PushEvent.created_at < cut.events)
    return bool(
        db.session.scalar(
            db.select(
                db.or_(
                    _old_deliveries(cut).exists(),
                    _old_read_lines(cut).exists(),
                    _old_unread_lines(cut).exists(),
                    old_events.exists(),
                )
            )
        )
    )


def _ids(query, limit: int) -> list[int]:
    return list(db.session.scalars(query.limit(limit))) if limit > 0 else []


def _insert_ignoring_duplicates(model):
    """Without Redis every web process runs its own clock: two retention runs may meet."""
    if db.session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(model).on_conflict_do_nothing()
    return sqlite.insert(model).on_conflict_do_nothing()


def sweep(now: datetime, batch: int | None = None) -> Swept:
    """Delete one batch of each kind of old row (see the module docstring). Not committed."""
    batch = batch or setting("PUSH_RETENTION_BATCH")
    cut = Cutoffs.at(now)
    swept = Swept()
    if not anything_to_do(cut):
        return swept

    ids = _ids(_old_deliveries(cut).order_by(Delivery.created_at), batch)
    if ids:
        db.session.execute(db.delete(Delivery).where(Delivery.id.in_(ids)))
    swept.deliveries = len(ids)
    swept.more |= len(ids) == batch

    ids = _ids(_old_read_lines(cut).order_by(Notification.read_at), batch)
    ids += _ids(_old_unread_lines(cut).order_by(Notification.created_at), batch - len(ids))
    if ids:
        # Their deliveries are normally long gone (30 days < 90); not during a first backlog.
        db.session.execute(db.delete(Delivery).where(Delivery.notification_id.in_(ids)))
        db.session.execute(db.delete(Notification).where(Notification.id.in_(ids)))
    swept.notifications = len(ids)
    lines_left = len(ids) == batch
    swept.more |= lines_left

    if not lines_left:  # events wait for their lines: scanning still-referenced ones is waste
        rows = db.session.execute(
            _old_events(cut).order_by(PushEvent.created_at).limit(batch)
        ).all()
        keys = [
            {"org_id": r.org_id, "dedupe_key": r.dedupe_key, "raised_at": r.created_at}
            for r in rows
            if r.dedupe_key is not None
        ]
        if keys:
            db.session.execute(_insert_ignoring_duplicates(PushDedupe), keys)
        if rows:
            db.session.execute(db.delete(PushEvent).where(PushEvent.id.in_([r.id for r in rows])))
        swept.events = len(rows)
        swept.more |= len(rows) == batch
    return swept


@jobs.rule_check(CHECK)
def push_retention(now: datetime) -> Swept:
    """Each tick of the rule clock: one bounded batch of old push rows deleted."""
    swept = sweep(now)
    if swept.deliveries or swept.notifications or swept.events:
        log.info(
            "push retention: deleted %d deliveries, %d inbox lines, %d events%s",
            swept.deliveries,
            swept.notifications,
            swept.events,
            " (more left for the next tick)" if swept.more else "",
        )
    return swept
