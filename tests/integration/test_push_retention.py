"""Retention of the push tables (issue 9): old deliveries, inbox lines and events are deleted
in bounded batches by the ``push.retention`` rule check; recent ones and the dedupe memory stay.

Rows are written with the ages each case needs, and the clock is run at a chosen ``now`` with
``only=["push.retention"]``, so nothing depends on the time of day or on other checks.
"""

from datetime import UTC, datetime, timedelta
from itertools import count

import pytest
from flask import current_app
from sqlalchemy import event as sa_event
from sqlalchemy import inspect

from fieldapp import jobs
from fieldapp.extensions import db
from fieldapp.models import User, utcnow
from fieldapp.push import kinds, notify, retention
from fieldapp.push.models import (
    Delivery,
    Notification,
    PushDedupe,
    PushEvent,
    PushSubscription,
)
from tests.push.conftest import ALARM

NOW = datetime(2026, 11, 24, 3, 0, tzinfo=UTC)
ONLY = [retention.CHECK]
_serial = count()


def days_ago(days: float, now: datetime = NOW) -> datetime:
    return now - timedelta(days=days)


@pytest.fixture
def alarm_kind(demo):
    kinds.declare(ALARM)
    yield ALARM
    kinds.forget(ALARM.name)


def user(username: str) -> User:
    return db.session.scalar(db.select(User).where(User.username == username))


def make_event(created_at: datetime, key: str | None = None, who: str = "guard1") -> PushEvent:
    event = PushEvent(
        org_id=user(who).org_id,
        kind="test.alarm",
        dedupe_key=key,
        url="/patrols/board",
        params={},
        alarm=True,
        ttl=3600,
        urgency="high",
        created_at=created_at,
    )
    db.session.add(event)
    db.session.flush()
    return event


def make_line(
    created_at: datetime,
    read_at: datetime | None = None,
    event: PushEvent | None = None,
    who: str = "guard1",
    title: str = "old news",
) -> Notification:
    event = event or make_event(created_at, who=who)
    line = Notification(
        event_id=event.id,
        user_id=user(who).id,
        title=title,
        body="…",
        channel="push",
        created_at=created_at,
        read_at=read_at,
    )
    db.session.add(line)
    db.session.flush()
    return line


def make_delivery(created_at: datetime, line: Notification | None = None) -> Delivery:
    line = line or make_line(created_at, read_at=created_at)
    n = next(_serial)
    subscription = PushSubscription(
        user_id=line.user_id,
        endpoint=f"https://fcm.googleapis.com/fcm/send/retention-{n}",
        p256dh="p" * 87,
        auth="a" * 22,
    )
    db.session.add(subscription)
    db.session.flush()
    delivery = Delivery(
        notification_id=line.id,
        subscription_id=subscription.id,
        status="sent",
        attempts=1,
        next_attempt_at=created_at,
        sent_at=created_at,
        created_at=created_at,
    )
    db.session.add(delivery)
    db.session.flush()
    return delivery


def ids(model) -> set[int]:
    return set(db.session.scalars(db.select(model.id)))


def test_the_ages_are_the_documented_defaults(app):
    assert retention.DEFAULTS == {
        "PUSH_KEEP_DELIVERIES_DAYS": 30,
        "PUSH_KEEP_READ_DAYS": 90,
        "PUSH_KEEP_UNREAD_DAYS": 180,
        "PUSH_RETENTION_BATCH": 1000,
    }
    for key, value in retention.DEFAULTS.items():
        assert current_app.config[key] == value  # set by the push blueprint, overridable


def test_old_rows_go_at_their_ages_and_recent_or_unread_ones_stay(demo):
    old_delivery = make_delivery(days_ago(31))
    recent_delivery = make_delivery(days_ago(29))
    read_long_ago = make_line(days_ago(120), read_at=days_ago(91))
    read_lately = make_line(days_ago(120), read_at=days_ago(89))
    read_yesterday_of_old = make_line(days_ago(250), read_at=days_ago(1))
    unread_too_old = make_line(days_ago(181))
    unread_kept = make_line(days_ago(179))
    # Events: one past the horizon with a dedupe key and one without (no line left), one past
    # it that a line still needs, one nobody needs but younger than the horizon.
    keyed = make_event(days_ago(300), key="round-missed:1:2")
    unkeyed = make_event(days_ago(280))
    needed = make_event(days_ago(280))
    make_line(days_ago(280), read_at=days_ago(2), event=needed)
    young = make_event(days_ago(100))
    old_line_of_old_event = make_line(
        days_ago(275), read_at=days_ago(270), event=make_event(days_ago(275), key="k:old")
    )
    db.session.commit()
    old_event_of_old_line = old_line_of_old_event.event_id
    (
        old_delivery,
        recent_delivery,
        read_long_ago,
        read_lately,
        read_yesterday_of_old,
        unread_too_old,
        unread_kept,
        keyed,
        unkeyed,
        needed,
        young,
        old_line_of_old_event,
    ) = (
        row.id
        for row in (
            old_delivery,
            recent_delivery,
            read_long_ago,
            read_lately,
            read_yesterday_of_old,
            unread_too_old,
            unread_kept,
            keyed,
            unkeyed,
            needed,
            young,
            old_line_of_old_event,
        )
    )

    assert jobs.run_clock(NOW, only=ONLY)[retention.CHECK] == "ok"
    db.session.expire_all()

    remaining = ids(Delivery)
    assert old_delivery not in remaining and recent_delivery in remaining
    lines = ids(Notification)
    assert read_long_ago not in lines and unread_too_old not in lines
    assert old_line_of_old_event not in lines
    assert {read_lately, read_yesterday_of_old, unread_kept} <= lines
    events = ids(PushEvent)
    assert keyed not in events and unkeyed not in events
    assert old_event_of_old_line not in events  # its line went first, in the same run
    assert {needed, young} <= events
    # What stays of the deleted events with a dedupe key: the key.
    org_id = user("guard1").org_id
    assert set(db.session.execute(db.select(PushDedupe.org_id, PushDedupe.dedupe_key))) == {
        (org_id, "round-missed:1:2"),
        (org_id, "k:old"),
    }

    # A second run finds nothing; a year later the rest goes too.
    assert retention.sweep(NOW) == retention.Swept()
    db.session.rollback()
    jobs.run_clock(NOW + timedelta(days=365), only=ONLY)
    db.session.expire_all()
    assert ids(Delivery) == set() and ids(Notification) == set() and ids(PushEvent) == set()


def test_an_alarm_whose_event_was_deleted_is_not_raised_again(demo, alarm_kind):
    """The event row is the rule clock's dedupe memory: once deleted, ``push_dedupe`` is."""
    calls = []

    def door_open(now):  # a condition that still holds a year later (an overdue complaint)
        calls.append(now)
        supervisor = user("supervisor")
        notify(
            "test.alarm",
            user_ids=[supervisor.id],
            org_id=supervisor.org_id,
            url="/patrols/board",
            params={"name": "大门", "m": 1},
            dedupe_key="door-open:7",
        )

    jobs.register("test.door_open", door_open)
    try:
        start = utcnow()  # notify stamps events with the real time
        assert jobs.run_clock(start, only=["test.door_open"])["test.door_open"] == "ok"
        assert len(ids(PushEvent)) == 1
        db.session.execute(db.update(Notification).values(read_at=start))
        db.session.commit()

        later = start + timedelta(days=400)
        jobs.run_clock(later, only=ONLY)
        db.session.expire_all()
        assert ids(PushEvent) == set() and ids(Notification) == set()
        assert db.session.scalar(db.select(db.func.count()).select_from(PushDedupe)) == 1

        for tick in (later, later + timedelta(minutes=1)):
            assert jobs.run_clock(tick, only=["test.door_open"])["test.door_open"] == "ok"
        assert len(calls) == 3  # the check ran and its condition held, but nothing was raised
        db.session.expire_all()
        assert ids(PushEvent) == set() and ids(Notification) == set()
        # Another key is raised as usual.
        supervisor = user("supervisor")
        raised = notify(
            "test.alarm",
            user_ids=[supervisor.id],
            org_id=supervisor.org_id,
            url="/patrols/board",
            params={"name": "后门", "m": 1},
            dedupe_key="door-open:8",
        )
        assert raised is not None and raised.dedupe_key == "door-open:8"
        db.session.commit()
    finally:
        jobs.unregister("test.door_open")


def test_one_run_deletes_at_most_a_batch_and_says_more_is_left(demo):
    """Batch 10, 25 old rows of each kind: 10 per run and per table, ``more`` until the last.

    One batch per table per tick (no loop): the tick's transaction stays short, and a clock
    ticking every minute still deletes far more than comes in.
    """
    for _ in range(25):
        make_delivery(days_ago(40))  # with its line (read 40 days ago: kept) and event
    for _ in range(25):
        make_line(days_ago(300), read_at=days_ago(300))  # line and event both past their age
    db.session.commit()
    assert len(ids(Delivery)) == 25 and len(ids(Notification)) == 50

    runs = []
    for _ in range(5):
        runs.append(retention.sweep(NOW, batch=10))
        db.session.commit()
    assert [(r.deliveries, r.notifications, r.events, r.more) for r in runs] == [
        (10, 10, 0, True),  # events wait while old inbox lines are left
        (10, 10, 0, True),
        (5, 5, 10, True),
        (0, 0, 10, True),
        (0, 0, 5, False),
    ]
    assert len(ids(Delivery)) == 0 and len(ids(Notification)) == 25 and len(ids(PushEvent)) == 25

    # The same through the rule clock, with the batch size from the configuration.
    for _ in range(12):
        make_line(days_ago(300), read_at=days_ago(300))
    db.session.commit()
    current_app.config["PUSH_RETENTION_BATCH"] = 10
    try:
        jobs.run_clock(NOW, only=ONLY)
        assert len(ids(Notification)) == 25 + 2
        jobs.run_clock(NOW, only=ONLY)
        assert len(ids(Notification)) == 25
    finally:
        current_app.config["PUSH_RETENTION_BATCH"] = retention.DEFAULTS["PUSH_RETENTION_BATCH"]


def test_nothing_to_delete_costs_one_query_over_indexes(demo):
    make_delivery(days_ago(1))
    make_line(days_ago(1))
    db.session.commit()
    statements = []

    def seen(conn, cursor, statement, *args):
        statements.append(statement)

    engine = db.engine
    sa_event.listen(engine, "before_cursor_execute", seen)
    try:
        assert retention.sweep(NOW) == retention.Swept()
    finally:
        sa_event.remove(engine, "before_cursor_execute", seen)
        db.session.rollback()
    assert len(statements) == 1
    # The columns it filters on are indexed (the migration adds what the models declare).
    indexed = {
        table: [tuple(ix["column_names"]) for ix in inspect(engine).get_indexes(table)]
        for table in ("push_delivery", "push_notification", "push_event")
    }
    assert ("created_at",) in indexed["push_delivery"]
    assert ("read_at", "created_at") in indexed["push_notification"]
    assert ("created_at",) in indexed["push_event"]
    assert ("event_id", "user_id") in [
        tuple(uq["column_names"])
        for uq in inspect(engine).get_unique_constraints("push_notification")
    ] or any(cols[0] == "event_id" for cols in indexed["push_notification"])
    assert ("notification_id",) in indexed["push_delivery"]


def test_the_inbox_page_still_works_after_retention(demo, login):
    client = login("guard1")
    gone = make_line(utcnow() - timedelta(days=100), read_at=utcnow() - timedelta(days=95))
    make_line(utcnow() - timedelta(days=200), title="旧消息 unread and too old")
    make_line(utcnow() - timedelta(days=3), read_at=utcnow() - timedelta(days=2), title="读过了")
    kept = make_line(utcnow() - timedelta(hours=1), title="新的提醒")
    make_delivery(utcnow() - timedelta(days=40), line=kept)  # a finished attempt, old
    db.session.commit()
    gone, kept = gone.id, kept.id

    assert jobs.run_clock(utcnow(), only=ONLY)[retention.CHECK] == "ok"

    page = client.get("/notifications")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "新的提醒" in html and "读过了" in html
    assert "old news" not in html and "旧消息" not in html
    assert f"/notifications/{gone}/open" not in html
    assert client.get(f"/notifications/{gone}/open").status_code == 404
    assert client.raw.get("/api/push/unread").json == {"unread": 1}
    response = client.get(f"/notifications/{kept}/open")
    assert response.status_code == 302 and response.headers["Location"] == "/patrols/board"


def test_two_runs_at_once_do_not_fail_on_the_dedupe_memory(demo):
    """Without Redis each web process ticks its own clock: a key may already be remembered."""
    org_id = user("guard1").org_id
    make_event(days_ago(300), key="takeover-missing:5")
    db.session.add(
        PushDedupe(org_id=org_id, dedupe_key="takeover-missing:5", raised_at=days_ago(300))
    )
    db.session.commit()
    assert jobs.run_clock(NOW, only=ONLY)[retention.CHECK] == "ok"
    assert ids(PushEvent) == set()
    assert db.session.scalar(db.select(db.func.count()).select_from(PushDedupe)) == 1
