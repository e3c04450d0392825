"""Mandatory on-site return visits (VIS-09): generated at the service's check-out for clients
with a service agreement, assigned, with a deadline the rule clock watches; a new need found
on a return visit opens a linked case (VIS-05 c). SQLite and PostgreSQL."""

from datetime import UTC, date, datetime, time, timedelta
from html import unescape
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from fieldapp import jobs
from fieldapp.complaints.models import Complaint
from fieldapp.extensions import db
from fieldapp.push.models import Notification, PushEvent
from fieldapp.visits.models import ClientFile, FollowUpTask, ReturnVisit, Visit
from tests.integration.test_complaints_flow import Phone, intake, site, step, user

SHANGHAI = ZoneInfo("Asia/Shanghai")
REP_PHONE = "9c1d2c3b-4a5e-4f60-8a7b-9c0d1e2f3a70"
AT_THE_OFFICE = {"latitude": 31.2353, "longitude": 121.5056, "accuracy": 10}
OFFICE = "东方物业办公室"
EN = {"Accept-Language": "en"}


@pytest.fixture
def rep(login):
    return Phone(login("rep1", device_id=REP_PHONE), REP_PHONE)


def sign_agreement(office, signed_on: date, name: str = OFFICE):
    office.get("/visits/plan")
    response = office.post(
        "/visits/clients/agreement", {"site_id": str(site(name).id), "signed_on": str(signed_on)}
    )
    assert response.status_code == 302, response.get_data(as_text=True)


def todays_visit(username="rep1") -> Visit:
    db.session.expire_all()
    return db.session.scalar(select(Visit).where(Visit.rep_id == user(username).id))


def serve(rep, visit: Visit, at: datetime):
    results = rep.push(
        [
            rep.mutation("visit.check_in", {"visit_id": visit.id, **AT_THE_OFFICE}, at),
            rep.mutation(
                "visit.check_out",
                {"visit_id": visit.id, **AT_THE_OFFICE},
                at + timedelta(minutes=45),
            ),
        ]
    )
    assert [r["status"] for r in results] == ["applied", "applied"], results


def forced() -> list[ReturnVisit]:
    db.session.expire_all()
    return list(
        db.session.scalars(select(ReturnVisit).where(ReturnVisit.reason == "forced_onsite"))
    )


def events(prefix: str) -> list[PushEvent]:
    return list(db.session.scalars(select(PushEvent).where(PushEvent.dedupe_key.like(prefix))))


def test_a_service_by_new_staff_for_an_agreement_client_forces_an_on_site_visit(rep, login):
    office = login("supervisor")
    sign_agreement(office, date(2025, 1, 10))  # an old agreement: not new
    visit = todays_visit()
    arrived = datetime.now(UTC) - timedelta(hours=2)
    serve(rep, visit, arrived)
    (rv,) = forced()
    # rep1 joined today: on probation, so "new staff"; the agreement is not new.
    assert rv.onsite and rv.onsite_reasons == ["new_staff"]
    assert rv.visit_id == visit.id and rv.staff_id == user("rep1").id
    # rep1 is the client's account manager and did the service: the supervisor visits.
    assert rv.assigned_to_id == user("supervisor").id
    local = (arrived + timedelta(minutes=45)).astimezone(SHANGHAI).date()
    assert rv.due_date > local and (rv.due_date - local).days <= 7  # 3 working days
    assert [e.kind for e in events(f"visit-onsite-assigned:{rv.id}")] == ["visit.onsite_assigned"]
    # The phone sends the check-out again (a retry after a lost answer): still one visit.
    m = rep.mutation("visit.check_out", {"visit_id": visit.id, **AT_THE_OFFICE})
    assert rep.push([m])[0]["status"] == "applied"
    assert len(forced()) == 1
    page = office.get("/visits/return-visits", headers=EN).get_data(as_text=True)
    assert "Mandatory on-site visit" in page and "Service by new staff" in page


def test_no_agreement_no_forced_visit(rep):
    serve(rep, todays_visit(), datetime.now(UTC) - timedelta(hours=2))
    assert forced() == []


def test_a_new_agreement_and_a_complaint_against_the_staff_force_the_visit(rep, login):
    office = login("supervisor")
    rep1 = user("rep1")
    rep1.created_at = datetime(2024, 1, 1, tzinfo=UTC)  # not new staff
    db.session.commit()
    # A complaint about rep1's service, routed with rep1 as the person complained about.
    # Known before the service: it concerns rep1's previous service.
    _m, result = rep.send(
        "complaint.intake", intake(), device_time=datetime.now(UTC) - timedelta(hours=3)
    )
    complaint = db.session.scalar(select(Complaint).where(Complaint.id == _m["payload"]["id"]))
    for name, form in (
        ("triage", {"valid": "yes"}),
        (
            "route",
            {"department": "客服部", "handler_id": str(user("rep2").id), "staff_id": str(rep1.id)},
        ),
    ):
        assert step(office, complaint.id, name, **form).status_code == 302
    db.session.expire_all()
    assert db.session.get(Complaint, complaint.id).staff_id == rep1.id
    today = datetime.now(SHANGHAI).date()
    sign_agreement(office, today)
    serve(rep, todays_visit(), datetime.now(UTC) - timedelta(minutes=50))
    (rv,) = forced()
    assert rv.onsite_reasons == ["new_agreement", "staff_complained"]
    assert rv.assigned_to_id == user("supervisor").id


def test_a_service_by_seasoned_staff_not_complained_about_is_not_forced(rep, login):
    rep1 = user("rep1")
    rep1.created_at = datetime(2024, 1, 1, tzinfo=UTC)
    db.session.commit()
    sign_agreement(login("supervisor"), date(2025, 1, 10))
    serve(rep, todays_visit(), datetime.now(UTC) - timedelta(hours=2))
    assert forced() == []


def test_a_missed_forced_visit_reaches_the_supervisor_once(rep, login):
    sign_agreement(login("supervisor"), date(2025, 1, 10))
    serve(rep, todays_visit(), datetime.now(UTC) - timedelta(hours=2))
    (rv,) = forced()
    last_minute = datetime.combine(rv.due_date, time(23, 59), tzinfo=SHANGHAI).astimezone(UTC)
    jobs.run_clock(last_minute, only=["visits.forced_onsite_missed"])
    assert events(f"visit-onsite-missed:{rv.id}") == []  # the due day itself is in time
    after = last_minute + timedelta(minutes=2)
    assert (
        jobs.run_clock(after, only=["visits.forced_onsite_missed"])["visits.forced_onsite_missed"]
        == "ok"
    )
    jobs.run_clock(after + timedelta(minutes=1), only=["visits.forced_onsite_missed"])
    (event,) = events(f"visit-onsite-missed:{rv.id}")
    told = db.session.scalars(
        select(Notification.user_id).where(Notification.event_id == event.id)
    ).all()
    assert told == [user("supervisor").id]


def test_a_forced_visit_is_recorded_only_on_site(rep, login):
    sign_agreement(login("supervisor"), date(2025, 1, 10))
    serve(rep, todays_visit(), datetime.now(UTC) - timedelta(hours=2))
    (rv,) = forced()
    office = login("supervisor")
    office.get("/visits/return-visits")
    refused = office.post(
        f"/visits/return-visits/{rv.id}/done",
        {"result": "accepted", "timeliness": "5", "skill": "4", "attitude": "5"},
        headers=EN,
    )
    assert refused.status_code == 422
    assert "This return visit must be made on site." in refused.get_data(as_text=True)
    refused = office.post(
        f"/visits/return-visits/{rv.id}/done",
        {"result": "accepted", "onsite": "1", "timeliness": "5", "skill": "", "attitude": "5"},
        headers=EN,
    )
    assert refused.status_code == 422
    assert "Rate timeliness, skill and attitude" in refused.get_data(as_text=True)
    done = office.post(
        f"/visits/return-visits/{rv.id}/done",
        {"result": "accepted", "onsite": "1", "timeliness": "5", "skill": "4", "attitude": "5"},
        headers=EN,
    )
    assert done.status_code == 302
    (rv,) = forced()
    assert rv.done_at is not None and (rv.timeliness, rv.skill, rv.attitude) == (5, 4, 5)
    assert rv.done_by_id == user("supervisor").id
    # Done in time: the clock has nothing to say about it afterwards.
    jobs.run_clock(datetime.now(UTC) + timedelta(days=30), only=["visits.forced_onsite_missed"])
    assert events(f"visit-onsite-missed:{rv.id}") == []


def test_the_refusal_is_shown_next_to_the_form_in_the_users_language(rep, login):
    sign_agreement(login("supervisor"), date(2025, 1, 10))
    serve(rep, todays_visit(), datetime.now(UTC) - timedelta(hours=2))
    (rv,) = forced()
    office = login("supervisor")
    office.get("/visits/return-visits")
    refused = office.post(
        f"/visits/return-visits/{rv.id}/done",
        {"result": "accepted"},
        headers={"Accept-Language": "zh-CN"},
    )
    assert refused.status_code == 422
    page = refused.get_data(as_text=True)
    assert '<html lang="zh-CN">' in page and 'role="alert"' in page
    assert '<details class="rv-record" open>' in page  # the failed form stays open


# ----- a new need found on a return visit opens a linked case (VIS-05 c) ----------------------


def closed_complaint(rep, office) -> Complaint:
    _m, result = rep.send("complaint.intake", intake())
    assert result["status"] == "applied"
    complaint_id = _m["payload"]["id"]
    for name, form in (
        ("triage", {"valid": "yes"}),
        ("route", {"department": "保安部", "handler_id": str(user("rep2").id)}),
        ("plan", {"plan": "更换夜班人员"}),
        ("approve", {}),
        ("answer", {"answer": "已更换"}),
        ("callback", {"callback_result": "satisfied", "client_opinion": "满意"}),
        ("close", {"root_cause": "排班过长", "corrective_action": "夜班不超过两晚"}),
    ):
        assert step(office, complaint_id, name, **form).status_code == 302, name
    db.session.expire_all()
    return db.session.get(Complaint, complaint_id)


def the_return_visit(complaint) -> ReturnVisit:
    db.session.expire_all()
    return db.session.scalar(select(ReturnVisit).where(ReturnVisit.complaint_id == complaint.id))


def test_a_new_need_on_the_return_visit_opens_a_linked_complaint_case(rep, login):
    office = login("supervisor")
    original = closed_complaint(rep, office)
    rv = the_return_visit(original)
    owner = login("rep1")  # the complaint's owner makes the return visit
    owner.get("/visits/return-visits")
    refused = owner.post(
        f"/visits/return-visits/{rv.id}/done", {"result": "new_need", "need": " "}, headers=EN
    )
    assert refused.status_code == 422
    assert "Describe the client's new need." in unescape(refused.get_data(as_text=True))
    response = owner.post(
        f"/visits/return-visits/{rv.id}/done",
        {"result": "new_need", "need": "希望增加周末白班保安", "case_kind": "complaint"},
        headers=EN,
    )
    assert response.status_code == 302
    rv = the_return_visit(original)
    case = db.session.get(Complaint, rv.new_complaint_id)
    assert case.parent_id == original.id and case.owner_id == user("rep1").id
    assert case.subject == "希望增加周末白班保安" and case.state == "received"
    assert response.headers["Location"].endswith(f"/complaints/{case.id}")
    # On both records: the new case names the original, the original lists the new case.
    page = office.get(f"/complaints/{case.id}", headers=EN).get_data(as_text=True)
    assert "Follows up complaint" in page and original.slip_number in page
    page = office.get(f"/complaints/{original.id}").get_data(as_text=True)
    assert case.slip_number in page and 'data-link="child"' in page
    # The handler of the original is told (the owner raised it).
    (event,) = events(f"visit-new-need:{rv.id}")
    told = db.session.scalars(
        select(Notification.user_id).where(Notification.event_id == event.id)
    ).all()
    assert told == [user("rep2").id]


def test_a_new_need_can_be_a_follow_up_for_a_named_person(rep, login):
    office = login("supervisor")
    original = closed_complaint(rep, office)
    rv = the_return_visit(original)
    office.get("/visits/return-visits")
    refused = office.post(
        f"/visits/return-visits/{rv.id}/done",
        {
            "result": "new_need",
            "need": "发送新排班表",
            "case_kind": "follow_up",
            "owner_id": str(user("rep2").id),
        },
        headers=EN,
    )
    assert refused.status_code == 422
    assert "Give the follow-up a due date." in refused.get_data(as_text=True)
    assert (
        office.post(
            f"/visits/return-visits/{rv.id}/done",
            {
                "result": "new_need",
                "need": "发送新排班表",
                "case_kind": "follow_up",
                "owner_id": str(user("rep2").id),
                "due": "2026-12-01",
            },
            headers=EN,
        ).status_code
        == 302
    )
    (task,) = db.session.scalars(select(FollowUpTask)).all()
    assert (task.complaint_id, task.return_visit_id) == (original.id, rv.id)
    assert task.owner_id == user("rep2").id and task.due_date == date(2026, 12, 1)
    page = office.get(f"/complaints/{original.id}").get_data(as_text=True)
    assert "发送新排班表" in page and 'data-link="follow-up"' in page
    assert "发送新排班表" in login("rep2").get("/visits/").get_data(as_text=True)


def test_a_complaint_taken_on_a_visit_shows_on_the_visit_and_the_complaint(rep, login):
    visit = todays_visit()
    _m, result = rep.send("complaint.intake", intake(visit_id=visit.id))
    assert result["status"] == "applied"
    complaint_id = _m["payload"]["id"]
    page = login("rep1").get(f"/visits/{visit.id}").get_data(as_text=True)
    assert 'id="visit-cases"' in page and f"/complaints/{complaint_id}" in page
    page = login("supervisor").get(f"/complaints/{complaint_id}").get_data(as_text=True)
    assert 'data-link="visit"' in page and f"/visits/{visit.id}" in page


def test_the_client_file_keeps_the_agreement(login):
    sign_agreement(login("supervisor"), date(2026, 11, 2))
    db.session.expire_all()
    file = db.session.scalar(select(ClientFile).where(ClientFile.site_id == site(OFFICE).id))
    assert file.agreement_signed_on == date(2026, 11, 2)
    assert login("rep1").post("/visits/clients/agreement", {}).status_code in (302, 403)
