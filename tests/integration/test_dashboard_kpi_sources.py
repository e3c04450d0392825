"""The KPI page's figures that come from other domains' services, on SQLite and PostgreSQL:
return-visit satisfaction per rep (KPI-18), the guards' month from the patrol records (KPI-12
inputs) and the complaint rate by unit (CMP-17), against hand-computed numbers, scoped so a
supervisor of team A sees nothing of team B, each linking to the records behind it.
"""

import re
from datetime import UTC, date, datetime, timedelta

import pytest

from fieldapp.deliveries.models import StopState
from fieldapp.extensions import db
from fieldapp.patrols.models import Handover, Incident, ShiftSignIn, SpotCheck
from fieldapp.visits.models import ReturnVisit, Visit, VisitReport, VisitState
from tests.integration.test_dashboard import log_in, row, uid, world  # noqa: F401 (fixtures)

OCT5 = datetime(2026, 10, 5, 0, 0, tzinfo=UTC)  # 08:00 in Shanghai
OCTOBER_STARTS = datetime(2026, 9, 30, 16, 0, tzinfo=UTC)  # 1 Oct 00:00 in Shanghai


def visit(w, team, rep, site, day, state=VisitState.DONE) -> Visit:
    v = Visit(
        org_id=w.org.id,
        team_id=w.teams[team].id,
        rep_id=w.id(rep),
        site_id=w.sites[site].id,
        planned_date=day,
        state=state,
    )
    db.session.add(v)
    db.session.flush()
    return v


def report(w, v, rep, at, t, s, a, replaces=None) -> VisitReport:
    r = VisitReport(
        id=uid(),
        org_id=w.org.id,
        visit_id=v.id,
        user_id=w.id(rep),
        replaces_id=replaces.id if replaces else None,
        timeliness=t,
        skill=s,
        attitude=a,
        satisfaction_score=t + s + a,
        satisfied=t + s + a >= 12 and min(t, s, a) >= 3,
        at=at,
        received_at=at,
    )
    db.session.add(r)
    db.session.flush()
    return r


def spot_check(w, guard, at, present=True, uniform=True, violations=()):
    db.session.add(
        SpotCheck(
            id=uid(),
            org_id=w.org.id,
            site_id=w.sites["posta"].id,
            supervisor_id=w.id("supa"),
            guard_id=w.id(guard),
            at=at,
            received_at=at,
            guard_present=present,
            in_uniform=uniform,
            violations=list(violations),
        )
    )


@pytest.fixture
def october(world):  # noqa: F811
    w = world
    # ----- KPI-18: rep A's latest reports and a rated return visit; rep B's report -----
    v1 = visit(w, "va", "repa", "officea", date(2026, 10, 8))
    first = report(w, v1, "repa", OCT5 + timedelta(days=3), 5, 5, 5)
    report(w, v1, "repa", OCT5 + timedelta(days=3, hours=1), 3, 3, 3, replaces=first)  # 9: no
    v2 = visit(w, "va", "repa", "officea", date(2026, 10, 9))
    report(w, v2, "repa", OCT5 + timedelta(days=4), 4, 4, 4)  # 12, none below 3: satisfied
    db.session.add(
        ReturnVisit(
            org_id=w.org.id,
            site_id=w.sites["officea"].id,
            source_key=f"test:{uid()}",
            reason="sample",
            due_date=date(2026, 10, 20),
            staff_id=w.id("repa"),
            visit_id=v2.id,
            done_at=OCT5 + timedelta(days=15),
            result="done",
            timeliness=5,
            skill=4,
            attitude=3,  # 12, none below 3: satisfied
        )
    )
    v3 = visit(w, "va", "repa", "officea", date(2026, 9, 30))
    report(w, v3, "repa", OCTOBER_STARTS - timedelta(seconds=1), 1, 1, 1)  # September
    vb = visit(w, "vb", "repb", "officeb", date(2026, 10, 8))
    report(w, vb, "repb", OCT5 + timedelta(days=3), 5, 5, 5)

    # ----- guards: three ended shifts of guard A, one of guard B -----
    post, _cp = w.guard_site("posta")
    shifts = [
        w.shift(post, "guarda", OCT5 + timedelta(days=d), OCT5 + timedelta(days=d, hours=4))
        for d in range(3)
    ]
    for shift, minutes in ((shifts[0], 5), (shifts[2], 120)):  # 5 Oct in time, 7 Oct late
        db.session.add(
            ShiftSignIn(
                id=uid(),
                org_id=w.org.id,
                shift_id=shift.id,
                guard_id=shift.guard_id,
                action="in",
                at=shift.starts_at + timedelta(minutes=minutes),
                received_at=shift.starts_at + timedelta(minutes=minutes),
            )
        )
    db.session.add(
        Incident(
            id=uid(),
            org_id=w.org.id,
            site_id=post.site_id,
            shift_id=shifts[0].id,
            reported_by_id=w.id("guarda"),
            incident_type="theft",
            severity="minor",
            reported_at=OCT5 + timedelta(hours=1),
            received_at=OCT5 + timedelta(hours=1),
        )
    )
    spot_check(w, "guarda", OCT5 + timedelta(hours=2))  # passed
    spot_check(w, "guarda", OCT5 + timedelta(days=1, hours=2), present=False)
    db.session.add(
        Handover(
            id=uid(),
            org_id=w.org.id,
            site_id=post.site_id,
            shift_id=shifts[2].id,
            outgoing_guard_id=w.id("guardb"),
            incoming_guard_id=w.id("guarda"),
            scheduled_at=shifts[2].starts_at,
            actual_at=shifts[2].starts_at + timedelta(minutes=40),
            late=True,
            outgoing_signature="ab" * 32,
            incoming_signature="cd" * 32,
            received_at=shifts[2].starts_at + timedelta(minutes=40),
        )
    )
    post_b, _ = w.guard_site("postb")
    w.shift(post_b, "guardb", OCT5, OCT5 + timedelta(hours=4))

    # ----- CMP-17 services: delivered stops, shifts, visits done; complaints per team -----
    route = w.route("da", "couriera", date(2026, 10, 10), "十月甲线")
    w.stop(route, 1, StopState.DELIVERED, on_time=True)
    w.stop(route, 2, StopState.DELIVERED, on_time=True)
    w.stop(route, 3, StopState.REFUSED)
    w.stop(w.route("db", "courierb", date(2026, 10, 12), "十月乙线"), 1, StopState.DELIVERED)
    w.complaint("da", "repa", 21, OCT5, "routed", [("routed", OCT5 + timedelta(hours=10))])
    w.complaint("sa", "repa", 22, OCT5)
    w.complaint("va", "repa", 23, OCT5, "invalid_closed", [("invalid_closed", OCT5)])
    w.complaint("db", "repb", 24, OCT5)
    w.complaint("db", "repb", 25, OCT5)
    w.complaint("da", "repa", 26, OCTOBER_STARTS - timedelta(seconds=1))  # September
    db.session.commit()
    return w


def cell(tr: str, name: str) -> tuple[int, int, str, str]:
    """(numerator, denominator, title, link) of a KPI cell in a table row."""
    match = re.search(
        rf'data-kpi="{name}" data-num="(\d+)" data-den="(\d+)"\s+title="([^"]*)".*?href="([^"]*)"',
        tr,
        re.S,
    )
    assert match, (name, tr)
    return int(match.group(1)), int(match.group(2)), match.group(3), match.group(4)


def counted(tr: str, name: str) -> int:
    match = re.search(rf'data-count="{name}"[^>]*>(\d+)<', tr)
    assert match, (name, tr)
    return int(match.group(1))


def test_return_visit_satisfaction_per_rep(october, log_in):  # noqa: F811
    client = log_in("supa")
    html = client.get("/dashboard/kpi?month=2026-10").get_data(as_text=True)
    tr = row(html, "rep", "孙经理")
    # Latest reports (3,3,3) and (4,4,4), return visit (5,4,3); the replaced and the
    # September report are left out.
    assert 'data-rated="3"' in tr
    means = dict(re.findall(r'data-mean="(\w+)"[^>]*>([\d.]+)<', tr))
    assert means == {"timeliness": "4.00", "skill": "3.67", "attitude": "3.33"}
    num, den, title, link = cell(tr, "satisfied")
    assert (num, den) == (2, 3)
    assert "KPI-18" in title and "÷" in title and "no target set" in title
    assert "66.7 %" in tr
    assert 'data-rep="周经理"' not in html  # team B's rep

    records = client.get(link.replace("&amp;", "&")).get_data(as_text=True)
    assert records.count('data-source="report"') == 2
    assert records.count('data-source="return"') == 1
    assert (
        client.get(f"/dashboard/kpi/{october.id('repb')}/satisfied?month=2026-10").status_code
        == 404
    )


def test_guards_month_from_the_patrol_records(october, log_in):  # noqa: F811
    client = log_in("supa")
    html = client.get("/dashboard/kpi?month=2026-10").get_data(as_text=True)
    tr = row(html, "guard", "赵保安")
    assert counted(tr, "shifts") == 3
    assert cell(tr, "attendance")[:2] == (2, 3)  # 6 Oct never signed in
    assert counted(tr, "late_sign_ins") == 1  # 7 Oct, 2 h after the start
    num, den, title, _ = cell(tr, "incident_free")
    assert (num, den) == (2, 3) and "100 %" in title  # the theft of 5 Oct
    assert cell(tr, "inspections")[:2] == (1, 2)
    assert counted(tr, "late_takeovers") == 1
    assert 'data-guard="钱保安"' not in html

    link = cell(tr, "inspections")[3].replace("&amp;", "&")
    assert client.get(link).get_data(as_text=True).count("data-record=") == 2
    link = cell(tr, "attendance")[3].replace("&amp;", "&")
    assert client.get(link).get_data(as_text=True).count("data-record=") == 3


def test_complaint_rate_by_unit(october, log_in):  # noqa: F811
    html = log_in("supa").get("/dashboard/kpi?month=2026-10").get_data(as_text=True)
    units = {
        unit: (int(c), int(s), rate)
        for unit, c, s, rate in re.findall(
            r'data-unit="([^"]+)">.*?data-count="complaints">(\d+)<.*?'
            r'data-count="services">(\d+)<.*?data-rate="([^"]*)"',
            html,
            re.S,
        )
    }
    assert units == {
        "甲配送组": (1, 2, "50.0"),  # 1 complaint on 2 delivered stops (the refused one is not)
        "甲保安队": (1, 3, "33.33"),  # 1 on 3 shifts worked
        "甲外勤组": (0, 2, "0.0"),  # the invalid complaint is left out; 2 visits done
    }
    assert "CMP-17" in html

    admin = log_in("admin").get("/dashboard/kpi?month=2026-10").get_data(as_text=True)
    assert re.search(r'data-unit="乙配送组">.*?data-rate="200.0"', admin, re.S)  # 2 on 1 stop
    assert 'data-unit="乙保安队"' in admin


def test_the_cheaper_queries_give_the_same_kpis(october, log_in):  # noqa: F811
    """delivery_counts (NOT EXISTS) and complaint_counts (events of the month only)."""
    html = log_in("supa").get("/dashboard/kpi?month=2026-10").get_data(as_text=True)
    courier = row(html, "worker", "李师傅")
    assert cell(courier, "slip_accuracy")[:2] == (2, 2)
    rep = row(html, "worker", "孙经理")
    # 21 started 10 h after logging, 22 never (its deadline passed); 23 invalid, 26 September.
    assert cell(rep, "complaints_started")[:2] == (1, 2)
