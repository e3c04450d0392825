"""The change feed: what a phone must learn about, in a sequence it can resume from."""

from sqlalchemy import event, inspect, or_
from sqlalchemy.orm import Session

from fieldapp.access import supervised_team_ids
from fieldapp.extensions import db
from fieldapp.models import Role, User
from fieldapp.sync.models import Change

PULL_LIMIT = 500
QUEUED = "fieldapp.sync.queued_changes"  # session.info: changes not flushed yet, by record
# The cursor is a change's place in the feed, ``Change.pos``, numbered when its transaction
# commits and in commit order (a database trigger, see ``Change``): once a pull sees a number,
# every lower number is already visible or never will be, so the cursor moves straight to the
# last change it sends, however long another publishing transaction stays open. (On PostgreSQL
# the trigger holds an advisory lock from its first number to the end of the commit, so
# publishing commits queue one behind the other there; see migration 7f28ae2e5d66.)

# Domains add what today's work needs offline: name -> fn(user) -> JSON-able data, and
# fn(user) -> list of page URLs the service worker should keep.
DAYPACK_DATA = {}
DAYPACK_PAGES = []


def publish(
    org_id: int,
    entity: str,
    entity_id,
    data: dict | None,
    *,
    user_id=None,
    team_id=None,
    deleted: bool = False,
) -> None:
    """Queue a change for the phones that need it; committed with the caller's transaction.

    Published again for the same record and audience before the session flushes (a courier's
    push: the stop arrived, then delivered), the queued change is rewritten, not doubled: both
    would commit together, so no phone could ever see the first. (Savepoints flush when they
    begin, so a change is never rewritten across one.)
    """
    queued = db.session.info.setdefault(QUEUED, {})
    key = (org_id, entity, str(entity_id), user_id, team_id)
    change = queued.get(key)
    if change is not None and inspect(change).pending:
        change.data, change.deleted = data, deleted
        return
    change = Change(
        org_id=org_id,
        user_id=user_id,
        team_id=team_id,
        entity=entity,
        entity_id=str(entity_id),
        data=data,
        deleted=deleted,
    )
    db.session.add(change)
    queued[key] = change


@event.listens_for(Session, "after_flush_postexec")
def _forget_queued(session: Session, _flush_context) -> None:
    session.info.pop(QUEUED, None)  # flushed: nothing left to rewrite


def _audience(user: User):
    teams = [user.team_id] if user.team_id else []
    if user.role in (Role.SUPERVISOR, Role.ADMIN):
        teams += supervised_team_ids(user)
    return or_(
        Change.user_id == user.id,
        Change.team_id.in_(teams) if teams else False,
        (Change.user_id.is_(None)) & (Change.team_id.is_(None)),
    )


def pull(user: User, cursor: int, limit: int = PULL_LIMIT) -> tuple[list[dict], int, bool]:
    """Changes after ``cursor`` for ``user``: (changes, new cursor, more to come)."""
    rows = db.session.scalars(
        db.select(Change)
        .where(Change.org_id == user.org_id, Change.pos > cursor, _audience(user))
        .order_by(Change.pos)
        .limit(limit + 1)
    ).all()
    more = len(rows) > limit
    rows = rows[:limit]
    changes = [
        {
            "seq": c.pos,
            "entity": c.entity,
            "id": c.entity_id,
            "deleted": c.deleted,
            "data": None if c.deleted else c.data,
        }
        for c in rows
    ]
    # Past the last change sent; with nothing for this user, past everyone's changes so far
    # (so the next pull is cheap).
    new_cursor = rows[-1].pos if rows else max(cursor, latest_seq(user.org_id))
    return changes, new_cursor, more


def latest_seq(org_id: int) -> int:
    """The organisation's last place in the feed: a cursor that skips everything so far."""
    return db.session.scalar(
        db.select(db.func.coalesce(db.func.max(Change.pos), 0)).where(Change.org_id == org_id)
    )


def daypack(user: User) -> dict:
    """Everything today's work needs offline, and the cursor to pull changes from after it."""
    cursor = latest_seq(user.org_id)
    data = {name: provide(user) for name, provide in DAYPACK_DATA.items()}
    pages = ["/"]
    for provide in DAYPACK_PAGES:
        pages.extend(provide(user))
    return {"cursor": cursor, "data": data, "pages": pages}
