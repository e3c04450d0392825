"""Record types that exist only for testing the sync engine (FIELDAPP_EXTRA_MODULES).

``test.note`` is an append-only fact with a photo and a signature; ``test.ticket`` is a
versioned thing that the office and the phone both change, with field ownership like a
delivery's: the dispatcher owns ``assignee`` and ``due``, the courier owns ``status`` and
``note``, and ``address`` belongs to nobody (a clash goes to the conflicts list).
"""

import time
from pathlib import Path

from flask import Blueprint, current_app, render_template
from flask_login import login_required
from pydantic import BaseModel, Field
from sqlalchemy import Column, Integer, MetaData, String, Table, Text, select

from fieldapp.extensions import db
from fieldapp.rules.errors import RuleViolation
from fieldapp.sync import registry
from fieldapp.sync.registry import ApplyContext, Current, Kind, RecordType

UUID = r"^[0-9a-fA-F-]{36}$"
test_metadata = MetaData()

notes = Table(
    "test_note",
    test_metadata,
    Column("id", String(36), primary_key=True),
    Column("user_id", Integer, nullable=False),
    Column("title", String(80), nullable=False),
    Column("amount", Integer, nullable=False),
    Column("photo", String(64)),
    Column("signature", String(64)),
)
tickets = Table(
    "test_ticket",
    test_metadata,
    Column("id", String(36), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("assignee", String(80)),
    Column("due", String(32)),
    Column("status", String(16)),
    Column("note", Text),
    Column("address", String(120)),
)


class NotePayload(BaseModel):
    id: str = Field(pattern=UUID)
    title: str = Field(min_length=1, max_length=80)
    amount: int = Field(ge=0)
    photo: str | None = None
    signature: str | None = None


def apply_note(ctx: ApplyContext, payload: NotePayload) -> None:
    # The kill test makes one apply slow, once, so the server can be killed mid-batch.
    slow_marker = Path(current_app.instance_path, "slow-once")
    if payload.title == "slow" and slow_marker.exists():
        slow_marker.unlink()
        time.sleep(3)
    if payload.title.strip().lower() == "refused":
        raise RuleViolation("test.refused", "This note is refused by a business rule.")
    db.session.execute(notes.insert(), {"user_id": ctx.user.id, **payload.model_dump()})


class TicketPayload(BaseModel):
    id: str = Field(pattern=UUID)
    assignee: str | None = None
    due: str | None = None
    status: str | None = None
    note: str | None = None
    address: str | None = None


def load_ticket(ctx: ApplyContext, record_id: str) -> Current | None:
    row = db.session.execute(select(tickets).where(tickets.c.id == record_id)).mappings().first()
    if row is None:
        return None
    return Current(
        version=row["version"], fields={k: v for k, v in row.items() if k not in ("id", "version")}
    )


def apply_ticket(ctx: ApplyContext, payload: TicketPayload) -> int:
    """Create or change the fields the payload set; every change makes a new version."""
    changes = {k: getattr(payload, k) for k in payload.model_fields_set if k != "id"}
    current = load_ticket(ctx, payload.id)
    if current is None:
        db.session.execute(tickets.insert().values(id=payload.id, version=1, **changes))
        return 1
    version = current.version + 1
    db.session.execute(
        tickets.update().where(tickets.c.id == payload.id).values(version=version, **changes)
    )
    return version


NOTE = RecordType(
    name="test.note",
    schema=NotePayload,
    kind=Kind.FACT,
    apply=apply_note,
    file_fields=("photo", "signature"),
    label="测试记录",
    labels={"title": "标题", "amount": "金额"},
    summary_field="title",
)
TICKET = RecordType(
    name="test.ticket",
    schema=TicketPayload,
    kind=Kind.VERSIONED,
    apply=apply_ticket,
    load=load_ticket,
    worker_fields=frozenset({"status", "note"}),
    office_fields=frozenset({"assignee", "due"}),
)

bp = Blueprint(
    "sync_test", __name__, template_folder=str(Path(__file__).resolve().parent / "templates")
)


@bp.get("/test/notes")
@login_required
def note_form():
    """A plain field-record form for the browser tests of the outbox."""
    rows = db.session.execute(select(notes).order_by(notes.c.title)).mappings().all()
    return render_template("test_notes.html", notes=rows)


def init_app(app) -> None:
    registry.register(NOTE)
    registry.register(TICKET)
    app.register_blueprint(bp)
    with app.app_context():
        test_metadata.create_all(db.engine)
