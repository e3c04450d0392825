"""The change feed: what a phone must learn about, in a sequence it can resume from."""

from datetime import timedelta

from sqlalchemy import or_

from fieldapp.access import supervised_team_ids
from fieldapp.extensions import db
from fieldapp.models import Role, User, utcnow
from fieldapp.sync.models import Change

PULL_LIMIT = 500
# A change's sequence number is taken when it is inserted but becomes visible when its
# transaction commits, so a lower number can appear after a higher one was read. The cursor
# only moves past changes older than this; newer ones are sent again on the next pull, which
# the phone treats as the same upsert. It must outlast any transaction that publishes: web
# requests are cut at gunicorn's --timeout (30 s, docs/deploy.md); a transaction held open
# longer than this (a stuck lock) can still leave a phone without that change until its next
# day pack. (SQLite has one writer at a time, so there commit order is sequence order.)
SETTLE = timedelta(seconds=60)

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
    """Queue a change for the phones that need it; committed with the caller's transaction."""
    db.session.add(
        Change(
            org_id=org_id,
            user_id=user_id,
            team_id=team_id,
            entity=entity,
            entity_id=str(entity_id),
            data=data,
            deleted=deleted,
        )
    )


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
        .where(Change.org_id == user.org_id, Change.seq > cursor, _audience(user))
        .order_by(Change.seq)
        .limit(limit + 1)
    ).all()
    more = len(rows) > limit
    rows = rows[:limit]
    changes = [
        {
            "seq": c.seq,
            "entity": c.entity,
            "id": c.entity_id,
            "deleted": c.deleted,
            "data": None if c.deleted else c.data,
        }
        for c in rows
    ]
    settled_before = utcnow() - SETTLE
    new_cursor = cursor
    for change in rows:
        if change.at > settled_before:
            break
        new_cursor = change.seq
    if not rows:
        # Nothing for this user: skip other people's settled changes so the next pull is cheap.
        new_cursor = max(cursor, latest_seq(user.org_id, settled=True))
    return changes, new_cursor, more


def latest_seq(org_id: int, settled: bool = False) -> int:
    query = db.select(db.func.coalesce(db.func.max(Change.seq), 0)).where(Change.org_id == org_id)
    if settled:
        query = query.where(Change.at <= utcnow() - SETTLE)
    return db.session.scalar(query)


def daypack(user: User) -> dict:
    """Everything today's work needs offline, and the cursor to pull changes from after it."""
    cursor = latest_seq(user.org_id, settled=True)
    data = {name: provide(user) for name, provide in DAYPACK_DATA.items()}
    pages = ["/"]
    for provide in DAYPACK_PAGES:
        pages.extend(provide(user))
    return {"cursor": cursor, "data": data, "pages": pages}
