"""A sign-in or scan synced late withdraws the alarm it contradicts (PAT-15, PAT-03).

The rule clock judges what the server has; a phone in a dead zone delivers the sign-in or the
scans later, timed by its own clock. The missed-sign-in record stays (audit) and is marked
withdrawn; the supervisor gets a follow-up instead of a stale alarm. SQLite and PostgreSQL.
"""

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from fieldapp import jobs
from fieldapp.extensions import db
from fieldapp.models import utcnow
from fieldapp.models.facts import AppendOnlyError
from fieldapp.patrols.models import AlarmWithdrawal, MissedSignIn, Shift
from fieldapp.push.models import Notification, PushEvent
from tests.integration.test_patrols_duty import (
    GUARD_PHONE,
    SITE,
    Phone,
    code_of,
    put_on_shift,
    site,
    user,
)


@pytest.fixture
def guard_phone(login):
    return Phone(login("guard1", device_id=GUARD_PHONE), GUARD_PHONE)


@pytest.fixture
def now():
    return utcnow().replace(microsecond=0)


def keys(kind: str) -> list[str]:
    return list(db.session.scalars(select(PushEvent.dedupe_key).where(PushEvent.kind == kind)))


def inbox(username: str, kind: str) -> list[Notification]:
    return list(
        db.session.scalars(
            select(Notification)
            .join(PushEvent, PushEvent.id == Notification.event_id)
            .where(Notification.user_id == user(username).id, PushEvent.kind == kind)
        )
    )


def local(at) -> str:
    return at.astimezone(ZoneInfo(site().timezone)).strftime("%H:%M")


# ----- PAT-15: the sign-in made before the deadline, synced after the alarm -------------------


def test_a_sign_in_synced_late_withdraws_the_missed_sign_in_and_tells_the_supervisor(
    guard_phone, login, now
):
    start = now - timedelta(minutes=20)  # "08:00"; now is "08:20"
    shift_id = put_on_shift("guard1", start, start + timedelta(hours=8))
    jobs.run_clock(start + timedelta(minutes=16), only=["patrol.sign_ins"])
    assert keys("patrol.not_signed_in") == [f"not-signed-in:{shift_id}"]
    missed = db.session.scalar(select(MissedSignIn))
    board = login("supervisor").get("/patrols/board").get_data(as_text=True)
    assert f'data-missed-sign-in="{shift_id}"' in board

    signed_at = start - timedelta(minutes=2)  # "07:58", on a phone without signal
    result = guard_phone.send("patrol.sign_in", {"shift_id": shift_id}, at=signed_at)
    assert result["status"] == "applied"

    db.session.expire_all()
    (withdrawal,) = db.session.scalars(select(AlarmWithdrawal))
    assert (withdrawal.shift_id, withdrawal.what, withdrawal.missed_sign_in_id) == (
        shift_id,
        "sign_in",
        missed.id,
    )
    assert withdrawal.evidence_at == signed_at and withdrawal.withdrawn_at >= now
    assert "synced" in withdrawal.reason and signed_at.isoformat() in withdrawal.reason
    # The miss record is kept for audit, and facts stay facts.
    assert db.session.scalar(select(func.count(MissedSignIn.id))) == 1
    withdrawal.reason = "edited"
    with pytest.raises(AppendOnlyError):
        db.session.flush()
    db.session.rollback()

    (follow_up,) = inbox("supervisor", "patrol.sign_in_synced_late")
    assert SITE in follow_up.title and not follow_up.event.alarm
    # The stale alarm no longer waits unread in the supervisor's inbox.
    (stale,) = inbox("supervisor", "patrol.not_signed_in")
    assert stale.read_at is not None and follow_up.read_at is None
    guard = user("guard1").display_name
    assert f"{guard} signed in at {local(signed_at)}, synced late" in follow_up.body or (
        guard in follow_up.body and local(signed_at) in follow_up.body
    )
    board = login("supervisor").get("/patrols/board").get_data(as_text=True)
    assert f'data-missed-sign-in="{shift_id}"' not in board
    assert f'data-withdrawn="{shift_id}-sign_in"' in board

    # The clock does not raise it again, and a second sign-in withdraws nothing more.
    jobs.run_clock(now + timedelta(minutes=1), only=["patrol.sign_ins"])
    guard_phone.send("patrol.sign_in", {"shift_id": shift_id}, at=signed_at)
    assert keys("patrol.not_signed_in") == [f"not-signed-in:{shift_id}"]
    assert keys("patrol.sign_in_synced_late") == [f"sign-in-synced-late:{shift_id}"]
    assert db.session.scalar(select(func.count(AlarmWithdrawal.id))) == 1


def test_a_sign_in_after_the_deadline_leaves_the_alarm_standing(guard_phone, now):
    start = now - timedelta(minutes=40)
    shift_id = put_on_shift("guard1", start, start + timedelta(hours=8))
    jobs.run_clock(start + timedelta(minutes=16), only=["patrol.sign_ins"])
    late = start + timedelta(minutes=25)  # really late: the alarm was right
    assert guard_phone.send("patrol.sign_in", {"shift_id": shift_id}, at=late)["status"] == (
        "applied"
    )
    guard_phone.send("patrol.sign_in", {"shift_id": shift_id, "action": "out"}, at=start)
    assert db.session.scalar(select(AlarmWithdrawal.id)) is None
    assert keys("patrol.sign_in_synced_late") == []


def test_a_shift_recorded_as_missed_after_its_end_is_withdrawn_without_a_follow_up(
    guard_phone, now
):
    start = now - timedelta(hours=5)
    shift_id = put_on_shift("guard1", start, now - timedelta(hours=1))
    jobs.run_clock(now, only=["patrol.sign_ins"])  # recorded, no alarm (shift already over)
    assert keys("patrol.not_signed_in") == []
    guard_phone.send("patrol.sign_in", {"shift_id": shift_id}, at=start + timedelta(minutes=3))
    (withdrawal,) = db.session.scalars(select(AlarmWithdrawal))
    assert withdrawal.what == "sign_in"
    assert keys("patrol.sign_in_synced_late") == []


# ----- PAT-03: a round walked offline, alarmed as missed or late ------------------------------


def test_scans_synced_late_withdraw_the_missed_round_alarm(guard_phone, login, now):
    start = now - timedelta(hours=5)
    shift_id = put_on_shift(
        "guard1",
        start,
        now - timedelta(hours=1),
        plan={"every_minutes": None, "rounds_per_shift": 1, "window_minutes": 60},
    )
    jobs.run_clock(now, only=["patrol.rounds"])
    assert keys("patrol.round_missed") == [f"round-missed:{shift_id}:1"]

    walked = [start + timedelta(minutes=10 + 5 * k) for k in range(4)]
    mutations = [
        guard_phone.mutation("patrol.scan", {"shift_id": shift_id, "code": code_of(c)}, at)
        for c, at in zip(("CP1", "CP2", "CP3", "CP4"), walked, strict=True)
    ]
    assert [r["status"] for r in guard_phone.push(*mutations[:3])] == ["applied"] * 3
    assert db.session.scalar(select(AlarmWithdrawal.id)) is None  # one checkpoint still open
    assert guard_phone.push(mutations[3])[0]["status"] == "applied"

    (withdrawal,) = db.session.scalars(select(AlarmWithdrawal))
    assert (withdrawal.what, withdrawal.round_number) == ("round_missed", 1)
    assert withdrawal.evidence_at == walked[-1]
    (follow_up,) = inbox("supervisor", "patrol.round_synced_late")
    assert user("guard1").display_name in follow_up.body and local(walked[-1]) in follow_up.body
    board = login("supervisor").get("/patrols/board").get_data(as_text=True)
    assert f'data-withdrawn="{shift_id}-round_missed-1"' in board
    jobs.run_clock(now + timedelta(minutes=1), only=["patrol.rounds"])
    assert keys("patrol.round_missed") == [f"round-missed:{shift_id}:1"]


def test_a_late_alarm_is_withdrawn_only_for_a_round_walked_inside_its_window(guard_phone, now):
    start = now - timedelta(hours=6)
    shift_id = put_on_shift(
        "guard1",
        start,
        start + timedelta(hours=12),
        plan={"every_minutes": 120, "window_minutes": 60, "rounds_per_shift": None},
    )
    jobs.run_clock(now, only=["patrol.rounds"])
    assert {f"round-late:{shift_id}:1", f"round-late:{shift_id}:2"} <= set(
        keys("patrol.round_late")
    )
    # Round 1 walked inside its window; round 2 walked after its window (late for real).
    in_window = [start + timedelta(minutes=10 + 5 * k) for k in range(4)]
    after_window = [start + timedelta(minutes=190 + 5 * k) for k in range(4)]
    codes = ("CP1", "CP2", "CP3", "CP4")
    results = guard_phone.push(
        *[
            guard_phone.mutation("patrol.scan", {"shift_id": shift_id, "code": code_of(c)}, at)
            for c, at in [
                *zip(codes, in_window, strict=True),
                *zip(codes, after_window, strict=True),
            ]
        ]
    )
    assert [r["status"] for r in results] == ["applied"] * 8
    rows = db.session.execute(select(AlarmWithdrawal.what, AlarmWithdrawal.round_number)).all()
    assert rows == [("round_late", 1)]
    assert keys("patrol.round_synced_late") == [f"round-synced-late:{shift_id}:1"]
    assert db.session.get(Shift, shift_id) is not None


# ----- PAT-10: a handover made in time, synced after the "no takeover" alarm -----------------


def test_a_handover_synced_late_withdraws_the_missing_takeover_alarm(guard_phone, now):
    end = now - timedelta(minutes=30)
    shift_id = put_on_shift("guard1", end - timedelta(hours=8), end)
    put_on_shift("guard2", end, end + timedelta(hours=8))
    jobs.run_clock(now, only=["patrol.takeovers"])
    assert keys("patrol.takeover_missing") == [f"takeover-missing:{shift_id}"]

    handover = {
        "shift_id": shift_id,
        "incoming_guard_id": user("guard2").id,
        "outgoing_signature": "ab" * 32,
        "incoming_signature": "cd" * 32,
    }
    in_time = end + timedelta(minutes=3)
    assert guard_phone.send("patrol.handover", handover, at=in_time)["status"] == "applied"
    (withdrawal,) = db.session.scalars(select(AlarmWithdrawal))
    assert (withdrawal.what, withdrawal.evidence_at) == ("takeover", in_time)
    (follow_up,) = inbox("supervisor", "patrol.takeover_synced_late")
    assert user("guard2").display_name in follow_up.body and local(in_time) in follow_up.body
    assert keys("patrol.handover_late") == []


def test_a_late_handover_leaves_the_missing_takeover_alarm_standing(guard_phone, now):
    end = now - timedelta(minutes=30)
    shift_id = put_on_shift("guard1", end - timedelta(hours=8), end)
    put_on_shift("guard2", end, end + timedelta(hours=8))
    jobs.run_clock(now, only=["patrol.takeovers"])
    handover = {
        "shift_id": shift_id,
        "incoming_guard_id": user("guard2").id,
        "outgoing_signature": "ab" * 32,
        "incoming_signature": "cd" * 32,
    }
    late = end + timedelta(minutes=20)
    assert guard_phone.send("patrol.handover", handover, at=late)["status"] == "applied"
    assert db.session.scalar(select(AlarmWithdrawal.id)) is None
    assert keys("patrol.handover_late") == [f"handover-late:{shift_id}"]
