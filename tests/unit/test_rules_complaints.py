"""Complaint rules: CMP-07 deadlines, the case state machine, CMP-09 escalation, CMP-12 slips."""

from datetime import UTC, date, datetime, timedelta

import pytest

from fieldapp.rules.calendar import WorkingCalendar
from fieldapp.rules.complaints import (
    PROPERTY_PROFILE,
    CallbackResult,
    ComplaintProfile,
    ComplaintSeverity,
    ComplaintState,
    DeadlineStatus,
    acceptance_slip_number,
    allowed_transition,
    check_transition,
    complaint_deadlines,
    deadline_status,
    needs_escalation,
)
from fieldapp.rules.errors import RuleViolation

SH = "Asia/Shanghai"
S = ComplaintState


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# --- Deadlines ---------------------------------------------------------------------------


def test_friday_evening_complaint_deadlines() -> None:
    received = utc(2026, 11, 20, 10, 0)  # Fri 18:00 Shanghai
    got = complaint_deadlines(received, WorkingCalendar(), SH)
    assert got.received_at == received
    assert got.investigate_by == utc(2026, 11, 23, 9, 30)  # Mon 17:30 local
    assert got.reply_by == utc(2026, 11, 24, 9, 30)  # Tue 17:30 local


def test_property_profile_allows_three_days_for_the_reply() -> None:
    got = complaint_deadlines(utc(2026, 11, 20, 10, 0), WorkingCalendar(), SH, PROPERTY_PROFILE)
    assert got.investigate_by == utc(2026, 11, 23, 9, 30)  # Mon
    assert got.reply_by == utc(2026, 11, 25, 9, 30)  # Wed


def test_holiday_pushes_complaint_deadlines() -> None:
    cal = WorkingCalendar(holidays=frozenset({date(2026, 11, 24)}))  # Tuesday off
    got = complaint_deadlines(utc(2026, 11, 20, 10, 0), cal, SH)
    assert got.investigate_by == utc(2026, 11, 23, 9, 30)  # Mon
    assert got.reply_by == utc(2026, 11, 25, 9, 30)  # Wed instead of Tue


@pytest.mark.parametrize(("investigate", "reply"), [(0, 2), (1, 0), (3, 2)])
def test_bad_profiles_are_refused(investigate: int, reply: int) -> None:
    with pytest.raises(ValueError):
        ComplaintProfile(investigate_within=investigate, reply_within=reply)


DEADLINE = utc(2026, 11, 23, 9, 30)


@pytest.mark.parametrize(
    ("now", "due_soon", "expected"),
    [
        (DEADLINE + timedelta(seconds=1), timedelta(hours=24), "overdue"),
        (DEADLINE, timedelta(hours=24), "due_soon"),
        (DEADLINE - timedelta(hours=24), timedelta(hours=24), "due_soon"),
        (DEADLINE - timedelta(hours=24, seconds=1), timedelta(hours=24), "ok"),
        (DEADLINE - timedelta(hours=3), timedelta(hours=2), "ok"),
        (DEADLINE - timedelta(hours=1), timedelta(hours=2), "due_soon"),
    ],
)
def test_deadline_status(now: datetime, due_soon: timedelta, expected: str) -> None:
    status = deadline_status(now, DEADLINE, due_soon=due_soon)
    assert status == expected
    assert isinstance(status, DeadlineStatus)


def test_deadline_status_default_window_is_24_hours() -> None:
    assert deadline_status(DEADLINE - timedelta(hours=23), DEADLINE) == "due_soon"
    assert deadline_status(DEADLINE - timedelta(hours=25), DEADLINE) == "ok"


# --- State machine -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("src", "dst", "expected"),
    [
        (S.RECEIVED, S.TRIAGED, True),
        (S.TRIAGED, S.ROUTED, True),
        (S.TRIAGED, S.INVALID_CLOSED, True),
        (S.ROUTED, S.PLANNED, True),
        (S.PLANNED, S.APPROVED, True),
        (S.PLANNED, S.ROUTED, True),  # plan rejected by the supervisor
        (S.APPROVED, S.ANSWERED, True),
        (S.ANSWERED, S.CALLBACK_DONE, True),
        (S.CALLBACK_DONE, S.CLOSED, True),
        (S.CALLBACK_DONE, S.ANSWERED, True),
        (S.CALLBACK_DONE, S.PLANNED, True),
        (S.RECEIVED, S.CLOSED, False),
        (S.RECEIVED, S.INVALID_CLOSED, False),  # must be triaged first
        (S.PLANNED, S.ANSWERED, False),  # no reply without supervisor approval (CMP-06)
        (S.ANSWERED, S.CLOSED, False),  # no close without the callback (CMP-13)
        (S.CLOSED, S.RECEIVED, False),
        (S.INVALID_CLOSED, S.TRIAGED, False),
        ("received", "triaged", True),  # plain strings from the database work too
    ],
)
def test_allowed_transition(src: str, dst: str, expected: bool) -> None:
    assert allowed_transition(src, dst) is expected


def test_happy_path_passes_every_check() -> None:
    check_transition(S.RECEIVED, S.TRIAGED)
    check_transition(S.TRIAGED, S.ROUTED)
    check_transition(S.ROUTED, S.PLANNED)
    check_transition(S.PLANNED, S.APPROVED)
    check_transition(S.APPROVED, S.ANSWERED)
    check_transition(S.ANSWERED, S.CALLBACK_DONE, callback_result=CallbackResult.SATISFIED)
    check_transition(
        S.CALLBACK_DONE,
        S.CLOSED,
        root_cause="driver skipped the stop",
        corrective_action="route briefing; GPS check on stop 7",
        callback_result="satisfied",
    )


GOOD_CLOSE = {
    "root_cause": "wrong tote box loaded",
    "corrective_action": "scan-to-confirm at loading",
    "callback_result": CallbackResult.SATISFIED,
}


@pytest.mark.parametrize(
    ("src", "dst", "kwargs", "code"),
    [
        (S.RECEIVED, S.CLOSED, GOOD_CLOSE, "complaint.transition_not_allowed"),
        (S.CLOSED, S.ANSWERED, {}, "complaint.transition_not_allowed"),
        (
            S.CALLBACK_DONE,
            S.CLOSED,
            {**GOOD_CLOSE, "root_cause": None},
            "complaint.close_without_root_cause",
        ),
        (
            S.CALLBACK_DONE,
            S.CLOSED,
            {**GOOD_CLOSE, "root_cause": "   "},
            "complaint.close_without_root_cause",
        ),
        (
            S.CALLBACK_DONE,
            S.CLOSED,
            {**GOOD_CLOSE, "corrective_action": ""},
            "complaint.close_without_corrective_action",
        ),
        (
            S.CALLBACK_DONE,
            S.CLOSED,
            {**GOOD_CLOSE, "callback_result": None},
            "complaint.close_without_satisfied_callback",
        ),
        (
            S.CALLBACK_DONE,
            S.CLOSED,
            {**GOOD_CLOSE, "callback_result": CallbackResult.DISAGREED},
            "complaint.close_without_satisfied_callback",
        ),
        (S.ANSWERED, S.CALLBACK_DONE, {}, "complaint.callback_without_result"),
        (
            S.CALLBACK_DONE,
            S.ANSWERED,
            {"callback_result": CallbackResult.SATISFIED},
            "complaint.reopen_without_disagreement",
        ),
        (S.CALLBACK_DONE, S.PLANNED, {}, "complaint.reopen_without_disagreement"),
        (S.TRIAGED, S.INVALID_CLOSED, {}, "complaint.invalid_without_explanation"),
        (
            S.TRIAGED,
            S.INVALID_CLOSED,
            {"explanation": " "},
            "complaint.invalid_without_explanation",
        ),
    ],
)
def test_refused_transitions_carry_a_stable_code(
    src: ComplaintState, dst: ComplaintState, kwargs: dict, code: str
) -> None:
    with pytest.raises(RuleViolation) as err:
        check_transition(src, dst, **kwargs)
    assert err.value.code == code
    assert isinstance(err.value, ValueError)
    assert err.value.message


def test_disagreeing_callback_sends_the_case_back_for_another_callback() -> None:
    check_transition(S.ANSWERED, S.CALLBACK_DONE, callback_result=CallbackResult.DISAGREED)
    check_transition(S.CALLBACK_DONE, S.ANSWERED, callback_result=CallbackResult.DISAGREED)
    check_transition(S.CALLBACK_DONE, S.PLANNED, callback_result="disagreed")


def test_invalid_complaint_closes_with_an_explanation() -> None:
    check_transition(S.TRIAGED, S.INVALID_CLOSED, explanation="goods were signed for intact")


# --- Severity and slip numbers -----------------------------------------------------------


@pytest.mark.parametrize(
    ("severity", "expected"),
    [(ComplaintSeverity.MAJOR, True), ("major", True), ("serious", False), ("minor", False)],
)
def test_needs_escalation(severity: str, expected: bool) -> None:
    assert needs_escalation(severity) is expected


def test_escalating_severities_are_configurable() -> None:
    both = frozenset({ComplaintSeverity.MAJOR, ComplaintSeverity.SERIOUS})
    assert needs_escalation("serious", both) is True
    with pytest.raises(ValueError):
        needs_escalation("catastrophic")


@pytest.mark.parametrize(
    ("org", "day", "seq", "expected"),
    [
        ("SH", date(2026, 11, 23), 7, "SH-20261123-0007"),
        ("SH", date(2026, 1, 5), 1, "SH-20260105-0001"),
        ("BJ01", date(2026, 12, 31), 9999, "BJ01-20261231-9999"),
    ],
)
def test_acceptance_slip_number(org: str, day: date, seq: int, expected: str) -> None:
    assert acceptance_slip_number(org, day, seq) == expected


@pytest.mark.parametrize(("org", "seq"), [("SH", 0), ("SH", 10000), ("sh", 1), ("S-H", 1), ("", 1)])
def test_acceptance_slip_number_refuses_bad_input(org: str, seq: int) -> None:
    with pytest.raises(ValueError):
        acceptance_slip_number(org, date(2026, 11, 23), seq)
