"""KPI-09/10/12: a guard's month from patrol data (pure rules)."""

from datetime import UTC, date, datetime, timedelta

import pytest

from fieldapp.rules import kpi
from fieldapp.rules.patrols import (
    CheckpointScan,
    GuardMonthFigures,
    InspectionFacts,
    PatrolPlan,
    Round,
    ShiftFacts,
    guard_month_figures,
    month_bounds,
    round_status,
)

NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)


def shift(day: int, signed_after_minutes: int | None = 0, incidents=()) -> ShiftFacts:
    start = datetime(2026, 11, day, 0, tzinfo=UTC)
    return ShiftFacts(
        starts_at=start,
        ends_at=start + timedelta(hours=12),
        first_sign_in=None
        if signed_after_minutes is None
        else start + timedelta(minutes=signed_after_minutes),
        sign_in_deadline=start + timedelta(minutes=15),
        incident_types=tuple(incidents),
    )


def test_attendance_counts_shifts_signed_in_and_flags_never_signed_in():
    figures = guard_month_figures(
        [shift(1, -2), shift(2, 20), shift(3, None), shift(4, 5)], now=NOW
    )
    assert (figures.shifts, figures.shifts_signed_in, figures.late_sign_ins) == (4, 3, 1)
    assert figures.shifts_not_signed_in == 1
    assert figures.attendance_rate == 0.75
    assert dict(figures.penalty_occurrences) == {"KPI-10g-guard": 1}


def test_a_shift_still_running_does_not_count():
    running = ShiftFacts(
        NOW - timedelta(hours=1), NOW + timedelta(hours=1), None, NOW - timedelta(minutes=45)
    )
    figures = guard_month_figures([running, shift(1)], now=NOW)
    assert figures.shifts == 1 and figures.shifts_not_signed_in == 0
    ended_exactly_now = ShiftFacts(NOW - timedelta(hours=8), NOW, None, NOW)
    assert guard_month_figures([ended_exactly_now], now=NOW).shifts == 1


def test_only_theft_fire_and_accidents_spoil_a_shift():
    figures = guard_month_figures(
        [
            shift(1, incidents=["theft", "theft"]),
            shift(2, incidents=["dispute", "medical"]),
            shift(3, incidents=["fire", "accident"]),
            shift(4),
        ],
        now=NOW,
    )
    assert (figures.thefts, figures.fires, figures.accidents) == (1, 1, 1)
    assert figures.shifts_without_safety_incident == 2
    assert figures.incidents_rate == 0.5


def test_inspection_findings_become_proposed_kpi10_rows_never_fines():
    at = NOW - timedelta(days=3)
    figures = guard_month_figures(
        [],
        [
            InspectionFacts(at, True, True),
            InspectionFacts(at, False, True),
            InspectionFacts(at, True, False, ("v_drinking", "v_reading")),
            InspectionFacts(at, True, True, ("v_off_post",)),
        ],
        now=NOW,
    )
    assert (figures.inspections, figures.inspections_passed) == (4, 1)
    assert figures.inspections_rate == 0.25
    assert dict(figures.findings) == {
        "absent": 1,
        "not_in_uniform": 1,
        "v_drinking": 1,
        "v_reading": 1,
        "v_off_post": 1,
    }
    assert figures.penalty_occurrences == (
        ("KPI-10m-guard", 2),
        ("KPI-10l-guard", 1),
        ("KPI-10o-drinking", 1),
    )
    for code, _times in figures.penalty_occurrences:
        kpi.penalty_for(code, 0)  # every proposed row exists in the schedule


def test_rounds_count_final_outcomes_only():
    plan = PatrolPlan(("A", "B"))
    start = datetime(2026, 11, 2, 0, tzinfo=UTC)
    rnd = Round(plan, start, start + timedelta(hours=1), start + timedelta(hours=8))
    on_time = [CheckpointScan("A", start), CheckpointScan("B", start + timedelta(minutes=30))]
    late = [CheckpointScan("A", start), CheckpointScan("B", start + timedelta(hours=2))]
    after = start + timedelta(hours=9)
    statuses = [
        round_status(rnd, on_time, after),
        round_status(rnd, late, after),
        round_status(rnd, [], after),  # missed
        round_status(rnd, [], start + timedelta(hours=3)),  # late but open: not final
    ]
    figures = guard_month_figures([], [], statuses, now=NOW)
    assert (figures.rounds_due, figures.rounds_completed, figures.rounds_late) == (3, 2, 1)
    assert figures.round_completion_rate == pytest.approx(2 / 3)


def test_late_takeovers_are_kpi10_q():
    figures = guard_month_figures([], late_takeovers=2, now=NOW)
    assert dict(figures.penalty_occurrences) == {"KPI-10q-guard": 2}
    with pytest.raises(ValueError):
        guard_month_figures([], late_takeovers=-1, now=NOW)


def test_an_empty_month_measures_nothing_and_feeds_the_assessment_score():
    empty = GuardMonthFigures()
    assert empty.kpi12_inputs() == {"incidents": None, "inspections": None, "attendance": None}
    inputs = {
        **guard_month_figures([shift(1), shift(2, None)], now=NOW).kpi12_inputs(),
        "training": None,
        "client_feedback": None,
    }
    assert kpi.assessment_score(inputs, kpi.GUARD_ASSESSMENT_WEIGHTS) == pytest.approx(75.0)


def test_month_bounds_are_the_local_calendar_month():
    start, end = month_bounds(date(2026, 11, 17), "Asia/Shanghai")
    assert start == datetime(2026, 10, 31, 16, tzinfo=UTC)
    assert end == datetime(2026, 11, 30, 16, tzinfo=UTC)
    start, end = month_bounds(date(2026, 12, 5), "Asia/Shanghai")
    assert end == datetime(2026, 12, 31, 16, tzinfo=UTC)


def test_naive_now_is_refused():
    with pytest.raises(ValueError):
        guard_month_figures([], now=datetime(2026, 11, 30))
