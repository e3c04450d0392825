"""A record type written through the ORM, for ``bench/audit_ingest.py`` (FIELDAPP_EXTRA_MODULES).

``test.note`` in ``tests/sync_types.py`` is inserted with a Core statement, which the audit
trail does not see; this twin is an ORM object like every domain record, so the benchmark
measures what auditing costs the sync engine. Its table lives in its own metadata (never in
the migrations) and is created when the module is loaded.
"""

from sqlalchemy import Integer, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from fieldapp.extensions import db
from fieldapp.sync import registry
from fieldapp.sync.registry import ApplyContext, Kind, RecordType
from tests.sync_types import NotePayload


class Base(DeclarativeBase):
    pass


class BenchNote(Base):
    __tablename__ = "bench_audited_note"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    user_id: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(80))
    amount: Mapped[int] = mapped_column(Integer)


def apply_note(ctx: ApplyContext, payload: NotePayload) -> None:
    db.session.add(
        BenchNote(id=payload.id, user_id=ctx.user.id, title=payload.title, amount=payload.amount)
    )


NOTE = RecordType(
    name="bench.audited_note",
    schema=NotePayload,
    kind=Kind.FACT,
    apply=apply_note,
    label="bench",
    summary_field="title",
)


def init_app(app) -> None:
    registry.register(NOTE)
    with app.app_context():
        Base.metadata.create_all(db.engine)
