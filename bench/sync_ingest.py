"""How fast the server takes in mutations, against the ceiling of a plain bulk insert.

    .venv/bin/python bench/sync_ingest.py                 # SQLite
    .venv/bin/python bench/sync_ingest.py --postgres URL  # PostgreSQL (a schema of its own)

Starts gunicorn on a fresh database, logs in 200 simulated phones, pushes 20,000 mutations in
batches of 100 from 8 concurrent clients, and prints mutations/s and batch latency; then inserts
the same rows with plain SQLAlchemy executemany (one commit per 100 rows) into the same
database: the ceiling. Loopback only; bounded in count.
"""

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import requests
from sqlalchemy import create_engine, insert, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEVICES, PER_DEVICE, BATCH = 200, 100, 100
CLIENTS = int(os.environ.get("BENCH_CLIENTS", "2"))  # one per core of the target machine


def server_env(instance: Path, url: str) -> dict:
    return {
        **os.environ,
        "FIELDAPP_INSTANCE": str(instance),
        "DATABASE_URL": url,
        "FIELDAPP_EXTRA_MODULES": "tests.sync_types",
        "FLASK_APP": "wsgi",
    }


def prepare(env: dict) -> None:
    flask = [sys.executable, "-m", "flask"]
    subprocess.run(
        [*flask, "db", "upgrade", "heads"], cwd=ROOT, env=env, check=True, capture_output=True
    )
    subprocess.run([*flask, "seed-demo"], cwd=ROOT, env=env, check=True, capture_output=True)


def login(base: str, device_id: str) -> requests.Session:
    session = requests.Session()
    page = session.get(f"{base}/login").text
    token = re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)
    session.post(
        f"{base}/login",
        data={
            "csrf_token": token,
            "username": "courier1",
            "password": "demo-2026",
            "device_id": device_id,
        },
        allow_redirects=False,
    )
    home = session.get(f"{base}/").text
    session.headers["X-CSRFToken"] = re.search(r'name="csrf-token" content="([^"]+)"', home).group(
        1
    )
    return session


def mutations(seq_start: int, count: int) -> list[dict]:
    now = datetime.now(UTC).isoformat()
    return [
        {
            "id": str(uuid.uuid4()),
            "seq": seq_start + i,
            "type": "test.note",
            "device_time": now,
            "payload": {"id": str(uuid.uuid4()), "title": f"记录 {seq_start + i}", "amount": i},
        }
        for i in range(count)
    ]


def run_device(base: str, device_id: str, session: requests.Session) -> list[float]:
    latencies = []
    for start in range(1, PER_DEVICE + 1, BATCH):
        body = {"device_id": device_id, "mutations": mutations(start, BATCH)}
        began = time.perf_counter()
        answer = session.post(f"{base}/api/sync/push", json=body, timeout=30)
        latencies.append(time.perf_counter() - began)
        if answer.status_code != 200:
            raise RuntimeError(f"push failed: {answer.status_code} {answer.text[:300]}")
        statuses = {r["status"] for r in answer.json()["results"]}
        if statuses != {"applied"}:
            raise RuntimeError(f"push not applied: {statuses}")
    return latencies


def ceiling(url: str) -> float:
    """Plain executemany of the same two rows per mutation, one commit per batch."""
    from fieldapp.sync.models import Mutation
    from tests.sync_types import notes

    engine = create_engine(url)
    with engine.connect() as conn:
        user_id, org_id = conn.execute(
            text("SELECT id, org_id FROM \"user\" WHERE username = 'courier1'")
        ).one()
        device_id = str(uuid.uuid4())
        conn.execute(
            text(
                "INSERT INTO device (id, user_id, label, created_at, last_seq, "
                "pending_count) VALUES (:d, :u, 'ceiling', :t, 0, 0)"
            ),
            {"d": device_id, "u": user_id, "t": datetime.now(UTC)},
        )
        conn.commit()
        began = time.perf_counter()
        seq = 0
        for _ in range(DEVICES * PER_DEVICE // BATCH):
            batch = mutations(seq + 1, BATCH)
            seq += BATCH
            now = datetime.now(UTC)
            conn.execute(
                insert(notes),
                [
                    {
                        "id": m["payload"]["id"],
                        "user_id": user_id,
                        "title": m["payload"]["title"],
                        "amount": m["payload"]["amount"],
                    }
                    for m in batch
                ],
            )
            conn.execute(
                insert(Mutation.__table__),
                [
                    {
                        "id": m["id"],
                        "org_id": org_id,
                        "user_id": user_id,
                        "device_id": device_id,
                        "seq": m["seq"],
                        "record_type": m["type"],
                        "record_id": m["payload"]["id"],
                        "content_hash": "0" * 64,
                        "payload": m["payload"],
                        "status": "applied",
                        "device_time": now,
                        "received_at": now,
                        "skew_seconds": 0,
                        "skew_flagged": False,
                    }
                    for m in batch
                ],
            )
            conn.commit()
        elapsed = time.perf_counter() - began
    engine.dispose()
    return DEVICES * PER_DEVICE / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", help="a PostgreSQL URL (postgresql+psycopg://...)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    instance = Path(tempfile.mkdtemp(prefix="fieldapp-bench-"))
    schema = None
    if args.postgres:
        schema = f"bench_{uuid.uuid4().hex[:8]}"
        admin = create_engine(args.postgres)
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        url = f"{args.postgres}?options=-csearch_path%3D{schema}"
    else:
        url = f"sqlite:///{instance / 'bench.sqlite3'}"
    env = server_env(instance, url)
    prepare(env)
    os.environ["FIELDAPP_INSTANCE"] = str(instance)
    base = "http://127.0.0.1:5057"
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "-w",
            str(args.workers),
            "--threads",
            "4",
            "-b",
            "127.0.0.1:5057",
            "wsgi:app",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=(instance / "server.log").open("wb"),
    )
    try:
        for _ in range(100):
            try:
                if requests.get(f"{base}/healthz", timeout=1).ok:
                    break
            except requests.RequestException:
                time.sleep(0.2)
        devices = [str(uuid.uuid4()) for _ in range(DEVICES)]
        with ThreadPoolExecutor(CLIENTS) as pool:
            sessions = list(pool.map(lambda d: login(base, d), devices))
            began = time.perf_counter()
            results = list(
                pool.map(lambda pair: run_device(base, *pair), zip(devices, sessions, strict=True))
            )
            elapsed = time.perf_counter() - began
        latencies = sorted(x for device in results for x in device)
        total = DEVICES * PER_DEVICE
        rate = total / elapsed
        p50 = statistics.median(latencies) * 1000
        p95 = latencies[int(len(latencies) * 0.95) - 1] * 1000
        print(
            f"database: {'PostgreSQL' if schema else 'SQLite'} · gunicorn {args.workers} "
            f"workers x {args.threads} threads · {CLIENTS} concurrent clients"
        )
        print(
            f"engine:  {total} mutations from {DEVICES} devices in {elapsed:.1f} s "
            f"= {rate:.0f} mutations/s; batch of {BATCH}: p50 {p50:.0f} ms, p95 {p95:.0f} ms"
        )
    finally:
        server.terminate()
        server.wait(timeout=10)
    bulk = ceiling(url)
    print(f"ceiling: plain bulk insert of the same rows = {bulk:.0f} rows/s")
    print(f"engine / ceiling = {rate / bulk:.0%}  (target >= 40%, p95 < 250 ms on SQLite)")
    if schema:
        with create_engine(args.postgres).begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))


if __name__ == "__main__":
    main()
