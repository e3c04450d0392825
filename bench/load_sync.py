"""A shift's worth of phones against gunicorn (4 workers) on PostgreSQL: throughput and latency.

    .venv/bin/python bench/load_sync.py                       # 500 devices, 4 clients at a time
    .venv/bin/python bench/load_sync.py --devices 100 --clients 8 --batches 2
    .venv/bin/python bench/load_sync.py --postgres URL        # a server's maintenance DB URL

Creates a database of its own (``fa_bench_load_<random>``; dropped afterwards), runs the real
migrations and the demo seed, and adds one guard per simulated device, each rostered on a shift
running now at the demo's guarded post. gunicorn (``--workers``, default 4, sync workers) is
started from here on a free loopback port. Every device then, as the phone does:

  1. ``GET /api/sync/daypack`` and ``GET /api/sync/pull`` from the day pack's cursor;
  2. pushes its shift's records in batches of 100 mutations (``--batches``, default 1): the
     sign-in (``patrol.sign_in``), then checkpoint scans (``patrol.scan``, signed QR codes of
     the post's checkpoints), two of them with a photo;
  3. uploads the photos the server reports missing (two small JPEGs: announce + one PATCH).

Logins happen before the clock starts (the guards' password hashes are cheap PBKDF2 so 500
logins do not dominate the run). Devices run ``--clients`` at a time, each request timed on
its own. It prints requests/s, mutations/s, p50/p95/p99 per request kind and the number of
errors (any non-2xx answer, network error, or a mutation not ``applied``). Loopback only; the
request count is bounded: devices x (2 + batches + 4).
"""

import argparse
import io
import os
import random
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from hashlib import sha256
from pathlib import Path

import requests
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BATCH = 100
PHOTOS = 2
PASSWORD = "bench-2026"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def create_database(admin_url: str) -> tuple[str, str]:
    name = f"fa_bench_load_{uuid.uuid4().hex[:8]}"
    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return name, make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def drop_database(admin_url: str, name: str) -> None:
    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


def seed(url: str, devices: int) -> tuple[list[tuple[str, int]], list[str]]:
    """Demo data plus one guard per device on a shift now: [(username, shift id)], QR codes."""
    from flask_migrate import upgrade
    from werkzeug.security import generate_password_hash

    from fieldapp import create_app
    from fieldapp.demo import seed_demo
    from fieldapp.extensions import db
    from fieldapp.models import Organisation, Role, Site, Team, User
    from fieldapp.patrols import service as patrols
    from fieldapp.patrols.models import Checkpoint, Post, Shift

    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "TESTING": True})
    with app.app_context():
        upgrade(revision="heads")
        seed_demo()
        org = db.session.scalar(db.select(Organisation).where(Organisation.code == "DEMO"))
        site = db.session.scalar(
            db.select(Site).where(Site.org_id == org.id, Site.kind == "guarded_post")
        )
        team_id = site.team_id or db.session.scalar(db.select(Team.id).limit(1))
        posts = list(db.session.scalars(db.select(Post.id).where(Post.site_id == site.id)))
        password = generate_password_hash(PASSWORD, method="pbkdf2:sha256:1000")
        names = [f"bguard{i:04d}" for i in range(devices)]
        ids = db.session.scalars(
            db.insert(User).returning(User.id),
            [
                {
                    "org_id": org.id,
                    "team_id": team_id,
                    "username": name,
                    "display_name": f"压测保安{i:04d}",
                    "role": str(Role.GUARD),
                    "password_hash": password,
                    "active": True,
                }
                for i, name in enumerate(names)
            ],
        ).all()
        now = datetime.now(UTC)
        shift_ids = db.session.scalars(
            db.insert(Shift).returning(Shift.id),
            [
                {
                    "org_id": org.id,
                    "site_id": site.id,
                    "post_id": posts[i % len(posts)],
                    "guard_id": uid,
                    "starts_at": now - timedelta(hours=4),
                    "ends_at": now + timedelta(hours=4),
                }
                for i, uid in enumerate(ids)
            ],
        ).all()
        codes = [
            patrols.checkpoint_payload(c)
            for c in db.session.scalars(db.select(Checkpoint).where(Checkpoint.site_id == site.id))
        ]
        db.session.commit()
        db.engine.dispose()
    return list(zip(names, shift_ids, strict=True)), codes


def tiny_jpeg(seed_value: int) -> bytes:
    """A small, genuine JPEG (about 3 KB) that differs per device."""
    from PIL import Image

    rng = random.Random(seed_value)
    image = Image.new("RGB", (64, 48))
    image.putdata([(rng.randrange(256), rng.randrange(256), 90) for _ in range(64 * 48)])
    out = io.BytesIO()
    image.save(out, "JPEG", quality=70)
    return out.getvalue()


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.latency = defaultdict(list)
        self.errors = defaultdict(int)
        self.samples = []
        self.mutations = 0

    def time(self, kind: str, call):
        began = time.perf_counter()
        try:
            response = call()
        except requests.RequestException as error:
            with self.lock:
                self.errors[f"{kind}: {type(error).__name__}"] += 1
            return None
        elapsed = time.perf_counter() - began
        with self.lock:
            self.latency[kind].append(elapsed)
            if not 200 <= response.status_code < 300:
                self.errors[f"{kind}: HTTP {response.status_code}"] += 1
                if len(self.samples) < 5:
                    self.samples.append(f"{kind} {response.status_code} {response.text[:200]}")
        return response if 200 <= response.status_code < 300 else None


def login(base: str, username: str, device_id: str) -> requests.Session:
    session = requests.Session()
    page = session.get(f"{base}/login", timeout=60).text
    token = re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)
    answer = session.post(
        f"{base}/login",
        data={
            "csrf_token": token,
            "username": username,
            "password": PASSWORD,
            "device_id": device_id,
        },
        allow_redirects=False,
        timeout=60,
    )
    if answer.status_code != 302:
        raise RuntimeError(f"login of {username} failed: {answer.status_code}")
    home = session.get(f"{base}/", timeout=60).text
    session.headers["X-CSRFToken"] = re.search(r'name="csrf-token" content="([^"]+)"', home).group(
        1
    )
    return session


def shift_records(shift_id: int, codes: list[str], photos: list[str], batches: int) -> list[dict]:
    """The shift's mutations in seq order: a sign-in, then scans (some with a photo)."""
    total = BATCH * batches
    now = datetime.now(UTC)
    result = []
    for i in range(total):
        at = (now - timedelta(minutes=total - i)).isoformat()
        if i == 0:
            rtype, payload = "patrol.sign_in", {"action": "in", "latitude": None}
        else:
            rtype = "patrol.scan"
            payload = {"code": codes[i % len(codes)], "note": ""}
            if i in (BATCH // 3, 2 * BATCH // 3):
                payload["photo"] = photos[i // (BATCH // 3) - 1]
        payload |= {"id": str(uuid.uuid4()), "shift_id": shift_id}
        result.append(
            {
                "id": str(uuid.uuid4()),
                "seq": i + 1,
                "type": rtype,
                "payload": payload,
                "device_time": at,
            }
        )
    return result


def run_device(base, stats: Stats, device: dict, codes: list[str], batches: int) -> None:
    session, device_id = device["session"], device["device_id"]
    pack = stats.time("daypack", lambda: session.get(f"{base}/api/sync/daypack", timeout=60))
    cursor = pack.json()["cursor"] if pack is not None else 0
    stats.time(
        "pull",
        lambda: session.get(
            f"{base}/api/sync/pull",
            params={"cursor": cursor, "device_id": device_id, "pending": BATCH * batches},
            timeout=60,
        ),
    )
    files = {sha256(data).hexdigest(): data for data in device["photos"]}
    mutations = shift_records(device["shift_id"], codes, list(files), batches)
    missing = set()
    for start in range(0, len(mutations), BATCH):
        body = {"device_id": device_id, "mutations": mutations[start : start + BATCH]}
        answer = stats.time(
            "push (100 mutations)",
            lambda body=body: session.post(f"{base}/api/sync/push", json=body, timeout=60),
        )
        if answer is None:
            continue
        data = answer.json()
        bad = [r for r in data["results"] if r["status"] not in ("applied", "duplicate")]
        with stats.lock:
            stats.mutations += len(data["results"]) - len(bad)
            for result in bad:
                stats.errors[f"mutation {result['status']}: {result.get('reason')}"] += 1
        for result in data["results"]:
            missing.update(result.get("files_missing", []))
    for sha in missing:
        content = files.get(sha)
        if content is None:
            continue
        announced = stats.time(
            "file announce",
            lambda sha=sha, content=content: session.post(
                f"{base}/api/sync/files/{sha}",
                json={"size": len(content), "content_type": "image/jpeg"},
                timeout=60,
            ),
        )
        offset = announced.json().get("offset", 0) if announced is not None else 0
        stats.time(
            "file upload",
            lambda sha=sha, content=content, offset=offset: session.patch(
                f"{base}/api/sync/files/{sha}",
                data=content[offset:],
                headers={"Upload-Offset": str(offset), "Content-Type": "image/jpeg"},
                timeout=60,
            ),
        )


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--postgres",
        default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
        help="URL of a database on the server to create the bench database from",
    )
    parser.add_argument("--devices", type=int, default=500)
    parser.add_argument("--clients", type=int, default=4, help="devices syncing at the same time")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn worker processes")
    parser.add_argument("--batches", type=int, default=1, help="100-mutation pushes per device")
    parser.add_argument("--keep", action="store_true", help="keep the database")
    args = parser.parse_args()

    instance = Path(tempfile.mkdtemp(prefix="fieldapp-bench-load-"))
    os.environ["FIELDAPP_INSTANCE"] = str(instance)  # the seed and gunicorn share the secret
    name, url = create_database(args.postgres)
    server = None
    try:
        guards, codes = seed(url, args.devices)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        env = {
            **os.environ,
            "FIELDAPP_INSTANCE": str(instance),
            "DATABASE_URL": url,
            "FLASK_APP": "wsgi",
            "FIELDAPP_FILES": str(instance / "files"),
        }
        env.pop("TEST_POSTGRES_URL", None)
        env.pop("REDIS_URL", None)
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "-w",
                str(args.workers),
                "-b",
                f"127.0.0.1:{port}",
                "--timeout",
                "120",
                "wsgi:app",
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=(instance / "server.log").open("wb"),
        )
        for _ in range(300):
            try:
                if requests.get(f"{base}/healthz", timeout=1).ok:
                    break
            except requests.RequestException:
                time.sleep(0.2)
        else:
            raise RuntimeError(f"gunicorn did not start; see {instance / 'server.log'}")

        began = time.perf_counter()
        devices = [
            {
                "username": username,
                "shift_id": shift_id,
                "device_id": str(uuid.uuid4()),
                "photos": [tiny_jpeg(i * PHOTOS + k) for k in range(PHOTOS)],
            }
            for i, (username, shift_id) in enumerate(guards)
        ]
        with ThreadPoolExecutor(args.clients) as pool:
            sessions = list(pool.map(lambda d: login(base, d["username"], d["device_id"]), devices))
        for device, session in zip(devices, sessions, strict=True):
            device["session"] = session
        logins = time.perf_counter() - began

        stats = Stats()
        began = time.perf_counter()
        with ThreadPoolExecutor(args.clients) as pool:
            list(pool.map(lambda d: run_device(base, stats, d, codes, args.batches), devices))
        elapsed = time.perf_counter() - began

        requests_done = sum(len(v) for v in stats.latency.values())
        errors = sum(stats.errors.values())
        print(
            f"load_sync: {args.devices} devices, {args.clients} at a time, gunicorn "
            f"{args.workers} sync workers, PostgreSQL, {os.cpu_count()} cores (shared)"
        )
        print(f"  logins (untimed set-up): {args.devices} in {logins:.1f} s")
        print(
            f"  {requests_done} requests in {elapsed:.1f} s = {requests_done / elapsed:.1f} req/s; "
            f"{stats.mutations} mutations applied = {stats.mutations / elapsed:.0f} mutations/s"
        )
        print(f"  {'request':22s}{'count':>7s}{'p50':>9s}{'p95':>9s}{'p99':>9s}{'max':>9s}")
        for kind, values in stats.latency.items():
            ms = [v * 1000 for v in values]
            print(
                f"  {kind:22s}{len(ms):7d}{statistics.median(ms):7.0f}ms"
                f"{percentile(ms, 0.95):7.0f}ms{percentile(ms, 0.99):7.0f}ms{max(ms):7.0f}ms"
            )
        push = [v * 1000 for v in stats.latency["push (100 mutations)"]]
        p95 = percentile(push, 0.95) if push else float("nan")
        print(
            f"  errors: {errors}"
            + (f" ({dict(stats.errors)})" if errors else "")
            + "; target: 0 errors, push p95 < 300 ms -> "
            + ("met" if errors == 0 and p95 < 300 else "NOT met")
        )
        for sample in stats.samples:
            print(f"    e.g. {sample}")
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        if not args.keep:
            drop_database(args.postgres, name)


if __name__ == "__main__":
    main()
