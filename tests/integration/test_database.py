"""Migrations build the schema the models describe, on SQLite and PostgreSQL alike."""

import time

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade
from sqlalchemy import create_engine, text

from fieldapp.demo import USERS, seed_demo
from fieldapp.extensions import db
from fieldapp.models import Organisation, Site, Team, User


def test_migrations_match_the_models(app):
    with db.engine.connect() as conn:
        # Tables of the test-only record types (tests/sync_types.py) are not the app's.
        context = MigrationContext.configure(
            conn,
            opts={
                "compare_type": True,
                "include_name": lambda name, kind, parent: (
                    not (kind == "table" and name.startswith("test_"))
                ),
            },
        )
        differences = compare_metadata(context, db.metadata)
    assert differences == []


def test_migrations_run_down_to_empty_and_back_up(app):
    downgrade(revision="base")
    with db.engine.connect() as conn:
        tables = {t for t in db.inspect(conn).get_table_names() if not t.startswith("test_")}
    assert tables == {"alembic_version"}
    upgrade(revision="heads")
    with db.engine.connect() as conn:
        assert {"user", "team", "site", "device"} <= set(db.inspect(conn).get_table_names())


def test_seed_demo_is_idempotent(app):
    seed_demo()
    counts = [
        db.session.scalar(db.select(db.func.count()).select_from(model))
        for model in (Organisation, User, Team, Site)
    ]
    seed_demo()
    again = [
        db.session.scalar(db.select(db.func.count()).select_from(model))
        for model in (Organisation, User, Team, Site)
    ]
    assert counts == again == [1, len(USERS), 3, 7]


def test_times_are_stored_in_utc_and_read_back_aware(app):
    seed_demo()
    org = db.session.scalar(db.select(Organisation))
    db.session.expire_all()
    created = db.session.get(Organisation, org.id).created_at
    assert created.tzinfo is not None and created.utcoffset().total_seconds() == 0


def test_field_evidence_is_append_only(app):
    """Proofs, scans, handovers and timeline steps refuse updates and deletes in the ORM."""
    from sqlalchemy import event

    from fieldapp.complaints.models import ComplaintEvent
    from fieldapp.deliveries.models import CashHandover, ProofOfDelivery, Refusal
    from fieldapp.models.facts import _refuse_change
    from fieldapp.patrols.models import CheckpointScan, Handover, SpotCheck
    from fieldapp.visits.models import VisitReport

    for model in (
        ProofOfDelivery,
        Refusal,
        CashHandover,
        CheckpointScan,
        Handover,
        SpotCheck,
        VisitReport,
        ComplaintEvent,
    ):
        for action in ("before_update", "before_delete"):
            assert event.contains(model, action, _refuse_change), (model.__name__, action)


def test_a_pooled_connection_the_server_closed_is_replaced_before_use(app, database_url):
    """A database restart or failover ends the app's idle connections: the next request gets
    a new one instead of an error (fieldapp.pool)."""
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite has no server to close the connection")
    with db.engine.connect() as conn:
        closed_pid = conn.scalar(text("SELECT pg_backend_pid()"))
    # The connection is back in the pool, idle; the server ends it (and has, once it is gone).
    with create_engine(database_url).connect() as admin:
        assert admin.scalar(text("SELECT pg_terminate_backend(:pid)"), {"pid": closed_pid})
        alive = text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid")
        deadline = time.monotonic() + 5
        while admin.scalar(alive, {"pid": closed_pid}) and time.monotonic() < deadline:
            time.sleep(0.02)
    time.sleep(0.05)  # and its socket closed
    with db.engine.connect() as conn:  # no error: a new connection
        assert conn.scalar(text("SELECT pg_backend_pid()")) != closed_pid
