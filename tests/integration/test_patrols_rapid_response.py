"""PAT-13: a major incident calls out the whole rapid-response team, who acknowledge and record
their arrival at the scene; the response time is reported. SQLite and PostgreSQL."""

from datetime import timedelta

import pytest
from sqlalchemy import select

from fieldapp.extensions import db
from fieldapp.models import utcnow
from fieldapp.patrols.models import GuardProfile, IncidentResponse
from fieldapp.push.models import Notification, PushEvent
from tests.integration.test_patrols_duty import (
    GUARD_PHONE,
    OTHER_PHONE,
    SITE,
    Phone,
    put_on_shift,
    user,
)


@pytest.fixture
def guard_phone(login):
    return Phone(login("guard1", device_id=GUARD_PHONE), GUARD_PHONE)


@pytest.fixture
def now():
    return utcnow().replace(microsecond=0)


def call_outs(username: str) -> list[Notification]:
    return list(
        db.session.scalars(
            select(Notification)
            .join(PushEvent, PushEvent.id == Notification.event_id)
            .where(
                Notification.user_id == user(username).id,
                PushEvent.kind == "patrol.rapid_response",
            )
        )
    )


def report(phone, shift_id, severity, at) -> str:
    incident = phone.mutation(
        "patrol.incident",
        {"shift_id": shift_id, "incident_type": "fire", "severity": severity, "place": "地下车库"},
        at,
    )
    assert phone.push(incident)[0]["status"] == "applied"
    return incident["payload"]["id"]


def test_the_supervisor_puts_a_guard_on_the_rapid_response_team(login):
    supervisor = login("supervisor")
    guard2 = user("guard2")
    profile = db.session.get(GuardProfile, guard2.id)
    form = {
        "guard_id": guard2.id,
        "licence_number": profile.licence_number,
        "licence_expires": profile.licence_expires.isoformat(),
        "rapid_response": "y",
    }
    assert supervisor.post("/patrols/guards", form).status_code == 302
    db.session.expire_all()
    assert db.session.get(GuardProfile, guard2.id).rapid_response
    page = supervisor.get("/patrols/guards").get_data(as_text=True)
    assert f'data-rapid="{guard2.id}" checked' in page
    del form["rapid_response"]  # unticked
    supervisor.post("/patrols/guards", form)
    db.session.expire_all()
    assert not db.session.get(GuardProfile, guard2.id).rapid_response


def test_a_major_incident_calls_out_the_team_who_acknowledge_and_arrive(guard_phone, login, now):
    db.session.get(GuardProfile, user("guard2").id).rapid_response = True
    db.session.commit()
    shift_id = put_on_shift("guard1", now - timedelta(hours=1), now + timedelta(hours=8))
    minor = report(guard_phone, shift_id, "minor", now - timedelta(minutes=20))
    major = report(guard_phone, shift_id, "major", now - timedelta(minutes=9))

    (alarm,) = call_outs("guard2")
    assert alarm.event.alarm and SITE in alarm.title and "地下车库" in alarm.body
    assert alarm.event.url == f"/patrols/incidents/{major}"
    assert call_outs("guard1") == []  # the reporter is on the scene already

    responder = Phone(login("guard2", device_id=OTHER_PHONE), OTHER_PHONE).client
    home = responder.get("/").get_data(as_text=True)
    assert "/patrols/call-outs" in home
    listed = responder.get("/patrols/call-outs").get_data(as_text=True)
    assert f'data-call-out="{major}"' in listed and minor not in listed
    page = responder.get(f"/patrols/incidents/{major}").get_data(as_text=True)
    assert f"/patrols/incidents/{major}/acknowledge" in page
    assert responder.get(f"/patrols/incidents/{minor}").status_code == 404

    assert responder.post(f"/patrols/incidents/{major}/acknowledge").status_code == 302
    assert responder.post(f"/patrols/incidents/{major}/arrived").status_code == 302
    (response,) = db.session.scalars(select(IncidentResponse))
    assert response.user_id == user("guard2").id
    assert response.acknowledged_at <= response.arrived_at
    shown = login("supervisor").get(f"/patrols/incidents/{major}").get_data(as_text=True)
    assert f'data-response="{response.user_id}"' in shown
    assert "9 min after the report" in shown or "9 分钟" in shown

    # A guard who is not on the team neither answers nor sees the call-outs.
    assert guard_phone.client.post(f"/patrols/incidents/{major}/acknowledge").status_code == 403
    assert guard_phone.client.get("/patrols/call-outs").status_code == 404
    assert "/patrols/call-outs" not in guard_phone.client.get("/").get_data(as_text=True)
