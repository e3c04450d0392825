"""VIS-09 forced on-site visits (who is new, who was complained about, who visits, when it is
missed) and KPI-18 satisfaction per staff member, computed by hand."""

from datetime import UTC, date, datetime, timedelta

import pytest

from fieldapp.rules.visits import (
    OnsiteReason,
    Rating,
    ServiceRecord,
    add_months,
    complained_about_last_time,
    forced_onsite_visits,
    forced_visit_assignee,
    forced_visit_missed,
    is_new_staff,
    newly_signed_since,
    satisfaction_by_staff,
)

T = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def test_add_months_clamps_to_the_end_of_the_month():
    assert add_months(date(2026, 11, 30), 3) == date(2027, 2, 28)
    assert add_months(date(2027, 11, 30), 3) == date(2028, 2, 29)  # leap year
    assert add_months(date(2026, 10, 15), 3) == date(2027, 1, 15)


def test_new_staff_is_three_months_of_probation():
    joined = date(2026, 8, 31)
    assert is_new_staff(joined, date(2026, 8, 31))
    assert is_new_staff(joined, date(2026, 11, 29))
    assert not is_new_staff(joined, date(2026, 11, 30))
    assert not is_new_staff(joined, date(2026, 8, 30))  # before joining: not their service


def test_a_complaint_between_the_previous_service_and_this_one_forces_the_visit():
    previous = T - timedelta(days=7)
    assert complained_about_last_time([T - timedelta(days=3)], previous, T)
    # Known before the previous service: that one was already forced, this one is not.
    assert not complained_about_last_time([previous - timedelta(hours=1)], previous, T)
    # Known during or after this service: it forces the next one, not this one.
    assert not complained_about_last_time([T, T + timedelta(hours=1)], previous, T)
    assert complained_about_last_time([T - timedelta(days=90)], None, T)
    assert not complained_about_last_time([], None, T)


def test_naive_times_are_refused():
    with pytest.raises(ValueError):
        complained_about_last_time([datetime(2026, 11, 20, 9)], None, T)


def test_an_agreement_signed_after_the_previous_service_is_new():
    start = newly_signed_since(date(2026, 11, 10), date(2026, 11, 20))
    assert start == date(2026, 11, 11)
    services = [ServiceRecord("A", "rep1", date(2026, 11, 12))]
    (visit,) = forced_onsite_visits(services, period_start=start)
    assert visit.reasons == (OnsiteReason.NEW_AGREEMENT,)
    # Signed before the previous service: not new any more, and nothing else applies.
    services = [ServiceRecord("A", "rep1", date(2026, 11, 1))]
    assert forced_onsite_visits(services, period_start=start) == []
    # No service since signing: new when signed in the last 3 months.
    assert newly_signed_since(None, date(2026, 11, 20)) == date(2026, 8, 20)
    # A previous service long ago: the 3-month floor still applies.
    assert newly_signed_since(date(2025, 1, 5), date(2026, 11, 20)) == date(2026, 8, 20)


def test_all_three_reasons_in_the_rules_order():
    services = [ServiceRecord("A", "r9", date(2026, 11, 20))]
    (visit,) = forced_onsite_visits(
        services,
        period_start=date(2026, 11, 20),
        new_staff_ids=frozenset({"r9"}),
        complained_staff_ids=frozenset({"r9"}),
    )
    assert visit.reasons == (
        OnsiteReason.NEW_AGREEMENT,
        OnsiteReason.NEW_STAFF,
        OnsiteReason.STAFF_COMPLAINED,
    )


def test_nobody_checks_their_own_work():
    assert forced_visit_assignee(7, account_manager_id=3, supervisor_id=1) == 3
    assert forced_visit_assignee(3, account_manager_id=3, supervisor_id=1) == 1
    assert forced_visit_assignee(3, account_manager_id=None, supervisor_id=1) == 1
    assert forced_visit_assignee(1, account_manager_id=None, supervisor_id=1) == 1  # nobody else


def test_missed_after_the_due_day():
    due = date(2026, 11, 26)
    assert not forced_visit_missed(date(2026, 11, 26), due)
    assert forced_visit_missed(date(2026, 11, 27), due)


def test_satisfaction_per_staff_member_by_hand():
    ratings = [
        Rating(2, 5, 4, 4),  # 13, satisfied
        Rating(2, 4, 4, 2),  # 10, attitude 2: not satisfied
        Rating(2, 3, 5, 5),  # 13, satisfied
        Rating(1, 5, 5, 5),  # 15, satisfied
    ]
    one, two = satisfaction_by_staff(ratings)
    assert (one.staff_id, one.rated, one.timeliness, one.satisfied_percent) == (1, 1, 5.0, 100.0)
    assert two.staff_id == 2 and two.rated == 3
    assert two.timeliness == 4.0  # 12 / 3
    assert two.skill == 4.33  # 13 / 3 = 4.333
    assert two.attitude == 3.67  # 11 / 3 = 3.667, rounded half up
    assert (two.satisfied, two.satisfied_percent) == (2, 66.7)


def test_means_round_half_up_and_ratings_are_checked():
    (one,) = satisfaction_by_staff([Rating(1, 3, 3, 3)] * 7 + [Rating(1, 4, 4, 4)])
    assert one.timeliness == 3.13  # 25 / 8 = 3.125
    assert satisfaction_by_staff([]) == []
    with pytest.raises(ValueError):
        satisfaction_by_staff([Rating(1, 6, 4, 4)])
