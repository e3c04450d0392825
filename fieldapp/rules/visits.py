"""Visit and return-visit rules (VIS): monthly sample size, forced on-site visits,
satisfaction scoring and time on site."""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum

from fieldapp.rules.clock import ensure_aware
from fieldapp.rules.errors import RuleViolation

# --- Monthly sample (VIS-08) -------------------------------------------------------------

# 300户以上 >= 10 %; 100户-300户 >= 20 %; 100户以下 >= 30 %.
LARGE_VOLUME_ABOVE = 300
SMALL_VOLUME_BELOW = 100
LARGE_VOLUME_RATE_PERCENT = 10
MEDIUM_VOLUME_RATE_PERCENT = 20
SMALL_VOLUME_RATE_PERCENT = 30


def return_visit_sample_rate(
    served: int,
    *,
    large_above: int = LARGE_VOLUME_ABOVE,
    small_below: int = SMALL_VOLUME_BELOW,
    large_rate: int = LARGE_VOLUME_RATE_PERCENT,
    medium_rate: int = MEDIUM_VOLUME_RATE_PERCENT,
    small_rate: int = SMALL_VOLUME_RATE_PERCENT,
) -> int:
    """Minimum sample rate in percent for ``served`` households in the month (VIS-08).

    100 and 300 themselves are in the middle band ("100户-300户").
    """
    if served < 0:
        raise ValueError("served must be >= 0")
    if served > large_above:
        return large_rate
    if served < small_below:
        return small_rate
    return medium_rate


def return_visit_sample_size(served: int, **rates: int) -> int:
    """How many of the month's ``served`` households get a return visit (VIS-08).

    The rate is a minimum ("不低于"), so the count is rounded **up**: 99 households need 30
    (29.7), 301 need 31 (30.1), 1 needs 1 and 0 needs 0. Note the bands are not monotonic
    (99 -> 30 but 100 -> 20); we follow the regulation as written. ``rates`` are the keyword
    parameters of ``return_visit_sample_rate``.
    """
    rate = return_visit_sample_rate(served, **rates)
    # Integer ceiling division: no floats, so 300 * 20 % is exactly 60, not 60.000001 -> 61.
    return -(-served * rate // 100)


# --- Forced on-site visits (VIS-09) ------------------------------------------------------


class OnsiteReason(StrEnum):
    NEW_AGREEMENT = "new_agreement"  # 新签定《居家服务协议书》的顾客
    NEW_STAFF = "new_staff"  # 新的家政服务人员提供的服务
    STAFF_COMPLAINED = "staff_complained"  # 上次服务曾被投诉过的家政服务人员提供的服务


@dataclass(frozen=True)
class ServiceRecord:
    """One service performed for a client in the month being sampled.

    ``agreement_signed_on`` is the date the client's home-service agreement was signed, or
    ``None`` when the client has no agreement.
    """

    client_id: str
    staff_id: str
    agreement_signed_on: date | None


@dataclass(frozen=True)
class OnsiteVisit:
    client_id: str
    reasons: tuple[OnsiteReason, ...]


def forced_onsite_visits(
    services: Iterable[ServiceRecord],
    *,
    period_start: date,
    new_staff_ids: frozenset[str] = frozenset(),
    complained_staff_ids: frozenset[str] = frozenset(),
) -> list[OnsiteVisit]:
    """Clients whose return visit must be on site (上门), with the reasons (VIS-09).

    Only clients with a service agreement qualify ("对签订居家服务协议的顾客"). A client must
    be visited on site when the agreement was signed on or after ``period_start`` (newly
    signed), or when any service was done by a staff member in ``new_staff_ids`` or in
    ``complained_staff_ids`` (complained about last time). Who counts as new staff is HR data,
    so the caller passes the sets. One entry per client, in order of first appearance; these
    visits come on top of the random VIS-08 sample.
    """
    reasons: dict[str, list[OnsiteReason]] = {}
    for service in services:
        if service.agreement_signed_on is None:
            continue
        found = reasons.setdefault(service.client_id, [])
        candidates = (
            (OnsiteReason.NEW_AGREEMENT, service.agreement_signed_on >= period_start),
            (OnsiteReason.NEW_STAFF, service.staff_id in new_staff_ids),
            (OnsiteReason.STAFF_COMPLAINED, service.staff_id in complained_staff_ids),
        )
        for reason, applies in candidates:
            if applies and reason not in found:
                found.append(reason)
    # Keep the enum order so the same client always prints its reasons the same way.
    order = list(OnsiteReason)
    return [
        OnsiteVisit(client_id, tuple(sorted(found, key=order.index)))
        for client_id, found in reasons.items()
        if found
    ]


# --- Satisfaction (VIS-08) ---------------------------------------------------------------

RATING_MIN = 1
RATING_MAX = 5
# Satisfied when the mean of the three ratings is at least 4 ("satisfied" on a 5-point
# scale) -- i.e. a total of 12 out of 15 -- and no single rating is below 3 ("neutral"):
# a rude visit (attitude 2) is not satisfactory however quick and skilled it was.
SATISFIED_MIN_TOTAL = 12
SATISFIED_MIN_EACH = 3


@dataclass(frozen=True)
class SatisfactionResult:
    """``score`` is the sum of the three ratings (3..15); ``satisfied`` per the rule above."""

    score: int
    satisfied: bool


def visit_satisfaction(
    timeliness: int,
    skill: int,
    attitude: int,
    *,
    min_total: int = SATISFIED_MIN_TOTAL,
    min_each: int = SATISFIED_MIN_EACH,
) -> SatisfactionResult:
    """Score one return visit's ratings of timeliness, skill and attitude, each 1..5 (VIS-08).

    The sum is used instead of the mean so the score stays an integer; mean >= 4 is
    total >= 12.
    """
    ratings = {"timeliness": timeliness, "skill": skill, "attitude": attitude}
    for name, value in ratings.items():
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{name} must be an int, got {value!r}")
        if not RATING_MIN <= value <= RATING_MAX:
            raise ValueError(f"{name} must be {RATING_MIN}..{RATING_MAX}, got {value}")
    total = sum(ratings.values())
    satisfied = total >= min_total and min(ratings.values()) >= min_each
    return SatisfactionResult(score=total, satisfied=satisfied)


# --- Time on site (VIS-01) ---------------------------------------------------------------


def time_on_site(check_in: datetime, check_out: datetime) -> timedelta:
    """Time between check-in and check-out of a visit (VIS-01).

    A check-out before the check-in comes from a wrong device clock or a tampered record,
    so it is refused rather than reported as negative time.
    """
    ensure_aware(check_in, "check_in")
    ensure_aware(check_out, "check_out")
    if check_out < check_in:
        raise RuleViolation(
            "visit.checkout_before_checkin", "the check-out time is before the check-in time"
        )
    return check_out - check_in


# --- Forced on-site visits: who is new, who was complained about, when, by whom (VIS-09) ---

# KPI-08: probation is 3 months; staff on probation are "new staff" for VIS-09 (b).
NEW_STAFF_MONTHS = 3
# Our reading of "newly signed" when the client had no service since: signed in the last
# 3 months (the same span as probation).
NEW_AGREEMENT_MONTHS = 3
# The regulation gives no deadline for the forced on-site visit; ours is 3 working days
# after the service, in the site's time zone and on the organisation's working calendar.
FORCED_VISIT_WITHIN_WORKING_DAYS = 3


def add_months(day: date, months: int) -> date:
    """``day`` plus ``months`` months, clamped to the month end (Nov 30 + 3 -> Feb 28)."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    month += 1
    for last in (31, 30, 29, 28):
        try:
            return date(year, month, min(day.day, last))
        except ValueError:
            continue
    raise AssertionError("unreachable")


def is_new_staff(joined_on: date, service_on: date, months: int = NEW_STAFF_MONTHS) -> bool:
    """True when the service falls within the staff member's first ``months`` months (VIS-09 b).

    Joined 2026-08-31, 3 months: new up to and including 2026-11-29, no longer on 2026-11-30.
    """
    return joined_on <= service_on < add_months(joined_on, months)


def complained_about_last_time(
    complaints_first_known: Iterable[datetime],
    previous_service_at: datetime | None,
    service_at: datetime,
) -> bool:
    """True when a valid complaint against the staff member became known after their previous
    service began and before this one began: "上次服务曾被投诉过" (VIS-09 c, KPI-18).

    With no previous service, any complaint before this service counts. A complaint that
    becomes known during or after this service concerns this one and so forces the *next*.
    """
    ensure_aware(service_at, "service_at")
    if previous_service_at is not None:
        ensure_aware(previous_service_at, "previous_service_at")
    for known in complaints_first_known:
        ensure_aware(known, "complaint first known")
        if known < service_at and (previous_service_at is None or known > previous_service_at):
            return True
    return False


def newly_signed_since(previous_service_on: date | None, service_on: date) -> date:
    """The ``period_start`` for ``forced_onsite_visits`` of one service: an agreement is newly
    signed when it was signed after the client's previous service, and at most
    ``NEW_AGREEMENT_MONTHS`` months before this one (so an old agreement whose earlier
    services predate the app does not count as new)."""
    floor = add_months(service_on, -NEW_AGREEMENT_MONTHS)
    if previous_service_on is None:
        return floor
    return max(floor, previous_service_on + timedelta(days=1))


def forced_visit_assignee(
    staff_id: int, account_manager_id: int | None, supervisor_id: int | None
) -> int | None:
    """Who makes the forced on-site visit: the client's account manager, unless they did the
    service themselves (nobody checks their own work), then the team's supervisor."""
    if account_manager_id is not None and account_manager_id != staff_id:
        return account_manager_id
    if supervisor_id is not None and supervisor_id != staff_id:
        return supervisor_id
    return account_manager_id or supervisor_id


def forced_visit_missed(local_today: date, due_date: date) -> bool:
    """Missed once the due day is over in the site's time zone (the due day itself is in time)."""
    return local_today > due_date


# --- Satisfaction per staff member and month (KPI-18) -------------------------------------


@dataclass(frozen=True)
class Rating:
    """One client rating of one staff member's service, each 1..5 (VIS-08)."""

    staff_id: int
    timeliness: int
    skill: int
    attitude: int


@dataclass(frozen=True)
class StaffSatisfaction:
    """KPI-18 for one staff member: mean ratings (2 decimals), how many rated visits, and the
    share of satisfied ones in percent (1 decimal) per ``visit_satisfaction``."""

    staff_id: int
    rated: int
    timeliness: float
    skill: float
    attitude: float
    satisfied: int
    satisfied_percent: float


def _mean(total: int, n: int) -> float:
    # Round half up on integers so 3.125 -> 3.13 (no binary-float surprises).
    hundredths = (total * 100 * 2 + n) // (2 * n)
    return hundredths / 100


def satisfaction_by_staff(ratings: Iterable[Rating]) -> list[StaffSatisfaction]:
    """Per staff member, the mean of each count and the satisfied share (KPI-18).

    Each rating is checked with ``visit_satisfaction`` (1..5 each). Sorted by staff id.
    """
    sums: dict[int, list[int]] = {}
    for r in ratings:
        verdict = visit_satisfaction(r.timeliness, r.skill, r.attitude)
        row = sums.setdefault(r.staff_id, [0, 0, 0, 0, 0])
        row[0] += 1
        row[1] += r.timeliness
        row[2] += r.skill
        row[3] += r.attitude
        row[4] += 1 if verdict.satisfied else 0
    result = []
    for staff_id in sorted(sums):
        n, t, s, a, ok = sums[staff_id]
        result.append(
            StaffSatisfaction(
                staff_id=staff_id,
                rated=n,
                timeliness=_mean(t, n),
                skill=_mean(s, n),
                attitude=_mean(a, n),
                satisfied=ok,
                satisfied_percent=((ok * 1000 * 2 + n) // (2 * n)) / 10,
            )
        )
    return result
