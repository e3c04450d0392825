"""Guard duty alarms raised by the rule clock and the answers to them, on SQLite and PostgreSQL.

PAT-15 (not signed in), PAT-10 (no takeover), a round ended early (with its reason) and PAT-13
(a major incident acknowledged, arrival recorded). Builds on the demo site of
``test_patrols_duty``: 外滩中心大门岗, supervised by ``supervisor``, guarded by guard1/guard2.
"""

from datetime import timedelta

import pytest
from sqlalchemy import select

from fieldapp import jobs
from fieldapp.extensions import db
from fieldapp.models import utcnow
from fieldapp.patrols import service
from fieldapp.patrols.models import IncidentResponse, MissedSignIn, RoundEndedEarly
from fieldapp.push.models import Notification, PushEvent
from tests.integration.test_patrols_duty import (
    GUARD_PHONE,
    SITE,
    Phone,
    code_of,
    put_on_shift,
    user,
)


@pytest.fixture
def guard_phone(login):
    return Phone(login("guard1", device_id=GUARD_PHONE), GUARD_PHONE)


@pytest.fixture
def now():
    return utcnow().replace(microsecond=0)


def events(kind: str) -> list[str]:
    return list(db.session.scalars(select(PushEvent.dedupe_key).where(PushEvent.kind == kind)))


def inbox(username: str, kind: str) -> list[Notification]:
    return list(
        db.session.scalars(
            select(Notification)
            .join(PushEvent, PushEvent.id == Notification.event_id)
            .where(Notification.user_id == user(username).id, PushEvent.kind == kind)
        )
    )


# ----- PAT-15: not signed in ------------------------------------------------------------------


def test_a_guard_not_signed_in_after_15_minutes_raises_one_alarm_and_is_recorded(login, now):
    assert service.SIGN_IN_DEADLINE_MINUTES == 15
    shift_id = put_on_shift("guard1", now - timedelta(minutes=14), now + timedelta(hours=8))
    assert jobs.run_clock(now, only=["patrol.sign_ins"])["patrol.sign_ins"] == "ok"
    assert events("patrol.not_signed_in") == []  # 14 minutes: not yet

    later = now + timedelta(minutes=2)
    jobs.run_clock(later, only=["patrol.sign_ins"])
    jobs.run_clock(later + timedelta(minutes=1), only=["patrol.sign_ins"])
    assert events("patrol.not_signed_in") == [f"not-signed-in:{shift_id}"]
    (alarm,) = inbox("supervisor", "patrol.not_signed_in")
    assert SITE in alarm.title and alarm.event.alarm
    (fact,) = db.session.scalars(select(MissedSignIn))
    assert (fact.shift_id, fact.deadline) == (shift_id, now + timedelta(minutes=1))
    board = login("supervisor").get("/patrols/board").get_data(as_text=True)
    assert f'data-missed-sign-in="{shift_id}"' in board
    assert "not signed in by" in board or "未签到" in board


def test_no_alarm_when_the_guard_signed_in_in_time_even_offline(guard_phone, now):
    shift_id = put_on_shift("guard1", now - timedelta(minutes=40), now + timedelta(hours=8))
    # Signed in 5 minutes after the start on a phone without signal; the record came later.
    signed = guard_phone.send(
        "patrol.sign_in", {"shift_id": shift_id}, at=now - timedelta(minutes=35)
    )
    assert signed["status"] == "applied"
    jobs.run_clock(now, only=["patrol.sign_ins"])
    jobs.run_clock(now + timedelta(minutes=1), only=["patrol.sign_ins"])
    assert events("patrol.not_signed_in") == []
    assert db.session.scalar(select(MissedSignIn.id)) is None


def test_a_shift_noticed_only_after_its_end_is_recorded_without_an_alarm(demo, now):
    shift_id = put_on_shift("guard1", now - timedelta(hours=5), now - timedelta(hours=1))
    jobs.run_clock(now, only=["patrol.sign_ins"])
    assert events("patrol.not_signed_in") == []
    assert db.session.scalar(select(MissedSignIn.shift_id)) == shift_id


# ----- PAT-10: a takeover that never happens -------------------------------------------------


def handover_of(shift_id: int) -> dict:
    return {
        "shift_id": shift_id,
        "incoming_guard_id": user("guard2").id,
        "equipment": "对讲机 2 台",
        "outgoing_signature": "ab" * 32,
        "incoming_signature": "cd" * 32,
    }


def test_no_takeover_by_the_end_plus_grace_raises_one_alarm(demo, now):
    end = now - timedelta(minutes=4)
    shift_id = put_on_shift("guard1", end - timedelta(hours=8), end)
    put_on_shift("guard2", end, end + timedelta(hours=8))
    jobs.run_clock(now, only=["patrol.takeovers"])
    assert events("patrol.takeover_missing") == []  # 4 minutes: still within the grace

    later = now + timedelta(minutes=2)
    assert jobs.run_clock(later, only=["patrol.takeovers"])["patrol.takeovers"] == "ok"
    jobs.run_clock(later + timedelta(minutes=1), only=["patrol.takeovers"])
    assert events("patrol.takeover_missing") == [f"takeover-missing:{shift_id}"]
    (alarm,) = inbox("supervisor", "patrol.takeover_missing")
    assert SITE in alarm.title and alarm.event.alarm


def test_no_takeover_alarm_when_the_handover_happened_or_nobody_follows(guard_phone, now):
    end = now - timedelta(minutes=30)
    shift_id = put_on_shift("guard1", end - timedelta(hours=8), end)
    # Nobody rostered after guard1 yet: there is no takeover to miss.
    jobs.run_clock(now, only=["patrol.takeovers"])
    assert events("patrol.takeover_missing") == []

    put_on_shift("guard2", end - timedelta(minutes=10), end + timedelta(hours=8))
    handed = guard_phone.send("patrol.handover", handover_of(shift_id), at=end)
    assert handed["status"] == "applied"
    jobs.run_clock(now, only=["patrol.takeovers"])
    jobs.run_clock(now + timedelta(minutes=1), only=["patrol.takeovers"])
    assert events("patrol.takeover_missing") == []


# ----- a round ended early asks for a reason --------------------------------------------------


def test_a_round_ended_with_checkpoints_left_needs_a_reason(guard_phone, login, now):
    shift_id = put_on_shift("guard1", now - timedelta(minutes=20), now + timedelta(hours=8))
    page = guard_phone.client.get("/patrols/duty").get_data(as_text=True)
    assert 'data-record-type="patrol.round_ended_early"' in page
    assert '<textarea id="end-round-reason" name="reason" required' in page
    scanned = guard_phone.send(
        "patrol.scan", {"shift_id": shift_id, "code": code_of("CP1")}, at=now - timedelta(minutes=5)
    )
    assert scanned["status"] == "applied"

    ended = {"shift_id": shift_id, "round_number": 1}
    refused = guard_phone.send("patrol.round_ended_early", {**ended, "reason": "  "})
    assert (refused["status"], refused["reason"]) == ("rejected", "patrol.early_end_reason")
    assert refused["message"] == (
        "Checkpoints of this round are not scanned: say why you end the round early."
    )
    unknown = guard_phone.send("patrol.round_ended_early", {**ended, "round_number": 99})
    assert unknown["reason"] == "patrol.unknown_round"
    assert db.session.scalar(select(RoundEndedEarly.id)) is None

    reason = "东门积水，无法到达 CP3"
    assert (
        guard_phone.send("patrol.round_ended_early", {**ended, "reason": reason})["status"]
        == "applied"
    )
    (fact,) = db.session.scalars(select(RoundEndedEarly))
    assert (fact.shift_id, fact.round_number, fact.reason) == (shift_id, 1, reason)
    assert fact.remaining == ["CP2", "CP3", "CP4"]
    board = login("supervisor").get("/patrols/board").get_data(as_text=True)
    assert f'data-ended-early="{shift_id}-1"' in board and reason in board
    page = guard_phone.client.get("/patrols/duty").get_data(as_text=True)
    assert "&#34;ended_early&#34;: [1]" in page or '"ended_early": [1]' in page


# ----- PAT-13: a major incident acknowledged and attended -------------------------------------


def report(guard_phone, shift_id, severity, at):
    incident = guard_phone.mutation(
        "patrol.incident",
        {"shift_id": shift_id, "incident_type": "fire", "severity": severity, "place": "地下车库"},
        at,
    )
    assert guard_phone.push(incident)[0]["status"] == "applied"
    return incident["payload"]["id"]


def test_the_supervisor_acknowledges_a_major_incident_and_records_arrival(guard_phone, login, now):
    shift_id = put_on_shift("guard1", now - timedelta(hours=1), now + timedelta(hours=8))
    incident_id = report(guard_phone, shift_id, "major", now - timedelta(minutes=12))
    (alarm,) = inbox("supervisor", "patrol.major_incident")
    supervisor = login("supervisor")
    page = supervisor.get(alarm.event.url).get_data(as_text=True)
    assert f"/patrols/incidents/{incident_id}/acknowledge" in page
    board = supervisor.get("/patrols/board").get_data(as_text=True)
    assert "not acknowledged" in board or "未确认" in board

    assert supervisor.post(f"/patrols/incidents/{incident_id}/acknowledge").status_code == 302
    (response,) = db.session.scalars(select(IncidentResponse))
    assert response.user_id == user("supervisor").id and response.arrived_at is None
    acknowledged = response.acknowledged_at
    assert now - timedelta(minutes=1) <= acknowledged <= utcnow()

    assert supervisor.post(f"/patrols/incidents/{incident_id}/arrived").status_code == 302
    assert supervisor.post(f"/patrols/incidents/{incident_id}/arrived").status_code == 302
    db.session.expire_all()
    (response,) = db.session.scalars(select(IncidentResponse))
    assert response.acknowledged_at == acknowledged and response.arrived_at >= acknowledged
    page = supervisor.get(f"/patrols/incidents/{incident_id}").get_data(as_text=True)
    assert f'data-response="{response.user_id}"' in page
    assert "12 min after the report" in page or "12 分钟" in page
    assert f"/patrols/incidents/{incident_id}/arrived" not in page
    board = supervisor.get("/patrols/board").get_data(as_text=True)
    assert f'data-response="{incident_id}-{response.user_id}"' in board


def test_only_supervisors_of_the_site_answer_and_only_major_incidents(guard_phone, login, now):
    shift_id = put_on_shift("guard1", now - timedelta(hours=1), now + timedelta(hours=8))
    major = report(guard_phone, shift_id, "major", now)
    minor = report(guard_phone, shift_id, "minor", now)
    assert guard_phone.client.post(f"/patrols/incidents/{major}/arrived").status_code == 403
    supervisor = login("supervisor")
    supervisor.post(f"/patrols/incidents/{minor}/acknowledge")
    assert db.session.scalar(select(IncidentResponse.id)) is None
    page = supervisor.get(f"/patrols/incidents/{minor}").get_data(as_text=True)
    assert "/acknowledge" not in page
