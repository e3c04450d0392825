"""The monthly assessment and the penalty ledger on SQLite and PostgreSQL (KPI-03, KPI-07,
KPI-09 to KPI-12): October 2026 of two teams with hand-computed scores, the KPI-11 workflow
(a supervisor proposes with evidence, only the office decides), the repeat counter, voids as
corrections, the payroll export, admin weights, and team scoping.
"""

import csv
import io
import re
import threading
import uuid
from datetime import UTC, date, datetime, timedelta

import pytest

from fieldapp.dashboard.models import PenaltyEntry
from fieldapp.deliveries.models import ProofOfDelivery, StopState
from fieldapp.extensions import db
from fieldapp.models.facts import AppendOnlyError
from fieldapp.patrols.models import Incident, ShiftSignIn, SpotCheck
from tests.integration.test_dashboard import log_in, row, world  # noqa: F401  (fixtures)


def uid() -> str:
    return str(uuid.uuid4())


def proof(w, stop, *, signed=True, condition="ok"):
    db.session.add(
        ProofOfDelivery(
            id=uid(),
            org_id=w.org.id,
            user_id=w.id("couriera"),
            device_time=datetime(2026, 10, 10, 3, 0, tzinfo=UTC),
            stop_id=stop.id,
            checked_codes=[],
            scanned_codes=[],
            signature="ab" * 32 if signed else None,
            condition=condition,
            damage_quantity=1 if condition == "damage" else None,
        )
    )


@pytest.fixture
def october(world):  # noqa: F811
    w = world
    # Courier A, 10 Oct: 4 delivered stops. Accurate 3/4 (d2 damaged), on time 2/3 (d4 had no
    # promise), signed 3/4 (d3 not). Score (2/3 + 3/4 + 3/4) / 3 = 72.2.
    route = w.route("da", "couriera", date(2026, 10, 10), "十月甲线")
    d1 = w.stop(route, 1, StopState.DELIVERED, on_time=True)
    d2 = w.stop(route, 2, StopState.DELIVERED, on_time=True)
    d3 = w.stop(route, 3, StopState.DELIVERED, on_time=False)
    d4 = w.stop(route, 4, StopState.DELIVERED, on_time=None)
    w.stop(route, 5, StopState.REFUSED)
    proof(w, d1)
    proof(w, d2, condition="damage")
    proof(w, d3, signed=False)
    proof(w, d4)
    w.stop(w.route("db", "courierb", date(2026, 10, 11), "十月乙线"), 1, StopState.DELIVERED)

    # Guard A: 4 October shifts (08:00 Shanghai), an incident on the 2nd, signed in on 3;
    # 2 spot checks, one found him asleep. Score (3/4 + 1/2 + 3/4) / 3 = 66.7.
    post, _cp = w.guard_site("posta")
    start = datetime(2026, 10, 5, 0, 0, tzinfo=UTC)
    shifts = [
        w.shift(post, "guarda", start + timedelta(days=n), start + timedelta(days=n, hours=8))
        for n in range(4)
    ]
    w.shift(post, "guarda", start - timedelta(days=30), start - timedelta(days=30, hours=-8))
    for shift in shifts[:3]:
        db.session.add(
            ShiftSignIn(
                id=uid(),
                org_id=w.org.id,
                shift_id=shift.id,
                guard_id=w.id("guarda"),
                action="in",
                at=shift.starts_at,
                received_at=shift.starts_at,
            )
        )
    db.session.add(
        Incident(
            id=uid(),
            org_id=w.org.id,
            site_id=post.site_id,
            shift_id=shifts[1].id,
            reported_by_id=w.id("guarda"),
            incident_type="theft",
            severity="minor",
            reported_at=shifts[1].starts_at + timedelta(hours=1),
            received_at=shifts[1].starts_at + timedelta(hours=1),
        )
    )
    for n, violations in ((0, []), (2, ["sleeping"])):
        at = shifts[n].starts_at + timedelta(hours=2)
        db.session.add(
            SpotCheck(
                id=uid(),
                org_id=w.org.id,
                site_id=post.site_id,
                supervisor_id=w.id("supa"),
                guard_id=w.id("guarda"),
                at=at,
                received_at=at,
                guard_present=True,
                in_uniform=True,
                violations=violations,
            )
        )
    db.session.commit()
    return w


def sheet_row(html: str, worker: str) -> dict[str, str]:
    tr = row(html, "worker", worker)
    cells = dict(re.findall(r'data-field="(\w+)">\s*(?:<strong>|<a [^>]*>)?([^<]*)<', tr))
    inputs = dict(re.findall(r'data-input="(\w+)" data-num="(\d+)" data-den="(\d+)"', tr) and [])
    for key, num, den in re.findall(r'data-input="(\w+)" data-num="(\d+)" data-den="(\d+)"', tr):
        inputs[key] = f"{num}/{den}"
    return {**{k: v.strip() for k, v in cells.items()}, **inputs}


def propose(client, person_id, rule, day="2026-10-12", evidence="/deliveries/routes/1", **kw):
    client.get("/dashboard/penalties?month=2026-10")
    data = {
        "person_id": person_id,
        "rule_code": rule,
        "occurred_on": day,
        "evidence_url": evidence,
        "units": "0",
        "note": "现场发现",
        **kw,
    }
    return client.post("/dashboard/penalties", data)


def proposals(person_id=None) -> list[PenaltyEntry]:
    query = db.select(PenaltyEntry).where(PenaltyEntry.kind == "proposal")
    if person_id:
        query = query.where(PenaltyEntry.person_id == person_id)
    return list(db.session.scalars(query.order_by(PenaltyEntry.id)))


def test_the_assessment_sheet_of_october_equals_the_hand_computed_scores(october, log_in):  # noqa: F811
    html = log_in("supa").get("/dashboard/assessment?month=2026-10").get_data(as_text=True)
    courier = sheet_row(html, "李师傅")
    assert courier["timeliness"] == "2/3" and courier["accuracy"] == "3/4"
    assert courier["handover_signatures"] == "3/4"
    assert courier["base"] == "72.2" and courier["score"] == "72.2"
    guard = sheet_row(html, "赵保安")
    assert (guard["incidents"], guard["inspections"], guard["attendance"]) == ("3/4", "1/2", "3/4")
    assert guard["score"] == "66.7" and guard["fines"] == "0.00"
    assert "王师傅" not in html and "钱保安" not in html  # team B
    supb = log_in("supb").get("/dashboard/assessment?month=2026-10").get_data(as_text=True)
    assert "李师傅" not in supb and "王师傅" in supb


def test_a_supervisor_proposes_and_only_the_office_approves(october, log_in):  # noqa: F811
    w = october
    supa, admin = log_in("supa"), log_in("admin")
    assert propose(supa, w.id("couriera"), "KPI-07-T2").status_code == 302
    (entry,) = proposals()
    assert (entry.team_id, entry.by_id) == (w.teams["da"].id, w.id("supa"))

    # The supervisor cannot approve: nothing is added to the ledger.
    supa.get("/dashboard/penalties?month=2026-10")
    supa.post(f"/dashboard/penalties/{entry.id}/approve", {})
    assert db.session.scalar(db.select(db.func.count(PenaltyEntry.id))) == 1
    html = supa.get("/dashboard/penalties?month=2026-10").get_data(as_text=True)
    assert 'data-status="pending"' in row(html, "entry", entry.id)

    admin.get("/dashboard/penalties?month=2026-10")
    assert admin.post(f"/dashboard/penalties/{entry.id}/approve", {}).status_code == 302
    # Approving twice adds nothing.
    admin.post(f"/dashboard/penalties/{entry.id}/approve", {})
    approvals = db.session.scalars(
        db.select(PenaltyEntry).where(PenaltyEntry.kind == "approval")
    ).all()
    assert [(a.offence_number, a.amount_fen, a.points) for a in approvals] == [(1, 20000, 5)]

    html = admin.get("/dashboard/assessment?month=2026-10").get_data(as_text=True)
    courier = sheet_row(html, "李师傅")
    assert (courier["base"], courier["points"], courier["score"]) == ("72.2", "5", "67.2")
    assert (courier["penalties"], courier["fines"]) == ("1", "200.00")


def test_evidence_and_scope_are_enforced(october, log_in):  # noqa: F811
    w = october
    supa, supb = log_in("supa"), log_in("supb")
    for evidence in ("", "https://example.com/x", "//evil/x"):
        response = propose(supa, w.id("couriera"), "KPI-07-T1", evidence=evidence)
        assert response.status_code == 422
        assert 'class="field-error"' in response.get_data(as_text=True)
    # Team B's supervisor may not propose for team A's courier, nor see or answer its entries.
    response = propose(supb, w.id("couriera"), "KPI-07-T1")
    assert response.status_code == 422
    assert proposals() == []
    propose(supa, w.id("couriera"), "KPI-07-T1")
    (entry,) = proposals()
    html = supb.get("/dashboard/penalties?month=2026-10").get_data(as_text=True)
    assert f'data-entry="{entry.id}"' not in html and "李师傅" not in html
    assert supb.post(f"/dashboard/penalties/{entry.id}/reject", {"note": "x"}).status_code == 404
    assert log_in("couriera").get("/dashboard/penalties").status_code == 403


def test_the_repeat_counter_voids_and_the_payroll_export(october, log_in):  # noqa: F811
    w = october
    supa, admin = log_in("supa"), log_in("admin")
    guard = w.id("guarda")
    for day in ("2026-10-05", "2026-10-06", "2026-10-07"):
        propose(supa, guard, "KPI-10g-guard", day=day, evidence="/patrols/sites/1")
    first, second, third = proposals(guard)
    admin.get("/dashboard/penalties?month=2026-10")
    admin.post(f"/dashboard/penalties/{first.id}/approve", {})
    admin.post(f"/dashboard/penalties/{second.id}/approve", {})

    def approval_of(proposal):
        return db.session.scalar(
            db.select(PenaltyEntry).where(PenaltyEntry.refers_to_id == proposal.id)
        )

    # KPI-10 g: first refusal 50 yuan and a warning, the second: wages withheld (0 yuan).
    assert (approval_of(first).offence_number, approval_of(first).amount_fen) == (1, 5000)
    assert (approval_of(second).offence_number, approval_of(second).amount_fen) == (2, 0)

    # The office voids the second (a correction): it stays in the ledger, counts no more.
    assert admin.post(f"/dashboard/penalties/{approval_of(second).id}/void", {}).status_code == 302
    assert approval_of(approval_of(second)) is None  # a void needs a reason
    admin.post(f"/dashboard/penalties/{approval_of(second).id}/void", {"note": "记录有误"})
    admin.post(f"/dashboard/penalties/{third.id}/approve", {})
    assert approval_of(third).offence_number == 2  # the voided one is not a prior offence
    html = admin.get("/dashboard/penalties?month=2026-10").get_data(as_text=True)
    assert 'data-status="voided"' in row(html, "entry", second.id)
    assert "记录有误" in row(html, "entry", second.id)

    # The ledger is append-only, also below the web layer.
    entry = approval_of(first)
    entry.amount_fen = 1
    with pytest.raises(AppendOnlyError):
        db.session.flush()
    db.session.rollback()

    # Courier: a T1 fine with an amount chosen inside 30-100 yuan; outside is refused.
    propose(supa, w.id("couriera"), "KPI-07-T1")
    t1 = proposals(w.id("couriera"))[0]
    admin.get("/dashboard/penalties?month=2026-10")
    admin.post(f"/dashboard/penalties/{t1.id}/approve", {"amount_yuan": "150"})
    assert approval_of(t1) is None
    admin.post(f"/dashboard/penalties/{t1.id}/approve", {"amount_yuan": "80"})
    assert approval_of(t1).amount_fen == 8000
    # A November offence is not in October's payroll.
    propose(supa, w.id("couriera"), "KPI-07-T2", day="2026-11-02")
    november = proposals(w.id("couriera"))[-1]
    admin.get("/dashboard/penalties?month=2026-11")
    admin.post(f"/dashboard/penalties/{november.id}/approve", {})

    assert supa.get("/dashboard/penalties/payroll.csv?month=2026-10").status_code == 403
    response = admin.get("/dashboard/penalties/payroll.csv?month=2026-10")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"))))
    assert rows == [
        ["month", "username", "name", "team", "penalties", "deduction_yuan", "points"],
        ["2026-10", "couriera", "李师傅", "甲配送组", "1", "80.00", "0"],
        ["2026-10", "guarda", "赵保安", "甲保安队", "2", "50.00", "0"],
    ]


def test_two_approvals_at_once_get_consecutive_offence_numbers(october, log_in):  # noqa: F811
    """Another clerk's approval of the same person is still open: this one waits for it and
    counts it as a prior offence, instead of both becoming offence number 1."""
    if db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite has one writer at a time; the row lock is PostgreSQL's")
    from fieldapp.dashboard import assessment
    from fieldapp.models import User

    w = october
    supa, admin = log_in("supa"), log_in("admin")
    guard = w.id("guarda")
    for day in ("2026-10-05", "2026-10-06"):
        propose(supa, guard, "KPI-10g-guard", day=day, evidence="/patrols/sites/1")
    first, second = proposals(guard)
    admin.get("/dashboard/penalties?month=2026-10")

    # The other clerk, in this session's transaction: the guard's row locked, not committed.
    db.session.execute(db.select(User.id).where(User.id == guard).with_for_update())
    answers = []
    request = threading.Thread(
        target=lambda: answers.append(admin.post(f"/dashboard/penalties/{first.id}/approve", {}))
    )
    request.start()
    request.join(timeout=1.5)
    assert request.is_alive(), "the approval did not wait for the open one"
    assessment.approve(db.session.get(User, w.id("admin")), second.id)  # commits
    request.join(timeout=30)
    assert answers and answers[0].status_code == 302
    db.session.expire_all()
    numbers = {
        p.id: db.session.scalar(
            db.select(PenaltyEntry.offence_number).where(PenaltyEntry.refers_to_id == p.id)
        )
        for p in (first, second)
    }
    assert numbers == {second.id: 1, first.id: 2}


def test_the_office_sets_the_weights(october, log_in):  # noqa: F811
    assert log_in("supa").get("/dashboard/weights").status_code == 403
    admin = log_in("admin")
    admin.get("/dashboard/weights")
    form = {
        "scheme": "courier",
        "courier-market_visits": "1",
        "courier-customer_feedback": "1",
        "courier-timeliness": "0",
        "courier-accuracy": "3",
        "courier-handover_signatures": "1",
    }
    assert admin.post("/dashboard/weights", form).status_code == 302
    # (3 × 3/4 + 1 × 3/4) / 4 = 75.0
    html = admin.get("/dashboard/assessment?month=2026-10").get_data(as_text=True)
    assert sheet_row(html, "李师傅")["score"] == "75.0"
    zeros = {k: "0" if k != "scheme" else v for k, v in form.items()}
    response = admin.post("/dashboard/weights", zeros)
    assert response.status_code == 422
    assert (
        sheet_row(
            admin.get("/dashboard/assessment?month=2026-10").get_data(as_text=True), "李师傅"
        )["score"]
        == "75.0"
    )
