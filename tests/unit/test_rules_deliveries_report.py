"""DEL-09 daily figures and the pre-lateness forecast (DEL-11/SLA-01)."""

from datetime import UTC, datetime, timedelta

import pytest

from fieldapp.rules.deliveries import (
    OpenStop,
    StopOutcome,
    at_risk_of_lateness,
    tally_day,
)

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


def test_a_day_is_counted_stop_by_stop_and_cash_against_the_handover():
    tally = tally_day(
        [
            StopOutcome("delivered", True, 128_050, 128_000),
            StopOutcome("delivered", False, 0, None),  # electronic, delivered late
            StopOutcome("refused", None, 54_200, None),  # cash due but refused: not owed
            StopOutcome("returned"),
            StopOutcome("skipped"),
            StopOutcome("arrived"),
        ],
        cash_handed_in_fen=127_000,
    )
    assert (tally.stops, tally.delivered, tally.refused, tally.skipped, tally.open) == (
        6,
        2,
        2,
        1,
        1,
    )
    assert (tally.on_time, tally.late) == (1, 1)
    assert (tally.cash_due_fen, tally.cash_collected_fen) == (128_050, 128_000)
    assert tally.cash_difference_fen == -1_000  # handed in 10 yuan less than collected


def test_no_handover_yet_means_no_difference_rather_than_a_false_shortfall():
    tally = tally_day([StopOutcome("delivered", True, 100, 100)], cash_handed_in_fen=None)
    assert tally.cash_handed_in_fen is None and tally.cash_difference_fen is None


def test_amounts_must_be_integer_fen():
    with pytest.raises(TypeError):
        tally_day([StopOutcome("delivered", True, 12.5, 12)], None)
    with pytest.raises(ValueError):
        tally_day([], cash_handed_in_fen=-1)


def test_stops_behind_others_are_forecast_late_before_their_promise_passes():
    stops = [
        OpenStop("a", NOW + timedelta(minutes=50)),  # 1st: 09:20 < 09:50, fine
        OpenStop("b", NOW + timedelta(minutes=35)),  # 2nd: 09:40 > 09:35, at risk
        OpenStop("c", None),  # no promise: never warned, but takes its time
        OpenStop("d", NOW + timedelta(minutes=70)),  # 4th: 10:20 > 10:10, at risk
        OpenStop("e", NOW - timedelta(minutes=1)),  # already late: the late alert's job
        OpenStop("f", NOW + timedelta(hours=5)),
    ]
    risky = at_risk_of_lateness(NOW, stops)
    assert [stop_id for stop_id, _ in risky] == ["b", "d"]
    assert risky[0][1] == NOW + timedelta(minutes=40)


def test_the_promise_instant_itself_is_still_on_time():
    stops = [OpenStop("a", NOW + timedelta(minutes=20))]
    assert at_risk_of_lateness(NOW, stops) == []
    assert at_risk_of_lateness(NOW, stops, per_stop=timedelta(minutes=21)) != []


def test_naive_times_are_refused():
    with pytest.raises((TypeError, ValueError)):
        at_risk_of_lateness(NOW.replace(tzinfo=None), [OpenStop("a", NOW)])
