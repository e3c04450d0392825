"""The fault campaign (issue 9, Reliability): phones lose nothing and double nothing.

Twenty simulated phones (tests/reliability/phone.py: the outbox as static/js/sync.js sends it)
make records and push and pull them through the real server, ``flask run`` in a child process,
while the campaign

- cuts pushes off mid-body (a socket closed, a phone that stops sending and times out, a
  stream ended early),
- lets a phone time out waiting for an answer the server then commits (it resends the batch),
- makes the database unavailable for a few seconds (SQLite: another connection holds the
  write lock, and every sync request writes; PostgreSQL: an exclusive lock on the device
  table, the app's connections terminated while they wait, and its idle pooled ones after),
- SIGKILLs the server, once at an arbitrary moment and once in the middle of applying a
  batch, and starts it again on the same port.

The phones make two kinds of record: ``test.note`` (tests/sync_types.py, a plain fact) and
``complaint.intake`` (a real domain fact: ORM rows, the audit chain, a register number taken
under a row lock, and a change published to the taker's phones). Afterwards the stored records
are exactly the set the phones made: none lost, none doubled, each complaint's side effects
once, every mutation in the ledger once, every phone has pulled back the complaints it took,
and the server has processed every phone's last seq.
Runs on SQLite, and on PostgreSQL (a schema of its own) when ``TEST_POSTGRES_URL`` is set.
"""

import contextlib
import os
import random
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
import requests

from tests.reliability.phone import CUT_OFF, NO_ANSWER, Phone, Tally, Unavailable

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
DEVICES = 20
WORKERS = ("courier1", "courier2", "guard1", "guard2", "rep1", "rep2")
DB_OUTAGE_SECONDS = 5.0  # longer than a phone's read timeout, shorter than SQLite's busy wait


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"after {timeout} s still not: {what}")
        time.sleep(0.02)


def first_answer(history: list[str]) -> str | None:
    return next((event for event in history if event not in (CUT_OFF, NO_ANSWER)), None)


def answered_at_once(history: list[str]) -> bool:
    """Whether the first complete resend after the fault was answered (no ambiguity)."""
    return len(history) > 1 and history[1] not in (CUT_OFF, NO_ANSWER)


class Database:
    """The server's database as an operator (or a failing disk, or a DBA) sees it."""

    def __init__(self, backend: str, url: str, sqlite_path: Path | None = None, schema=None):
        self.backend = backend
        self.url = url
        self.sqlite_path = sqlite_path
        self.schema = schema

    def _pg(self, autocommit: bool = True):
        import psycopg

        base = os.environ["TEST_POSTGRES_URL"].replace("+psycopg", "")
        conn = psycopg.connect(base, autocommit=autocommit, application_name="fa_fault_control")
        conn.execute(f'SET search_path TO "{self.schema}"')
        return conn

    def rows(self, sql: str) -> list[tuple]:
        if self.backend == "sqlite":
            with sqlite3.connect(self.sqlite_path) as conn:
                return conn.execute(sql).fetchall()
        with self._pg() as conn:
            return conn.execute(sql).fetchall()

    def unavailable(self, seconds: float) -> Counter:
        """Nobody else reads or writes for ``seconds``; then everything works again."""
        done = Counter()
        if self.backend == "sqlite":
            # In WAL mode readers are never locked out (the server holds its connections
            # open, so exclusive locking mode cannot be had), but every sync request writes:
            # the push takes the device's row first, the pull records the heartbeat.
            conn = sqlite3.connect(self.sqlite_path, isolation_level=None, timeout=15)
            try:
                conn.execute("BEGIN EXCLUSIVE")
                done["sqlite_exclusive_lock"] += 1
                time.sleep(seconds)
            finally:
                conn.close()
            return done
        locker = self._pg(autocommit=False)
        try:
            locker.execute("SET lock_timeout = '10s'")
            locker.execute("LOCK TABLE device IN ACCESS EXCLUSIVE MODE")
            done["pg_table_lock"] += 1
            time.sleep(seconds / 2)
            done["pg_backends_terminated_waiting"] += self._terminate_app_backends()
            time.sleep(seconds / 2)
        finally:
            locker.rollback()
            locker.close()
        # As after a database restart: the connections the app keeps in its pool are gone.
        time.sleep(1.0)
        done["pg_backends_terminated_idle"] += self._terminate_app_backends(idle=True)
        return done

    def _terminate_app_backends(self, idle: bool = False) -> int:
        with self._pg() as killer:
            return killer.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE application_name = %s AND (NOT %s OR state = 'idle')",
                (self.schema, idle),
            ).fetchone()[0]


class CampaignServer:
    """``flask run`` in a child process, on its own database; killed and restarted at will."""

    def __init__(self, instance: Path, database: Database):
        self.instance = instance
        self.database = database
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.marker = instance / "slow-once"  # tests/sync_types.py: one "slow" note sleeps 3 s
        self.log = instance / "server.log"
        self.env = {
            **os.environ,
            "FIELDAPP_INSTANCE": str(instance),
            "DATABASE_URL": database.url,
            "FLASK_APP": "wsgi",
            "FIELDAPP_EXTRA_MODULES": "tests.sync_types",
        }
        self.env.pop("TEST_POSTGRES_URL", None)
        self.process: subprocess.Popen | None = None
        self.starts = 0
        self.created = time.monotonic()

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "flask", "run", "--port", str(self.port), "--no-reload"],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                if requests.get(f"{self.url}/healthz", timeout=2).ok:
                    self.starts += 1
                    return
            except requests.RequestException:
                time.sleep(0.1)
        raise RuntimeError(f"the server did not start; see {self.log}")

    def kill(self) -> None:
        """SIGKILL: no clean-up, no finished requests, no flushed buffers."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()

    def server_errors_logged(self) -> int:
        return self.log.read_text(errors="replace").count("unhandled error on")


def _prepare(url: str) -> None:
    """The real migrations and the demo organisation, done in this process to save a start."""
    from flask_migrate import upgrade

    from fieldapp import create_app
    from fieldapp.demo import seed_demo
    from fieldapp.extensions import db

    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "EXTRA_MODULES": ["tests.sync_types"]})
    with app.app_context():
        upgrade(revision="heads")
        seed_demo()
        db.session.remove()
        db.engine.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def campaign_server(request):
    instance = Path(tempfile.mkdtemp(prefix="fieldapp-faults-"))
    schema = None
    if request.param == "sqlite":
        path = instance / "live.sqlite3"
        database = Database("sqlite", f"sqlite:///{path}", sqlite_path=path)
    else:
        base = os.environ.get("TEST_POSTGRES_URL")
        if not base:
            shutil.rmtree(instance, ignore_errors=True)
            pytest.skip("TEST_POSTGRES_URL is not set")
        schema = f"fa_fault_{uuid.uuid4().hex[:10]}"
        from sqlalchemy import create_engine, text

        engine = create_engine(base)
        with engine.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        engine.dispose()
        separator = "&" if "?" in base else "?"
        url = f"{base}{separator}options=-csearch_path%3D{schema}&application_name={schema}"
        database = Database("postgres", url, schema=schema)
    server = CampaignServer(instance, database)
    try:
        _prepare(database.url)
        server.start()
        yield server
    finally:
        server.kill()
        if schema:
            from sqlalchemy import create_engine, text

            engine = create_engine(os.environ["TEST_POSTGRES_URL"])
            with engine.begin() as conn:
                conn.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                        " WHERE application_name = :name"
                    ),
                    {"name": schema},
                )
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            engine.dispose()
        shutil.rmtree(instance, ignore_errors=True)


class Campaign:
    """The faults, each injected while the other phones keep working."""

    def __init__(self, server: CampaignServer, phones: list[Phone], tally: Tally):
        self.server = server
        self.phones = phones
        self.tally = tally
        self.faults: Counter = Counter()
        self.notes: list[str] = []
        self.timeline: list[tuple[str, float]] = []

    def step(self, name: str, fault, *args) -> None:
        started = time.monotonic()
        fault(*args)
        self.timeline.append((name, round(time.monotonic() - started, 1)))

    def _resend(self, phone: Phone, timeout: float = 20) -> None:
        """The phone's next flushes, until one gets through (the lock is already held)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                phone.flush()
                return
            except Unavailable:
                self.tally.add("flush_failures")
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def cut_off_bodies(self, phones: list[Phone]) -> None:
        for phone, how in zip(phones, ("close", "stall", "half_close"), strict=True):
            with phone.lock:
                self._resend(phone)  # logged in, nothing older waiting
                cut = phone.record("cut off")
                status = phone.push_cut_off(how)
                self.faults[f"body_cut_off_{how}"] += 1
                if how == "half_close":
                    # A stream that ends early is the client's fault: 4xx, never a 500.
                    assert status is not None and 400 <= status < 500, status
                    self.notes.append(f"a push whose body ended early was answered {status}")
                self._resend(phone)
            # Nothing of a cut-off push was applied: the complete resend applies it now.
            history = phone.history[cut["id"]]
            assert history[0] == CUT_OFF and first_answer(history), history
            if answered_at_once(history):
                assert history[1] == "applied", (how, history)

    def answer_lost(self, phone: Phone) -> None:
        """The server commits a batch whose answer the phone stopped waiting for."""
        with phone.lock:
            self._resend(phone)
            self.server.marker.touch()
            slow = phone.record("slow")
            queue = phone.take_batch()
            assert slow in queue
            try:
                phone.push(queue, timeout=(3.0, 1.0))
            except Unavailable:
                pass
            else:
                raise AssertionError("the slow batch was answered within its read timeout")
            wait_until(lambda: not self.server.marker.exists(), 20, "the server applies it")
            self.faults["read_timeout_before_answer"] += 1
            self._resend(phone)  # waits on the device's lock until the first one commits
        # The server committed what the phone never heard about; the resend is a duplicate.
        history = phone.history[slow["id"]]
        assert history[0] == NO_ANSWER and first_answer(history) == "duplicate", history

    def database_unavailable(self) -> None:
        self.faults.update(self.server.database.unavailable(DB_OUTAGE_SECONDS))
        self.faults["database_unavailable"] += 1

    def kill_under_load(self) -> None:
        before = self.tally.counts["pushes"]
        wait_until(lambda: self.tally.counts["pushes"] >= before + 5, 20, "phones push")
        self.server.kill()
        self.faults["sigkill"] += 1
        time.sleep(0.5)  # the phones find the server gone
        self.server.start()

    def kill_mid_batch(self, phone: Phone) -> None:
        """SIGKILL while the server is inside a batch: nothing of it may be committed."""
        with phone.lock:
            self._resend(phone)
            self.server.marker.touch()
            slow = phone.record("slow")
            queue = phone.take_batch()
            assert slow in queue
            sender = threading.Thread(target=_push_ignoring_failure, args=(phone, queue))
            sender.start()
            wait_until(lambda: not self.server.marker.exists(), 20, "the server applies it")
            self.server.kill()  # the apply sleeps 3 s: the batch is not committed yet
            self.faults["sigkill"] += 1
            self.faults["sigkill_mid_batch"] += 1
            sender.join()
            self.server.start()
            self._resend(phone)
        # Nothing of the killed batch was committed: the resend applies it.
        history = phone.history[slow["id"]]
        assert history[0] == NO_ANSWER and first_answer(history), history
        if answered_at_once(history):
            assert history[1] == "applied", history


def _push_ignoring_failure(phone: Phone, queue: list[dict]) -> None:
    with contextlib.suppress(Unavailable):
        phone.push(queue, timeout=(3.0, 30.0))


def test_phones_lose_nothing_and_double_nothing_while_the_server_fails(campaign_server, capsys):
    began = time.monotonic()
    server = campaign_server
    demo_complaints = {row[0] for row in server.database.rows("SELECT id FROM complaint")}
    tally = Tally()
    phones = [
        Phone(server.url, WORKERS[i % len(WORKERS)], f"p{i:02d}", tally) for i in range(DEVICES)
    ]
    stop = threading.Event()
    workers = [
        threading.Thread(target=phone.work, args=(stop, random.Random(i)), daemon=True)
        for i, phone in enumerate(phones)
    ]
    campaign = Campaign(server, phones, tally)
    for worker in workers:
        worker.start()
    try:
        campaign.step("bodies cut off", campaign.cut_off_bodies, phones[:3])
        campaign.step("answer lost", campaign.answer_lost, phones[3])
        campaign.step("database unavailable", campaign.database_unavailable)
        campaign.step("killed under load", campaign.kill_under_load)
        campaign.step("killed mid-batch", campaign.kill_mid_batch, phones[4])
        time.sleep(1.0)  # the phones catch up under load once more
    finally:
        stop.set()
        for worker in workers:
            worker.join(timeout=30)
    campaign_seconds = time.monotonic() - began

    # Every phone sends what it still holds; the last pull says what the server has processed.
    deadline = time.monotonic() + 30
    drained: dict[str, bool] = {}
    drainers = [
        threading.Thread(target=lambda p=p: drained.__setitem__(p.name, p.drain(deadline)))
        for p in phones
    ]
    for drainer in drainers:
        drainer.start()
    for drainer in drainers:
        drainer.join()
    server.stop()
    errors_logged = server.server_errors_logged()

    made = {m["payload"]["id"]: m for p in phones for m in p.outbox}
    made_by_type = Counter(m["type"] for m in made.values())
    mutation_device = {m["id"]: p.device_id for p in phones for m in p.outbox}
    stored = [row[0] for row in server.database.rows("SELECT id FROM test_note")]
    complaints = dict(server.database.rows("SELECT id, slip_number FROM complaint"))
    stored += [i for i in complaints if i not in demo_complaints]
    # Side effects of a complaint happen once too: one "received" event, one register number.
    events = Counter(
        row[0]
        for row in server.database.rows(
            "SELECT complaint_id FROM complaint_event WHERE step = 'received'"
        )
        if row[0] not in demo_complaints
    )
    slips = len({n for i, n in complaints.items() if i not in demo_complaints})
    ledger = server.database.rows(
        "SELECT id, device_id, record_id, status FROM sync_mutation"
        " WHERE record_type IN ('test.note', 'complaint.intake')"
    )
    stored_counts = Counter(stored)
    lost = set(made) - set(stored)
    extra = set(stored) - set(made)
    doubled = sorted(i for i, n in stored_counts.items() if n > 1)
    ledger_counts = Counter(row[0] for row in ledger)
    # Each phone learnt, by pulling, every complaint it took (published to the taker).
    unpulled = [
        m["payload"]["id"]
        for p in phones
        for m in p.outbox
        if m["type"] == "complaint.intake" and ("complaint", m["payload"]["id"]) not in p.pulled
    ]
    histories = {i: h for p in phones for i, h in p.history.items()}
    answered = Counter(e for h in histories.values() for e in h if e not in (NO_ANSWER, CUT_OFF))
    applied_twice = [i for i, h in histories.items() if h.count("applied") > 1]
    resent = sum(1 for h in histories.values() if len(h) > 1)
    # Committed by the server while the phone heard nothing: its first answer is "duplicate".
    unheard = sum(1 for h in histories.values() if first_answer(h) == "duplicate")
    counts = tally.counts
    report = {
        "backend": server.database.backend,
        "devices": len(phones),
        "records created": f"{len(made)} {dict(made_by_type)}",
        "records stored": len(stored),
        "lost": len(lost),
        "doubled": len(doubled),
        "unexpected": len(extra),
        "ledger rows": len(ledger),
        "pushes (complete)": counts["pushes"],
        "pushes cut off mid-body": counts["pushes_cut_off"],
        "mutations sent": counts["mutations_sent"],
        "mutations sent more than once": resent,
        "committed, answer never heard": unheard,
        "answers": dict(sorted(answered.items())),
        "pulls (changes received)": f"{counts['pulls']} ({counts['changes_pulled']})",
        "complaints not pulled back": len(unpulled),
        "logins": counts["logins"],
        "failed flushes (retried)": counts["flush_failures"],
        "read timeouts": counts["read_timeouts"],
        "connection errors": counts["connection_errors"],
        "5xx answers": counts["http_5xx"],
        "500s logged by the server": errors_logged,
        "server starts": server.starts,
        "faults injected": dict(sorted(campaign.faults.items())),
        "fault steps (seconds)": dict(campaign.timeline),
        "seconds (setup / campaign / total)": (
            round(began - server.created, 1),
            round(campaign_seconds, 1),
            round(time.monotonic() - server.created, 1),
        ),
    }
    with capsys.disabled():
        print("\nfault campaign:")
        for key, value in report.items():
            print(f"  {key:<32} {value}")
        for note in campaign.notes:
            print(f"  note: {note}")

    assert all(drained.values()), f"phones still holding records: {drained}"
    assert not lost, f"{len(lost)} records lost, e.g. {sorted(lost)[:3]}"
    assert not doubled, f"records stored twice: {doubled[:3]}"
    assert not extra, f"records nobody made: {sorted(extra)[:3]}"
    assert len(stored) == len(made) > 0
    assert made_by_type["test.note"] > 0 and made_by_type["complaint.intake"] > 0
    assert set(events) == {i for i, m in made.items() if m["type"] == "complaint.intake"}
    assert max(events.values()) == 1 and slips == made_by_type["complaint.intake"]
    # The ledger holds every mutation once, applied, from the phone that made it.
    assert set(ledger_counts) == set(mutation_device)
    assert max(ledger_counts.values()) == 1
    assert {row[3] for row in ledger} == {"applied"}
    assert all(mutation_device[row[0]] == row[1] for row in ledger)
    assert all(made[row[2]]["id"] == row[0] for row in ledger)
    # The phones were told so: nothing rejected or in conflict, nothing applied twice.
    assert set(answered) <= {"applied", "duplicate", "retry"}, answered
    assert not applied_twice, applied_twice
    assert all(m["status"] == "synced" for m in made.values())
    assert not unpulled, f"{len(unpulled)} complaints never reached their taker's phone"
    assert all(p.device_seq == p.counter for p in phones), [
        (p.name, p.device_seq, p.counter) for p in phones if p.device_seq != p.counter
    ]
    # Each fault happened at least once.
    faults = campaign.faults
    for fault in (
        "body_cut_off_close",
        "body_cut_off_stall",
        "body_cut_off_half_close",
        "read_timeout_before_answer",
        "database_unavailable",
        "sigkill_mid_batch",
    ):
        assert faults[fault] >= 1, fault
    assert faults["sigkill"] >= 2 and server.starts == 1 + faults["sigkill"]
