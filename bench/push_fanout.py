"""Push fan-out: one event to 10,000 people, each with a subscription, to a local push service.

    .venv/bin/python bench/push_fanout.py                          # SQLite, in-process worker
    .venv/bin/python bench/push_fanout.py --postgres URL           # PostgreSQL (own schema)
    .venv/bin/python bench/push_fanout.py --redis URL --workers 2  # RQ + `flask worker` processes

Prints notifications/s for
  1. encryption alone: aes128gcm (RFC 8291) for each subscription, as the sender does it;
  2. end to end: ``push.notify`` renders and stores 10,000 inbox lines and deliveries and queues
     them; workers claim, encrypt, post over keep-alive HTTP and record each answer, until the
     push service (a separate process on 127.0.0.1 answering 201) has received all 10,000.
Loopback only; bounded in count. The subscriptions are inserted in bulk, not through the API.
"""

import argparse
import asyncio
import base64
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import requests
from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

N = 10_000


# ----- the push service: a separate process that answers 201 and counts ----------------------


async def _serve(port: int) -> None:
    count = 0

    async def handle(reader, writer):
        nonlocal count
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                if length:
                    await reader.readexactly(length)
                if head.startswith(b"GET /count"):
                    body = str(count).encode()
                    writer.write(
                        b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
                    )
                else:
                    count += 1
                    writer.write(b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=512)
    async with server:
        await server.serve_forever()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_push_service() -> tuple[subprocess.Popen, str]:
    port = free_port()
    process = subprocess.Popen([sys.executable, __file__, "--serve", str(port)])
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            requests.get(f"{url}/count", timeout=0.5)
            return process, url
        except requests.RequestException:
            time.sleep(0.05)
    raise RuntimeError("push service did not start")


def received(url: str) -> int:
    return int(requests.get(f"{url}/count", timeout=2).text)


# ----- the app side --------------------------------------------------------------------------


def database(args) -> tuple[str, str | None]:
    if not args.postgres:
        instance = Path(tempfile.mkdtemp(prefix="fieldapp-bench-push-"))
        return f"sqlite:///{instance / 'bench.sqlite3'}", None
    schema = f"fa_bench_{uuid.uuid4().hex[:8]}"
    engine = create_engine(args.postgres)
    with engine.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine.dispose()
    sep = "&" if "?" in args.postgres else "?"
    return f"{args.postgres}{sep}options=-csearch_path%3D{schema}", schema


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_subscriptions(n: int, push_url: str) -> list[dict]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    # Browsers make one key pair each; 100 distinct pairs cycled cost the sender the same.
    points = [
        b64url(
            ec.generate_private_key(ec.SECP256R1())
            .public_key()
            .public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
        )
        for _ in range(100)
    ]
    return [
        {
            "endpoint": f"{push_url}/push/{i}",
            "p256dh": points[i % 100],
            "auth": b64url(os.urandom(16)),
        }
        for i in range(n)
    ]


def seed(subscriptions: list[dict]) -> list[int]:
    from werkzeug.security import generate_password_hash

    from fieldapp.demo import seed_demo
    from fieldapp.extensions import db
    from fieldapp.models import Organisation, User
    from fieldapp.push.models import PushSubscription

    seed_demo()
    org_id = db.session.scalar(db.select(Organisation.id).where(Organisation.code == "DEMO"))
    password = generate_password_hash("bench-2026")
    users = [
        {
            "org_id": org_id,
            "username": f"guard{i:05d}",
            "display_name": f"保安{i:05d}",
            "role": "guard",
            "password_hash": password,
            "active": True,
            "locale": "en" if i % 5 == 0 else None,  # some read English
        }
        for i in range(len(subscriptions))
    ]
    ids = db.session.scalars(db.insert(User).returning(User.id), users).all()
    db.session.execute(
        db.insert(PushSubscription),
        [
            {"user_id": uid, "user_agent": "bench", **sub}
            for uid, sub in zip(ids, subscriptions, strict=True)
        ],
    )
    db.session.commit()
    return list(ids)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", help="PostgreSQL URL (a schema of its own is made)")
    parser.add_argument("--redis", help="Redis URL: send through RQ and worker processes")
    parser.add_argument("--workers", type=int, default=2, help="worker processes with --redis")
    parser.add_argument("-n", type=int, default=N)
    parser.add_argument("--concurrency", type=int, help="PUSH_HTTP_CONCURRENCY (HTTP threads)")
    args = parser.parse_args()

    os.environ["FIELDAPP_INSTANCE"] = tempfile.mkdtemp(prefix="fieldapp-bench-instance-")
    url, schema = database(args)
    push_service, push_url = start_push_service()
    workers = []
    try:
        from flask_migrate import upgrade

        from fieldapp import create_app, push
        from fieldapp.extensions import db
        from fieldapp.push import vapid
        from fieldapp.push.models import Notification, PushEvent
        from fieldapp.push.queue import get_queue
        from fieldapp.push.sender import get_sender, payload_for

        config = {"SQLALCHEMY_DATABASE_URI": url, "TESTING": True}
        if args.concurrency:
            config["PUSH_HTTP_CONCURRENCY"] = args.concurrency
        if args.redis:
            config |= {
                "REDIS_URL": args.redis,
                "PUSH_QUEUE": f"fieldapp-bench-{uuid.uuid4().hex[:8]}",
            }
        app = create_app(config)
        with app.app_context():
            upgrade(revision="heads")
            vapid.ensure_keys(app.instance_path)
            subscriptions = make_subscriptions(args.n, push_url)
            user_ids = seed(subscriptions)
            sender = get_sender()

            # 1. Encryption alone, as the sender does it for each subscription.
            event = PushEvent(  # a stored event of the kind the end-to-end run raises
                kind="bench",
                url="/x",
                params={},
                ttl=3600,
                urgency="normal",
                id=1,
                dedupe_key=None,
                alarm=False,
            )
            event.created_at = datetime.now(UTC)
            note = Notification(
                id=1, title="新任务：福民便利店", body="上海市黄浦区福州路 318 号，11:30 前送达"
            )
            payload = payload_for(note, event)
            started = time.perf_counter()
            for sub in subscriptions:
                sender.encrypt(payload, sub["endpoint"], sub["p256dh"], sub["auth"])
            encrypt_rate = len(subscriptions) / (time.perf_counter() - started)

            # 2. End to end.
            kind = push.declare(
                push.Kind(
                    name="bench.assignment",
                    label="Bench",
                    title="New stop: %(shop)s",
                    body="%(address)s, before %(due)s",
                )
            )
            if args.redis:
                env = {
                    **os.environ,
                    "DATABASE_URL": url,
                    "REDIS_URL": args.redis,
                    "FIELDAPP_QUEUE": app.config["PUSH_QUEUE"],
                    "FIELDAPP_RULE_CLOCK": "0",
                }
                env.pop("TEST_POSTGRES_URL", None)
                workers = [
                    subprocess.Popen(
                        [sys.executable, "-m", "flask", "--app", "wsgi", "worker"],
                        cwd=ROOT,
                        env=env,
                    )
                    for _ in range(args.workers)
                ]
                time.sleep(3)  # let them start (imports, connections)
            db.session.remove()
            started = time.perf_counter()
            push.notify(
                kind,
                user_ids=user_ids,
                org_id=db.session.scalar(text('SELECT org_id FROM "user" LIMIT 1')),
                url="/stops/42",
                params={"shop": "福民便利店", "address": "福州路 318 号", "due": "11:30"},
                dedupe_key="bench:1",
            )
            db.session.commit()
            queued = time.perf_counter() - started
            deadline = time.monotonic() + 600
            while received(push_url) < args.n and time.monotonic() < deadline:
                time.sleep(0.05)
            if not args.redis:
                get_queue(app).wait_idle(timeout=120)
            else:
                from fieldapp.push.models import Delivery

                while (
                    db.session.scalar(
                        db.select(db.func.count(Delivery.id)).where(Delivery.status != "sent")
                    )
                    and time.monotonic() < deadline
                ):
                    db.session.rollback()
                    time.sleep(0.05)
            total = time.perf_counter() - started
            got = received(push_url)
            from fieldapp.push.models import Delivery

            db.session.rollback()
            sent = db.session.scalar(
                db.select(db.func.count(Delivery.id)).where(Delivery.status == "sent")
            )
        backend = "PostgreSQL" if args.postgres else "SQLite"
        queue = f"RQ, {args.workers} worker processes" if args.redis else "in-process worker"
        print(f"push fan-out, {args.n} subscriptions, {backend}, {queue}, {os.cpu_count()} cores")
        print(f"  encryption alone:        {encrypt_rate:8.0f} notifications/s")
        print(f"  notify + commit + queue: {args.n / queued:8.0f} notifications/s ({queued:.2f} s)")
        print(f"  end to end:              {args.n / total:8.0f} notifications/s ({total:.2f} s)")
        print(f"  push service received {got}, deliveries marked sent {sent}")
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.wait(timeout=20)
        push_service.terminate()
        push_service.wait()
        if schema:
            engine = create_engine(args.postgres)
            with engine.begin() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            engine.dispose()


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--serve":
        asyncio.run(_serve(int(sys.argv[2])))
    else:
        main()
