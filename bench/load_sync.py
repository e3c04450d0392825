"""A shift's worth of phones against gunicorn (4 workers) on PostgreSQL: throughput and latency.

    .venv/bin/python bench/load_sync.py                       # 500 devices, 4 clients at a time
    .venv/bin/python bench/load_sync.py --devices 100 --clients 8 --batches 2
    .venv/bin/python bench/load_sync.py --postgres URL        # a server's maintenance DB URL
    .venv/bin/python bench/load_sync.py --devices 1 --count-only   # statements per record only
    .venv/bin/python bench/load_sync.py --sqlite --devices 40      # on a SQLite file instead
    .venv/bin/python bench/load_sync.py --redis none          # rule clock in every web worker
    .venv/bin/python bench/load_sync.py --workers 2 --threads 4    # gthread workers

Before the load it counts, in-process, the SQL statements of pushes of each record type
(a ``before_cursor_execute`` listener on the app's engine; see ``count_statements``).

Creates a database of its own (``fa_bench_load_<random>``; dropped afterwards), runs the real
migrations and the demo seed, and adds a guard or a courier per simulated device (``--couriers``
of them couriers, default 100 of the 500, spread among the guards). Each guard is rostered on
a shift running now at the demo's guarded post (started 4 hours ago: the count's rule clock
tick below raises the round alarms that the pushed scans then withdraw, as a phone synced late
does); each courier has today's route of 49 stops on the demo shops.
gunicorn (``--workers``, default 4, sync workers; ``--threads`` > 1 for gthread) is started
from here on a free loopback port. As docs/deploy.md deploys it, the web processes get
``REDIS_URL`` (``--redis``, default the local Redis, a queue name of its own) and one
``flask worker`` runs the rule clock and the notifications; ``--redis none`` runs the clock in
every web worker instead (the embedded default without Redis). Every device then, as the
phone does:

  1. ``GET /api/sync/daypack`` and ``GET /api/sync/pull`` from the day pack's cursor;
  2. pushes its records in batches of 100 mutations. A guard (``--batches``, default 1): the
     sign-in (``patrol.sign_in``), then checkpoint scans (``patrol.scan``, signed QR codes of
     the post's checkpoints), two of them with a photo. A courier, in one push of 99: the
     vehicle check, then at each stop the arrival and the proof of delivery (every slip item
     ticked, cash where the shop pays cash, the customer's signature);
  3. uploads the files the server reports missing, each in one PATCH with ``Upload-Length``
     as the phone sends a file of one piece (``--announce``: a POST first, the protocol's
     first form): a guard's two small JPEGs, a courier's 49 signatures (small PNGs).

Logins happen before the clock starts (the guards' password hashes are cheap PBKDF2 so 500
logins do not dominate the run). Devices run ``--clients`` at a time, each request timed on
its own. It prints requests/s, mutations/s, p50/p95/p99 per request kind and the number of
errors (any non-2xx answer, network error, or a mutation not ``applied``); next to the client's
figures, the server's own time for the same requests (gunicorn's access log, ``%(D)s``), and
the CPU seconds used during the load by the web workers, PostgreSQL's backends of the bench
database, this client, the queue worker and everything else on the machine (``/proc``), so
that a starved or client-bound run shows as such. Loopback only; the request count is
bounded: guards x (2 + batches + 2) + couriers x (3 + 49), twice the files with ``--announce``.
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
STOPS = 49  # a courier's route: a vehicle check and 49 x (arrival, proof) = one 99-record push
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


def seed(url: str, devices: int, couriers: int) -> tuple[list, list[str], list]:
    """Demo data, one guard per device on a shift now and ``couriers`` couriers with a route.

    Returns [(username, shift id)], the post's QR codes, and per courier (username, route id,
    the route's stops as (stop id, slip item codes, special-shape items?, cash due in fen)).
    """
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
        routes = seed_routes(org, password, couriers)
        db.session.commit()
        db.engine.dispose()
    return list(zip(names, shift_ids, strict=True)), codes, routes


def seed_routes(org, password: str, couriers: int) -> list:
    """``couriers`` couriers, each with today's route of ``STOPS`` stops on the demo shops."""
    from fieldapp.deliveries import service as deliveries
    from fieldapp.deliveries.demo import STOPS as DEMO_STOPS
    from fieldapp.deliveries.models import Route
    from fieldapp.extensions import db
    from fieldapp.models import Role, Site, SiteKind, Team, User

    team = db.session.scalar(db.select(Team).where(Team.org_id == org.id, Team.name == "配送一组"))
    shops = {
        s.name: s
        for s in db.session.scalars(
            db.select(Site).where(Site.org_id == org.id, Site.kind == SiteKind.SHOP)
        )
    }
    day = deliveries.today_for(org.id)
    result = []
    for i in range(couriers):
        courier = User(
            org_id=org.id,
            team_id=team.id,
            username=f"bcourier{i:04d}",
            display_name=f"压测配送员{i:04d}",
            role=str(Role.COURIER),
            password_hash=password,
            active=True,
        )
        route = Route(
            org_id=org.id,
            team_id=team.id,
            date=day,
            name=f"压测 {i:04d} 号线",
            kind="fixed",
            courier=courier,
            vehicle_plate=f"沪B·{i:05d}",
        )
        db.session.add_all([courier, route])
        db.session.flush()
        stops = []
        for sequence in range(1, STOPS + 1):
            shop, code, _, _, settlement, due, items = DEMO_STOPS[sequence % len(DEMO_STOPS)]
            site = shops.get(shop)
            stop = deliveries.add_stop_quietly(
                route,
                deliveries.StopSpec(
                    customer_name=shop,
                    customer_code=f"{code}-{sequence:02d}",
                    amount_due_fen=due,
                    settlement=settlement,
                    site_id=site.id if site else None,
                    items=list(items),
                ),
                sequence,
            )
            stops.append(stop)
        result.append(
            (
                courier.username,
                route.id,
                [
                    (
                        stop.id,
                        " ".join(item[0] for item in DEMO_STOPS[n % len(DEMO_STOPS)][6]),
                        any(item[3] for item in DEMO_STOPS[n % len(DEMO_STOPS)][6]),
                        stop.amount_due_fen if stop.settlement == "cash" else None,
                    )
                    for n, stop in enumerate(stops, start=1)
                ],
            )
        )
        db.session.expunge_all()  # 49 stops and their items a courier: keep the session small
    return result


def tiny_jpeg(seed_value: int) -> bytes:
    """A small, genuine JPEG (about 3 KB) that differs per device."""
    from PIL import Image

    rng = random.Random(seed_value)
    image = Image.new("RGB", (64, 48))
    image.putdata([(rng.randrange(256), rng.randrange(256), 90) for _ in range(64 * 48)])
    out = io.BytesIO()
    image.save(out, "JPEG", quality=70)
    return out.getvalue()


def tiny_signature(seed_value: int) -> bytes:
    """A small PNG (a few hundred bytes), as the signature pad sends, different per stop."""
    from PIL import Image, ImageDraw

    rng = random.Random(seed_value)
    image = Image.new("RGB", (120, 48), "white")
    points = [(rng.randrange(120), rng.randrange(48)) for _ in range(6)]
    ImageDraw.Draw(image).line(points, fill="black", width=2)
    out = io.BytesIO()
    image.save(out, "PNG")
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


def route_records(route_id: int, stops: list, signatures: list[str]) -> list[dict]:
    """A courier's day in seq order: the vehicle check, then arrival and proof at every stop."""
    now = datetime.now(UTC)
    total = 1 + 2 * len(stops)
    check = dict.fromkeys(("no_faults", "condition", "licence", "registration", "insurance"), True)
    payloads = [("delivery.vehicle_check", {"route_id": route_id, **check})]
    for (stop_id, slip_codes, special, due), signature in zip(stops, signatures, strict=True):
        proof = {
            "stop_id": stop_id,
            "checked_codes": slip_codes,
            "special_confirmed": special,
            "signature": signature,
        }
        if due is not None:
            proof["cash_received"] = f"{due // 100}.{due % 100:02d}"
        payloads += [("delivery.arrival", {"stop_id": stop_id}), ("delivery.proof", proof)]
    return [
        {
            "id": str(uuid.uuid4()),
            "seq": i + 1,
            "type": rtype,
            "payload": {"id": str(uuid.uuid4()), **payload},
            "device_time": (now - timedelta(minutes=total - i)).isoformat(),
        }
        for i, (rtype, payload) in enumerate(payloads)
    ]


def run_device(
    base, stats: Stats, device: dict, codes: list[str], batches: int, announce: bool = False
) -> None:
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
    if "route_id" in device:
        mutations = route_records(device["route_id"], device["stops"], list(files))
        kind = "push (courier, 99)"
    else:
        mutations = shift_records(device["shift_id"], codes, list(files), batches)
        kind = "push (guard, 100)"
    missing = set()
    for start in range(0, len(mutations), BATCH):
        body = {"device_id": device_id, "mutations": mutations[start : start + BATCH]}
        answer = stats.time(
            kind,
            lambda body=body: session.post(
                # the query only labels the request in gunicorn's log (the server ignores it)
                f"{base}/api/sync/push?bench={kind.split()[1].strip(',()')}",
                json=body,
                timeout=60,
            ),
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
        mime = "image/png" if content.startswith(b"\x89PNG") else "image/jpeg"
        headers = {"Upload-Offset": "0", "Content-Type": mime}
        if announce:  # the protocol's first form: announce, then send from the offset given
            announced = stats.time(
                "file announce",
                lambda sha=sha, content=content, mime=mime: session.post(
                    f"{base}/api/sync/files/{sha}",
                    json={"size": len(content), "content_type": mime},
                    timeout=60,
                ),
            )
            offset = announced.json().get("offset", 0) if announced is not None else 0
            headers["Upload-Offset"] = str(offset)
        else:  # as the phone sends a file of one piece: announced with it (Upload-Length)
            offset = 0
            headers["Upload-Length"] = str(len(content))
        stats.time(
            "file upload",
            lambda sha=sha, content=content, offset=offset, headers=headers: session.patch(
                f"{base}/api/sync/files/{sha}", data=content[offset:], headers=headers, timeout=60
            ),
        )


def count_statements(url: str, codes: list[str], shift_id: int, username: str) -> None:
    """Statements per push and per record, counted in-process on the bench's own database.

    A ``before_cursor_execute`` listener (here, not in the app) counts what one push request
    sends to the database: login session, device lock, idempotency lookup, the domain's
    applies, the ledger. Pushes of 1 and of 50 records of one type give the fixed cost of a
    push and the marginal cost of one more record of that type. The demo courier's route
    (vehicle check, then arrival and proof of delivery at every stop) is counted the same way.
    """
    from collections import Counter

    from sqlalchemy import event

    from fieldapp import create_app
    from fieldapp.extensions import db

    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "TESTING": True})
    statements: list[str] = []
    with app.app_context():
        sql_engine = db.engine

    def on_execute(conn, cursor, statement, parameters, context, executemany):
        statements.append(" ".join(statement.split()[:4]))

    class Phone:
        def __init__(self, name: str, password: str):
            self.client = app.test_client()
            page = self.client.get("/login").get_data(as_text=True)
            token = re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)
            self.device_id, self.seq = str(uuid.uuid4()), 0
            form = {"csrf_token": token, "username": name, "password": password}
            answer = self.client.post("/login", data=form | {"device_id": self.device_id})
            if answer.status_code != 302:
                raise RuntimeError(f"count: login of {name} failed: {answer.status_code}")
            home = self.client.get("/").get_data(as_text=True)
            self.csrf = re.search(r'name="csrf-token" content="([^"]+)"', home).group(1)

        def push(self, mutations: list[dict]) -> tuple[int, Counter]:
            for mutation in mutations:
                self.seq += 1
                mutation["seq"] = self.seq
            statements.clear()
            answer = self.client.post(
                "/api/sync/push",
                json={"device_id": self.device_id, "mutations": mutations},
                headers={"X-CSRFToken": self.csrf},
            )
            count = len(statements)
            results = answer.get_json()["results"]
            bad = [r for r in results if r["status"] != "applied"]
            if answer.status_code != 200 or bad:
                raise RuntimeError(f"count: push failed: {answer.status_code} {bad[:2]}")
            return count, Counter(statements)

    def mutation(rtype: str, payload: dict) -> dict:
        return {
            "id": str(uuid.uuid4()),
            "type": rtype,
            "payload": {"id": str(uuid.uuid4()), **payload},
            "device_time": datetime.now(UTC).isoformat(),
        }

    photos = ["0" * 64, "1" * 64]

    def fresh() -> list[dict]:  # new record IDs each time
        return shift_records(shift_id, codes, photos, 1)

    guard = Phone(username, PASSWORD)
    event.listen(sql_engine, "before_cursor_execute", on_execute)
    rows = []
    one_sign_in, _ = guard.push(fresh()[:1])
    rows.append(("patrol.sign_in", 1, one_sign_in, None))
    one_scan, _ = guard.push(fresh()[1:2])
    fifty, _ = guard.push([m for m in fresh()[1:] if not m["payload"].get("photo")][:50])
    rows.append(("patrol.scan", 1, one_scan, None))
    rows.append(("patrol.scan", 50, fifty, (fifty - one_scan) / 49))
    # The load phase's push: a sign-in (out, this time) and 99 scans, two with a photo.
    batch = fresh()
    batch[0]["payload"]["action"] = "out"
    total, kinds = guard.push(batch)
    rows.append(("bench push (sign-in + 99 scans)", 100, total, total / 100))

    # The demo courier's route: a vehicle check, then arrival + proof at each stop.
    from fieldapp.deliveries.models import Route

    with app.app_context():
        route = db.session.scalar(
            db.select(Route).where(Route.name == "黄浦 1 号线").order_by(Route.date.desc())
        )
        courier_name = route.courier.username
        pairs = []
        for stop in route.stops:
            proof = {
                "stop_id": stop.id,
                "checked_codes": " ".join(i.code for i in stop.items),
                "special_confirmed": any(i.special_shape for i in stop.items),
                "signature": "a" * 64,
            }
            if stop.is_cash:
                due = stop.amount_due_fen
                proof["cash_received"] = f"{due // 100}.{due % 100:02d}"
            pairs.append(
                [
                    mutation("delivery.arrival", {"stop_id": stop.id}),
                    mutation("delivery.proof", proof),
                ]
            )
        check = dict.fromkeys(
            ("no_faults", "condition", "licence", "registration", "insurance"), True
        )
        check_mutation = mutation("delivery.vehicle_check", {"route_id": route.id, **check})
    event.remove(sql_engine, "before_cursor_execute", on_execute)
    courier = Phone(courier_name, "demo-2026")
    event.listen(sql_engine, "before_cursor_execute", on_execute)
    checked, _ = courier.push([check_mutation])
    rows.append(("delivery.vehicle_check", 1, checked, None))
    first, _ = courier.push(pairs[0])
    rows.append(("delivery.arrival + proof, 1 stop", 2, first, None))
    if len(pairs) > 2:
        rest = [m for pair in pairs[1:] for m in pair]
        more, delivery_kinds = courier.push(rest)
        rows.append(
            (
                f"delivery.arrival + proof, {len(pairs) - 1} stops",
                len(rest),
                more,
                (more - first) / (len(pairs) - 2) / 2,
            )
        )
    event.remove(sql_engine, "before_cursor_execute", on_execute)
    # The rule clock's round check over every shift on duty (each gunicorn worker runs it
    # every minute when there is no Redis): the first tick raises the alarms, the second is
    # what every later minute costs.
    from fieldapp.models import utcnow
    from fieldapp.patrols import service as patrols

    ticks = []
    with app.app_context():
        event.listen(sql_engine, "before_cursor_execute", on_execute)
        for _ in range(2):
            statements.clear()
            began = time.perf_counter()
            raised = patrols.check_rounds(utcnow())
            db.session.commit()
            ticks.append((len(statements), time.perf_counter() - began, raised))
        event.remove(sql_engine, "before_cursor_execute", on_execute)
        db.engine.dispose()
    print("  statements per push (in-process, before_cursor_execute):")
    print(f"  {'records':36s}{'n':>4s}{'statements':>12s}{'per record':>12s}")
    for name, n, count, marginal in rows:
        per = f"{marginal:10.2f}" if marginal is not None else f"{'':10s}"
        print(f"  {name:36s}{n:4d}{count:12d}  {per}")
    print(f"  push fixed cost (1 sign-in push): {one_sign_in}; the bench push by statement:")
    for statement, count in kinds.most_common():
        print(f"    {count:5d}  {statement}")
    for number, (count, seconds, raised) in enumerate(ticks, start=1):
        print(
            f"  rule clock check_rounds, tick {number}: {count} statements, "
            f"{seconds * 1000:.0f} ms, {raised} alarms raised"
        )
    if len(pairs) > 2:
        print("  the courier's last push by statement:")
        for statement, count in delivery_kinds.most_common():
            print(f"    {count:5d}  {statement}")


def _loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def _proc_cpu(pid: int) -> float:
    """CPU seconds (user + system) a process has used, 0 if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat[stat.rfind(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_use(server_pid: int | None, worker_pid: int | None, database: str | None) -> dict:
    """CPU seconds so far: this client, the web (gunicorn and its workers), the queue worker,
    PostgreSQL's backends of the bench database, and the whole machine (not idle)."""
    use = {"client": sum(os.times()[:2]), "web": 0.0, "queue worker": 0.0, "PostgreSQL": 0.0}
    if worker_pid:
        use["queue worker"] = _proc_cpu(worker_pid)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        parent = int(stat[stat.rfind(")") + 2 :].split()[1])
        if server_pid and server_pid in (int(entry.name), parent):
            use["web"] += _proc_cpu(int(entry.name))
        elif database and command.startswith("postgres:") and f" {database} " in command:
            use["PostgreSQL"] += _proc_cpu(int(entry.name))
    try:
        ticks = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
        use["machine"] = (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        pass
    return use


def server_times(access_log: Path, since: int) -> dict[str, list[float]]:
    """The server's own time per request kind (gunicorn's %(D)s), from byte ``since`` on."""
    kinds = {
        "/api/sync/daypack": "daypack",
        "/api/sync/pull": "pull",
        "/api/sync/push?bench=guard": "push (guard, 100)",
        "/api/sync/push?bench=courier": "push (courier, 99)",
    }
    times: dict[str, list[float]] = defaultdict(list)
    try:
        with access_log.open("rb") as log:
            log.seek(since)
            lines = log.read().decode(errors="replace").splitlines()
    except OSError:
        return times
    for line in lines:
        parts = line.split()
        if len(parts) == 4:  # no query string
            parts.insert(2, "")
        if len(parts) != 5 or not parts[4].isdigit():
            continue
        method, path = parts[0], parts[1]
        kind = kinds.get(f"{path}?{parts[2]}") or kinds.get(path)
        if kind is None and path.startswith("/api/sync/files/"):
            kind = "file announce" if method == "POST" else "file upload"
        if kind:
            times[kind].append(int(parts[4]) / 1000)
    return times


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
    parser.add_argument(
        "--couriers",
        type=int,
        default=100,
        help="how many of the devices are couriers (a route of 49 stops with a signature at "
        "each) rather than guards",
    )
    parser.add_argument("--clients", type=int, default=4, help="devices syncing at the same time")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn worker processes")
    parser.add_argument(
        "--threads", type=int, default=1, help="threads per gunicorn worker (>1: gthread)"
    )
    parser.add_argument(
        "--redis",
        default="redis://127.0.0.1:6379/0",
        help="Redis for the queue worker that runs the rule clock, as in docs/deploy.md "
        "(a queue of its own); 'none' runs the clock in every web worker instead",
    )
    parser.add_argument("--batches", type=int, default=1, help="100-mutation pushes per device")
    parser.add_argument(
        "--announce",
        action="store_true",
        help="announce every file with a POST before sending it (the phone sends a file of one "
        "piece in one PATCH with Upload-Length)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the database")
    parser.add_argument(
        "--sqlite", action="store_true", help="a SQLite file in a temporary folder instead"
    )
    parser.add_argument(
        "--count-only",
        action="store_true",
        help="only count the statements per push (in-process), no load",
    )
    args = parser.parse_args()

    instance = Path(tempfile.mkdtemp(prefix="fieldapp-bench-load-"))
    os.environ["FIELDAPP_INSTANCE"] = str(instance)  # the seed and gunicorn share the secret
    if args.sqlite:
        name, url = None, f"sqlite:///{instance / 'bench.sqlite3'}"
    else:
        name, url = create_database(args.postgres)
    backend = "SQLite" if args.sqlite else "PostgreSQL"
    server = queue_worker = None
    try:
        couriers = min(args.couriers, args.devices)
        guards, codes, routes = seed(url, args.devices - couriers + 1, couriers)
        counter_name, counter_shift = guards.pop()  # a guard of its own for the count
        print(f"load_sync on {backend}; load average before: {_loadavg()}")
        count_statements(url, codes, counter_shift, counter_name)
        if args.count_only:
            return
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
        redis_url = None if args.redis == "none" else args.redis
        if redis_url:  # as deployed: the web only enqueues, `flask worker` runs the clock
            env |= {"REDIS_URL": redis_url, "FIELDAPP_QUEUE": f"fa_bench_{uuid.uuid4().hex[:8]}"}
            queue_worker = subprocess.Popen(
                [sys.executable, "-m", "flask", "--app", "wsgi", "worker"],
                cwd=ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=(instance / "worker.log").open("wb"),
            )
        access_log = instance / "access.log"
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "-w",
                str(args.workers),
                *(["--threads", str(args.threads)] if args.threads > 1 else []),
                "-b",
                f"127.0.0.1:{port}",
                "--timeout",
                "120",
                # the server's own time per request (microseconds), next to the client's
                "--access-logfile",
                str(access_log),
                "--access-logformat",
                "%(m)s %(U)s %(q)s %(s)s %(D)s",
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
        for i, (username, route_id, stops) in enumerate(routes):
            courier = {
                "username": username,
                "route_id": route_id,
                "stops": stops,
                "device_id": str(uuid.uuid4()),
                "photos": [tiny_signature(i * STOPS + k) for k in range(len(stops))],
            }
            # spread the couriers among the guards, so that both kinds sync at the same time
            devices.insert(round(i * len(devices) / len(routes)) + i, courier)
        with ThreadPoolExecutor(args.clients) as pool:
            sessions = list(pool.map(lambda d: login(base, d["username"], d["device_id"]), devices))
        for device, session in zip(devices, sessions, strict=True):
            device["session"] = session
        logins = time.perf_counter() - began

        stats = Stats()
        log_start = access_log.stat().st_size if access_log.exists() else 0
        cpu_before = cpu_use(server.pid, queue_worker and queue_worker.pid, name)
        load_before = _loadavg()
        began = time.perf_counter()
        with ThreadPoolExecutor(args.clients) as pool:
            list(
                pool.map(
                    lambda d: run_device(base, stats, d, codes, args.batches, args.announce),
                    devices,
                )
            )
        elapsed = time.perf_counter() - began
        cpu_after = cpu_use(server.pid, queue_worker and queue_worker.pid, name)

        requests_done = sum(len(v) for v in stats.latency.values())
        errors = sum(stats.errors.values())
        workers = (
            f"{args.workers} workers x {args.threads} threads (gthread)"
            if args.threads > 1
            else f"{args.workers} sync workers"
        )
        print(
            f"load_sync: {args.devices} devices, {args.clients} at a time, gunicorn "
            f"{workers}, {backend}, {os.cpu_count()} cores (shared); "
            f"load average before/after the load: {load_before} / {_loadavg()}"
        )
        print(
            "  rule clock: "
            + (
                "in a `flask worker` queue worker over Redis, as docs/deploy.md deploys it"
                if queue_worker
                else "in every web worker (no Redis: the embedded default, not production)"
            )
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
        on_server = server_times(access_log, log_start)
        if on_server:
            print("  the same requests timed by the server (gunicorn's request time, %(D)s):")
            for kind, ms in on_server.items():
                print(
                    f"  {kind:22s}{len(ms):7d}{statistics.median(ms):7.0f}ms"
                    f"{percentile(ms, 0.95):7.0f}ms{percentile(ms, 0.99):7.0f}ms"
                    f"{max(ms):7.0f}ms"
                )
        used = {k: cpu_after.get(k, 0.0) - cpu_before.get(k, 0.0) for k in cpu_after}
        others = used.get("machine", 0.0) - sum(
            used[k] for k in ("client", "web", "queue worker", "PostgreSQL")
        )
        print(
            f"  CPU during the load ({elapsed:.0f} s x {os.cpu_count()} cores = "
            f"{elapsed * (os.cpu_count() or 1):.0f} core-s): "
            + ", ".join(
                f"{k} {used[k]:.0f} s"
                for k in ("web", "PostgreSQL", "client", "queue worker")
                if k in used
            )
            + (f", everything else on the machine {others:.0f} s" if "machine" in used else "")
        )
        p95s = [
            percentile([v * 1000 for v in values], 0.95)
            for kind, values in stats.latency.items()
            if kind.startswith("push") and values
        ]
        met = errors == 0 and bool(p95s) and max(p95s) < 300
        print(
            f"  errors: {errors}"
            + (f" ({dict(stats.errors)})" if errors else "")
            + "; target: 0 errors, p95 < 300 ms for every kind of push -> "
            + ("met" if met else "NOT met")
        )
        for sample in stats.samples:
            print(f"    e.g. {sample}")
    finally:
        for process in (server, queue_worker):
            if process is not None:
                process.terminate()
                process.wait(timeout=30)
        if not args.keep and name is not None:
            drop_database(args.postgres, name)


if __name__ == "__main__":
    main()
