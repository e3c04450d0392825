"""A rep's visit through the sync API and the pages, on SQLite and PostgreSQL: check in and
out against the geofence, the report with ratings and follow-ups, who sees which visits, the
day pack, and the monthly return-visit sample."""

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from fieldapp.extensions import db
from fieldapp.models import Role, Site, Team, TeamKind, User
from fieldapp.visits.models import (
    FollowUpTask,
    ReturnVisit,
    Visit,
    VisitCheckIn,
    VisitCheckOut,
    VisitReport,
)
from tests.integration.test_complaints_flow import Phone

REP_PHONE = "8b1d2c3b-4a5e-4f60-8a7b-9c0d1e2f3a60"
# 东方物业办公室 is at 31.2352, 121.5055 with a 150 m geofence.
AT_THE_OFFICE = {"latitude": 31.2353, "longitude": 121.5056, "accuracy": 10}
ACROSS_THE_RIVER = {"latitude": 31.2352, "longitude": 121.4900, "accuracy": 10}  # ~1.5 km
SHA = "c" * 64


@pytest.fixture
def rep(login):
    return Phone(login("rep1", device_id=REP_PHONE), REP_PHONE)


def user(username: str) -> User:
    return db.session.scalar(select(User).where(User.username == username))


def todays_visit(username="rep1") -> Visit:
    db.session.expire_all()
    return db.session.scalar(select(Visit).where(Visit.rep_id == user(username).id))


def test_a_visit_checked_in_reported_and_checked_out_offline_is_stored_once(rep):
    visit = todays_visit()
    arrived = datetime.now(UTC) - timedelta(hours=2)
    batch = [
        rep.mutation("visit.check_in", {"visit_id": visit.id, **AT_THE_OFFICE}, arrived),
        rep.mutation(
            "visit.report",
            {
                "visit_id": visit.id,
                "discussed": "续签合同与夜班安排",
                "client_opinions": "希望加强夜间巡查",
                "photos": [SHA],
                "timeliness": "5",
                "skill": 4,
                "attitude": "4",
                "follow_up_action": "发送夜班排班表",
                "follow_up_due": "2026-11-27",
                "follow_up_owner_id": str(user("rep2").id),
                "survey_handed_out": True,
            },
            arrived + timedelta(minutes=40),
        ),
        rep.mutation(
            "visit.check_out",
            {"visit_id": visit.id, **ACROSS_THE_RIVER},
            arrived + timedelta(hours=1),
        ),
    ]
    first = rep.push(batch)
    assert [r["status"] for r in first] == ["applied"] * 3, first
    assert first[1]["files_missing"] == [SHA]  # the photo follows in its own upload
    assert [r["status"] for r in rep.push(batch)] == ["duplicate"] * 3
    visit = todays_visit()
    assert visit.state == "done"
    (check_in,) = db.session.scalars(select(VisitCheckIn)).all()
    assert check_in.inside is True and check_in.distance_m < 20
    (check_out,) = db.session.scalars(select(VisitCheckOut)).all()
    assert check_out.inside is False and check_out.distance_m > 1000  # allowed, but flagged
    assert check_out.seconds_on_site == 3600
    (report,) = db.session.scalars(select(VisitReport)).all()
    assert (report.satisfaction_score, report.satisfied) == (13, True)
    assert report.photos == [SHA] and report.survey_handed_out
    (task,) = db.session.scalars(select(FollowUpTask)).all()
    assert task.owner_id == user("rep2").id and task.due_date == date(2026, 11, 27)
    page = rep.client.get(f"/visits/{visit.id}").get_data(as_text=True)
    assert "续签合同与夜班安排" in page


def test_a_low_rating_on_one_count_is_not_satisfied_and_ratings_are_one_to_five(rep):
    visit = todays_visit()
    _m, ok = rep.send(
        "visit.report", {"visit_id": visit.id, "timeliness": 5, "skill": 5, "attitude": 2}
    )
    assert ok["status"] == "applied"
    assert db.session.scalar(select(VisitReport.satisfied)) is False
    _m, refused = rep.send(
        "visit.report", {"visit_id": visit.id, "timeliness": 6, "skill": 5, "attitude": 5}
    )
    assert refused["status"] == "rejected" and "timeliness" in refused["fields"]


def test_checking_out_needs_a_check_in(rep):
    _m, result = rep.send("visit.check_out", {"visit_id": todays_visit().id})
    assert result["status"] == "rejected"
    assert result["message"] == "Check in before checking out."


def test_a_check_in_without_gps_is_kept_and_shown_as_such(rep):
    _m, result = rep.send(
        "visit.check_in", {"visit_id": todays_visit().id, "latitude": "", "longitude": ""}
    )
    assert result["status"] == "applied"
    check_in = db.session.scalar(select(VisitCheckIn))
    assert check_in.inside is None and check_in.distance_m is None


def test_a_rep_cannot_see_or_touch_another_teams_visits(rep, login):
    org_id = user("rep1").org_id
    team = Team(org_id=org_id, name="客服二组", kind=TeamKind.VISITS)
    db.session.add(team)
    db.session.flush()
    rep3 = User(
        org_id=org_id,
        team_id=team.id,
        username="rep3",
        display_name="吴经理",
        role=Role.REP,
        password_hash=user("rep1").password_hash,
    )
    db.session.add(rep3)
    db.session.flush()
    site = db.session.scalar(select(Site).where(Site.name == "华联商厦客服部"))
    theirs = Visit(
        org_id=org_id,
        team_id=team.id,
        rep_id=rep3.id,
        site_id=site.id,
        planned_date=todays_visit().planned_date,
        purpose="另一组的走访",
    )
    db.session.add(theirs)
    db.session.commit()
    assert rep.client.get(f"/visits/{theirs.id}").status_code == 404
    assert "另一组的走访" not in rep.client.get("/visits/").get_data(as_text=True)
    _m, result = rep.send("visit.check_in", {"visit_id": theirs.id, **AT_THE_OFFICE})
    assert result["status"] == "rejected" and result["message"] == "This visit is not yours."
    pack = rep.client.get("/api/sync/daypack").json
    assert theirs.id not in {v["id"] for v in pack["data"]["visits"]}
    # The supervisor of the other team is not its supervisor here: the demo supervisor
    # supervises the demo teams only.
    assert login("supervisor").get(f"/visits/{theirs.id}").status_code == 404


def test_the_day_pack_holds_todays_visits_and_their_pages(rep):
    visit = todays_visit()
    pack = rep.client.get("/api/sync/daypack").json
    (mine,) = pack["data"]["visits"]
    assert mine["id"] == visit.id and mine["site"] == "东方物业办公室"
    assert f"/visits/{visit.id}" in pack["pages"]
    assert "/complaints/new" in pack["pages"]
    for page in pack["pages"]:  # every page the phone keeps opens for this rep
        assert rep.client.get(page).status_code == 200, page


def test_the_monthly_sample_takes_the_regulation_rate_once(login):
    supervisor = login("supervisor")
    rep1 = user("rep1")
    sites = db.session.scalars(select(Site).order_by(Site.id)).all()
    for n, site in enumerate(sites):  # 7 clients served in October
        db.session.add(
            Visit(
                org_id=rep1.org_id,
                team_id=rep1.team_id,
                rep_id=rep1.id,
                site_id=site.id,
                planned_date=date(2026, 10, 1 + n),
                state="done",
            )
        )
    db.session.commit()
    supervisor.get("/visits/return-visits")
    assert supervisor.post("/visits/return-visits/sample", {"month": "2026-10"}).status_code == 302
    supervisor.post("/visits/return-visits/sample", {"month": "2026-10"})
    drawn = db.session.scalars(select(ReturnVisit).where(ReturnVisit.month == "2026-10")).all()
    assert len(drawn) == 3  # under 100 served: at least 30 %, 7 * 0.3 = 2.1 -> 3
    assert len({rv.site_id for rv in drawn}) == 3


def test_a_supervisor_plans_a_visit_for_a_rep(login):
    supervisor = login("supervisor")
    supervisor.get("/visits/plan")
    site = db.session.scalar(select(Site).where(Site.name == "东方物业办公室"))
    response = supervisor.post(
        "/visits/plan",
        {
            "rep_id": user("rep2").id,
            "site_id": site.id,
            "planned_date": "2026-12-01",
            "purpose": "年度合同续签",
        },
    )
    assert response.status_code == 302
    assert (
        db.session.scalar(select(Visit).where(Visit.purpose == "年度合同续签")).rep_id
        == user("rep2").id
    )


def test_the_supervisor_sees_the_teams_visits_today(login):
    page = login("supervisor").get("/visits/").get_data(as_text=True)
    assert "东方物业办公室" in page and "华联商厦客服部" in page
    home = login("rep1").get("/").get_data(as_text=True)
    assert "/visits/" in home and "/complaints/new" in home
