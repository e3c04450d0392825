"""CMP-16 archive access (closed complaints: department heads in their scope and the general
manager only) and CMP-17 the monthly complaint rate by unit, on SQLite and PostgreSQL."""

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from fieldapp.complaints import service
from fieldapp.complaints.models import Complaint
from fieldapp.extensions import db
from fieldapp.models import Role, Team, TeamKind, User
from fieldapp.rules.complaints import UnitComplaintRate
from fieldapp.visits.models import Visit
from tests.integration.test_complaints_flow import Phone, intake, step, user

SHANGHAI = ZoneInfo("Asia/Shanghai")
REP_PHONE = "9d1d2c3b-4a5e-4f60-8a7b-9c0d1e2f3a80"


@pytest.fixture
def rep(login):
    return Phone(login("rep1", device_id=REP_PHONE), REP_PHONE)


def other_head() -> User:
    """A department head of another team only."""
    org_id = user("rep1").org_id
    head = User(org_id=org_id, username="head2", display_name="冯主管", role=Role.SUPERVISOR)
    head.set_password("demo-2026")
    db.session.add(head)
    db.session.flush()
    db.session.add(
        Team(org_id=org_id, name="保洁二组", kind=TeamKind.VISITS, supervisor_id=head.id)
    )
    db.session.commit()
    return head


def take(rep, **fields) -> Complaint:
    m, result = rep.send("complaint.intake", intake(**fields))
    assert result["status"] == "applied", result
    return db.session.get(Complaint, m["payload"]["id"])


def route(office, complaint_id, handler: User):
    assert step(office, complaint_id, "triage", valid="yes").status_code == 302
    response = step(office, complaint_id, "route", department="保安部", handler_id=str(handler.id))
    assert response.status_code == 302


def close(office, complaint_id):
    for name, form in (
        ("plan", {"plan": "更换夜班人员"}),
        ("approve", {}),
        ("answer", {"answer": "已更换"}),
        ("callback", {"callback_result": "satisfied", "client_opinion": "满意"}),
        ("close", {"root_cause": "排班过长", "corrective_action": "夜班不超过两晚"}),
    ):
        assert step(office, complaint_id, name, **form).status_code == 302, name


def test_a_closed_complaint_is_read_only_by_heads_in_scope_and_the_general_manager(rep, login):
    other_head()
    complaint = take(rep)
    owner, handler = login("rep1"), login("rep2")
    office = login("supervisor")
    route(office, complaint.id, user("rep2"))
    # Open: the parties see it to work on it; a head of another team does not.
    assert owner.get(f"/complaints/{complaint.id}").status_code == 200
    assert handler.get(f"/complaints/{complaint.id}").status_code == 200
    assert login("head2").get(f"/complaints/{complaint.id}").status_code == 404
    close(office, complaint.id)
    # Closed: archived. The head of the team and the general manager read it ...
    assert office.get(f"/complaints/{complaint.id}").status_code == 200
    gm = login("admin")
    assert gm.get(f"/complaints/{complaint.id}").status_code == 200
    assert complaint.slip_number in gm.get("/complaints/?closed=1").get_data(as_text=True)
    # ... the staff who took or handled it and other heads do not.
    for reader in (owner, handler, login("head2")):
        assert reader.get(f"/complaints/{complaint.id}").status_code == 404
        assert reader.get(f"/complaints/{complaint.id}/slip").status_code == 404
        listing = reader.get("/complaints/?closed=1").get_data(as_text=True)
        assert complaint.slip_number not in listing


def test_a_head_who_handles_another_teams_complaint_loses_it_to_the_archive(rep, login):
    head = other_head()
    complaint = take(rep)
    office = login("supervisor")
    route(office, complaint.id, head)
    assert login("head2").get(f"/complaints/{complaint.id}").status_code == 200
    close(office, complaint.id)
    assert login("head2").get(f"/complaints/{complaint.id}").status_code == 404


def at(*args) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI)


def test_the_monthly_complaint_rate_by_unit(rep, demo):
    guard = user("guard1")  # 保安一队
    counted = [
        (at(2026, 10, 31, 23, 30), {"staff_id": guard.id}),  # the guard's team
        (at(2026, 10, 3, 10, 0), {}),  # the site's team, 客服外勤组
        (at(2026, 10, 4, 10, 0), {"staff_id": guard.id, "state": "invalid_closed"}),  # CMP-04
        (at(2026, 11, 1, 0, 30), {"staff_id": guard.id}),  # November in Shanghai
    ]
    for known, changes in counted:
        c = take(rep)
        c.first_known_at = known.astimezone(UTC)
        for name, value in changes.items():
            setattr(c, name, value)
        db.session.commit()
    rep1 = user("rep1")
    site_id = db.session.scalar(select(Visit.site_id).where(Visit.rep_id == rep1.id))
    for day in (2, 9, 16):  # 3 services of 客服外勤组 in October
        db.session.add(
            Visit(
                org_id=rep1.org_id,
                team_id=rep1.team_id,
                rep_id=rep1.id,
                site_id=site_id,
                planned_date=date(2026, 10, day),
                state="done",
            )
        )
    db.session.commit()
    org_id = rep1.org_id
    assert service.complaint_rates(org_id, date(2026, 10, 15)) == [
        UnitComplaintRate("保安一队", 1, 0, None),  # no services known: no rate
        UnitComplaintRate("客服外勤组", 1, 3, 33.33),  # 1 / 3
    ]
    # The dashboard passes the services of the other domains.
    assert service.complaint_rates(org_id, date(2026, 10, 1), {"保安一队": 40}) == [
        UnitComplaintRate("保安一队", 1, 40, 2.5),
        UnitComplaintRate("客服外勤组", 1, 0, None),
    ]
    november = service.complaint_rates(org_id, date(2026, 11, 1), {})
    assert UnitComplaintRate("保安一队", 1, 0, None) in november  # 00:30 on the 1st, local
