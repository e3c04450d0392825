"""Complaint rules (CMP): deadlines, the case state machine, escalation and slip numbers."""

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from fieldapp.rules.calendar import WorkingCalendar
from fieldapp.rules.clock import ensure_aware
from fieldapp.rules.errors import RuleViolation

# CMP-07 default profile: 一个工作日内展开调查 / 二个工作日内给予客户满意回复.
DEFAULT_INVESTIGATE_WITHIN_DAYS = 1
DEFAULT_REPLY_WITHIN_DAYS = 2
# CMP-07 property-services profile: 答复投诉人的投诉问题时间为1-3 天. We take the upper bound.
PROPERTY_REPLY_WITHIN_DAYS = 3
# A countdown turns amber this long before its deadline.
DEFAULT_DUE_SOON = timedelta(hours=24)


# --- Deadlines (CMP-07, SLA-06) ---------------------------------------------------------


@dataclass(frozen=True)
class ComplaintProfile:
    """How many working days the investigation and the reply may take (CMP-07).

    The property profile's "1-3 天" says days, not working days; we count it on the working
    calendar like the default. An organisation that wants calendar days passes a
    ``WorkingCalendar(weekend=frozenset())`` with no holidays.
    """

    investigate_within: int = DEFAULT_INVESTIGATE_WITHIN_DAYS
    reply_within: int = DEFAULT_REPLY_WITHIN_DAYS

    def __post_init__(self) -> None:
        if self.investigate_within < 1 or self.reply_within < 1:
            raise ValueError("complaint deadlines are at least 1 working day")
        if self.investigate_within > self.reply_within:
            # A reply presupposes an investigation; the reverse order is a typo.
            raise ValueError("investigate_within must not exceed reply_within")


STANDARD_PROFILE = ComplaintProfile()
PROPERTY_PROFILE = ComplaintProfile(
    investigate_within=DEFAULT_INVESTIGATE_WITHIN_DAYS, reply_within=PROPERTY_REPLY_WITHIN_DAYS
)


@dataclass(frozen=True)
class ComplaintDeadlines:
    """When the investigation must start and the satisfactory reply be given (UTC)."""

    received_at: datetime
    investigate_by: datetime
    reply_by: datetime


def complaint_deadlines(
    received_at: datetime,
    calendar: WorkingCalendar,
    tz_name: str,
    profile: ComplaintProfile = STANDARD_PROFILE,
) -> ComplaintDeadlines:
    """Deadlines of a complaint received at ``received_at`` (CMP-07).

    Both use ``WorkingCalendar.add_working_days``: full working days, rounded up to close of
    business; a complaint received after hours or on a day off starts the next working day.
    Friday 18:00 in Shanghai: investigate by Monday 17:30, reply by Tuesday 17:30.
    """
    ensure_aware(received_at, "received_at")
    return ComplaintDeadlines(
        received_at=received_at,
        investigate_by=calendar.add_working_days(received_at, profile.investigate_within, tz_name),
        reply_by=calendar.add_working_days(received_at, profile.reply_within, tz_name),
    )


class DeadlineStatus(StrEnum):
    OK = "ok"
    DUE_SOON = "due_soon"
    OVERDUE = "overdue"


def deadline_status(
    now: datetime, deadline: datetime, due_soon: timedelta = DEFAULT_DUE_SOON
) -> DeadlineStatus:
    """Traffic light for a countdown (CMP-07, CMP-10).

    ``overdue`` strictly after the deadline (doing it *at* the deadline is still in time),
    ``due_soon`` from ``deadline - due_soon`` up to and including the deadline, else ``ok``.
    """
    ensure_aware(now, "now")
    ensure_aware(deadline, "deadline")
    if now > deadline:
        return DeadlineStatus.OVERDUE
    if now >= deadline - due_soon:
        return DeadlineStatus.DUE_SOON
    return DeadlineStatus.OK


# --- State machine (CMP-04..06, CMP-13, CMP-15, VIS-05) ---------------------------------


class ComplaintState(StrEnum):
    RECEIVED = "received"  # logged by whoever was contacted first (CMP-11, CMP-12)
    TRIAGED = "triaged"  # validity and category judged (CMP-02, CMP-04)
    INVALID_CLOSED = "invalid_closed"  # judged invalid, explanation recorded (CMP-04)
    ROUTED = "routed"  # responsible department and handler assigned (CMP-05)
    PLANNED = "planned"  # department head drafted a resolution plan (CMP-05)
    APPROVED = "approved"  # supervisor approved the plan (CMP-06)
    ANSWERED = "answered"  # customer given the resolution / reply (CMP-06, CMP-07)
    CALLBACK_DONE = "callback_done"  # closure callback made, outcome recorded (CMP-13)
    CLOSED = "closed"  # root cause, corrective action, satisfied customer (CMP-15)


class CallbackResult(StrEnum):
    """What the customer said on the closure callback (CMP-13, VIS-05)."""

    SATISFIED = "satisfied"
    DISAGREED = "disagreed"


_TRANSITIONS: dict[ComplaintState, frozenset[ComplaintState]] = {
    ComplaintState.RECEIVED: frozenset({ComplaintState.TRIAGED}),
    ComplaintState.TRIAGED: frozenset({ComplaintState.ROUTED, ComplaintState.INVALID_CLOSED}),
    ComplaintState.ROUTED: frozenset({ComplaintState.PLANNED}),
    # A supervisor who rejects the plan sends it back to the department (CMP-06).
    ComplaintState.PLANNED: frozenset({ComplaintState.APPROVED, ComplaintState.ROUTED}),
    ComplaintState.APPROVED: frozenset({ComplaintState.ANSWERED}),
    ComplaintState.ANSWERED: frozenset({ComplaintState.CALLBACK_DONE}),
    # After a disagreeing callback: call again at another time (VIS-05b, back to ANSWERED)
    # or rework the plan (back to PLANNED). Only a satisfied callback may close.
    ComplaintState.CALLBACK_DONE: frozenset(
        {ComplaintState.CLOSED, ComplaintState.ANSWERED, ComplaintState.PLANNED}
    ),
    ComplaintState.INVALID_CLOSED: frozenset(),
    ComplaintState.CLOSED: frozenset(),
}


def allowed_transition(from_state: ComplaintState | str, to_state: ComplaintState | str) -> bool:
    """True when the workflow has an arrow from ``from_state`` to ``to_state``.

    This is the graph only; ``check_transition`` also checks the data each arrow needs.
    """
    return ComplaintState(to_state) in _TRANSITIONS[ComplaintState(from_state)]


def _blank(text: str | None) -> bool:
    return text is None or not text.strip()


def check_transition(
    from_state: ComplaintState | str,
    to_state: ComplaintState | str,
    *,
    root_cause: str | None = None,
    corrective_action: str | None = None,
    callback_result: CallbackResult | str | None = None,
    explanation: str | None = None,
) -> None:
    """Raise ``RuleViolation`` unless the move is allowed with the data given.

    * ``triaged -> invalid_closed`` needs the ``explanation`` given to the customer (CMP-04).
    * ``answered -> callback_done`` needs a ``callback_result`` (CMP-13).
    * ``callback_done -> closed`` needs a non-blank ``root_cause`` and ``corrective_action``
      (CMP-15) and a ``satisfied`` callback (CMP-10: own it until solved and answered).
    * ``callback_done -> answered`` (another callback at a different time, VIS-05b) and
      ``callback_done -> planned`` (rework) are only for a ``disagreed`` callback.
    """
    src, dst = ComplaintState(from_state), ComplaintState(to_state)
    result = CallbackResult(callback_result) if callback_result is not None else None
    if dst not in _TRANSITIONS[src]:
        raise RuleViolation(
            "complaint.transition_not_allowed", f"a complaint cannot go from {src} to {dst}"
        )
    if dst is ComplaintState.INVALID_CLOSED and _blank(explanation):
        raise RuleViolation(
            "complaint.invalid_without_explanation",
            "closing a complaint as invalid needs the explanation given to the customer",
        )
    if dst is ComplaintState.CALLBACK_DONE and result is None:
        raise RuleViolation(
            "complaint.callback_without_result", "record what the customer said on the callback"
        )
    if src is ComplaintState.CALLBACK_DONE and dst is ComplaintState.CLOSED:
        if _blank(root_cause):
            raise RuleViolation(
                "complaint.close_without_root_cause", "closing needs a root-cause analysis"
            )
        if _blank(corrective_action):
            raise RuleViolation(
                "complaint.close_without_corrective_action",
                "closing needs a corrective or preventive action",
            )
        if result is not CallbackResult.SATISFIED:
            raise RuleViolation(
                "complaint.close_without_satisfied_callback",
                "closing needs a callback in which the customer was satisfied",
            )
    sent_back = src is ComplaintState.CALLBACK_DONE and dst is not ComplaintState.CLOSED
    if sent_back and result is not CallbackResult.DISAGREED:
        raise RuleViolation(
            "complaint.reopen_without_disagreement",
            "only a callback that ended in disagreement sends the case back",
        )


# --- Severity (CMP-09, CMP-14) ----------------------------------------------------------


class ComplaintSeverity(StrEnum):
    MINOR = "minor"  # 情节较轻: register and file (CMP-14)
    SERIOUS = "serious"  # 情节严重: complaint handling form (CMP-14)
    MAJOR = "major"  # 重大投诉: report to the head at once (CMP-09)


DEFAULT_ESCALATING_SEVERITIES = frozenset({ComplaintSeverity.MAJOR})


def needs_escalation(
    severity: ComplaintSeverity | str,
    escalating: frozenset[ComplaintSeverity] = DEFAULT_ESCALATING_SEVERITIES,
) -> bool:
    """True when the department head / managing manager must be notified at once (CMP-09)."""
    return ComplaintSeverity(severity) in escalating


# --- Acceptance slip (CMP-12) -----------------------------------------------------------

SLIP_SEQUENCE_DIGITS = 4
_ORG_CODE = re.compile(r"[A-Z0-9]+")


def acceptance_slip_number(org_code: str, local_date: date, seq: int) -> str:
    """Number printed on the acceptance slip (承办单, CMP-12): ``SH-20261123-0007``.

    ``local_date`` is the site's local date of intake and ``seq`` the 1-based daily sequence
    of the organisation. The fixed width keeps slip numbers sortable, so a 10,000th slip on
    one day is refused rather than silently widened.
    """
    if not _ORG_CODE.fullmatch(org_code):
        raise ValueError(f"org_code must be upper-case letters and digits, got {org_code!r}")
    if not 1 <= seq < 10**SLIP_SEQUENCE_DIGITS:
        raise ValueError(f"seq must be 1..{10**SLIP_SEQUENCE_DIGITS - 1}, got {seq}")
    return f"{org_code}-{local_date:%Y%m%d}-{seq:0{SLIP_SEQUENCE_DIGITS}d}"


# --- Monthly complaint rate by unit (CMP-17, SLA-06) -------------------------------------

RATE_REPORT_DAY = 5  # 于5日17时前提供客户投诉率
RATE_REPORT_HOUR = 17


def complaint_rate_report_due(month: date, tz_name: str) -> datetime:
    """When the rate of ``month`` (any day in it) is due: the 5th of the next month, 17:00
    local, as UTC. November 2026 in Shanghai: 2026-12-05 09:00 UTC."""
    year, index = divmod(month.year * 12 + month.month, 12)  # month.month is 1-based
    local = datetime(year, index + 1, RATE_REPORT_DAY, RATE_REPORT_HOUR, tzinfo=ZoneInfo(tz_name))
    return local.astimezone(ZoneInfo("UTC"))


@dataclass(frozen=True)
class AttributedComplaint:
    """One complaint of the month, attributed to the responsible unit (CMP-17).

    ``valid`` is False for a complaint closed as invalid (CMP-04): it is not the unit's fault
    and does not count.
    """

    unit: str
    valid: bool = True


@dataclass(frozen=True)
class UnitComplaintRate:
    """``rate_percent`` = complaints / services x 100, 2 decimals; ``None`` without services."""

    unit: str
    complaints: int
    services: int
    rate_percent: float | None


def complaint_rate_by_unit(
    complaints: Iterable[AttributedComplaint], services: Mapping[str, int]
) -> list[UnitComplaintRate]:
    """The month's complaint rate of every unit that had services or valid complaints (CMP-17).

    3 valid complaints on 120 services is 2.50 %; complaints against a unit with no services
    recorded have no rate (``None``) rather than an infinite one. Sorted by unit.
    """
    counts: dict[str, int] = {}
    for c in complaints:
        if c.valid:
            counts[c.unit] = counts.get(c.unit, 0) + 1
    for unit, n in services.items():
        if n < 0:
            raise ValueError(f"services of {unit!r} must be >= 0")
    result = []
    for unit in sorted(set(counts) | {u for u, n in services.items() if n > 0}):
        n, done = counts.get(unit, 0), services.get(unit, 0)
        rate = ((n * 10000 * 2 + done) // (2 * done)) / 100 if done else None
        result.append(UnitComplaintRate(unit, n, done, rate))
    return result


# --- Archive access (CMP-16, AUD-05) ----------------------------------------------------


def may_read_archived(
    viewer_role: str, viewer_team_ids: frozenset[int] | set[int], complaint_team_id: int | None
) -> bool:
    """Who may read a closed complaint (the archive): the general manager (``admin``) every
    one, a department head (``supervisor``) those of the teams they head, and those of no
    team (nobody else's scope); nobody else (部门主管,总经理可分权限查阅).

    While a complaint is open its parties see it to work on it; once closed it is archived.
    """
    if viewer_role == "admin":
        return True
    if viewer_role == "supervisor":
        return complaint_team_id is None or complaint_team_id in viewer_team_ids
    return False
