"""Retention of the push tables (issue 9): old deliveries, inbox lines and events are deleted
in bounded batches by the ``push.retention`` rule check; recent ones stay, and so does the dedupe
memory of an alarm until the check that raised it can never raise it again.

Rows are written with the ages each case needs, and the clock is run at a chosen ``now`` with
``only=["push.retention"]``, so nothing depends on the time of day or on other checks.
"""

from datetime import UTC, date, datetime, timedelta
from itertools import count

import pytest
from flask import current_app
from sqlalchemy import event as sa_event
from sqlalchemy import inspect

from fieldapp import jobs
from fieldapp.complaints.models import Complaint
from fieldapp.deliveries.models import Stop, StopState
from fieldapp.deliveries.service import change_stop, resolve_refusal
from fieldapp.extensions import db
from fieldapp.models import Site, User, utcnow
from fieldapp.patrols.service import CLOCK_LOOKBACK
from fieldapp.push import kinds, notify, retention
from fieldapp.push.models import (
    Delivery,
    Notification,
    PushDedupe,
    PushEvent,
    PushSubscription,
)
from fieldapp.rules.complaints import ComplaintState
from fieldapp.visits.models import ReturnVisit, ReturnVisitReason
from tests.integration.test_complaints_flow import REP_PHONE, intake, step
from tests.integration.test_deliveries_sync import (
    CHECK_OK,
    NEAR_SHOP,
    PHONE,
    Phone,
    start_route,
    stops,
    the_route,
)
from tests.integration.test_patrols_duty import put_on_shift
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


def demo_complaint() -> Complaint:
    return db.session.scalar(db.select(Complaint))


def test_the_ages_are_the_documented_defaults(app):
    assert retention.DEFAULTS == {
        "PUSH_KEEP_DELIVERIES_DAYS": 30,
        "PUSH_KEEP_READ_DAYS": 90,
        "PUSH_KEEP_UNREAD_DAYS": 180,
        "PUSH_RETENTION_BATCH": 1000,
        "PUSH_DEDUPE_RECHECK_HOURS": 24,
    }
    for key, value in retention.DEFAULTS.items():
        assert current_app.config[key] == value  # set by the push blueprint, overridable


def test_old_rows_go_at_their_ages_and_recent_or_unread_ones_stay(demo):
    # Row ids only: the rows themselves are gone after the run.
    old_delivery = make_delivery(days_ago(31)).id
    recent_delivery = make_delivery(days_ago(29)).id
    read_long_ago = make_line(days_ago(120), read_at=days_ago(91)).id
    read_lately = make_line(days_ago(120), read_at=days_ago(89)).id
    read_yesterday_of_old = make_line(days_ago(250), read_at=days_ago(1)).id
    unread_too_old = make_line(days_ago(181)).id
    unread_kept = make_line(days_ago(179)).id
    # Events: one past the horizon with a dedupe key (of an alarm that may still be raised: the
    # demo complaint is open) and one without (no line left), one past it that a line still
    # needs, one nobody needs but younger than the horizon.
    open_complaint_key = f"complaint-overdue:{demo_complaint().id}:reply"
    keyed = make_event(days_ago(300), key=open_complaint_key).id
    unkeyed = make_event(days_ago(280)).id
    needed = make_event(days_ago(280)).id
    make_line(days_ago(280), read_at=days_ago(2), event=db.session.get(PushEvent, needed))
    young = make_event(days_ago(100)).id
    old_line = make_line(
        days_ago(275), read_at=days_ago(270), event=make_event(days_ago(275), key="k:old")
    )
    old_line_of_old_event, old_event_of_old_line = old_line.id, old_line.event_id
    db.session.commit()

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
        (org_id, open_complaint_key),
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
    make_event(days_ago(300), key="door-open:5")
    db.session.add(PushDedupe(org_id=org_id, dedupe_key="door-open:5", raised_at=days_ago(300)))
    db.session.commit()
    assert jobs.run_clock(NOW, only=ONLY)[retention.CHECK] == "ok"
    assert ids(PushEvent) == set()
    assert db.session.scalar(db.select(db.func.count()).select_from(PushDedupe)) == 1


# ----- the dedupe memory goes once the check that wrote a key can never raise it again -------
#
# Each test raises real alarms with the real rule check, lets retention forget their events
# (long after, or ``remembered`` for checks that only look back a day), changes the record the
# key names so that the key is dead (or not), and runs the check again where it can.

DAY = timedelta(days=1)


def keys_raised(prefix: str = "") -> set[str]:
    return set(
        db.session.scalars(
            db.select(PushEvent.dedupe_key).where(PushEvent.dedupe_key.startswith(prefix))
        )
    )


def keys_remembered() -> set[str]:
    db.session.expire_all()
    return set(db.session.scalars(db.select(PushDedupe.dedupe_key)))


def retention_long_after() -> datetime:
    """Retention 400 days on (events carry the real time): every alarm's lines and event go."""
    later = utcnow() + timedelta(days=400)
    assert jobs.run_clock(later, only=ONLY)[retention.CHECK] == "ok"
    db.session.expire_all()
    assert ids(PushEvent) == set()
    return later


def remembered() -> set[str]:
    """What retention leaves of the alarms raised so far, written here at today's clock: the
    checks that look back a day could not be tested 270 days on, when their keys are dead."""
    rows = db.session.execute(
        db.select(PushEvent.org_id, PushEvent.dedupe_key, PushEvent.created_at).where(
            PushEvent.dedupe_key.is_not(None)
        )
    ).all()
    db.session.execute(db.delete(Delivery))
    db.session.execute(db.delete(Notification))
    db.session.execute(db.delete(PushEvent))
    db.session.add_all(
        PushDedupe(org_id=r.org_id, dedupe_key=r.dedupe_key, raised_at=r.created_at) for r in rows
    )
    db.session.commit()
    return {r.dedupe_key for r in rows}


def test_complaint_deadline_keys_go_once_the_complaint_is_closed(demo):
    kept = demo_complaint()
    columns = {c.key: getattr(kept, c.key) for c in Complaint.__table__.columns}
    closing = Complaint(
        **{**columns, "id": "0d6c1b1e-0000-4000-8000-000000000001", "slip_number": "T-2"}
    )
    db.session.add(closing)
    db.session.commit()
    overdue = kept.reply_by + DAY
    assert jobs.run_clock(overdue, only=["complaints.deadlines"])["complaints.deadlines"] == "ok"
    kept_keys, closing_keys = (
        keys_raised(f"complaint-overdue:{kept.id}:"),
        keys_raised(f"complaint-overdue:{closing.id}:"),
    )
    assert kept_keys and closing_keys

    later = retention_long_after()
    assert keys_remembered() == kept_keys | closing_keys  # both open: may be raised again
    closing = db.session.get(Complaint, closing.id)
    closing.state = ComplaintState.CLOSED
    db.session.commit()
    jobs.run_clock(later + timedelta(hours=25), only=ONLY)  # the next daily walk
    assert keys_remembered() == kept_keys

    # Both are still past their deadlines: neither alarm comes back.
    for tick in (later + timedelta(hours=26), later + timedelta(hours=26, minutes=1)):
        assert jobs.run_clock(tick, only=["complaints.deadlines"])["complaints.deadlines"] == "ok"
    assert keys_raised() == set()


def forced_visit(site: Site, staff: User, due: date) -> ReturnVisit:
    rv = ReturnVisit(
        org_id=site.org_id,
        site_id=site.id,
        staff_id=staff.id,
        source_key=f"test:{due}:{next(_serial)}",
        reason=ReturnVisitReason.FORCED_ONSITE,
        due_date=due,
        onsite=True,
        assigned_to_id=staff.id,
    )
    db.session.add(rv)
    db.session.flush()
    return rv


def test_a_missed_forced_visit_key_goes_once_the_visit_is_done(demo):
    site = db.session.scalar(db.select(Site).where(Site.team_id.is_not(None)).limit(1))
    due = date(2026, 11, 20)
    kept, done = forced_visit(site, user("rep1"), due), forced_visit(site, user("rep1"), due)
    db.session.commit()
    missed = datetime(2026, 11, 23, 4, 0, tzinfo=UTC)
    jobs.run_clock(missed, only=["visits.forced_onsite_missed"])
    keys = {f"visit-onsite-missed:{kept.id}", f"visit-onsite-missed:{done.id}"}
    assert keys_raised("visit-onsite-missed:") == keys

    later = retention_long_after()
    assert keys_remembered() == keys
    done = db.session.get(ReturnVisit, done.id)
    done.done_at, done.done_by_id, done.result = later, user("supervisor").id, "accepted"
    db.session.commit()
    jobs.run_clock(later + timedelta(hours=25), only=ONLY)
    assert keys_remembered() == {f"visit-onsite-missed:{kept.id}"}

    for tick in (later + timedelta(hours=26), later + timedelta(hours=27)):
        result = jobs.run_clock(tick, only=["visits.forced_onsite_missed"])
        assert result["visits.forced_onsite_missed"] == "ok"
    assert keys_raised() == set()


SHIFT_CHECKS = ["patrol.rounds", "patrol.sign_ins", "patrol.takeovers"]


def test_shift_alarm_keys_go_once_the_checks_no_longer_look_at_the_shift(demo):
    """Round, sign-in and takeover checks look back a day over shifts fixed once started."""
    now = utcnow().replace(microsecond=0)
    end = now - timedelta(hours=1)
    ended = put_on_shift(
        "guard1",
        end - timedelta(hours=4),
        end,
        plan={"every_minutes": None, "rounds_per_shift": 1, "window_minutes": 60},
    )
    running = put_on_shift("guard2", end, end + timedelta(hours=8))  # nobody signs in
    for tick in (now, now + timedelta(minutes=1)):
        jobs.run_clock(tick, only=SHIFT_CHECKS)
    raised = keys_raised()
    assert {
        f"round-missed:{ended}:1",
        f"takeover-missing:{ended}",
        f"not-signed-in:{running}",
    } <= raised

    # Remembered while the checks still look at both shifts: every key stays, none comes back.
    assert remembered() == raised
    jobs.run_clock(now + timedelta(minutes=2), only=ONLY)
    assert keys_remembered() == raised
    jobs.run_clock(now + timedelta(minutes=3), only=SHIFT_CHECKS)
    assert keys_raised() & raised == set()

    # At the next daily walk the first shift ended more than a day ago and the checks no
    # longer read it: its keys go, the running shift's stay, and none is raised again.
    walk = now + timedelta(hours=25)
    assert end < walk - CLOCK_LOOKBACK < end + timedelta(hours=8)
    jobs.run_clock(walk, only=ONLY)
    assert keys_remembered() == {key for key in raised if f":{running}" in key}
    jobs.run_clock(walk, only=SHIFT_CHECKS)
    assert keys_raised() & raised == set()


def test_shift_alarm_keys_are_not_even_kept_when_their_events_go(demo):
    now = utcnow().replace(microsecond=0)
    shift = put_on_shift(
        "guard1",
        now - timedelta(hours=5),
        now - timedelta(hours=1),
        plan={"every_minutes": None, "rounds_per_shift": 1, "window_minutes": 60},
    )
    jobs.run_clock(now, only=["patrol.rounds"])
    assert f"round-missed:{shift}:1" in keys_raised()

    later = retention_long_after()
    assert keys_remembered() == set()
    jobs.run_clock(later, only=SHIFT_CHECKS)
    assert keys_raised() == set()


def test_a_late_delivery_key_goes_once_the_stop_is_closed_for_good(demo):
    delivered, refused, *others = stops()
    late = max(s.promised_at for s in stops()) + timedelta(hours=1)
    jobs.run_clock(late, only=["delivery.late_stops"])
    keys = {f"delivery-late:{s.id}" for s in (delivered, refused, *others)}
    assert keys_raised("delivery-late:") == keys

    later = retention_long_after()
    assert keys_remembered() == keys
    db.session.get(Stop, delivered.id).state = StopState.DELIVERED
    db.session.get(Stop, refused.id).state = StopState.REFUSED  # may be delivered again
    db.session.commit()
    jobs.run_clock(later + timedelta(hours=25), only=ONLY)
    assert keys_remembered() == keys - {f"delivery-late:{delivered.id}"}

    # The refused stop is sent out again and the dispatcher moves every promise to an hour
    # ago: the check reads the stops again, and still raises none of the alarms a second time.
    tick = later + timedelta(hours=26)
    dispatcher = user("supervisor")
    resolve_refusal(dispatcher, db.session.get(Stop, refused.id), "redeliver")
    for stop in stops():
        change_stop(dispatcher, stop, {"promised_at": tick - timedelta(hours=1)})
    db.session.commit()
    jobs.run_clock(tick, only=["delivery.late_stops"])
    assert keys_raised() == set()


def test_a_late_soon_key_goes_once_its_promise_has_passed(demo):
    first, second, *_ = stops()
    now = second.promised_at - timedelta(minutes=30)
    jobs.run_clock(now, only=["delivery.late_soon_stops"])
    key = f"delivery-late-soon:{second.id}:{second.promised_at.isoformat()}"
    assert keys_raised("delivery-late-soon:") == {key}

    assert remembered() == {key}
    jobs.run_clock(now + timedelta(minutes=1), only=ONLY)  # the promise is ahead: kept
    assert keys_remembered() == {key}
    jobs.run_clock(now + timedelta(minutes=2), only=["delivery.late_soon_stops"])
    assert keys_raised() == set()

    past = second.promised_at + DAY
    jobs.run_clock(past, only=ONLY)
    assert keys_remembered() == set()
    jobs.run_clock(past, only=["delivery.late_soon_stops"])
    assert keys_raised() == set()


def test_the_walk_through_the_dedupe_memory_is_bounded_and_rests_a_day(demo):
    """A batch of rows a tick from where the last tick stopped; then a day of one query."""
    org_id = user("guard1").org_id
    passed = "2020-01-01T00:00:00+00:00"
    dead = {f"delivery-late-soon:stop-{n}:{passed}" for n in range(5)}
    undeclared = {f"door-open:{n}" for n in range(3)}  # nobody says when: kept for ever
    db.session.add_all(
        PushDedupe(org_id=org_id, dedupe_key=key, raised_at=days_ago(300))
        for key in dead | undeclared
    )
    db.session.commit()

    deleted = []
    for _ in range(5):
        deleted.append(retention.sweep(NOW, batch=2).dedupe_keys)
        db.session.commit()
    assert max(deleted) == 2 and sum(deleted) == 5
    assert keys_remembered() == undeclared

    statements = []

    def seen(conn, cursor, statement, *args):
        statements.append(statement)

    sa_event.listen(db.engine, "before_cursor_execute", seen)
    try:
        assert retention.sweep(NOW + timedelta(hours=23)) == retention.Swept()
        assert len(statements) == 1  # the walk rests
        retention.sweep(NOW + timedelta(hours=25))
        assert len(statements) > 2  # the next day's walk reads the rows again
    finally:
        sa_event.remove(db.engine, "before_cursor_execute", seen)
        db.session.rollback()


# Keys raised by a user's action with the insert of its record: the record's id is unique, so
# once it is stored the same alarm cannot be raised again, whatever the phone sends.


def walk_now() -> None:
    assert jobs.run_clock(utcnow(), only=ONLY)[retention.CHECK] == "ok"


def test_keys_raised_with_a_courier_record_go_once_it_is_stored(login):
    courier = Phone(login("courier1", device_id=PHONE), PHONE)
    failed = {"route_id": the_route().id, **CHECK_OK, "no_faults": False}
    check, result = courier.send("delivery.vehicle_check", failed)
    assert result["status"] == "applied"
    start_route(courier)
    stop = stops()[0]
    courier.send("delivery.arrival", {"stop_id": stop.id, **NEAR_SHOP})
    refused = {"stop_id": stop.id, "reason_code": "customer_absent"}
    refusal, result = courier.send("delivery.refusal", refused)
    assert result["status"] == "applied"
    keys = {f"vehicle-check:{check['payload']['id']}", f"refusal:{refusal['payload']['id']}"}
    assert keys <= keys_raised()

    assert keys <= remembered()
    walk_now()
    assert keys_remembered() & keys == set()

    # The phone sends both records again, as new mutations: refused, and nothing is raised.
    _, again = courier.send("delivery.vehicle_check", {**failed, "id": check["payload"]["id"]})
    assert again["status"] == "rejected"
    _, again = courier.send("delivery.refusal", {**refused, "id": refusal["payload"]["id"]})
    assert again["status"] == "rejected"
    assert keys_raised() & keys == set()


def test_keys_raised_by_complaint_steps_go_once_they_cannot_recur(login):
    rep = Phone(login("rep1", device_id=REP_PHONE), REP_PHONE)
    major, result = rep.send("complaint.intake", intake(severity="major"))
    assert result["status"] == "applied"
    complaint_id = major["payload"]["id"]
    office = login("supervisor")
    assert step(office, complaint_id, "triage", valid="yes").status_code == 302
    routed = {"department": "保安部", "handler_id": str(user("rep2").id)}
    assert step(office, complaint_id, "route", **routed).status_code == 302
    keys = {f"complaint-major:{complaint_id}", f"complaint-routed:{complaint_id}:3"}
    assert keys <= keys_raised()

    assert keys <= remembered()
    walk_now()
    assert keys_remembered() & keys == set()

    # The intake again (a new mutation, the same complaint), and the plan sent back to routed.
    _, again = rep.send("complaint.intake", {**intake(severity="major"), "id": complaint_id})
    assert again["status"] == "rejected"
    assert step(office, complaint_id, "plan", plan="换人").status_code == 302
    assert step(office, complaint_id, "reject_plan", note="再想想").status_code == 302
    assert keys_raised() & keys == set()
