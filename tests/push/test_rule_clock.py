"""The rule clock: checks raise events once, however often the clock runs; quiet hours hold."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from fieldapp import jobs
from fieldapp.extensions import db
from fieldapp.models import utcnow
from fieldapp.push import notify, service
from fieldapp.push.models import Delivery, PushEvent, QuietHours
from fieldapp.rules.patrols import PatrolPlan, Round, RoundState, round_status

SHANGHAI = ZoneInfo("Asia/Shanghai")
NIGHT = datetime(2026, 11, 20, tzinfo=SHANGHAI)
ONLY = ["test.late_rounds"]  # the domains' own checks (patrols, deliveries...) are not tested here


@pytest.fixture
def clock_check(push_env):
    """A test check, as a patrol domain will write one: the 01:00 round, nothing scanned."""
    round_ = Round(
        plan=PatrolPlan(("gate", "car-park", "roof")),
        window_start=NIGHT.replace(hour=1).astimezone(UTC),
        window_end=NIGHT.replace(hour=2).astimezone(UTC),
        shift_end=NIGHT.replace(hour=7).astimezone(UTC),
    )
    calls = []

    def late_rounds(now):
        calls.append(now)
        status = round_status(round_, scans=[], now=now)
        if status.state in (RoundState.LATE, RoundState.MISSED):
            supervisor = push_env.user("supervisor")
            notify(
                "test.alarm",
                user_ids=[supervisor.id],
                org_id=supervisor.org_id,
                url="/rounds/r-0100",
                params={"name": "外滩中心大门岗", "m": len(status.remaining)},
                dedupe_key="round-late:r-0100",
            )

    jobs.register("test.late_rounds", late_rounds)
    yield calls
    jobs.unregister("test.late_rounds")


def test_a_round_missed_at_two_raises_one_alarm_however_often_the_clock_runs(
    push_env, login, clock_check
):
    phone = push_env.service.phone()
    push_env.subscribe(login("supervisor"), phone)
    minute = NIGHT.replace(hour=1, minute=55)
    while minute <= NIGHT.replace(hour=2, minute=10):  # the clock, every minute
        assert jobs.run_clock(minute.astimezone(UTC), only=ONLY)["test.late_rounds"] == "ok"
        minute += timedelta(minutes=1)
    assert len(clock_check) == 16
    push_env.settle()
    (request,) = push_env.service.wait_for(1)
    message = phone.decrypt(request)
    assert message["url"] == "/rounds/r-0100"
    assert message["body"] == "电子围栏 3 米"  # three checkpoints not scanned
    assert message["alarm"] is True
    assert db.session.scalar(db.select(db.func.count(PushEvent.id))) == 1
    # A second machine running the same clock adds nothing either.
    jobs.run_clock(NIGHT.replace(hour=2, minute=30).astimezone(UTC), only=ONLY)
    push_env.settle()
    assert len(push_env.service.received) == 1


def test_a_failing_check_does_not_stop_the_others(push_env, clock_check):
    def broken(now):
        raise RuntimeError("a bug in one domain")

    jobs.register("test.aaa_broken", broken)
    try:
        results = jobs.run_clock(
            NIGHT.replace(hour=3).astimezone(UTC), only=["test.aaa_broken", *ONLY]
        )
    finally:
        jobs.unregister("test.aaa_broken")
    assert results["test.aaa_broken"] == "failed"
    assert results["test.late_rounds"] == "ok"
    assert db.session.scalar(db.select(db.func.count(PushEvent.id))) == 1


def _quiet_around_now(user, before: timedelta, after: timedelta) -> datetime:
    """Quiet hours from ``before`` ago to ``after`` from now (Shanghai time); returns the end."""
    now = utcnow().astimezone(SHANGHAI)
    start, end = (now - before), (now + after)
    db.session.add(
        QuietHours(
            user_id=user.id,
            start=start.time().replace(tzinfo=None),
            end=end.time().replace(tzinfo=None),
        )
    )
    db.session.commit()
    return end


def test_quiet_hours_hold_back_everything_but_alarms(push_env, login):
    phone = push_env.service.phone()
    push_env.subscribe(login("guard1"), phone)
    guard = push_env.user("guard1")
    ends = _quiet_around_now(guard, timedelta(hours=1), timedelta(hours=1))
    for kind, key in (("test.assignment", "shift:1"), ("test.alarm", "incident:1")):
        notify(
            kind,
            user_ids=[guard.id],
            org_id=guard.org_id,
            url="/x",
            params={"name": "赵保安", "m": 1},
            dedupe_key=key,
        )
    db.session.commit()
    push_env.settle()
    (request,) = push_env.service.wait_for(1)
    assert phone.decrypt(request)["kind"] == "test.alarm"
    # The clock ticking during the quiet hours sends nothing more.
    jobs.run_clock(only=ONLY)
    push_env.settle()
    assert len(push_env.service.received) == 1
    held = db.session.scalar(db.select(Delivery).where(Delivery.status == "pending"))
    assert abs((held.next_attempt_at - ends).total_seconds()) < 1
    # Both are in the inbox at once.
    assert service.unread_count(guard) == 2


def test_a_held_push_goes_out_when_the_quiet_hours_end(push_env, login):
    phone = push_env.service.phone()
    push_env.subscribe(login("guard1"), phone)
    guard = push_env.user("guard1")
    _quiet_around_now(guard, timedelta(hours=1), timedelta(seconds=2))
    notify(
        "test.assignment",
        user_ids=[guard.id],
        org_id=guard.org_id,
        url="/x",
        params={"name": "赵保安", "m": 1},
    )
    db.session.commit()
    assert push_env.service.wait_for(1, timeout=0.5) == []
    (request,) = push_env.service.wait_for(1, timeout=10)
    assert phone.decrypt(request)["kind"] == "test.assignment"


def test_the_clock_sends_what_a_lost_job_left_behind(push_env, login):
    phone = push_env.service.phone()
    push_env.subscribe(login("courier1"), phone)
    courier = push_env.user("courier1")
    notify(
        "test.assignment",
        user_ids=[courier.id],
        org_id=courier.org_id,
        url="/x",
        params={"name": "李师傅", "m": 1},
    )
    db.session.info.pop(service.PENDING_KEY)  # the process dies between commit and queueing
    db.session.commit()
    push_env.settle()
    assert push_env.service.received == []
    results = jobs.run_clock(only=ONLY)
    assert results["push.dispatch_due"] == "1"
    push_env.settle()
    assert len(push_env.service.wait_for(1)) == 1
    # A delivery queued twice is still sent once: sending claims it first.
    delivery_id = db.session.scalar(db.select(Delivery.id))
    service.enqueue([(delivery_id, 0), (delivery_id, 0)])
    push_env.settle()
    assert len(push_env.service.received) == 1
    assert jobs.run_clock(only=ONLY)["push.dispatch_due"] == "0"
