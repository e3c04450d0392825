"""Recording and verifying the audit trail.

Every business record the ORM creates, changes or deletes gets one entry: who (the signed-in
user, the syncing phone, or "system"), what (create, update, reassign, delete), which row,
and the changed fields (old and new values; secrets are masked). Entries are gathered at each
flush, forgotten with a rolled-back savepoint, and written in one executemany just before the
transaction commits, each chained to the previous one by hash:

    hash = sha256(prev_hash + canonical JSON of the entry)

Appends are serialised: on PostgreSQL by a transaction-scoped advisory lock taken only for
that last step (several gunicorn workers, one chain); SQLite has one writer at a time, and a
transaction that has entries to write already holds the write lock.

Tables are discovered from the ORM: every mapped class is audited except the high-volume
technical tables in ``SKIPPED_TABLES`` / ``SKIPPED_PREFIXES``. Core statements
(``session.execute(insert(...))``) are not seen: the domains write through the ORM.
"""

import enum
import hashlib
import json
import logging
import re
from dataclasses import dataclass
from datetime import date, datetime, time

from flask import current_app, g, has_app_context, has_request_context, request
from sqlalchemy import event, inspect, select
from sqlalchemy.orm import ColumnProperty, Session
from sqlalchemy.orm.session import SessionTransactionState

from fieldapp.audit.models import GENESIS, AuditEntry
from fieldapp.models.facts import _refuse_change
from fieldapp.models.types import utcnow

# The sync ledger, its files and change feed, push plumbing, login attempts and the audit
# itself: technical, high-volume, or already a log of their own.
SKIPPED_PREFIXES = ("sync_", "push_", "audit_")
SKIPPED_TABLES = frozenset({"login_attempt"})
# Book-keeping columns that change on every sync or sign-in: a change to these alone is not
# an auditable event (it would add one entry per push).
NOISE_COLUMNS = {
    "device": frozenset(
        {
            "last_seq",
            "pending_count",
            "oldest_pending_at",
            "last_sync_at",
            "last_seen_at",
            "session_nonce",
        }
    ),
    "user": frozenset({"last_login_at", "failed_logins"}),
}
SECRET = re.compile(r"password|secret|token|nonce|private|api_key", re.IGNORECASE)
MASK = "***"
# A change of one of these foreign keys hands the record to another person or team.
ASSIGNEE_TABLES = frozenset({"user", "team"})
log = logging.getLogger(__name__)
PG_LOCK_KEY = 0x61756469  # "audi": the advisory lock that serialises appends
_PENDING = "fieldapp.audit.pending"
_installed = False


# ---------------------------------------------------------------- what is audited


@dataclass(frozen=True)
class _Shape:
    """What the hooks need to know about a mapped class, worked out once per class."""

    audited: bool
    table: str
    columns: tuple[str, ...]  # attribute keys of the single-column properties
    secret: frozenset[str]  # masked: passwords, tokens, nonces
    assignee: frozenset[str]  # foreign keys to a person or a team: a change is a reassignment
    noise: frozenset[str]
    primary_key: tuple[str, ...]
    org_key: str | None  # "org_id", "id" for the organisation itself, or None


_shapes: dict[type, _Shape] = {}


def _shape(cls) -> _Shape:
    known = _shapes.get(cls)
    if known is not None:
        return known
    mapper = inspect(cls)
    table = getattr(mapper.local_table, "name", "")
    audited = bool(table) and table not in SKIPPED_TABLES and not table.startswith(SKIPPED_PREFIXES)
    columns, secret, assignee = [], set(), set()
    for prop in mapper.column_attrs:
        if not isinstance(prop, ColumnProperty) or len(prop.columns) != 1:
            continue
        columns.append(prop.key)
        if SECRET.search(prop.key):
            secret.add(prop.key)
        fks = prop.columns[0].foreign_keys
        if not prop.key.endswith("by_id") and any(
            fk.column.table.name in ASSIGNEE_TABLES for fk in fks
        ):
            assignee.add(prop.key)
    org_key = "id" if table == "organisation" else "org_id" if "org_id" in columns else None
    known = _shapes[cls] = _Shape(
        audited=audited,
        table=table,
        columns=tuple(columns),
        secret=frozenset(secret),
        assignee=frozenset(assignee),
        noise=NOISE_COLUMNS.get(table, frozenset()),
        primary_key=tuple(mapper.get_property_by_column(c).key for c in mapper.primary_key),
        org_key=org_key,
    )
    return known


def is_audited(cls) -> bool:
    """Whether rows of the mapped class ``cls`` are recorded."""
    return _shape(cls).audited


def audited_tables() -> list[str]:
    """The table names the trail covers, from the mapper registry (for docs and tests)."""
    from fieldapp.extensions import db

    return sorted({m.local_table.name for m in db.Model.registry.mappers if is_audited(m.class_)})


def _default(value):
    """JSON for the values columns hold besides str, int, float, bool and None."""
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return f"<{len(bytes(value))} bytes>"
    return str(value)  # Decimal, UUID, …


# What json.dumps(value, default=_default, sort_keys=True, separators=(",", ":"),
# ensure_ascii=False) does, without building a new encoder for every row.
_DUMP = json.JSONEncoder(
    default=_default, sort_keys=True, separators=(",", ":"), ensure_ascii=False
).encode
_TEXT = json.JSONEncoder(ensure_ascii=False).encode  # json.dumps(value, ensure_ascii=False)


def dump(value) -> str:
    """Compact JSON with sorted keys: the stored text is the hashed text."""
    return _DUMP(value)


def _value(shape: _Shape, key: str, value):
    return MASK if value is not None and key in shape.secret else value


# ---------------------------------------------------------------- who


@dataclass(frozen=True)
class Actor:
    label: str = "system"
    user_id: int | None = None
    device_id: str | None = None
    org_id: int | None = None


def current_actor() -> Actor:
    """The signed-in user (and the phone, for a sync push) without touching the database.

    A command or job may name itself: ``g.audit_actor = Actor("import-script")``.
    """
    override = g.get("audit_actor") if has_app_context() else None
    if override is not None:
        return override
    if not has_request_context():
        return Actor()
    user = g.get("_login_user")  # what Flask-Login loaded for this request, if anyone
    device_id = None
    if request.is_json:
        body = request.get_json(silent=True)
        if isinstance(body, dict) and isinstance(body.get("device_id"), str):
            device_id = body["device_id"][:36]
    if user is None or not getattr(user, "is_authenticated", False):
        return Actor(f"device:{device_id}" if device_id else "system", device_id=device_id)
    state = inspect(user)
    ident = state.identity[0] if state.identity else None
    values = state.dict  # no lazy load inside a flush
    return Actor(
        str(values.get("username") or f"user:{ident}")[:80],
        user_id=ident,
        device_id=device_id,
        org_id=values.get("org_id"),
    )


# ---------------------------------------------------------------- gathering at flush


def _entries_for_flush(session: Session) -> list[dict]:
    actor = current_actor()
    entries = []
    for obj in session.new:
        shape = _shape(type(obj))
        if shape.audited:
            values = inspect(obj).dict
            if shape.secret:
                fields = {k: _value(shape, k, values.get(k)) for k in shape.columns}
            else:  # the common case: nothing to mask
                fields = {k: values.get(k) for k in shape.columns}
            entries.append(_entry(actor, "create", shape, values, fields))
    for obj in session.dirty:
        shape = _shape(type(obj))
        if not shape.audited:
            continue
        state = inspect(obj)
        fields, reassigned, meaningful = {}, False, False
        for key in shape.columns:
            history = state.attrs[key].history
            if not history.added and not history.deleted:
                continue
            old = history.deleted[0] if history.deleted else None
            new = history.added[0] if history.added else None
            if old == new and history.deleted:
                continue
            fields[key] = [_value(shape, key, old), _value(shape, key, new)]
            meaningful = meaningful or key not in shape.noise
            reassigned = reassigned or key in shape.assignee
        if fields and meaningful:
            action = "reassign" if reassigned else "update"
            entries.append(_entry(actor, action, shape, state.dict, fields))
    for obj in session.deleted:
        shape = _shape(type(obj))
        if shape.audited:
            values = inspect(obj).dict
            fields = {k: _value(shape, k, values[k]) for k in shape.columns if k in values}
            entries.append(_entry(actor, "delete", shape, values, fields))
    return entries


def _entry(actor: Actor, action: str, shape: _Shape, values: dict, fields: dict) -> dict:
    org = values.get(shape.org_key) if shape.org_key else None
    return {
        "org_id": org if isinstance(org, int) else actor.org_id,
        "actor": actor.label,
        "actor_user_id": actor.user_id,
        "actor_device_id": actor.device_id,
        "action": action,
        "table_name": shape.table,
        # Primary keys are in the row's values by now, inserts included.
        "row_id": ",".join(str(values.get(k, "")) for k in shape.primary_key)[:64],
        "changes": dump(fields),
    }


def _enabled() -> bool:
    return (
        has_app_context()
        and "fieldapp.audit" in current_app.extensions
        and current_app.config.get("AUDIT_ENABLED", True)
    )


def _after_flush(session: Session, flush_context) -> None:
    if not _enabled():
        return
    entries = _entries_for_flush(session)
    if entries:
        # Tagged with the savepoint (or the transaction) they belong to: rolled back with it.
        owner = session.get_nested_transaction() or session.get_transaction()
        session.info.setdefault(_PENDING, []).extend((owner, e) for e in entries)


def _after_soft_rollback(session: Session, previous) -> None:
    pending = session.info.get(_PENDING)
    if not pending:
        return
    boundary = previous  # what the database really rolled back: the savepoint or the root
    while boundary.parent is not None and not boundary.nested:
        boundary = boundary.parent
    if boundary.parent is None:
        session.info.pop(_PENDING, None)
        return
    session.info[_PENDING] = [(t, e) for t, e in pending if not _within(t, boundary)]


def _within(transaction, ancestor) -> bool:
    while transaction is not None:
        if transaction is ancestor:
            return True
        transaction = transaction.parent
    return False


def _before_commit(session: Session) -> None:
    if session.get_nested_transaction() is not None:
        return  # a savepoint is released: its entries wait for the real commit
    if not session.info.get(_PENDING) and not (session.new or session.dirty or session.deleted):
        return
    session.flush()  # the commit's own final flush, so its entries are gathered too
    pending = session.info.pop(_PENDING, None)
    if pending:
        append(session, [entry for _, entry in pending])


def _after_transaction_end(session: Session, transaction) -> None:
    if transaction.parent is None:  # the real transaction, not a savepoint or a flush
        left = session.info.pop(_PENDING, None)  # closed without commit: nothing was stored
        if left and transaction._state is SessionTransactionState.COMMITTED:
            # Committed with a savepoint still open: before_commit could not tell it apart.
            log.error("audit: %d entries not written (commit with an open savepoint)", len(left))


def install() -> None:
    """Listen on every Flask-SQLAlchemy session (once per process)."""
    global _installed
    if _installed:
        return
    from flask_sqlalchemy.session import Session as FlaskSession

    event.listen(FlaskSession, "after_flush", _after_flush)
    event.listen(FlaskSession, "after_soft_rollback", _after_soft_rollback)
    event.listen(FlaskSession, "before_commit", _before_commit)
    event.listen(FlaskSession, "after_transaction_end", _after_transaction_end)
    event.listen(FlaskSession, "do_orm_execute", _refuse_bulk_change_of_facts)
    _installed = True


# ---------------------------------------------------------------- append-only facts


def is_append_only(cls) -> bool:
    """Whether the ORM refuses updates and deletes of ``cls`` (``models.facts.append_only``)."""
    return event.contains(cls, "before_delete", _refuse_change) and event.contains(
        cls, "before_update", _refuse_change
    )


_facts_cache: dict[int, frozenset[str]] = {}


def _append_only_tables() -> frozenset[str]:
    from fieldapp.extensions import db

    mappers = db.Model.registry.mappers
    known = _facts_cache.get(len(mappers))  # recomputed only when a model is added
    if known is None:
        known = _facts_cache[len(mappers)] = frozenset(
            m.local_table.name for m in mappers if is_append_only(m.class_)
        )
    return known


def _refuse_bulk_change_of_facts(orm_execute_state) -> None:
    """``session.execute(delete(Fact))`` bypasses the per-object guard: refuse it here too.

    Covers ORM statements and Core ones on a fact's table run through the session.
    """
    if not (orm_execute_state.is_update or orm_execute_state.is_delete):
        return
    table = getattr(orm_execute_state.statement, "table", None)
    name = getattr(table, "name", None)
    if name and name in _append_only_tables():
        from fieldapp.models.facts import AppendOnlyError

        raise AppendOnlyError(f"{name} holds append-only records: add a correction instead")


# ---------------------------------------------------------------- the chain


_CANONICAL = (
    '{"action":%s,"actor":%s,"actor_device_id":%s,"actor_user_id":%s,"at":%s,'
    '"changes":%s,"id":%s,"org_id":%s,"row_id":%s,"table":%s}'
)


def canonical(entry: dict, memo: dict | None = None) -> str:
    """The text that is hashed: every field but the hashes, as compact JSON with sorted keys.

    ``changes`` is stored as that same compact JSON text, so it is embedded as it is.
    ``memo`` (one dict per batch of entries) keeps the JSON of values that repeat from entry
    to entry (actor, action, table, time, organisation): the same value gives the same text.
    """
    if memo is None:
        memo = {}
    return _CANONICAL % (
        _json(memo, entry["action"], False),
        _json(memo, entry["actor"], False),
        _json(memo, entry["actor_device_id"], True),
        _json(memo, entry["actor_user_id"], True),
        _json(memo, entry["at"].isoformat(), True),
        entry["changes"],
        json.dumps(entry["id"]),
        _json(memo, entry["org_id"], True),
        _TEXT(entry["row_id"]),
        _json(memo, entry["table_name"], True),
    )


def _json(memo: dict, value, ensure_ascii: bool) -> str:
    key = (type(value), value, ensure_ascii)  # the type too: True and 1 are equal keys
    text = memo.get(key)
    if text is None:
        text = memo[key] = json.dumps(value) if ensure_ascii else _TEXT(value)
    return text


def chain_hash(prev_hash: str, entry: dict, memo: dict | None = None) -> str:
    return hashlib.sha256((prev_hash + canonical(entry, memo)).encode()).hexdigest()


def _lock_and_read_head(session: Session) -> tuple[int, str]:
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({PG_LOCK_KEY})")
    table = AuditEntry.__table__
    head = connection.execute(
        select(table.c.id, table.c.hash).order_by(table.c.id.desc()).limit(1)
    ).first()
    return (head.id, head.hash) if head else (0, GENESIS)


def append(session: Session, entries: list[dict]) -> None:
    """Chain ``entries`` onto the trail and insert them with one executemany."""
    last_id, last_hash = _lock_and_read_head(session)
    at = utcnow()
    rows = []
    memo: dict = {}
    for entry in entries:
        last_id += 1
        row = {**entry, "id": last_id, "at": at, "prev_hash": last_hash}
        row["hash"] = last_hash = chain_hash(row["prev_hash"], row, memo)
        rows.append(row)
    session.connection().execute(AuditEntry.__table__.insert(), rows)


@dataclass
class Verdict:
    ok: bool
    count: int
    head: str
    broken_id: int | None = None
    reason: str = ""


def verify(session: Session, page: int = 2000) -> Verdict:
    """Walk the chain in order; the first entry that does not fit is named."""
    table = AuditEntry.__table__
    expected_id, prev_hash, count = 1, GENESIS, 0
    after = 0
    while True:
        rows = (
            session.execute(
                select(table).where(table.c.id > after).order_by(table.c.id).limit(page)
            )
            .mappings()
            .all()
        )
        if not rows:
            return Verdict(True, count, prev_hash)
        for row in rows:
            if row["id"] != expected_id:
                return Verdict(
                    False,
                    count,
                    prev_hash,
                    row["id"],
                    f"entries {expected_id}..{row['id'] - 1} are missing",
                )
            if row["prev_hash"] != prev_hash:
                return Verdict(
                    False, count, prev_hash, row["id"], "its link to the previous entry is broken"
                )
            if chain_hash(prev_hash, dict(row)) != row["hash"]:
                return Verdict(
                    False, count, prev_hash, row["id"], "its content does not match its hash"
                )
            prev_hash, expected_id, count = row["hash"], expected_id + 1, count + 1
        after = rows[-1]["id"]


def stored_hashes(session: Session, ids, page: int = 500) -> dict[int, str]:
    """``{id: hash}`` of those of ``ids`` that are in the trail (anchors kept elsewhere).

    Looks the IDs up by primary key, a page at a time: the chain is not walked again.
    """
    table = AuditEntry.__table__
    wanted = sorted(set(ids))
    found: dict[int, str] = {}
    for start in range(0, len(wanted), page):
        rows = session.execute(
            select(table.c.id, table.c.hash).where(table.c.id.in_(wanted[start : start + page]))
        )
        found.update((row.id, row.hash) for row in rows)
    return found
