"""Applying a batch of mutations from one phone: in order, each on its own, exactly once."""

import hashlib
import json
import logging
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flask import g, has_app_context
from pydantic import AwareDatetime, BaseModel, Field, ValidationError
from sqlalchemy.exc import IntegrityError

from fieldapp.extensions import db
from fieldapp.models import Device, User, utcnow
from fieldapp.rules.clock import clock_skew
from fieldapp.rules.errors import RuleViolation
from fieldapp.sync import registry
from fieldapp.sync.messages import field_errors, reason_text, rule_message
from fieldapp.sync.models import Conflict, FileRef, Mutation, StoredFile
from fieldapp.sync.registry import ApplyContext, Kind, RecordType

log = logging.getLogger(__name__)

MAX_BATCH = 500
UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
SHA256 = re.compile(r"^[0-9a-f]{64}$")


class MutationIn(BaseModel):
    """One mutation as the phone sends it (see docs/sync-protocol.md)."""

    id: str = Field(pattern=UUID_PATTERN)
    seq: int = Field(ge=1)
    type: str = Field(min_length=1, max_length=64)
    payload: dict[str, Any]
    device_time: AwareDatetime
    base_version: int | None = Field(default=None, ge=0)


class PushIn(BaseModel):
    device_id: str = Field(pattern=UUID_PATTERN)
    mutations: list[MutationIn] = Field(max_length=MAX_BATCH)


@dataclass
class Result:
    id: str
    status: str  # applied | duplicate | rejected | conflict | retry
    reason: str | None = None
    message: str | None = None
    fields: dict[str, str] | None = None
    version: int | None = None
    files_missing: list[str] = field(default_factory=list)
    expected_seq: int | None = None

    def as_json(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if v not in (None, [], {})}


class Rejected(Exception):
    def __init__(self, reason: str, message: str | None = None, fields=None):
        super().__init__(reason)
        self.reason = reason
        self.message = message or reason_text(reason)
        self.fields = fields


# json.dumps(..., sort_keys=True, separators=(",", ":"), ensure_ascii=False), with one encoder
# for every mutation instead of a new one each time (the same text).
_CANONICAL_JSON = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode


def content_hash(mutation: MutationIn) -> str:
    """What makes a resend "the same": type, payload, base version and device time."""
    canonical = _CANONICAL_JSON(
        {
            "type": mutation.type,
            "payload": mutation.payload,
            "base_version": mutation.base_version,
            "device_time": mutation.device_time.isoformat(),
        }
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def lock_device(user: User, device_id: str) -> Device | None:
    """Take the device's row for this batch; batches from one phone never interleave.

    The UPDATE comes first so that SQLite takes its write lock before any read, and
    PostgreSQL holds the row until commit.
    """
    now = utcnow()
    updated = db.session.execute(
        db.update(Device)
        .where(Device.id == device_id, Device.user_id == user.id)
        .values(last_sync_at=now)
    ).rowcount
    if not updated:
        return None
    return db.session.scalar(
        db.select(Device).where(Device.id == device_id).execution_options(populate_existing=True)
    )


@dataclass
class _Batch:
    """What one push writes besides the domain's own rows, inserted once at the end.

    Nothing inside a batch reads the ledger, so its rows (and the file references and
    conflicts that point at them) go in with one executemany each instead of a flush per
    mutation: the engine then costs little more than the domain's own inserts.
    """

    ledger: list[dict] = field(default_factory=list)
    file_refs: list[dict] = field(default_factory=list)
    conflicts: list[dict] = field(default_factory=list)

    def write(self) -> None:
        # Core inserts on the tables (same columns, types and defaults as the models): the
        # ORM's bulk-insert path adds nothing for plain rows but a third of the cost. Nothing
        # is pending in the session here (every apply path has flushed), and the audit trail
        # skips these tables anyway.
        for model, rows in (
            (Mutation, self.ledger),
            (FileRef, self.file_refs),
            (Conflict, self.conflicts),
        ):
            if rows:
                db.session.execute(model.__table__.insert(), rows)


def batch_cache() -> dict | None:
    """A dict the domains may keep rows in for the length of one push, else None.

    For rows a batch reads again and again but never changes (a shift, its site's plan and
    checkpoints): a service looks them up once per batch instead of once per record. It is
    emptied when the batch is re-applied one savepoint at a time, and gone after the push;
    outside a push (online forms, jobs, tests calling a service) there is none.
    """
    return g.get("sync_batch_cache") if has_app_context() else None


def per_batch(key: tuple, load):
    """``load()``, remembered for the rest of the sync push (see ``batch_cache``).

    Outside a push it is just ``load()``. For what no record type changes, or what the record
    type that changes it forgets (``forget_in_batch``) or keeps up to date itself.
    """
    cache = batch_cache()
    if cache is None:
        return load()
    if key not in cache:
        cache[key] = load()
    return cache[key]


def forget_in_batch(key: tuple) -> None:
    """A record changed what ``key`` holds: the next ``per_batch`` of it reads it again."""
    cache = batch_cache()
    if cache is not None:
        cache.pop(key, None)


def push(user: User, device: Device, mutations: list[MutationIn]) -> list[Result]:
    """Apply ``mutations`` in order; the caller commits once and answers after the commit."""
    known = {
        m.id: m
        for m in db.session.scalars(
            db.select(Mutation).where(Mutation.id.in_([m.id for m in mutations]))
        )
    }
    # Which mutations to apply, and what the others are told, depends only on the ledger and
    # the sequence, never on whether an apply succeeds: a rejected mutation uses its number.
    expected = device.last_seq + 1
    answers: dict[int, Result] = {}
    to_apply: list[tuple[int, MutationIn, str]] = []
    seen: dict[str, str] = {}
    for position, incoming in enumerate(mutations):
        digest = content_hash(incoming)
        previous = known.get(incoming.id)
        if previous is not None:
            answers[position] = _answer_again(previous, digest, user)
        elif incoming.id in seen:  # the same mutation twice in one batch
            same = seen[incoming.id] == digest
            answers[position] = (
                Result(incoming.id, "duplicate")
                if same
                else _rejected_result(incoming.id, Rejected("id_reused"), status="conflict")
            )
        elif incoming.seq < expected:
            answers[position] = _rejected_result(incoming.id, Rejected("stale_sequence"))
        elif incoming.seq > expected:
            answers[position] = Result(
                incoming.id,
                "retry",
                "sequence_gap",
                reason_text("sequence_gap"),
                expected_seq=expected,
            )
        else:
            to_apply.append((position, incoming, digest))
            seen[incoming.id] = digest
            expected += 1
    g.sync_batch_cache = {}
    try:
        batch = _apply_all(user, device, to_apply, answers)
    finally:
        g.pop("sync_batch_cache", None)
    batch.write()
    device.last_seq = expected - 1
    results = [answers[position] for position in range(len(mutations))]
    _fill_missing_files(results, batch, known.keys())
    return results


def _apply_all(user, device, to_apply, answers) -> "_Batch":
    """Apply a run of mutations, each atomic on its own.

    The common case is a run where every record is fine: it is applied inside one savepoint.
    If any apply fails, that savepoint is rolled back and the run is applied again with a
    savepoint per mutation, so the failing one is rejected alone and the others stand.
    """
    batch = _Batch()
    fast = db.session.begin_nested()
    try:
        for position, incoming, digest in to_apply:
            answers[position] = _apply_one(user, device, incoming, digest, batch, isolated=False)
        db.session.flush()
        fast.commit()
        return batch
    except Exception:  # any failure: redo the run one savepoint at a time
        fast.rollback()
    g.sync_batch_cache = {}
    batch = _Batch()
    for position, incoming, digest in to_apply:
        answers[position] = _apply_one(user, device, incoming, digest, batch, isolated=True)
        if answers[position].status == "rejected":
            g.sync_batch_cache = {}  # its savepoint was rolled back: read afresh
    return batch


def _answer_again(previous: Mutation, digest: str, user: User) -> Result:
    if previous.user_id != user.id or previous.content_hash != digest:
        return _rejected_result(previous.id, Rejected("id_reused"), status="conflict")
    if previous.status == "rejected":
        return Result(
            previous.id,
            "rejected",
            previous.reason,
            previous.message,
            (previous.details or {}).get("fields"),
        )
    return Result(previous.id, "duplicate", version=(previous.details or {}).get("version"))


def _rejected_result(mutation_id: str, rejection: Rejected, status="rejected") -> Result:
    return Result(mutation_id, status, rejection.reason, rejection.message, rejection.fields)


def _apply_one(user, device, incoming, digest: str, batch: _Batch, isolated: bool) -> Result:
    """Apply one mutation. Not ``isolated``: a failure after validation propagates."""
    received_at = utcnow()
    skew = clock_skew(incoming.device_time, received_at)
    row = {
        "id": incoming.id,
        "org_id": user.org_id,
        "user_id": user.id,
        "device_id": device.id,
        "seq": incoming.seq,
        "record_type": incoming.type,
        "record_id": str(incoming.payload.get("id", ""))[:36],
        "content_hash": digest,
        "base_version": incoming.base_version,
        "payload": incoming.payload,
        "device_time": incoming.device_time,
        "received_at": received_at,
        "skew_seconds": skew.seconds,
        "skew_flagged": skew.flagged,
        "status": "applied",
        "reason": None,
        "message": None,
        "details": None,
    }
    batch.ledger.append(row)
    ctx = ApplyContext(
        user=user,
        device=device,
        mutation_id=incoming.id,
        device_time=incoming.device_time,
        received_at=received_at,
    )
    try:
        # Nothing is written before this point, so a rejection here needs no rollback.
        record_type = _record_type_for(user, incoming.type)
        payload = _validate(record_type, incoming.payload)
    except Rejected as rejection:
        return _reject(row, rejection)
    row["record_id"] = str(payload.id)
    if not isolated:
        status, disputed = _apply(record_type, ctx, payload, incoming, row)
        return _applied(row, record_type, payload, status, disputed, batch)
    savepoint = db.session.begin_nested()
    try:
        status, disputed = _apply(record_type, ctx, payload, incoming, row)
        db.session.flush()  # the domain's rows: a constraint it breaks rejects this one only
        savepoint.commit()
    except RuleViolation as violation:
        savepoint.rollback()
        message = rule_message(violation.code, str(violation))
        return _reject(row, Rejected(violation.code, message))
    except IntegrityError:
        savepoint.rollback()  # the record's own ID (or another unique key) is already stored
        return _reject(row, Rejected("duplicate_record"))
    except Exception:  # a bug must not block the records behind it, nor lose this one
        savepoint.rollback()
        log.exception("applying mutation %s of type %s failed", incoming.id, incoming.type)
        return _reject(row, Rejected("server_error"))
    return _applied(row, record_type, payload, status, disputed, batch)


def _applied(row, record_type, payload, status, disputed, batch: _Batch) -> Result:
    row["status"] = status
    for name in record_type.file_fields:
        value = getattr(payload, name, None)
        for ref in value if isinstance(value, list) else [value] if value else []:
            batch.file_refs.append(
                {
                    "org_id": row["org_id"],
                    "mutation_id": row["id"],
                    "record_type": row["record_type"],
                    "record_id": row["record_id"],
                    "field": name,
                    "sha256": ref,
                }
            )
    if disputed:
        batch.conflicts.append(
            {
                "org_id": row["org_id"],
                "mutation_id": row["id"],
                "record_type": row["record_type"],
                "record_id": row["record_id"],
                **disputed,
            }
        )
    return Result(
        row["id"],
        status,
        reason="conflict" if status == "conflict" else None,
        message=reason_text("conflict") if status == "conflict" else None,
        version=(row["details"] or {}).get("version"),
    )


def _reject(row: dict, rejection: Rejected) -> Result:
    """Keep the rejected mutation, so a resend gets the same answer and the seq is used."""
    row.update(
        status="rejected",
        reason=rejection.reason,
        message=rejection.message,
        details={"fields": rejection.fields} if rejection.fields else None,
    )
    return _rejected_result(row["id"], rejection)


def _record_type_for(user: User, name: str) -> RecordType:
    record_type = registry.get(name)
    if record_type is None:
        raise Rejected("unknown_type")
    if record_type.roles is not None and user.role not in record_type.roles:
        raise Rejected("forbidden")
    return record_type


def _validate(record_type: RecordType, payload: dict) -> BaseModel:
    try:
        model = record_type.schema.model_validate(payload)
    except ValidationError as error:
        raise Rejected("invalid", fields=field_errors(error.errors())) from None
    bad = {}
    for name in record_type.file_fields:
        value = getattr(model, name, None)
        refs = value if isinstance(value, list) else [value] if value else []
        if not all(isinstance(ref, str) and SHA256.match(ref) for ref in refs):
            bad[name] = reason_text("invalid")
    if bad:
        raise Rejected("invalid", fields=bad)
    return model


def _apply(record_type, ctx, payload, incoming, row) -> tuple[str, dict | None]:
    """Run the domain's service function; for versioned records, settle ownership first.

    Returns the status and, when some fields could not be settled, the conflict's two sides.
    """
    if record_type.kind is Kind.FACT:
        record_type.apply(ctx, payload)
        return "applied", None
    current = record_type.load(ctx, str(payload.id))
    if current is None or incoming.base_version == current.version:
        row["details"] = {"version": record_type.apply(ctx, payload)}
        return "applied", None
    changes = {k: getattr(payload, k) for k in payload.model_fields_set if k != "id"}
    let_through, overridden, disputed = {}, {}, {}
    for name, value in changes.items():
        if name in record_type.worker_fields:
            let_through[name] = value  # what the worker saw in the field: the phone wins
        elif current.fields.get(name) == value:
            continue
        elif name in record_type.office_fields:
            overridden[name] = value  # the dispatcher's field: the server wins
        else:
            disputed[name] = value
    version = current.version
    if let_through:
        partial = record_type.schema.model_construct(
            _fields_set={"id", *let_through}, id=payload.id, **let_through
        )
        version = record_type.apply(ctx, partial)
    row["details"] = {"version": version, "overridden": sorted(overridden)}
    if not disputed:
        return "applied", None
    return "conflict", {
        "server_version": current.version,
        "server_fields": {k: current.fields.get(k) for k in disputed},
        "phone_fields": _jsonable(disputed),
    }


def _jsonable(values: dict) -> dict:
    return json.loads(json.dumps(values, default=str))


def _fill_missing_files(results: list[Result], batch: _Batch, stored_before) -> None:
    """Which referenced files the server lacks: at most one query for the refs, one for files.

    A mutation ID is either in the ledger from an earlier push (``stored_before``: its file
    references are read from the database) or new in this batch, whose references are the
    ones this batch has just written (``batch.file_refs``): no need to read those back.
    """
    wanted = {r.id for r in results if r.status in ("applied", "duplicate", "conflict")}
    earlier = wanted & set(stored_before)
    refs = [
        (ref["mutation_id"], ref["sha256"])
        for ref in batch.file_refs
        if ref["mutation_id"] in wanted
    ]
    if earlier:
        refs += db.session.execute(
            db.select(FileRef.mutation_id, FileRef.sha256).where(FileRef.mutation_id.in_(earlier))
        ).all()
    if not refs:
        return
    have = set(
        db.session.scalars(
            db.select(StoredFile.sha256).where(
                StoredFile.sha256.in_({sha for _, sha in refs}), StoredFile.complete.is_(True)
            )
        )
    )
    missing: dict[str, set] = {}
    for mutation_id, sha in refs:
        if sha not in have:
            missing.setdefault(mutation_id, set()).add(sha)
    for result in results:
        result.files_missing = sorted(missing.get(result.id, ()))


def pending_files(record_type: str, record_id: str) -> list[str]:
    """For pages: the files of a record still on their way ("photo pending")."""
    refs = db.session.scalars(
        db.select(FileRef.sha256)
        .outerjoin(StoredFile, StoredFile.sha256 == FileRef.sha256)
        .where(FileRef.record_type == record_type, FileRef.record_id == record_id)
        .where((StoredFile.sha256.is_(None)) | (StoredFile.complete.is_(False)))
    )
    return sorted(set(refs))


def record_heartbeat(device: Device, pending: int | None, oldest: datetime | None) -> None:
    """What the phone says it still holds, for the supervisor's "not yet received" figure."""
    if pending is not None:
        device.pending_count = max(0, pending)
        device.oldest_pending_at = oldest if pending else None
