"""The complaint workflow as the office pages drive it: every step the pages offer, in order,
passes the rules; the shortcuts a hurried handler might try are refused with a stable code;
deadlines follow the site's own time zone and the 2026 National Day calendar."""

from datetime import UTC, date, datetime, timedelta

import pytest

from fieldapp.rules.calendar import WorkingCalendar
from fieldapp.rules.complaints import (
    PROPERTY_PROFILE,
    ComplaintState,
    check_transition,
    complaint_deadlines,
)
from fieldapp.rules.errors import RuleViolation

S = ComplaintState
# 2026 National Day: 1-7 October off, Saturday 10 October worked (调休, as entered by an admin).
NATIONAL_DAY = WorkingCalendar(
    holidays=frozenset(date(2026, 10, d) for d in range(1, 8)),
    makeup_workdays=frozenset({date(2026, 10, 10)}),
)


@pytest.mark.parametrize(
    ("src", "dst", "fields", "code"),
    [
        # Straight from the answer to closure: no callback, no closure.
        (S.ANSWERED, S.CLOSED, {}, "complaint.transition_not_allowed"),
        (S.RECEIVED, S.ROUTED, {}, "complaint.transition_not_allowed"),  # triage first
        (S.ROUTED, S.APPROVED, {}, "complaint.transition_not_allowed"),  # a plan first
        (S.PLANNED, S.ANSWERED, {}, "complaint.transition_not_allowed"),  # approval first
        (S.CLOSED, S.RECEIVED, {}, "complaint.transition_not_allowed"),  # closed stays closed
        (
            S.CALLBACK_DONE,
            S.CLOSED,
            {"root_cause": " ", "corrective_action": "x", "callback_result": "satisfied"},
            "complaint.close_without_root_cause",
        ),
        (
            S.CALLBACK_DONE,
            S.CLOSED,
            {"root_cause": "x", "corrective_action": "", "callback_result": "satisfied"},
            "complaint.close_without_corrective_action",
        ),
        (
            S.CALLBACK_DONE,
            S.CLOSED,
            {"root_cause": "x", "corrective_action": "y", "callback_result": "disagreed"},
            "complaint.close_without_satisfied_callback",
        ),
    ],
)
def test_shortcuts_are_refused(src, dst, fields, code) -> None:
    with pytest.raises(RuleViolation) as refused:
        check_transition(src, dst, **fields)
    assert refused.value.code == code


def test_a_complaint_received_on_the_eve_of_national_day_waits_for_the_holiday() -> None:
    # Wednesday 30 September 16:00 in Shanghai, within working hours: the rest of the day is
    # partial, the holiday week does not count, Thursday 8 October is the first full day.
    received = datetime(2026, 9, 30, 8, 0, tzinfo=UTC)
    deadlines = complaint_deadlines(received, NATIONAL_DAY, "Asia/Shanghai")
    assert deadlines.investigate_by == datetime(2026, 10, 8, 9, 30, tzinfo=UTC)
    assert deadlines.reply_by == datetime(2026, 10, 9, 9, 30, tzinfo=UTC)
    # The property profile's third day is the makeup Saturday.
    property_deadlines = complaint_deadlines(
        received, NATIONAL_DAY, "Asia/Shanghai", PROPERTY_PROFILE
    )
    assert property_deadlines.reply_by == datetime(2026, 10, 10, 9, 30, tzinfo=UTC)


def test_the_same_instant_counts_on_each_sites_own_day() -> None:
    # Friday 20 November 15:30 UTC is 23:30 (after hours) in Shanghai but 15:30 (working
    # hours) in London: the deadline falls at each site's own close of business.
    instant = datetime(2026, 11, 20, 15, 30, tzinfo=UTC)
    shanghai = complaint_deadlines(instant, WorkingCalendar(), "Asia/Shanghai")
    london = complaint_deadlines(instant, WorkingCalendar(), "Europe/London")
    # Shanghai: 23:30 Friday, after hours -> Monday is day 1.
    assert shanghai.investigate_by == datetime(2026, 11, 23, 9, 30, tzinfo=UTC)
    # London: 15:30 Friday, during hours -> the first full day is Monday, due Monday close.
    assert london.investigate_by == datetime(2026, 11, 23, 17, 30, tzinfo=UTC)
    assert london.investigate_by - shanghai.investigate_by == timedelta(hours=8)
