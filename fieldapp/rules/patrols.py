"""Patrol rounds, 24-hour coverage, supervisor on-site time and shift handover (PAT).

Rules implemented here (see ``shared/domain-rules.md`` section 2):

- PAT-02: a guarded site needs 24-hour coverage; :func:`coverage_gaps` lists uncovered time.
- PAT-03: each patrol round records the checkpoints scanned; :func:`round_status` says whether a
  round is pending, in progress, done, late or missed, and which checkpoints are still open.
- PAT-09: the area's responsible person must be on site at least 6 hours per working day;
  :func:`supervisor_onsite_hours` and :func:`meets_onsite_rule`.
- PAT-10: shifts are handed over on time; :func:`handover_late`.

Missed and late rounds (decisions a reader needs to know):

- A round has a *window* (when it should be walked) inside a *shift*. A checkpoint scan counts for
  the round when its **device time** lies in ``[window_start, late_until]``. Device time, not sync
  time, because a guard in a dead zone walks the round offline and the scans reach the server hours
  later; judging them by arrival would mark a walked round as missed.
- Scans before the window never count (walking early is not walking the round). Scans after the
  window but before ``late_until`` (default: the shift end) still complete the round, which is then
  ``done`` with ``late=True``: the round *was* walked, and the supervisor sees it was late.
  :func:`plan_rounds` sets ``late_until`` to the next round's start, so one walk can never count
  for two rounds.
- ``late``: the window has passed with checkpoints unscanned and the shift is still running (the
  guard can still finish it, and the supervisor is notified, PAT-03). ``missed``: the shift has
  ended and the round is unfinished. A round left undone at 02:00 on a 20:00-08:00 shift is
  therefore ``late`` until 08:00 and ``missed`` from 08:00.
- For an ordered plan, a scan out of sequence still counts (the checkpoint was visited) but is
  flagged in ``out_of_order``. The flagged scans are the fewest that, removed, leave the rest in
  plan order, so one stray scan at the start does not flag the whole round.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

# No seed gives a patrol interval or window (PAT-02 note), so these are our defaults.
DEFAULT_ROUND_WINDOW_MINUTES = 60
# PAT-09: 「每天到所管区域内工作时间不得少于6小时」.
SUPERVISOR_MIN_ONSITE_HOURS = 6.0
# PAT-10 says "on time" and fines every late takeover (KPI-10 q) but gives no tolerance. Five
# minutes absorbs clock differences between two phones and the walk from the locker room, without
# excusing a guard who is really late.
HANDOVER_GRACE_MINUTES = 5
DEFAULT_HANDOVER_GRACE = timedelta(minutes=HANDOVER_GRACE_MINUTES)

Interval = tuple[datetime, datetime]


def _require_aware(value: datetime, name: str) -> None:
    # A naive datetime silently compares as local time somewhere; refuse it rather than guess.
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime")


@dataclass(frozen=True)
class PatrolPlan:
    """The checkpoints of a site's patrol round (PAT-03).

    ``checkpoint_codes`` are in walking order; ``ordered=True`` means that order is required.
    ``window_minutes`` is how long a round may take from its scheduled start.
    """

    checkpoint_codes: tuple[str, ...]
    ordered: bool = False
    window_minutes: int = DEFAULT_ROUND_WINDOW_MINUTES

    def __post_init__(self) -> None:
        codes = tuple(self.checkpoint_codes)
        object.__setattr__(self, "checkpoint_codes", codes)
        if not codes:
            raise ValueError("a patrol plan needs at least one checkpoint")
        if len(set(codes)) != len(codes):
            raise ValueError("checkpoint codes in a plan must be unique")
        if self.window_minutes <= 0:
            raise ValueError("window_minutes must be positive")


@dataclass(frozen=True)
class Round:
    """One scheduled round of a plan: its window and the end of the shift it belongs to (UTC).

    ``late_until`` is the last moment a late scan still counts; ``None`` means the shift end.
    """

    plan: PatrolPlan
    window_start: datetime
    window_end: datetime
    shift_end: datetime
    late_until: datetime | None = None

    def __post_init__(self) -> None:
        for name in ("window_start", "window_end", "shift_end"):
            _require_aware(getattr(self, name), name)
        if not self.window_start < self.window_end <= self.shift_end:
            raise ValueError("need window_start < window_end <= shift_end")
        if self.late_until is not None:
            _require_aware(self.late_until, "late_until")
            if not self.window_end <= self.late_until <= self.shift_end:
                raise ValueError("late_until must lie between window_end and shift_end")

    @property
    def late_cutoff(self) -> datetime:
        return self.shift_end if self.late_until is None else self.late_until


@dataclass(frozen=True)
class CheckpointScan:
    """A checkpoint scanned by a guard, timed by the phone's clock (it may have been offline)."""

    checkpoint_code: str
    scanned_at_device_utc: datetime


class RoundState(StrEnum):
    PENDING = "pending"  # window not started yet
    IN_PROGRESS = "in_progress"  # inside the window, checkpoints still open
    DONE = "done"  # every checkpoint scanned (possibly late, see RoundStatus.late)
    LATE = "late"  # window over, checkpoints open, shift still running
    MISSED = "missed"  # shift over, round unfinished


@dataclass(frozen=True)
class RoundStatus:
    """What a guard and the supervisor see for one round.

    ``late`` is True when the round was not completed inside its window: state ``late`` or
    ``missed``, or ``done`` after the window. ``scanned`` is in scan order, ``remaining`` in plan
    order. ``time_remaining`` is the time left until the window closes (zero once it has).
    """

    state: RoundState
    late: bool
    scanned: tuple[str, ...]
    remaining: tuple[str, ...]
    out_of_order: tuple[str, ...]
    time_remaining: timedelta
    completed_at: datetime | None


@dataclass(frozen=True)
class RoundWindow:
    """A planned round window (UTC); see :func:`plan_rounds`."""

    start: datetime
    end: datetime
    late_until: datetime


def round_status(round_: Round, scans: Iterable[CheckpointScan], now: datetime) -> RoundStatus:
    """Status of a patrol round at ``now`` (PAT-03, "missed and late rounds" in the module doc).

    Only scans of the plan's checkpoints whose device time lies in
    ``[window_start, late_cutoff]`` count; a repeated scan of a checkpoint counts once (the first).
    """
    _require_aware(now, "now")
    plan = round_.plan
    first_scan: dict[str, datetime] = {}
    for scan in sorted(scans, key=lambda s: s.scanned_at_device_utc):
        _require_aware(scan.scanned_at_device_utc, "scanned_at_device_utc")
        at = scan.scanned_at_device_utc
        if scan.checkpoint_code not in plan.checkpoint_codes:
            continue  # another site's or a retired checkpoint: not part of this round
        if not round_.window_start <= at <= round_.late_cutoff:
            continue
        first_scan.setdefault(scan.checkpoint_code, at)

    scanned = tuple(first_scan)  # dicts keep insertion order, i.e. scan order
    remaining = tuple(code for code in plan.checkpoint_codes if code not in first_scan)
    out_of_order = _out_of_order(plan.checkpoint_codes, scanned) if plan.ordered else ()
    time_remaining = max(timedelta(0), round_.window_end - now)
    completed_at = max(first_scan.values()) if not remaining else None

    if now < round_.window_start:
        state, late = RoundState.PENDING, False
    elif completed_at is not None:
        state, late = RoundState.DONE, completed_at > round_.window_end
    elif now <= round_.window_end:
        state, late = RoundState.IN_PROGRESS, False
    elif now < round_.shift_end:
        state, late = RoundState.LATE, True
    else:
        state, late = RoundState.MISSED, True
    return RoundStatus(state, late, scanned, remaining, out_of_order, time_remaining, completed_at)


def _out_of_order(plan_codes: Sequence[str], scanned: Sequence[str]) -> tuple[str, ...]:
    """The scans to flag: all but a longest run of scans that follows the plan order."""
    positions = [plan_codes.index(code) for code in scanned]
    # Longest increasing subsequence of plan positions, O(n^2): a round has a handful of points.
    length = [1] * len(positions)
    previous = [-1] * len(positions)
    for i, pos in enumerate(positions):
        for j in range(i):
            if positions[j] < pos and length[j] + 1 > length[i]:
                length[i], previous[i] = length[j] + 1, j
    in_order: set[int] = set()
    i = max(range(len(positions)), key=length.__getitem__, default=-1)
    while i != -1:
        in_order.add(i)
        i = previous[i]
    return tuple(code for k, code in enumerate(scanned) if k not in in_order)


def plan_rounds(
    shift_start: datetime,
    shift_end: datetime,
    *,
    every_minutes: int | None = None,
    rounds_per_shift: int | None = None,
    window_minutes: int = DEFAULT_ROUND_WINDOW_MINUTES,
) -> list[RoundWindow]:
    """Round windows for one shift: either one round every ``every_minutes`` from the shift start,
    or ``rounds_per_shift`` rounds spread evenly (PAT-02: the interval is set per site).

    Arithmetic is on UTC instants, so a shift across midnight or across a DST change gets rounds
    every N minutes of real time (get the instants from :func:`shift_bounds`). A window is clipped
    at the shift end. A window longer than the interval is refused: overlapping windows would let
    one walk count for two rounds. Each window's ``late_until`` is the next round's start (the
    shift end for the last round).
    """
    _require_aware(shift_start, "shift_start")
    _require_aware(shift_end, "shift_end")
    if shift_end <= shift_start:
        raise ValueError("shift_end must be after shift_start")
    if (every_minutes is None) == (rounds_per_shift is None):
        raise ValueError("give exactly one of every_minutes or rounds_per_shift")
    if window_minutes <= 0:
        raise ValueError("window_minutes must be positive")

    if every_minutes is not None:
        if every_minutes <= 0:
            raise ValueError("every_minutes must be positive")
        interval = timedelta(minutes=every_minutes)
        count = -(-(shift_end - shift_start) // interval)  # ceiling: a round may start near the end
    else:
        assert rounds_per_shift is not None
        if rounds_per_shift <= 0:
            raise ValueError("rounds_per_shift must be positive")
        interval = (shift_end - shift_start) / rounds_per_shift
        count = rounds_per_shift
    window = timedelta(minutes=window_minutes)
    if window > interval:
        raise ValueError("window_minutes is longer than the interval between rounds")

    starts = [shift_start + k * interval for k in range(count)]
    return [
        RoundWindow(
            start=start,
            end=min(start + window, shift_end),
            late_until=starts[k + 1] if k + 1 < len(starts) else shift_end,
        )
        for k, start in enumerate(starts)
    ]


def rounds_for_shift(
    plan: PatrolPlan,
    shift_start: datetime,
    shift_end: datetime,
    *,
    every_minutes: int | None = None,
    rounds_per_shift: int | None = None,
) -> list[Round]:
    """The :class:`Round` values of one shift for ``plan``, using the plan's window length."""
    windows = plan_rounds(
        shift_start,
        shift_end,
        every_minutes=every_minutes,
        rounds_per_shift=rounds_per_shift,
        window_minutes=plan.window_minutes,
    )
    return [Round(plan, w.start, w.end, shift_end, w.late_until) for w in windows]


def round_number_at(rounds: Sequence[Round], at: datetime) -> int | None:
    """Which round (1-based) a scan at device time ``at`` belongs to, or None.

    A scan counts for a round from its ``window_start`` to its late cutoff; since
    :func:`plan_rounds` ends each cutoff at the next round's start, the instant a round starts
    belongs to the new round (the guard is now walking it). Scans before the first window or
    after the shift end belong to none.
    """
    _require_aware(at, "at")
    number = None
    for n, round_ in enumerate(rounds, start=1):
        if round_.window_start <= at <= round_.late_cutoff:
            number = n
    return number


def shift_bounds(day: date, start: time, end: time, tz_name: str) -> Interval:
    """UTC start and end of a shift given in site-local wall-clock times (IANA ``tz_name``).

    A shift whose end is not after its start (20:00-08:00) ends on the next day. Local times are
    resolved by :mod:`zoneinfo` (a wall time skipped by DST is taken with the pre-change offset).
    """
    zone = ZoneInfo(tz_name)
    local_start = datetime.combine(day, start, tzinfo=zone)
    end_day = day if end > start else day + timedelta(days=1)
    local_end = datetime.combine(end_day, end, tzinfo=zone)
    return _to_utc(local_start), _to_utc(local_end)


def local_day_bounds(day: date, tz_name: str) -> Interval:
    """UTC instants of local midnight to the next local midnight (23 or 25 h on DST days)."""
    return shift_bounds(day, time(0), time(0), tz_name)


def _to_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


def _merge(intervals: Iterable[Interval]) -> list[Interval]:
    """Sorted union of intervals; touching intervals (end == next start) are joined."""
    merged: list[Interval] = []
    for start, end in sorted(intervals):
        if end <= start:
            continue
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _clip(intervals: Iterable[Interval], start: datetime, end: datetime) -> list[Interval]:
    return [(max(s, start), min(e, end)) for s, e in intervals if s < end and e > start]


def coverage_gaps(
    shifts: Iterable[Interval], day_start: datetime, day_end: datetime
) -> list[Interval]:
    """Periods between ``day_start`` and ``day_end`` covered by no shift (PAT-02).

    Shifts may overlap, touch or reach outside the day; an empty list means full coverage. Use
    :func:`local_day_bounds` for the site's local day.
    """
    _require_aware(day_start, "day_start")
    _require_aware(day_end, "day_end")
    gaps: list[Interval] = []
    cursor = day_start
    for start, end in _merge(_clip(shifts, day_start, day_end)):
        if start > cursor:
            gaps.append((cursor, start))
        cursor = max(cursor, end)
    if cursor < day_end:
        gaps.append((cursor, day_end))
    return gaps


def supervisor_onsite_hours(
    intervals: Iterable[Interval], *, within: Interval | None = None
) -> float:
    """Hours inside the area, counting overlapping presence intervals once (PAT-09).

    ``intervals`` are geofenced presence periods (e.g. from two devices, hence overlaps).
    ``within`` clips them to one working day.
    """
    spans = list(intervals)
    if within is not None:
        spans = _clip(spans, *within)
    total = sum((end - start for start, end in _merge(spans)), timedelta(0))
    return total.total_seconds() / 3600


def meets_onsite_rule(hours: float, minimum: float = SUPERVISOR_MIN_ONSITE_HOURS) -> bool:
    """PAT-09: at least ``minimum`` hours on site that day (exactly 6 h meets the rule)."""
    return hours >= minimum


def handover_late(
    scheduled: datetime, actual: datetime | None, grace: timedelta = DEFAULT_HANDOVER_GRACE
) -> bool:
    """PAT-10 / KPI-10 q: was the takeover late?

    Late means after ``scheduled + grace`` (exactly at the grace limit is on time). ``actual=None``
    means nobody took over, which the rule treats like a late takeover (「不接岗、晚接岗」).
    """
    _require_aware(scheduled, "scheduled")
    if actual is None:
        return True
    _require_aware(actual, "actual")
    return actual > scheduled + grace


# ----- appraisal inputs (KPI-09, KPI-10, KPI-12) ------------------------------------------------
#
# Decisions:
# - A month is the site's local calendar month; a shift belongs to the month it *starts* in.
# - Only shifts that have ended count (like :func:`fieldapp.rules.kpi.patrol_round_counts`): a
#   month-end report must not call a running shift unattended.
# - Attendance (PAT-15): a shift is attended when the guard signed in at all; signing in after the
#   deadline is counted separately (``late_sign_ins``). A shift with no sign-in at all is the
#   "refused sign-in" of KPI-10 g. A late-synced sign-in counts by its device time.
# - Safety (PAT-14, KPI-09): a shift is clean when no theft, fire or safety accident was reported
#   on it; other incident types (a dispute, a medical emergency) do not count against the guard.
# - Inspections (PAT-07/08, PAT-22): passed when the guard was present, in uniform and no
#   prohibition was seen. Each finding is also mapped to its KPI-10 row (absent or left post: m;
#   not in uniform: l; drinking: o) as a *proposed* penalty; KPI-11 says a penalty is only
#   imposed after the brigade office approves it, so these are counts, never fines.
# - Takeovers (PAT-10, KPI-10 q): handovers in which the guard took over late.

SAFETY_INCIDENT_TYPES = frozenset({"theft", "fire", "accident"})
# PAT-07 checklist item (or absence / uniform) -> KPI-10 row for a guard.
FINDING_PENALTY_RULES = {
    "absent": "KPI-10m-guard",
    "v_off_post": "KPI-10m-guard",
    "not_in_uniform": "KPI-10l-guard",
    "v_drinking": "KPI-10o-drinking",
}


@dataclass(frozen=True)
class ShiftFacts:
    """What happened on one of a guard's shifts, for the appraisal (UTC instants)."""

    starts_at: datetime
    ends_at: datetime
    first_sign_in: datetime | None  # device time of the first sign-in, if any
    sign_in_deadline: datetime
    incident_types: tuple[str, ...] = ()


@dataclass(frozen=True)
class InspectionFacts:
    """One spot check of the guard's post (PAT-08)."""

    at: datetime
    guard_present: bool
    in_uniform: bool
    violations: tuple[str, ...] = ()

    @property
    def findings(self) -> tuple[str, ...]:
        found = () if self.guard_present else ("absent",)
        found += () if self.in_uniform else ("not_in_uniform",)
        return found + tuple(self.violations)

    @property
    def passed(self) -> bool:
        return not self.findings


@dataclass(frozen=True)
class GuardMonthFigures:
    """One guard's month from patrol data: the KPI-12 inputs and KPI-10 occurrences.

    The ``*_rate`` properties are fractions 0..1 for :func:`fieldapp.rules.kpi.assessment_score`
    (keys ``attendance``, ``incidents``, ``inspections``), ``None`` when there was nothing to
    measure. Round counts are final outcomes only (done or missed).
    """

    shifts: int = 0  # ended shifts starting in the month
    shifts_signed_in: int = 0
    late_sign_ins: int = 0
    shifts_not_signed_in: int = 0
    shifts_without_safety_incident: int = 0
    thefts: int = 0
    fires: int = 0
    accidents: int = 0
    inspections: int = 0
    inspections_passed: int = 0
    findings: tuple[tuple[str, int], ...] = ()  # (finding, count), most frequent first
    rounds_due: int = 0
    rounds_completed: int = 0
    rounds_late: int = 0
    late_takeovers: int = 0
    penalty_occurrences: tuple[tuple[str, int], ...] = ()  # (KPI-10 rule code, count)

    @staticmethod
    def _fraction(numerator: int, denominator: int) -> float | None:
        return numerator / denominator if denominator else None

    @property
    def attendance_rate(self) -> float | None:
        return self._fraction(self.shifts_signed_in, self.shifts)

    @property
    def incidents_rate(self) -> float | None:
        """Shifts without theft, fire or safety accident / shifts (higher is better)."""
        return self._fraction(self.shifts_without_safety_incident, self.shifts)

    @property
    def inspections_rate(self) -> float | None:
        return self._fraction(self.inspections_passed, self.inspections)

    @property
    def round_completion_rate(self) -> float | None:
        return self._fraction(self.rounds_completed, self.rounds_due)

    def kpi12_inputs(self) -> dict[str, float | None]:
        """The patrol-data part of :data:`fieldapp.rules.kpi.GUARD_ASSESSMENT_WEIGHTS`; the
        dashboard adds ``training`` and ``client_feedback`` from their own records."""
        return {
            "incidents": self.incidents_rate,
            "inspections": self.inspections_rate,
            "attendance": self.attendance_rate,
        }


def month_bounds(first: date, tz_name: str) -> Interval:
    """UTC instants of the local month that contains ``first`` (from its 1st, 00:00)."""
    start_day = first.replace(day=1)
    next_day = (start_day + timedelta(days=32)).replace(day=1)
    return local_day_bounds(start_day, tz_name)[0], local_day_bounds(next_day, tz_name)[0]


def guard_month_figures(
    shifts: Iterable[ShiftFacts],
    inspections: Iterable[InspectionFacts] = (),
    round_statuses: Iterable[RoundStatus] = (),
    *,
    late_takeovers: int = 0,
    now: datetime,
) -> GuardMonthFigures:
    """Combine one guard's facts of one month (already limited to that month by the caller)
    into the appraisal figures; shifts not ended at ``now`` are left out."""
    _require_aware(now, "now")
    if late_takeovers < 0:
        raise ValueError("late_takeovers cannot be negative")
    count = signed = late = unsigned = clean = thefts = fires = accidents = 0
    for shift in shifts:
        _require_aware(shift.ends_at, "ends_at")
        if shift.ends_at > now:
            continue
        count += 1
        if shift.first_sign_in is None:
            unsigned += 1
        else:
            signed += 1
            late += shift.first_sign_in > shift.sign_in_deadline
        types = set(shift.incident_types)
        thefts += "theft" in types
        fires += "fire" in types
        accidents += "accident" in types
        clean += not (types & SAFETY_INCIDENT_TYPES)

    findings: dict[str, int] = {}
    checked = passed = 0
    for inspection in inspections:
        checked += 1
        passed += inspection.passed
        for finding in inspection.findings:
            findings[finding] = findings.get(finding, 0) + 1

    due = completed = rounds_late = 0
    for status in round_statuses:
        if status.state is RoundState.DONE:
            due += 1
            completed += 1
            rounds_late += int(status.late)
        elif status.state is RoundState.MISSED:
            due += 1

    penalties: dict[str, int] = {}

    def _add(code: str, times: int) -> None:
        if times:
            penalties[code] = penalties.get(code, 0) + times

    _add("KPI-10g-guard", unsigned)
    _add("KPI-10q-guard", late_takeovers)
    for finding, times in findings.items():
        if finding in FINDING_PENALTY_RULES:
            _add(FINDING_PENALTY_RULES[finding], times)

    def _ranked(counts: dict[str, int]) -> tuple[tuple[str, int], ...]:
        return tuple(sorted(counts.items(), key=lambda item: (-item[1], item[0])))

    return GuardMonthFigures(
        shifts=count,
        shifts_signed_in=signed,
        late_sign_ins=late,
        shifts_not_signed_in=unsigned,
        shifts_without_safety_incident=clean,
        thefts=thefts,
        fires=fires,
        accidents=accidents,
        inspections=checked,
        inspections_passed=passed,
        findings=_ranked(findings),
        rounds_due=due,
        rounds_completed=completed,
        rounds_late=rounds_late,
        late_takeovers=late_takeovers,
        penalty_occurrences=_ranked(penalties),
    )
