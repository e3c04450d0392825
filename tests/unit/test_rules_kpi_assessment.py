"""The monthly assessment sheet and the penalty-ledger steps (KPI-03, KPI-09/12, KPI-11),
hand-computed: an empty month, one record, a boundary exactly at the target, weights."""

import pytest

from fieldapp.rules.kpi import (
    COURIER_ASSESSMENT_WEIGHTS,
    GUARD_ASSESSMENT_WEIGHTS,
    LedgerKind,
    courier_assessment_inputs,
    guard_assessment_inputs,
    ledger_step_allowed,
    monthly_assessment,
    penalty_for,
    resolve_weights,
)

ZERO = dict(delivered=0, accurate=0, on_time=0, promised=0, signed=0)


def test_an_empty_month_has_no_score_and_no_fines():
    sheet = monthly_assessment(courier_assessment_inputs(**ZERO), COURIER_ASSESSMENT_WEIGHTS)
    assert (sheet.base_score, sheet.score, sheet.fines_fen, sheet.penalties) == (None, None, 0, 0)
    guard = guard_assessment_inputs(
        shifts=0, shifts_with_incident=0, inspections=0, inspections_passed=0, shifts_signed_in=0
    )
    assert monthly_assessment(guard, GUARD_ASSESSMENT_WEIGHTS).score is None


def test_an_empty_month_with_a_penalty_still_has_no_score_but_the_fine():
    t2 = penalty_for("KPI-07-T2", 0)
    sheet = monthly_assessment(
        courier_assessment_inputs(**ZERO),
        COURIER_ASSESSMENT_WEIGHTS,
        [(t2.amount_fen, t2.points)],
    )
    assert (sheet.score, sheet.point_deductions, sheet.fines_fen) == (None, 5, 20000)


def test_one_delivery_signed_nothing_else_measured():
    # One stop: accurate, on time, not signed. Inputs with data: timeliness 1, accuracy 1,
    # signatures 0 -> (1 + 1 + 0) / 3 = 66.67.
    inputs = courier_assessment_inputs(delivered=1, accurate=1, on_time=1, promised=1, signed=0)
    sheet = monthly_assessment(inputs, COURIER_ASSESSMENT_WEIGHTS)
    assert sheet.base_score == pytest.approx(200 / 3)
    assert inputs["market_visits"] is None and inputs["customer_feedback"].value is None


def test_satisfaction_exactly_at_95_percent_meets_the_target_and_scores_it():
    inputs = courier_assessment_inputs(
        delivered=20, accurate=20, on_time=20, promised=20, signed=20, satisfied=19, responses=20
    )
    assert inputs["customer_feedback"].met is True
    assert inputs["customer_feedback"].value == 0.95
    # (0.95 + 1 + 1 + 1) / 4 = 0.9875; market visits not given.
    assert monthly_assessment(inputs, COURIER_ASSESSMENT_WEIGHTS).score == pytest.approx(98.75)
    below = courier_assessment_inputs(**ZERO, satisfied=18, responses=19)
    assert below["customer_feedback"].met is False  # 94.7 %


def test_penalty_points_come_off_the_score_and_fines_add_up():
    inputs = courier_assessment_inputs(
        delivered=20, accurate=20, on_time=20, promised=20, signed=20, satisfied=19, responses=20
    )
    t2, t3 = penalty_for("KPI-07-T2", 0), penalty_for("KPI-07-T3", 0)
    sheet = monthly_assessment(
        inputs, COURIER_ASSESSMENT_WEIGHTS, [(t2.amount_fen, t2.points), (t3.amount_fen, 10)]
    )
    assert sheet.base_score == pytest.approx(98.75)
    assert sheet.point_deductions == 15
    assert sheet.score == pytest.approx(83.75)
    assert (sheet.fines_fen, sheet.penalties) == (50000, 2)
    floor = monthly_assessment(inputs, COURIER_ASSESSMENT_WEIGHTS, [(0, 60), (0, 60)])
    assert floor.score == 0.0
    with pytest.raises(ValueError):
        monthly_assessment(inputs, COURIER_ASSESSMENT_WEIGHTS, [(-100, 0)])


def test_admin_weights_change_the_score():
    inputs = courier_assessment_inputs(delivered=1, accurate=1, on_time=0, promised=1, signed=0)
    # accuracy 1 (weight 3), timeliness 0 (weight 1), signatures 0 (weight 0: ignored):
    # 3 * 1 / (3 + 1) = 75.
    weights = resolve_weights(COURIER_ASSESSMENT_WEIGHTS, {"accuracy": 3, "handover_signatures": 0})
    assert monthly_assessment(inputs, weights).score == pytest.approx(75.0)
    assert COURIER_ASSESSMENT_WEIGHTS["accuracy"] == 1.0  # defaults untouched
    for bad in ({"speed": 1}, {"accuracy": -1}):
        with pytest.raises(ValueError):
            resolve_weights(COURIER_ASSESSMENT_WEIGHTS, bad)
    with pytest.raises(ValueError):
        resolve_weights(COURIER_ASSESSMENT_WEIGHTS, dict.fromkeys(COURIER_ASSESSMENT_WEIGHTS, 0))


def test_a_guards_month():
    # 4 shifts, one with an incident, 3 signed in; 2 spot checks, 1 passed; no training data.
    inputs = guard_assessment_inputs(
        shifts=4, shifts_with_incident=1, inspections=2, inspections_passed=1, shifts_signed_in=3
    )
    assert inputs["incidents"].value == 0.75 and inputs["attendance"].value == 0.75
    # (0.75 + 0.5 + 0.75) / 3 = 66.67
    assert monthly_assessment(inputs, GUARD_ASSESSMENT_WEIGHTS).score == pytest.approx(200 / 3)
    with pytest.raises(ValueError):
        guard_assessment_inputs(
            shifts=1,
            shifts_with_incident=2,
            inspections=0,
            inspections_passed=0,
            shifts_signed_in=0,
        )


def test_only_the_office_decides_and_a_supervisor_only_proposes():
    P, A, R, V = LedgerKind.PROPOSAL, LedgerKind.APPROVAL, LedgerKind.REJECTION, LedgerKind.VOID
    assert ledger_step_allowed("supervisor", P, None)
    assert ledger_step_allowed("admin", P, None)
    assert not ledger_step_allowed("guard", P, None)
    assert not ledger_step_allowed("supervisor", A, P)
    assert not ledger_step_allowed("supervisor", V, A)
    assert ledger_step_allowed("admin", A, P) and ledger_step_allowed("admin", R, P)
    assert ledger_step_allowed("admin", V, A)
    assert not ledger_step_allowed("admin", A, A)  # no approving an approval
    assert not ledger_step_allowed("admin", V, P)  # a proposal is rejected, not voided
    assert not ledger_step_allowed("admin", P, A)
