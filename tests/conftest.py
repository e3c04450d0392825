"""Shared fixtures: the app on each database back end, a test client that behaves like a browser.

Database tests run once on SQLite and once on PostgreSQL when ``TEST_POSTGRES_URL`` is set
(``.ci/run`` sets it). Each PostgreSQL session works in a schema of its own, so parallel runs on
one server never see each other's rows. The schema is built by the real migrations.
"""

import os
import tempfile
import time
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

_INSTANCE = tempfile.mkdtemp(prefix="fieldapp-test-")
os.environ["FIELDAPP_INSTANCE"] = _INSTANCE

from fieldapp import create_app  # noqa: E402  (the instance folder must be set first)
from fieldapp.extensions import db  # noqa: E402
from tests.helpers import Client  # noqa: E402

BACKENDS = ["sqlite", "postgres"]


def postgres_url() -> str | None:
    return os.environ.get("TEST_POSTGRES_URL")


def _with_search_path(url: str, schema: str) -> str:
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}options=-csearch_path%3D{schema}"


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(request):
    """A migrated, empty database on one back end, for the whole test session."""
    if request.param == "sqlite":
        path = Path(_INSTANCE) / f"test-{uuid.uuid4().hex[:8]}.sqlite3"
        url = f"sqlite:///{path}"
        schema = None
    else:
        base = postgres_url()
        if not base:
            pytest.skip("TEST_POSTGRES_URL is not set")
        schema = f"fa_test_{uuid.uuid4().hex[:10]}"
        engine = create_engine(base)
        with engine.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        engine.dispose()
        url = _with_search_path(base, schema)
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "TESTING": True})
    with app.app_context():
        from flask_migrate import upgrade

        upgrade(revision="heads")
        db.engine.dispose()
    yield url
    if schema:
        engine = create_engine(postgres_url())
        with engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


@pytest.fixture
def app(database_url):
    """The app bound to the session's database; every table is emptied after the test.

    The test body works in the context of a second app on the same database. Flask reuses an
    active app context of the *same* app for requests, which would let ``g`` (the logged-in
    user, the chosen language) leak from one request to the next; with two apps every request
    gets a fresh context, as it does in production.
    """
    config = {
        "SQLALCHEMY_DATABASE_URI": database_url,
        "TESTING": True,
        # Tests run the rule clock by hand at the times they choose. A clock ticking at wall-clock
        # time would write alarms into the shared session database under later tests.
        "RULE_CLOCK_INTERVAL": 0,
        "EXTRA_MODULES": ["tests.sync_types"],
    }
    served = create_app(config)
    body = create_app(config)
    with body.app_context():
        yield served
        db.session.remove()
        _quiesce(served)
        _empty_all_tables()
        db.engine.dispose()
    with served.app_context():
        db.engine.dispose()


def _quiesce(app) -> None:
    """Let the app's background push work finish before its tables are emptied under it."""
    state = app.extensions.get("fieldapp.push", {})
    queue = state.get("queue")
    assert not getattr(queue, "_recurring", None), "a test left the rule clock running"
    if queue is not None and hasattr(queue, "wait_idle"):
        queue.wait_idle(timeout=15)
    executor = state.get("executor")
    if executor is not None:
        executor.shutdown(wait=True)


def _empty_all_tables():
    from tests.sync_types import test_metadata

    tables = db.metadata.sorted_tables + test_metadata.sorted_tables
    if db.engine.dialect.name == "postgresql":
        _empty_postgres(tables)
        return
    with db.engine.begin() as conn:
        # Teams and users point at each other; checks are off for this connection only.
        conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
        for table in tables:
            conn.execute(table.delete())
        conn.exec_driver_sql("PRAGMA foreign_keys=ON")


def _empty_postgres(tables) -> None:
    """DELETE the few rows a test made: about 20 times faster than a TRUNCATE of 60 tables,
    which replaces every table's files (a second per test, a quarter of the suite's time).

    Teams and users point at each other, so foreign keys are not checked while emptying
    (``session_replication_role``, which needs a superuser; otherwise TRUNCATE does it).
    Sequences go on counting: no test may rely on the ids a row gets.
    """
    from sqlalchemy.exc import DBAPIError

    try:
        with db.engine.begin() as conn:
            conn.execute(text("SET LOCAL session_replication_role = replica"))
            conn.execute(text("SET LOCAL lock_timeout = '20s'"))
            for table in reversed(tables):
                conn.execute(table.delete())
    except DBAPIError as error:
        if "permission denied" not in str(error) and "must be superuser" not in str(error):
            raise
        _truncate(tables)


def _truncate(tables, tries: int = 4) -> None:
    """TRUNCATE needs every table to itself. A background thread of the app still finishing a
    query can deadlock with it; PostgreSQL then aborts the TRUNCATE, which is safe to retry."""
    from sqlalchemy.exc import OperationalError

    names = ", ".join(f'"{t.name}"' for t in tables)
    for attempt in range(1, tries + 1):
        try:
            with db.engine.begin() as conn:
                conn.execute(text("SET LOCAL lock_timeout = '20s'"))
                conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
            return
        except OperationalError as error:
            if attempt == tries or "deadlock" not in str(error):
                raise
            time.sleep(0.5 * attempt)


@pytest.fixture
def demo(app):
    """The demo organisation, as ``seed-demo`` creates it."""
    from fieldapp.demo import seed_demo

    seed_demo()
    return app


@pytest.fixture
def client(app) -> Client:
    return Client(app.test_client())


@pytest.fixture
def login(demo):
    """Log a fresh client in as one of the demo users: ``login("courier1")``."""

    def _login(username: str, password: str = "demo-2026", **fields) -> Client:
        client = Client(demo.test_client())
        response = client.login(username, password, **fields)
        assert response.status_code == 302, response.get_data(as_text=True)
        return client

    return _login
