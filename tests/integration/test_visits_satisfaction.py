"""KPI-18 satisfaction per staff member and month, from the visit reports (the latest of each
visit) and the rated return visits, on SQLite and PostgreSQL."""

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from fieldapp.extensions import db
from fieldapp.rules.visits import StaffSatisfaction
from fieldapp.visits import service
from fieldapp.visits.models import ReturnVisit, Visit
from tests.integration.test_complaints_flow import Phone, user

SHANGHAI = ZoneInfo("Asia/Shanghai")
REP_PHONE = "9e1d2c3b-4a5e-4f60-8a7b-9c0d1e2f3a90"


@pytest.fixture
def rep(login):
    return Phone(login("rep1", device_id=REP_PHONE), REP_PHONE)


def report(rep, visit_id, ratings, at, **extra):
    t, s, a = ratings
    m, result = rep.send(
        "visit.report",
        {"visit_id": visit_id, "timeliness": t, "skill": s, "attitude": a, **extra},
        device_time=at,
    )
    assert result["status"] == "applied", result
    return m["payload"]["id"]


def test_satisfaction_per_staff_member_for_the_month(rep):
    rep1, rep2 = user("rep1"), user("rep2")
    visit = db.session.scalar(select(Visit).where(Visit.rep_id == rep1.id))
    october = datetime(2026, 10, 20, 10, tzinfo=SHANGHAI)
    first = report(rep, visit.id, (2, 2, 2), october)
    # The correction replaces the first report: only 5, 4, 4 counts.
    report(rep, visit.id, (5, 4, 4), october.replace(hour=11), replaces_id=first)
    # A report of 1 November 00:30 in Shanghai is November's, though still October in UTC.
    report(rep, visit.id, (1, 1, 1), datetime(2026, 11, 1, 0, 30, tzinfo=SHANGHAI))
    for ratings, day in (((4, 4, 2), 5), ((5, 5, 5), 6)):
        db.session.add(
            ReturnVisit(
                org_id=rep2.org_id,
                source_key=f"test:{day}",
                reason="monthly_sample",
                due_date=date(2026, 10, day),
                staff_id=rep2.id,
                timeliness=ratings[0],
                skill=ratings[1],
                attitude=ratings[2],
                done_at=datetime(2026, 10, day, 3, tzinfo=UTC),
                result="accepted",
            )
        )
    db.session.commit()
    assert service.satisfaction_month(rep1.org_id, date(2026, 10, 1)) == sorted(
        [
            StaffSatisfaction(rep1.id, 1, 5.0, 4.0, 4.0, 1, 100.0),
            # (4+5)/2, (4+5)/2, (2+5)/2; attitude 2 is not satisfied: 1 of 2.
            StaffSatisfaction(rep2.id, 2, 4.5, 4.5, 3.5, 1, 50.0),
        ],
        key=lambda s: s.staff_id,
    )
    (november,) = service.satisfaction_month(rep1.org_id, date(2026, 11, 30))
    assert (november.staff_id, november.rated, november.satisfied) == (rep1.id, 1, 0)
