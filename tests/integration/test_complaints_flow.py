"""Complaints through the sync API and the office pages, on SQLite and PostgreSQL: taken by
anyone, stored once with working-day deadlines, stepped through the workflow with refusals in
words, escalated once, and watched by the rule clock."""

import re
import uuid
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from fieldapp import jobs
from fieldapp.complaints.models import Complaint, ComplaintCalendarDay, ComplaintEvent
from fieldapp.extensions import db
from fieldapp.models import Organisation, Site, Team, TeamKind, User
from fieldapp.push.models import Notification, PushEvent
from fieldapp.visits.models import ReturnVisit

SHANGHAI = ZoneInfo("Asia/Shanghai")
FRIDAY_EVENING = datetime(2026, 11, 20, 18, 0, tzinfo=SHANGHAI)
REP_PHONE = "7a1d2c3b-4a5e-4f60-8a7b-9c0d1e2f3a50"
GUARD_PHONE = "7a1d2c3b-4a5e-4f60-8a7b-9c0d1e2f3a51"


def new_id() -> str:
    return str(uuid.uuid4())


class Phone:
    """A logged-in phone speaking the sync protocol, numbering its own mutations."""

    def __init__(self, client, device_id):
        self.client, self.device_id, self.seq = client, device_id, 0

    def mutation(self, type_, payload, device_time=None):
        self.seq += 1
        return {
            "id": new_id(),
            "seq": self.seq,
            "type": type_,
            "payload": {"id": new_id(), **payload},
            "device_time": (device_time or datetime.now(UTC)).isoformat(),
        }

    def push(self, mutations, lang="en"):
        response = self.client.raw.post(
            "/api/sync/push",
            json={"device_id": self.device_id, "mutations": mutations},
            headers={"X-CSRFToken": self.client.token, "Accept-Language": lang},
        )
        assert response.status_code == 200, response.get_data(as_text=True)
        return response.json["results"]

    def send(self, type_, payload, **kwargs):
        m = self.mutation(type_, payload, **kwargs)
        return m, self.push([m])[0]


def site(name: str) -> Site:
    return db.session.scalar(select(Site).where(Site.name == name))


def user(username: str) -> User:
    return db.session.scalar(select(User).where(User.username == username))


def intake(**fields) -> dict:
    return {
        "site_id": site("东方物业办公室").id,
        "complainant": "陈经理",
        "complainant_phone": "021-5888 1001",
        "channel": "field",
        "subject": "保安夜班睡岗",
        "content": "周四夜里巡逻记录缺失",
        "category": "attitude",
        "cause_class": "human",
        "severity": "serious",
        "request": "更换夜班保安",
        "solved_on_spot": False,
        **fields,
    }


@pytest.fixture
def rep(login):
    return Phone(login("rep1", device_id=REP_PHONE), REP_PHONE)


def complaints() -> list[Complaint]:
    db.session.expire_all()
    return list(db.session.scalars(select(Complaint).where(Complaint.subject == "保安夜班睡岗")))


def test_a_complaint_taken_offline_on_friday_evening_is_stored_once_with_its_deadlines(rep):
    m = rep.mutation("complaint.intake", intake(), device_time=FRIDAY_EVENING)
    first = rep.push([m])
    again = rep.push([m])  # the phone did not hear the answer and sends it again
    assert first[0]["status"] == "applied" and again[0]["status"] == "duplicate"
    (complaint,) = complaints()
    assert complaint.id == m["payload"]["id"]  # the phone-made ID is the record's identity
    assert complaint.owner_id == user("rep1").id  # first contact owns it (CMP-12)
    # Friday 18:00 is after hours: the clock starts Monday; investigate by Monday 17:30,
    # a satisfactory reply by Tuesday 17:30, Shanghai time (CMP-07).
    assert complaint.investigate_by == datetime(2026, 11, 23, 17, 30, tzinfo=SHANGHAI)
    assert complaint.reply_by == datetime(2026, 11, 24, 17, 30, tzinfo=SHANGHAI)
    # The slip number is the register's number for the site's local day of intake.
    assert re.fullmatch(r"DEMO-20261120-\d{4}", complaint.slip_number)
    events = db.session.scalars(
        select(ComplaintEvent).where(ComplaintEvent.complaint_id == complaint.id)
    ).all()
    assert [(e.step, e.version) for e in events] == [("received", 1)]


def test_a_holiday_of_the_organisation_calendar_moves_the_deadlines(rep):
    org = db.session.scalar(select(Organisation))
    db.session.add(
        ComplaintCalendarDay(org_id=org.id, day=date(2026, 11, 23), workday=False, name="test")
    )
    db.session.commit()
    rep.send("complaint.intake", intake(), device_time=FRIDAY_EVENING)
    (complaint,) = complaints()
    assert complaint.investigate_by == datetime(2026, 11, 24, 17, 30, tzinfo=SHANGHAI)
    assert complaint.reply_by == datetime(2026, 11, 25, 17, 30, tzinfo=SHANGHAI)


def test_the_clock_runs_from_when_the_company_first_knew(rep):
    # Known on Friday 10:00, logged on Monday: the deadlines do not restart (CMP-20).
    rep.send(
        "complaint.intake",
        intake(first_known_at="2026-11-20T10:00"),
        device_time=datetime(2026, 11, 23, 9, 0, tzinfo=SHANGHAI),
    )
    (complaint,) = complaints()
    assert complaint.first_known_at == datetime(2026, 11, 20, 10, 0, tzinfo=SHANGHAI)
    assert complaint.investigate_by == datetime(2026, 11, 23, 17, 30, tzinfo=SHANGHAI)


def test_anyone_may_take_a_complaint_for_any_client(login):
    # A guard of the security team logs a complaint about a client office of the visits
    # team: nobody can refuse it as "not my area" (CMP-11).
    guard = Phone(login("guard1", device_id=GUARD_PHONE), GUARD_PHONE)
    _m, result = guard.send("complaint.intake", intake(channel="walk_in"))
    assert result["status"] == "applied", result
    (complaint,) = complaints()
    assert complaint.owner_id == user("guard1").id
    assert complaint.team_id == site("东方物业办公室").team_id  # the client's team handles it


def test_a_complaint_needs_its_client(rep):
    _m, result = rep.send("complaint.intake", intake(site_id="", client_name=""))
    assert result["status"] == "rejected"
    assert result["message"] == "Say which client the complaint is from."


def test_a_major_complaint_notifies_the_supervisor_once(rep):
    m = rep.mutation("complaint.intake", intake(severity="major"))
    rep.push([m])
    rep.push([m])
    supervisor = user("supervisor")
    rows = db.session.scalars(
        select(Notification).join(PushEvent).where(PushEvent.kind == "complaint.major")
    ).all()
    assert [n.user_id for n in rows] == [supervisor.id]
    assert "东方物业办公室" in rows[0].title


def step(client, complaint_id, name, lang="en", **form):
    client.get(f"/complaints/{complaint_id}")
    return client.post(
        f"/complaints/{complaint_id}/{name}", form, headers={"Accept-Language": lang}
    )


def test_the_office_takes_the_complaint_to_closure_and_a_return_visit(rep, login):
    _m, result = rep.send("complaint.intake", intake())
    assert result["status"] == "applied"
    (complaint,) = complaints()
    office = login("supervisor")
    assert complaint.slip_number in office.get("/complaints/").get_data(as_text=True)
    handler = user("rep2")
    steps = [
        ("triage", {"valid": "yes", "category": "attitude", "cause_class": "human"}),
        ("route", {"department": "保安部", "handler_id": str(handler.id)}),
        ("plan", {"plan": "更换夜班人员并加强抽查"}),
        ("approve", {"note": "同意"}),
        ("answer", {"answer": "已更换夜班保安，增加夜间抽查"}),
    ]
    for name, form in steps:
        assert step(office, complaint.id, name, **form).status_code == 302, name
    # No callback yet: closing is refused, in words the user reads.
    refused = step(office, complaint.id, "close", root_cause="x", corrective_action="y")
    assert refused.status_code == 422
    assert "Call the client back and record their opinion before closing." in refused.get_data(
        as_text=True
    )
    assert (
        step(
            office, complaint.id, "callback", callback_result="satisfied", client_opinion="满意"
        ).status_code
        == 302
    )
    refused = step(office, complaint.id, "close", root_cause="", corrective_action="排班复核")
    assert refused.status_code == 422
    assert "Closing needs the root cause of the complaint." in refused.get_data(as_text=True)
    closed = step(
        office,
        complaint.id,
        "close",
        root_cause="夜班连续排班过长",
        corrective_action="夜班不超过两晚",
        lessons="排班纳入抽查",
    )
    assert closed.status_code == 302
    db.session.expire_all()
    complaint = db.session.get(Complaint, complaint.id)
    assert complaint.state == "closed" and complaint.root_cause == "夜班连续排班过长"
    events = db.session.scalars(
        select(ComplaintEvent)
        .where(ComplaintEvent.complaint_id == complaint.id)
        .order_by(ComplaintEvent.version)
    ).all()
    assert [e.step for e in events] == [
        "received",
        "triage",
        "route",
        "plan",
        "approve",
        "answer",
        "callback",
        "close",
    ]
    assert [e.version for e in events] == list(range(1, 9))
    assert events[2].data["handler_id"] == handler.id  # who and what, kept per step
    (rv,) = db.session.scalars(
        select(ReturnVisit).where(ReturnVisit.complaint_id == complaint.id)
    ).all()
    assert rv.reason == "complaint_closed" and rv.assigned_to_id == user("rep1").id
    assert office.get("/visits/return-visits").get_data(as_text=True).count("东方物业办公室") == 1


def test_only_a_supervisor_approves_the_plan(rep, login):
    rep.send("complaint.intake", intake())
    (complaint,) = complaints()
    owner = login("rep1")
    for name, form in (
        ("triage", {"valid": "yes"}),
        ("route", {"department": "客服部", "handler_id": str(user("rep1").id)}),
        ("plan", {"plan": "致电道歉并调整"}),
    ):
        assert step(owner, complaint.id, name, **form).status_code == 302
    refused = step(owner, complaint.id, "approve")
    assert refused.status_code == 422
    assert "Only a supervisor can approve or send back a plan." in refused.get_data(as_text=True)
    assert step(login("supervisor"), complaint.id, "approve").status_code == 302


def test_an_invalid_complaint_closes_only_with_the_explanation(rep, login):
    rep.send("complaint.intake", intake())
    (complaint,) = complaints()
    office = login("supervisor")
    refused = step(office, complaint.id, "triage", valid="no", explanation=" ")
    assert refused.status_code == 422
    assert "Write down the explanation given to the client" in refused.get_data(as_text=True)
    assert (
        step(
            office, complaint.id, "triage", valid="no", explanation="非我司责任，已出示鉴定结果"
        ).status_code
        == 302
    )
    db.session.expire_all()
    assert db.session.get(Complaint, complaint.id).state == "invalid_closed"


def test_the_rule_clock_raises_due_soon_and_overdue_once(rep):
    rep.send("complaint.intake", intake(), device_time=FRIDAY_EVENING)
    (complaint,) = complaints()
    sunday = datetime(2026, 11, 22, 18, 0, tzinfo=SHANGHAI).astimezone(UTC)  # < 24 h before
    jobs.run_clock(sunday)
    late = complaint.reply_by + timedelta(hours=1)
    jobs.run_clock(late)
    jobs.run_clock(late + timedelta(minutes=1))  # the clock runs every minute
    keys = sorted(
        db.session.scalars(
            select(PushEvent.dedupe_key).where(PushEvent.dedupe_key.like(f"%{complaint.id}%"))
        )
    )
    assert keys == [
        f"complaint-due-soon:{complaint.id}:investigate",
        f"complaint-overdue:{complaint.id}:investigate",
        f"complaint-overdue:{complaint.id}:reply",
    ]
    # The overdue reply reaches the owner and the supervisor, each once.
    overdue = db.session.scalars(
        select(Notification.user_id)
        .join(PushEvent)
        .where(PushEvent.dedupe_key == f"complaint-overdue:{complaint.id}:reply")
    ).all()
    assert sorted(overdue) == sorted([user("rep1").id, user("supervisor").id])


def test_a_rep_of_another_team_does_not_see_the_complaint(rep, login, demo):
    rep.send("complaint.intake", intake())
    (complaint,) = complaints()
    other_team = Team(org_id=user("rep1").org_id, name="客服二组", kind=TeamKind.VISITS)
    db.session.add(other_team)
    db.session.flush()
    user("rep2").team_id = other_team.id
    db.session.commit()
    outsider = login("rep2")
    assert outsider.get(f"/complaints/{complaint.id}").status_code == 404
    assert outsider.get(f"/complaints/{complaint.id}/slip").status_code == 404
    assert complaint.slip_number not in outsider.get("/complaints/").get_data(as_text=True)


def test_the_slip_shows_the_number_and_a_qr_code(rep, login):
    rep.send("complaint.intake", intake(solved_on_spot=True))
    (complaint,) = complaints()
    page = login("rep1").get(f"/complaints/{complaint.id}/slip").get_data(as_text=True)
    assert complaint.slip_number in page and "<svg" in page


def test_numbers_count_up_per_day(rep):
    for _ in range(3):
        rep.send("complaint.intake", intake(), device_time=FRIDAY_EVENING)
    numbers = sorted(c.slip_number for c in complaints())
    assert numbers == [f"DEMO-20261120-000{n}" for n in (1, 2, 3)]


def test_counting_complaints_is_per_organisation(demo):
    assert db.session.scalar(select(func.count(Complaint.id))) == 1  # the demo's open complaint


def test_an_admin_enters_a_holiday_on_the_calendar_page_and_deadlines_follow(rep, login):
    admin = login("admin")
    admin.get("/complaints/calendar")
    response = admin.post(
        "/complaints/calendar", {"action": "add", "day": "2026-11-23", "name": "测试假日"}
    )
    assert response.status_code == 302
    assert "测试假日" in admin.get("/complaints/calendar").get_data(as_text=True)
    admin.post("/complaints/calendar", {"action": "profile", "profile": "property"})
    rep.send("complaint.intake", intake(), device_time=FRIDAY_EVENING)
    (complaint,) = complaints()
    assert complaint.investigate_by == datetime(2026, 11, 24, 17, 30, tzinfo=SHANGHAI)
    assert complaint.reply_by == datetime(2026, 11, 26, 17, 30, tzinfo=SHANGHAI)  # 3 days
    # A supervisor reads the calendar but does not change it.
    supervisor = login("supervisor")
    supervisor.get("/complaints/calendar")
    refused = supervisor.post("/complaints/calendar", {"action": "add", "day": "2026-12-01"})
    assert refused.status_code == 403


def test_the_owner_sets_a_next_reply_time_that_the_queue_shows(rep, login):
    rep.send("complaint.intake", intake())
    (complaint,) = complaints()
    owner = login("rep1")
    later = (datetime.now(SHANGHAI) + timedelta(days=3)).strftime("%Y-%m-%dT%H:%M")
    assert step(owner, complaint.id, "next_reply", next_reply_at=later).status_code == 302
    db.session.expire_all()
    complaint = db.session.get(Complaint, complaint.id)
    assert complaint.next_reply_at is not None and complaint.version == 2
    page = login("supervisor").get("/complaints/").get_data(as_text=True)
    assert 'data-clock="next_reply"' in page
    past = step(owner, complaint.id, "next_reply", next_reply_at="2020-01-01T09:00")
    assert past.status_code == 422
    assert "The next reply must be in the future." in past.get_data(as_text=True)
