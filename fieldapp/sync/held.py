"""Batches a revoked phone pushed: held for the office, then applied or discarded by a manager.

A revoked phone may still hold records nobody else has (a courier's cash collections of the
morning). Its session stays good for handing them over (``sync.push`` and the file uploads,
see ``fieldapp.accounts.routes.refuse_revoked_device``) and nothing else. What it pushes is
never applied blindly nor dropped: it is kept whole here until a manager of the phone's user
applies it (through the normal engine, as that user and device, so the ledger keeps it exactly
once) or discards it with a reason. A held batch never changes; only its decision is recorded.
"""

from flask_babel import gettext as _

from fieldapp.access import can_manage_user
from fieldapp.extensions import db
from fieldapp.models import Device, User, utcnow
from fieldapp.sync import engine, registry
from fieldapp.sync.models import HeldBatch, Mutation

HELD, APPLIED, DISCARDED = "held", "applied", "discarded"
MAX_OPEN_BATCHES = 50  # per phone: a found phone cannot fill the review list without end
NOTE_LENGTH = 500


class Refused(Exception):
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def hold(user: User, device_id: str, mutations: list[engine.MutationIn]) -> int | None:
    """Keep what the revoked phone sent; how many of its records the office now holds.

    A mutation already in the ledger (stored before the phone was revoked) or already held
    is not held again, so a resend of the same batch adds nothing. None: nothing could be
    held (not this user's phone, or too many batches already wait for a decision).
    """
    device = engine.lock_device(user, device_id)  # one batch of a phone at a time
    if device is None:
        return None
    ids = [m.id for m in mutations]
    in_ledger = set(db.session.scalars(db.select(Mutation.id).where(Mutation.id.in_(ids))))
    batches = db.session.scalars(db.select(HeldBatch).where(HeldBatch.device_id == device.id))
    open_batches, already_held = 0, set()
    for batch in batches:
        open_batches += batch.status == HELD
        already_held.update(m["id"] for m in batch.mutations)
    new, seen = [], set()
    for m in mutations:
        if m.id not in in_ledger and m.id not in already_held and m.id not in seen:
            seen.add(m.id)
            new.append(m.model_dump(mode="json"))
    if new:
        if open_batches >= MAX_OPEN_BATCHES:
            return None
        db.session.add(
            HeldBatch(
                org_id=user.org_id,
                device_id=device.id,
                user_id=user.id,
                mutations=new,
                count=len(new),
                status=HELD,
            )
        )
    return len({m.id for m in mutations} - in_ledger)


def visible_batches(manager: User, device: Device) -> list[HeldBatch]:
    """The held batches of a phone whose user the manager manages (newest first)."""
    if not can_manage_user(manager, device.user):
        return []
    return list(
        db.session.scalars(
            db.select(HeldBatch)
            .where(HeldBatch.device_id == device.id, HeldBatch.org_id == manager.org_id)
            .order_by(HeldBatch.received_at.desc(), HeldBatch.id.desc())
        )
    )


def open_counts(devices: list[Device]) -> dict[str, int]:
    """How many batches wait for a decision, per phone."""
    if not devices:
        return {}
    rows = db.session.execute(
        db.select(HeldBatch.device_id, db.func.count())
        .where(HeldBatch.device_id.in_([d.id for d in devices]), HeldBatch.status == HELD)
        .group_by(HeldBatch.device_id)
    )
    return dict(rows.all())


def describe(batch: HeldBatch) -> list[dict]:
    """Each held record as the office reads it: its type, when it was made, its summary."""
    results = {r["id"]: r for r in batch.results or []}
    rows = []
    for m in batch.mutations:
        record_type = registry.get(m["type"])
        summary_field = record_type.summary_field if record_type else None
        rows.append(
            {
                "id": m["id"],
                "label": str(record_type.label or m["type"]) if record_type else m["type"],
                "device_time": engine.MutationIn.model_validate(m).device_time,
                "summary": m["payload"].get(summary_field) if summary_field else None,
                "result": results.get(m["id"]),
            }
        )
    return rows


def _lock(device: Device, batch_id: int) -> HeldBatch:
    """Take the phone's row (no-op update), then read the batch as it is now."""
    db.session.execute(
        db.update(Device).where(Device.id == device.id).values(last_seq=Device.last_seq)
    )
    batch = db.session.scalar(
        db.select(HeldBatch)
        .where(HeldBatch.id == batch_id, HeldBatch.device_id == device.id)
        .execution_options(populate_existing=True)
    )
    if batch is None:
        raise LookupError(batch_id)
    return batch


def apply(manager: User, device: Device, batch_id: int) -> HeldBatch:
    """Send the held records through the engine as the phone's user and device, once.

    The records keep their order; they are numbered after what the server has from the phone
    (the sequence a held batch had on the phone may have been used by another held batch, or
    by one discarded), which the protocol allows for mutations the server did not store.
    """
    batch = _lock(device, batch_id)
    if batch.status != HELD:
        db.session.rollback()
        raise Refused(_("This batch was already decided."))
    mutations = [engine.MutationIn.model_validate(m) for m in batch.mutations]
    known = set(
        db.session.scalars(db.select(Mutation.id).where(Mutation.id.in_([m.id for m in mutations])))
    )
    next_seq = device.last_seq + 1
    for m in mutations:
        if m.id not in known:
            m.seq = next_seq
            next_seq += 1
    results = engine.push(batch.user, device, mutations)
    batch.results = [r.as_json() for r in results]
    _decide(batch, manager, APPLIED, "")
    db.session.commit()
    return batch


def discard(manager: User, device: Device, batch_id: int, note: str) -> HeldBatch:
    """Drop the held records for good, with the reason the manager gives."""
    note = (note or "").strip()
    if not note:
        raise Refused(_("Say why these records are discarded."))
    batch = _lock(device, batch_id)
    if batch.status != HELD:
        db.session.rollback()
        raise Refused(_("This batch was already decided."))
    _decide(batch, manager, DISCARDED, note[:NOTE_LENGTH])
    db.session.commit()
    return batch


def _decide(batch: HeldBatch, manager: User, status: str, note: str) -> None:
    batch.status = status
    batch.decided_by_id = manager.id
    batch.decided_at = utcnow()
    batch.note = note
