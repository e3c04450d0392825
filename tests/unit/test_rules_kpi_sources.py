"""KPI-18 satisfied share and the guards' month rates (PAT-14, PAT-15, PAT-08), hand-computed."""

import pytest

from fieldapp.rules.kpi import (
    guard_attendance_rate,
    incident_free_shift_rate,
    inspection_pass_rate,
    return_visits_satisfied,
)


def test_an_empty_month_measures_nothing():
    for rate in (
        return_visits_satisfied(0, 0),
        guard_attendance_rate(0, 0),
        incident_free_shift_rate(0, 0),
        inspection_pass_rate(0, 0),
    ):
        assert rate.value is None and rate.met is None


def test_return_visit_satisfaction_has_no_target_by_default():
    rate = return_visits_satisfied(2, 3)
    assert rate.value == pytest.approx(2 / 3)
    assert (rate.numerator, rate.denominator, rate.target, rate.met) == (2, 3, None, None)
    assert return_visits_satisfied(19, 20, target=0.95).met is True  # exactly 95 %
    assert return_visits_satisfied(18, 20, target=0.95).met is False


def test_every_shift_signed_in_and_without_incident_is_the_literal_rule():
    assert guard_attendance_rate(1, 1).met is True
    one_missed = guard_attendance_rate(29, 30)
    assert (one_missed.met, one_missed.target) == (False, 1.0)
    assert incident_free_shift_rate(1, 2).value == 0.5
    assert incident_free_shift_rate(1, 2).met is False
    assert inspection_pass_rate(3, 4).value == 0.75
    assert inspection_pass_rate(3, 4).met is None  # no seed number
    with pytest.raises(ValueError):
        guard_attendance_rate(3, 2)
