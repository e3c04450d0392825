"""KPI-09/10/12: the per-guard monthly figures the dashboard reads from patrol data.
SQLite and PostgreSQL; builds on the demo site of ``test_patrols_duty``."""

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest

from fieldapp import jobs
from fieldapp.extensions import db
from fieldapp.models import utcnow
from fieldapp.patrols import service
from fieldapp.patrols.models import Shift
from tests.integration.test_patrols_duty import (
    GUARD_PHONE,
    OTHER_PHONE,
    SHA,
    Phone,
    put_on_shift,
    site,
    user,
)


@pytest.fixture
def now():
    return utcnow().replace(microsecond=0)


def test_a_guards_month_from_sign_ins_incidents_spot_checks_and_handovers(login, now):
    guard1 = Phone(login("guard1", device_id=GUARD_PHONE), GUARD_PHONE)
    start = now - timedelta(hours=30)
    first = put_on_shift("guard1", start, start + timedelta(hours=10))
    # guard1's second shift: never signed in (the rule clock records the miss).
    start2 = start + timedelta(hours=12)
    put_on_shift("guard2", start2 + timedelta(hours=8), now + timedelta(hours=2))
    guard1.send("patrol.sign_in", {"shift_id": first}, at=start - timedelta(minutes=3))
    guard1.send(
        "patrol.incident",
        {"shift_id": first, "incident_type": "theft", "severity": "minor"},
        at=start + timedelta(hours=2),
    )
    guard1.send(
        "patrol.handover",
        {
            "shift_id": first,
            "incoming_guard_id": user("guard2").id,
            "outgoing_signature": SHA,
            "incoming_signature": "cd" * 32,
        },
        at=start + timedelta(hours=10, minutes=20),  # guard2 took over 20 minutes late
    )
    second = Shift(
        org_id=site().org_id,
        site_id=site().id,
        post_id=db.session.get(Shift, first).post_id,
        guard_id=user("guard1").id,
        starts_at=start2,
        ends_at=start2 + timedelta(hours=6),
    )
    db.session.add(second)
    db.session.commit()
    jobs.run_clock(now, only=["patrol.sign_ins"])
    supervisor = Phone(login("supervisor", device_id=OTHER_PHONE), OTHER_PHONE)
    checked = supervisor.send(
        "patrol.spot_check",
        {
            "site_id": site().id,
            "guard_id": user("guard1").id,
            "guard_present": False,
            "in_uniform": True,
        },
        at=start + timedelta(hours=5),
    )
    assert checked["status"] == "applied", checked

    month = start.astimezone(ZoneInfo(site().timezone)).date()
    figures = service.guard_month_figures(user("supervisor"), month, now=now)
    assert set(figures) == {user("guard1").id, user("guard2").id}
    mine = figures[user("guard1").id]
    assert (mine.shifts, mine.shifts_signed_in, mine.shifts_not_signed_in) == (2, 1, 1)
    assert (mine.thefts, mine.shifts_without_safety_incident) == (1, 1)
    assert (mine.inspections, mine.inspections_passed) == (1, 0)
    assert mine.rounds_due > 0 and mine.rounds_completed == 0
    assert dict(mine.penalty_occurrences) == {"KPI-10g-guard": 1, "KPI-10m-guard": 1}
    assert mine.kpi12_inputs() == {"incidents": 0.5, "inspections": 0.0, "attendance": 0.5}
    other = figures[user("guard2").id]
    assert other.shifts == 0  # still on duty: not counted yet
    assert dict(other.penalty_occurrences) == {"KPI-10q-guard": 1}

    # Scoped: a guard sees their own figures only; the next month is empty.
    assert set(service.guard_month_figures(user("guard1"), month, now=now)) == {user("guard1").id}
    next_month = (month.replace(day=1) + timedelta(days=32)).replace(day=1)
    later = service.guard_month_figures(user("supervisor"), next_month, now=now)
    assert later[user("guard1").id].shifts == 0


def test_a_takeover_that_never_happened_counts_against_the_incoming_guard(login, now):
    """KPI-10 q: the guard rostered next who never took over is penalised as for a late
    takeover, once; a handover recorded afterwards (late) does not make it twice."""
    end = now - timedelta(hours=1)
    first = put_on_shift("guard1", end - timedelta(hours=8), end)
    put_on_shift("guard2", end - timedelta(minutes=10), now + timedelta(hours=7))
    month = end.astimezone(ZoneInfo(site().timezone)).date()

    figures = service.guard_month_figures(user("supervisor"), month, now=now)
    assert dict(figures[user("guard2").id].penalty_occurrences) == {"KPI-10q-guard": 1}
    assert "KPI-10q-guard" not in dict(figures[user("guard1").id].penalty_occurrences)
    # Within the 5-minute grace after the end it is not missing yet.
    early = service.guard_month_figures(user("supervisor"), month, now=end + timedelta(minutes=4))
    assert "KPI-10q-guard" not in dict(early[user("guard2").id].penalty_occurrences)

    guard1 = Phone(login("guard1", device_id=GUARD_PHONE), GUARD_PHONE)
    handover = {
        "shift_id": first,
        "incoming_guard_id": user("guard2").id,
        "outgoing_signature": SHA,
        "incoming_signature": "cd" * 32,
    }
    assert guard1.send("patrol.handover", handover, at=now)["status"] == "applied"
    figures = service.guard_month_figures(user("supervisor"), month, now=now)
    assert dict(figures[user("guard2").id].penalty_occurrences) == {"KPI-10q-guard": 1}
