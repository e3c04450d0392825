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
  ``notify`` also looks at, so deleting the event never raises the alarm again;
* rows of ``push_dedupe`` whose key can never be raised again. The code that builds a key
  says when that is, next to it, with ``forget_keys`` (the patrol checks: the shift ended more
  than their look-back ago; the complaint deadlines: the complaint is closed or gone; ...). A
  key is read as ``kind:id...``; a kind nobody declared is kept for ever. Such a dead key is
  not even written when its event goes. Whether a key is dead changes as its record moves on
  (a complaint closes), so the table is walked through again, ``PUSH_RETENTION_BATCH`` rows a
  tick, once every ``PUSH_DEDUPE_RECHECK_HOURS`` (24): the place in that walk is kept by each
  process (a restart only starts the walk again).

Each step deletes at most ``PUSH_RETENTION_BATCH`` (1,000) rows per tick, in the check's own
short transaction, and says when it left some: with the clock ticking every minute that is up
to 1.4 million rows a day per table, far above what comes in, so a backlog (the first run on a
year of history) drains in a few days without a long lock. When there is nothing to delete a
tick costs one query over the ``created_at`` / ``read_at`` indexes (and, while a walk
through ``push_dedupe`` is due, its primary key).

These tables are push plumbing, not field records: they are neither append-only nor audited
(``fieldapp.audit`` skips ``push_*`` tables), so deleting them bypasses no guard.
"""

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy.dialects import postgresql, sqlite

from fieldapp import jobs
from fieldapp.extensions import db
from fieldapp.push.dedupe import dead_keys
from fieldapp.push.models import Delivery, Notification, PushDedupe, PushEvent

log = logging.getLogger(__name__)

CHECK = "push.retention"
# Config key -> default; each overridable in the app config (see the module docstring for why).
DEFAULTS = {
    "PUSH_KEEP_DELIVERIES_DAYS": 30,
    "PUSH_KEEP_READ_DAYS": 90,
    "PUSH_KEEP_UNREAD_DAYS": 180,
    "PUSH_RETENTION_BATCH": 1000,
    "PUSH_DEDUPE_RECHECK_HOURS": 24,
}


# Keys are judged dead as of this long ago: a check that looks back a day reads a shift for
# another process whose clock is a little behind (each web process ticks its own without Redis).
CLOCK_SKEW = timedelta(hours=1)


def setting(key: str) -> int:
    return int(current_app.config.get(key, DEFAULTS[key]))


@dataclass
class Swept:
    """What one run deleted; ``more`` when a step hit the batch size and left rows behind."""

    deliveries: int = 0
    notifications: int = 0
    events: int = 0
    dedupe_keys: int = 0
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


@dataclass
class DedupeWalk:
    """Where this process is in its walk through ``push_dedupe`` (see the module docstring)."""

    after: tuple[int, str] | None = None  # the last (org_id, dedupe_key) looked at
    next_walk_at: datetime | None = None  # None: a walk is due (or under way)

    def due(self, now: datetime) -> bool:
        return self.next_walk_at is None or now >= self.next_walk_at

    def finish(self, now: datetime) -> None:
        self.after = None
        self.next_walk_at = now + timedelta(hours=setting("PUSH_DEDUPE_RECHECK_HOURS"))


def dedupe_walk() -> DedupeWalk:
    return current_app.extensions.setdefault("fieldapp.push.dedupe_walk", DedupeWalk())


def _dedupe_rows_after(after: tuple[int, str] | None):
    rows = db.select(PushDedupe.org_id, PushDedupe.dedupe_key)
    if after is not None:
        rows = rows.where(db.tuple_(PushDedupe.org_id, PushDedupe.dedupe_key) > after)
    return rows


def anything_to_do(cut: Cutoffs, walk: DedupeWalk | None = None) -> bool:
    """One query, each part an index range scan that is empty when there is nothing old."""
    old_events = db.select(PushEvent.id).where(PushEvent.created_at < cut.events)
    parts = [
        _old_deliveries(cut).exists(),
        _old_read_lines(cut).exists(),
        _old_unread_lines(cut).exists(),
        old_events.exists(),
    ]
    if walk is not None:
        parts.append(_dedupe_rows_after(walk.after).exists())
    return bool(db.session.scalar(db.select(db.or_(*parts))))


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
    walk = dedupe_walk()
    walking = walk.due(now)
    if not anything_to_do(cut, walk if walking else None):
        if walking:
            walk.finish(now)  # nothing left to walk through
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
        dead = dead_keys(now - CLOCK_SKEW, (r.dedupe_key for r in rows if r.dedupe_key is not None))
        keys = [
            {"org_id": r.org_id, "dedupe_key": r.dedupe_key, "raised_at": r.created_at}
            for r in rows
            if r.dedupe_key is not None and r.dedupe_key not in dead
        ]
        if keys:
            db.session.execute(_insert_ignoring_duplicates(PushDedupe), keys)
        if rows:
            db.session.execute(db.delete(PushEvent).where(PushEvent.id.in_([r.id for r in rows])))
        swept.events = len(rows)
        swept.more |= len(rows) == batch

    if walking:
        swept.dedupe_keys = _forget_dead_keys(now, walk, batch)
    return swept


def _forget_dead_keys(now: datetime, walk: DedupeWalk, batch: int) -> int:
    """The next ``batch`` rows of the walk: the dead ones go. Returns how many went."""
    rows = db.session.execute(
        _dedupe_rows_after(walk.after)
        .order_by(PushDedupe.org_id, PushDedupe.dedupe_key)
        .limit(batch)
    ).all()
    if len(rows) == batch:
        walk.after = (rows[-1].org_id, rows[-1].dedupe_key)
    else:
        walk.finish(now)
    dead = dead_keys(now - CLOCK_SKEW, {r.dedupe_key for r in rows})
    by_org: dict[int, list[str]] = defaultdict(list)
    for row in rows:
        if row.dedupe_key in dead:
            by_org[row.org_id].append(row.dedupe_key)
    for org_id, keys in by_org.items():
        db.session.execute(
            db.delete(PushDedupe).where(
                PushDedupe.org_id == org_id, PushDedupe.dedupe_key.in_(keys)
            )
        )
    return sum(len(keys) for keys in by_org.values())


@jobs.rule_check(CHECK)
def push_retention(now: datetime) -> Swept:
    """Each tick of the rule clock: one bounded batch of old push rows deleted."""
    swept = sweep(now)
    if swept.deliveries or swept.notifications or swept.events or swept.dedupe_keys:
        log.info(
            "push retention: deleted %d deliveries, %d inbox lines, %d events, %d dedupe keys%s",
            swept.deliveries,
            swept.notifications,
            swept.events,
            swept.dedupe_keys,
            " (more left for the next tick)" if swept.more else "",
        )
    return swept
