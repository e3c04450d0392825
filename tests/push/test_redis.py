"""With REDIS_URL: events go through an RQ queue to a separate worker process (``flask worker``).

Needs TEST_REDIS_URL (``.ci/run`` sets it). Every test uses a queue of its own and removes its
keys afterwards, so runs on one Redis do not collide.
"""

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from flask import current_app

from fieldapp import create_app
from fieldapp.extensions import db
from fieldapp.push import notify
from fieldapp.push.models import Delivery, PushEvent
from fieldapp.push.queue import RedisQueue, get_queue

ROOT = Path(__file__).resolve().parents[2]
REDIS_URL = os.environ.get("TEST_REDIS_URL")
URL = "/rounds/r-redis"
pytestmark = pytest.mark.skipif(not REDIS_URL, reason="TEST_REDIS_URL is not set")


@pytest.fixture
def redis_app(push_env, database_url):
    """An app of the web side with REDIS_URL, on the test database, with its own queue."""
    name = f"fieldapp-test-{uuid.uuid4().hex[:10]}"
    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": database_url,
            "TESTING": True,
            "REDIS_URL": REDIS_URL,
            "PUSH_QUEUE": name,
        }
    )
    queue = get_queue(app)
    assert isinstance(queue, RedisQueue)
    yield app, queue
    with app.app_context():
        db.engine.dispose()
    queue.queue.delete(delete_jobs=True)
    redis = queue.connection
    keys = [*redis.scan_iter(f"rq:*{name}*"), *redis.scan_iter(f"fieldapp:{name}:*")]
    keys += [k for k in redis.scan_iter("rq:worker:*") if redis.hget(k, "queues") == name.encode()]
    if keys:
        redis.delete(*keys)


def worker_env(database_url: str, queue_name: str, **extra) -> dict:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": REDIS_URL,
        "FIELDAPP_QUEUE": queue_name,
        "FIELDAPP_EXTRA_MODULES": "tests.push.redis_plugin",
        **extra,
    }
    env.pop("TEST_POSTGRES_URL", None)
    return env


def test_an_event_travels_through_the_queue_to_a_worker_process(
    push_env, redis_app, database_url, login
):
    app, queue = redis_app
    phone = push_env.service.phone()
    push_env.subscribe(login("courier1"), phone)
    courier = push_env.user("courier1")
    with app.app_context():
        notify(
            "test.assignment",
            user_ids=[courier.id],
            org_id=courier.org_id,
            url="/stops/7",
            params={"name": "李师傅", "m": 150},
            dedupe_key="stop:7",
        )
        db.session.commit()
    assert queue.queue.count == 1  # the web process only queued it
    time.sleep(0.2)
    assert push_env.service.received == []

    worker = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", "worker", "--burst"],
        cwd=ROOT,
        env=worker_env(database_url, queue.name),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert worker.returncode == 0, worker.stderr
    (request,) = push_env.service.wait_for(1)
    message = phone.decrypt(request)
    assert (message["title"], message["body"], message["url"]) == (
        "李师傅，您好",
        "电子围栏 150 米",
        "/stops/7",
    )
    assert queue.queue.count == 0
    db.session.expire_all()
    assert db.session.scalar(db.select(Delivery.status)) == "sent"


def test_the_worker_runs_the_rule_clock_and_raises_each_event_once(
    push_env, redis_app, database_url, login
):
    app, queue = redis_app
    phone = push_env.service.phone()
    push_env.subscribe(login("supervisor"), phone)
    env = worker_env(database_url, queue.name, FIELDAPP_RULE_CLOCK="1")  # tick every second
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "flask", "--app", "wsgi", "worker"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            # Its own process group: RQ forks a scheduler process that must not outlive the
            # test and go on working on this session's database.
            start_new_session=True,
        )
        for _ in range(2)  # two workers: still one tick per second, and one alarm
    ]
    try:
        # The domains' own checks run in the worker as well: count only this check's alarm.
        def ours():
            return [r for r in push_env.service.received if phone.decrypt(r)["url"] == URL]

        deadline = time.monotonic() + 30
        while not ours() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(ours()) == 1
        time.sleep(3)  # three more ticks
        assert len(ours()) == 1
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            try:
                worker.wait(timeout=15)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
            with contextlib.suppress(ProcessLookupError):
                os.killpg(worker.pid, signal.SIGKILL)  # whatever it forked
    db.session.expire_all()
    key = PushEvent.dedupe_key == "round-late:r-redis"
    assert db.session.scalar(db.select(db.func.count(PushEvent.id)).where(key)) == 1
    assert current_app.config.get("REDIS_URL") is None  # the test body's app is unaffected
