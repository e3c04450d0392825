"""KPI formulas, assessment score and penalty schedules (section 6), hand-computed."""

from datetime import timedelta

import pytest

from fieldapp.rules.kpi import (
    COURIER_ASSESSMENT_WEIGHTS,
    GUARD_ASSESSMENT_WEIGHTS,
    KPI10_PENALTIES,
    PENALTY_SCHEDULE,
    KpiResult,
    PenaltyRule,
    PenaltyStep,
    ReturnVisitAnswer,
    Sanction,
    assessment_score,
    can_impose_penalty,
    can_propose_penalty,
    complaint_rate,
    complaint_rates,
    complaints_answered_in_time,
    complaints_started_in_time,
    delivery_satisfaction,
    handover_signature_rate,
    on_time_delivery_rate,
    patrol_completion_rate,
    patrol_lateness_rate,
    patrol_round_counts,
    penalty_for,
    prior_offences,
    return_visit_satisfaction,
    slip_accuracy,
    supervisor_onsite_rate,
)
from fieldapp.rules.patrols import RoundState, RoundStatus

# --- rates -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("satisfied", "responses", "value", "met"),
    [
        (0, 0, None, None),  # empty month: neither 0 % nor 100 %
        (1, 1, 1.0, True),  # one satisfied record
        (0, 1, 0.0, False),  # one unsatisfied record
        (19, 20, 0.95, True),  # exactly 95 % meets ("不低于")
        (57, 60, 0.95, True),  # exactly 95 %, not exact in binary
        (189, 199, 189 / 199, False),  # 94.97 %
        (949, 1000, 0.949, False),
        (18, 20, 0.9, False),
    ],
)
def test_delivery_satisfaction_target_95(satisfied, responses, value, met):
    result = delivery_satisfaction(satisfied, responses)
    assert result.value == value
    assert result.met is met
    assert (result.numerator, result.denominator, result.target) == (satisfied, responses, 0.95)


@pytest.mark.parametrize(
    ("kpi", "num", "den", "met"),
    [
        (slip_accuracy, 100, 100, True),
        (slip_accuracy, 99, 100, False),  # KPI-02: one wrong slip misses 100 %
        (slip_accuracy, 0, 0, None),
        (on_time_delivery_rate, 30, 30, True),
        (on_time_delivery_rate, 29, 30, False),
        (handover_signature_rate, 12, 12, True),
        (handover_signature_rate, 11, 12, False),
        (complaints_started_in_time, 3, 3, True),
        (complaints_answered_in_time, 2, 3, False),
        (supervisor_onsite_rate, 21, 22, False),
        (supervisor_onsite_rate, 22, 22, True),
        (patrol_completion_rate, 170, 180, None),  # no seed target: met stays None
    ],
)
def test_rate_kpis_against_their_default_targets(kpi, num, den, met):
    result = kpi(num, den)
    assert result.met is met
    assert result.value == (None if den == 0 else num / den)


def test_admin_configured_target_is_used():
    assert patrol_completion_rate(171, 180, target=0.95).met is True  # exactly 95 %
    assert patrol_completion_rate(170, 180, target=0.95).met is False
    assert delivery_satisfaction(9, 10, target=0.9).met is True


@pytest.mark.parametrize(("num", "den"), [(3, 2), (-1, 4), (1, -1)])
def test_impossible_counts_are_refused(num, den):
    with pytest.raises(ValueError):
        delivery_satisfaction(num, den)


# --- patrol rounds ---------------------------------------------------------------------------


def _status(state: RoundState, late: bool = False) -> RoundStatus:
    return RoundStatus(state, late, (), (), (), timedelta(0), None)


def test_patrol_round_counts_only_final_outcomes():
    statuses = [
        _status(RoundState.DONE),
        _status(RoundState.DONE),
        _status(RoundState.DONE, late=True),
        _status(RoundState.MISSED, late=True),
        _status(RoundState.LATE, late=True),  # shift still running: not decided yet
        _status(RoundState.IN_PROGRESS),
        _status(RoundState.PENDING),
    ]
    counts = patrol_round_counts(statuses)
    assert (counts.due, counts.completed, counts.late) == (4, 3, 1)
    assert patrol_completion_rate(counts.completed, counts.due).value == 0.75
    lateness = patrol_lateness_rate(counts.late, counts.completed, max_rate=0.25)
    assert lateness.value == pytest.approx(1 / 3)
    assert lateness.met is False  # lower is better: 33 % > 25 %


def test_patrol_rates_for_an_empty_month():
    counts = patrol_round_counts([])
    assert patrol_completion_rate(counts.completed, counts.due).value is None
    assert patrol_lateness_rate(counts.late, counts.completed, max_rate=0.1).met is None


# --- complaints ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("complaints", "services", "max_rate", "value", "met"),
    [
        (0, 0, None, None, None),
        (0, 120, 0.01, 0.0, True),
        (2, 200, 0.01, 0.01, True),  # exactly at the limit
        (3, 200, 0.01, 0.015, False),
        (2, 100, None, 0.02, None),  # the seed sets no limit
        (3, 2, None, 1.5, None),  # several complaints about one service
    ],
)
def test_complaint_rate_cmp17(complaints, services, max_rate, value, met):
    result = complaint_rate(complaints, services, max_rate)
    assert result.value == value
    assert result.met is met
    assert result.higher_is_better is False


def test_complaint_rates_per_unit():
    rates = complaint_rates({"route-1": 2, "route-3": 1}, {"route-1": 100, "route-2": 50})
    assert sorted(rates) == ["route-1", "route-2", "route-3"]
    assert rates["route-1"].value == 0.02
    assert rates["route-2"].value == 0.0
    assert rates["route-3"].value is None  # complaints but no services recorded


# --- return visits (KPI-18) ------------------------------------------------------------------


def test_return_visit_satisfaction_per_dimension():
    answers = [
        ReturnVisitAnswer(timeliness=True, skill=True, attitude=False),
        ReturnVisitAnswer(timeliness=True, skill=False, attitude=None),
        ReturnVisitAnswer(timeliness=False, skill=None, attitude=None),
    ]
    result = return_visit_satisfaction(answers)
    assert (result.timeliness.numerator, result.timeliness.denominator) == (2, 3)
    assert (result.skill.numerator, result.skill.denominator) == (1, 2)
    assert (result.attitude.numerator, result.attitude.denominator) == (0, 1)
    assert result.attitude.value == 0.0


def test_return_visit_satisfaction_empty_month():
    result = return_visit_satisfaction([])
    assert result.timeliness.value is result.skill.value is result.attitude.value is None


# --- assessment score ------------------------------------------------------------------------

EMPTY = delivery_satisfaction(0, 0)


@pytest.mark.parametrize(
    ("inputs", "weights", "deductions", "score"),
    [
        # 3 x 0.9 + 1 x 0.5 = 3.2; / 4 = 0.8
        ({"a": 0.9, "b": 0.5}, {"a": 3, "b": 1}, 0, 80.0),
        # b has no data: a alone carries the weight
        ({"a": 0.9, "b": EMPTY}, {"a": 3, "b": 1}, 0, 90.0),
        ({"a": 0.9, "b": None}, {"a": 3, "b": 1}, 0, 90.0),
        # zero weight: ignored
        ({"a": 0.9, "b": 0.1}, {"a": 1, "b": 0}, 0, 90.0),
        # lower-is-better KPI counts as 1 - 0.1 = 0.9: (0.9 + 0.9) / 2
        ({"a": 0.9, "c": complaint_rate(1, 10)}, {"a": 1, "c": 1}, 0, 90.0),
        # KPI-07 T2 deducts 5 points afterwards
        ({"a": 0.9, "b": 0.5}, {"a": 3, "b": 1}, 5, 75.0),
        # never below zero
        ({"a": 0.05}, {"a": 1}, 10, 0.0),
    ],
)
def test_assessment_score_hand_computed(inputs, weights, deductions, score):
    assert assessment_score(inputs, weights, point_deductions=deductions) == pytest.approx(score)


def test_courier_assessment_with_default_equal_weights():
    inputs = {
        "market_visits": 0.8,
        "customer_feedback": delivery_satisfaction(19, 20),  # 0.95
        "timeliness": on_time_delivery_rate(9, 10),  # 0.9
        "accuracy": slip_accuracy(40, 40),  # 1.0
        "handover_signatures": 0.85,
    }
    # (0.8 + 0.95 + 0.9 + 1.0 + 0.85) / 5 = 0.9
    assert assessment_score(inputs, COURIER_ASSESSMENT_WEIGHTS) == pytest.approx(90.0)


def test_guard_assessment_with_custom_weights():
    inputs = {
        "incidents": 1.0,
        "inspections": 0.75,
        "attendance": 0.9,
        "training": 0.5,
        "client_feedback": 0.8,
    }
    weights = {**GUARD_ASSESSMENT_WEIGHTS, "incidents": 2.0, "training": 0.0}
    # (2 x 1.0 + 0.75 + 0.9 + 0.8) / 5 = 4.45 / 5 = 0.89
    assert assessment_score(inputs, weights) == pytest.approx(89.0)


def test_assessment_score_none_when_nothing_measured():
    assert assessment_score({"a": EMPTY, "b": None}, {"a": 1, "b": 1}) is None


@pytest.mark.parametrize(
    ("inputs", "weights"),
    [
        ({"a": 85}, {"a": 1}),  # a percentage passed where a fraction belongs
        ({"a": 0.5}, {"a": -1}),
        ({"a": 0.5}, {"a": 1, "typo": 1}),
        ({"a": 0.5, "b": 0.5}, {"a": 1}),
    ],
)
def test_assessment_score_rejects_bad_input(inputs, weights):
    with pytest.raises(ValueError):
        assessment_score(inputs, weights)


def test_kpi_result_is_immutable():
    with pytest.raises(AttributeError):
        EMPTY.value = 1.0  # type: ignore[misc]
    assert isinstance(EMPTY, KpiResult)


# --- penalties (KPI-07, KPI-10, KPI-11) ------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "prior", "amount_fen", "points", "sanctions"),
    [
        # KPI-10 n, squad leader unreachable: 10, then 30, then serious handling
        ("KPI-10n-leader", 0, 1000, 0, ()),
        ("KPI-10n-leader", 1, 3000, 0, ()),
        ("KPI-10n-leader", 2, 0, 0, (Sanction.SERIOUS_HANDLING,)),
        ("KPI-10n-leader", 7, 0, 0, (Sanction.SERIOUS_HANDLING,)),
        # responsible person: 50, then 100, then referred to the company
        ("KPI-10n-responsible", 0, 5000, 0, ()),
        ("KPI-10n-responsible", 1, 10000, 0, ()),
        ("KPI-10n-responsible", 2, 0, 0, (Sanction.REFERRED_TO_COMPANY,)),
        # KPI-10 g, refusing sign-in: 50 + warning, then wages withheld
        ("KPI-10g-guard", 0, 5000, 0, (Sanction.WARNING,)),
        ("KPI-10g-guard", 1, 0, 0, (Sanction.WAGES_WITHHELD,)),
        ("KPI-10g-guard", 2, 0, 0, (Sanction.WAGES_WITHHELD,)),
        # KPI-10 t, overnight guest: 200, then dismissal
        ("KPI-10t-guard", 0, 20000, 0, ()),
        ("KPI-10t-guard", 1, 0, 0, (Sanction.DISMISSAL,)),
        # KPI-10 q, late takeover: 10 yuan every time, no escalation
        ("KPI-10q-guard", 0, 1000, 0, ()),
        ("KPI-10q-guard", 1, 1000, 0, ()),
        ("KPI-10q-guard", 2, 1000, 0, ()),
        # KPI-07 tiers repeat unchanged
        ("KPI-07-T2", 0, 20000, 5, (Sanction.WARNING, Sanction.COMPANY_NOTICE)),
        ("KPI-07-T2", 2, 20000, 5, (Sanction.WARNING, Sanction.COMPANY_NOTICE)),
        ("KPI-07-T3", 0, 30000, 10, (Sanction.REPRIMAND, Sanction.COMPANY_NOTICE)),
        (
            "KPI-07-T4",
            0,
            100000,
            0,
            (Sanction.MAJOR_DEMERIT, Sanction.PERFORMANCE_PAY_FORFEITED, Sanction.COMPANY_NOTICE),
        ),
        ("KPI-07-T5", 0, 0, 0, (Sanction.DISMISSAL, Sanction.LIABILITY)),
    ],
)
def test_penalty_repeat_counter(code, prior, amount_fen, points, sanctions):
    penalty = penalty_for(code, prior)
    assert (penalty.amount_fen, penalty.points, penalty.sanctions) == (
        amount_fen,
        points,
        sanctions,
    )
    assert penalty.offence_number == prior + 1


@pytest.mark.parametrize(
    ("code", "yuan"),
    [
        ("KPI-10a-leader", 50),
        ("KPI-10a-guard", 10),
        ("KPI-10b-leader", 10),
        ("KPI-10b-guard", 5),
        ("KPI-10c-responsible", 200),
        ("KPI-10c-leader", 100),
        ("KPI-10c-guard", 50),
        ("KPI-10d-guard", 50),
        ("KPI-10e-leader", 10),
        ("KPI-10f-leader", 50),
        ("KPI-10f-guard", 30),
        ("KPI-10f-overstay", 100),
        ("KPI-10h-leader", 100),
        ("KPI-10i-leader", 20),
        ("KPI-10i-guard", 10),
        ("KPI-10j-leader", 50),
        ("KPI-10k-leader", 200),
        ("KPI-10l-leader", 20),
        ("KPI-10l-guard", 20),
        ("KPI-10m-guard", 20),
        ("KPI-10o-drinking", 50),
        ("KPI-10o-smoking", 5),
        ("KPI-10p-guard", 10),
        ("KPI-10r-leader", 20),
        ("KPI-10r-guard", 10),
        ("KPI-10s-guard", 10),
    ],
)
def test_kpi10_first_offence_amounts_match_the_schedule(code, yuan):
    assert penalty_for(code, 0).amount_fen == yuan * 100


def test_kpi10_has_every_row_a_to_t():
    rows = {rule.code[len("KPI-10")] for rule in KPI10_PENALTIES}
    assert rows == set("abcdefghijklmnopqrst")


def test_every_rule_has_both_descriptions_and_integer_fen():
    for rule in PENALTY_SCHEDULE.values():
        assert rule.description_zh and rule.description_en
        assert all(isinstance(step.amount_fen, int) for step in rule.steps)


def test_kpi07_t1_range_defaults_to_minimum_with_ceiling():
    penalty = penalty_for("KPI-07-T1", 0)
    assert (penalty.amount_fen, penalty.max_amount_fen) == (3000, 10000)


def test_kpi10e_adds_five_yuan_per_person_short():
    assert penalty_for("KPI-10e-leader", 0, units=3).amount_fen == 1000 + 3 * 500


def test_squad_leader_fining_directly_is_removed_from_post():
    assert Sanction.REMOVED_AS_SQUAD_LEADER in penalty_for("KPI-10h-leader", 0).sanctions


def test_repeat_counter_is_per_rule_per_person():
    history = [
        ("guard-1", "KPI-10q-guard"),
        ("guard-1", "KPI-10t-guard"),
        ("guard-2", "KPI-10t-guard"),
        ("leader-1", "KPI-10n-leader"),
        ("leader-1", "KPI-10n-leader"),
    ]
    assert prior_offences(history, "guard-1", "KPI-10t-guard") == 1
    assert prior_offences(history, "guard-3", "KPI-10t-guard") == 0
    third = penalty_for("KPI-10n-leader", prior_offences(history, "leader-1", "KPI-10n-leader"))
    assert third.offence_number == 3
    assert third.sanctions == (Sanction.SERIOUS_HANDLING,)
    # guard-1's earlier late takeover does not make their first overnight-guest offence a second
    first = penalty_for("KPI-10t-guard", prior_offences(history, "guard-3", "KPI-10t-guard"))
    assert first.amount_fen == 20000


def test_organisation_can_replace_the_schedule():
    schedule = {
        "KPI-10q-guard": PenaltyRule(
            "KPI-10q-guard", "晚接岗", "Late takeover", (PenaltyStep(2000),)
        )
    }
    assert penalty_for("KPI-10q-guard", 0, schedule=schedule).amount_fen == 2000
    assert penalty_for("KPI-10q-guard", 0).amount_fen == 1000  # the default is untouched


@pytest.mark.parametrize(
    ("code", "prior"), [("KPI-99", 0), ("KPI-10q-guard", -1), ("kpi-10q-guard", 0)]
)
def test_penalty_for_rejects_unknown_rule_or_negative_count(code, prior):
    with pytest.raises(ValueError):
        penalty_for(code, prior)


@pytest.mark.parametrize(
    ("role", "propose", "impose"),
    [
        ("squad_leader", True, False),  # KPI-11: 「班长无权对队员作出任何经济处罚」
        ("brigade_office", True, True),
        ("guard", False, False),
        ("courier", False, False),
    ],
)
def test_only_brigade_office_imposes_penalties(role, propose, impose):
    assert can_propose_penalty(role) is propose
    assert can_impose_penalty(role) is impose
