"""Patrol rounds, coverage, on-site hours and handover (PAT-02/03/09/10), hand-computed.

All wall-clock times are Asia/Shanghai (UTC+8, no DST): a night shift 20:00 on 10 March to 08:00
on 11 March 2026 is 12:00Z to 00:00Z.
"""

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from fieldapp.rules.patrols import (
    CheckpointScan,
    PatrolPlan,
    Round,
    RoundState,
    coverage_gaps,
    handover_late,
    local_day_bounds,
    meets_onsite_rule,
    plan_rounds,
    round_status,
    rounds_for_shift,
    shift_bounds,
    supervisor_onsite_hours,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")


def sh(hhmm: str, day: int = 10) -> datetime:
    """Shanghai wall-clock time on ``day`` March 2026, as an aware UTC datetime."""
    hour, minute = map(int, hhmm.split(":"))
    return datetime(2026, 3, day, hour, minute, tzinfo=SHANGHAI).astimezone(UTC)


def utc(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, minute, tzinfo=UTC)


ORDERED = PatrolPlan(("A", "B", "C", "D"), ordered=True)
ANY_ORDER = PatrolPlan(("A", "B", "C", "D"), ordered=False)
SHIFT_END = sh("08:00", day=11)


def round_2200(plan: PatrolPlan = ORDERED, late_until: datetime | None = None) -> Round:
    """The 22:00-23:00 round of the 20:00-08:00 night shift."""
    return Round(plan, sh("22:00"), sh("23:00"), SHIFT_END, late_until)


def scans(*pairs: tuple[str, datetime]) -> list[CheckpointScan]:
    return [CheckpointScan(code, at) for code, at in pairs]


ALL_IN_ORDER = scans(("A", sh("22:10")), ("B", sh("22:20")), ("C", sh("22:30")), ("D", sh("22:40")))
HALF = scans(("A", sh("22:10")), ("B", sh("22:20")))


@pytest.mark.parametrize(
    ("plan", "walked", "now", "state", "late", "remaining", "out_of_order", "time_left"),
    [
        pytest.param(ORDERED, [], sh("21:30"), RoundState.PENDING, False, ("A", "B", "C", "D"), (),
                     timedelta(minutes=90), id="pending-before-window"),
        pytest.param(ORDERED, ALL_IN_ORDER, sh("22:45"), RoundState.DONE, False, (), (),
                     timedelta(minutes=15), id="done-in-order"),
        pytest.param(ANY_ORDER,
                     scans(("D", sh("22:10")), ("C", sh("22:15")), ("B", sh("22:20")),
                           ("A", sh("22:25"))),
                     sh("22:30"), RoundState.DONE, False, (), (), timedelta(minutes=30),
                     id="done-any-order-unordered-plan"),
        pytest.param(ORDERED,
                     scans(("A", sh("22:10")), ("C", sh("22:15")), ("B", sh("22:20")),
                           ("D", sh("22:25"))),
                     sh("22:30"), RoundState.DONE, False, (), ("B",), timedelta(minutes=30),
                     id="ordered-plan-B-after-C-counts-but-flagged"),
        pytest.param(ORDERED,
                     scans(("D", sh("22:05")), ("A", sh("22:10")), ("B", sh("22:20")),
                           ("C", sh("22:30"))),
                     sh("22:40"), RoundState.DONE, False, (), ("D",), timedelta(minutes=20),
                     id="one-stray-scan-first-flags-only-that-scan"),
        pytest.param(ORDERED, HALF, sh("22:30"), RoundState.IN_PROGRESS, False, ("C", "D"), (),
                     timedelta(minutes=30), id="partial-in-window"),
        pytest.param(ORDERED, HALF, sh("23:00"), RoundState.IN_PROGRESS, False, ("C", "D"), (),
                     timedelta(0), id="partial-at-window-end-still-in-progress"),
        pytest.param(ORDERED, HALF, sh("23:30"), RoundState.LATE, True, ("C", "D"), (),
                     timedelta(0), id="late-window-over-shift-running"),
        pytest.param(ORDERED, HALF + scans(("C", sh("23:20")), ("D", sh("23:25"))), sh("23:30"),
                     RoundState.DONE, True, (), (), timedelta(0), id="done-late-after-window"),
        pytest.param(ORDERED, HALF, sh("08:00", day=11), RoundState.MISSED, True, ("C", "D"), (),
                     timedelta(0), id="missed-at-shift-end"),
        pytest.param(ORDERED, [], sh("09:00", day=11), RoundState.MISSED, True,
                     ("A", "B", "C", "D"), (), timedelta(0), id="missed-nothing-scanned"),
        pytest.param(ORDERED, ALL_IN_ORDER, sh("06:00", day=11), RoundState.DONE, False, (), (),
                     timedelta(0), id="offline-scans-synced-at-06-count-by-device-time"),
        pytest.param(ORDERED,
                     scans(("A", sh("21:55")), ("B", sh("22:20")), ("C", sh("22:30")),
                           ("D", sh("22:40"))),
                     sh("22:50"), RoundState.IN_PROGRESS, False, ("A",), (),
                     timedelta(minutes=10), id="scan-before-window-does-not-count"),
        pytest.param(ORDERED,
                     HALF + scans(("C", sh("22:30")), ("D", sh("23:00"))),
                     sh("23:05"), RoundState.DONE, False, (), (), timedelta(0),
                     id="scan-exactly-at-window-end-is-on-time"),
        pytest.param(ORDERED,
                     HALF + scans(("A", sh("22:50")), ("X9", sh("22:51")), ("C", sh("22:52"))),
                     sh("22:55"), RoundState.IN_PROGRESS, False, ("D",), (),
                     timedelta(minutes=5), id="repeat-scan-and-unknown-code-ignored"),
    ],
)  # fmt: skip
def test_round_status(plan, walked, now, state, late, remaining, out_of_order, time_left):
    status = round_status(round_2200(plan), walked, now)
    assert status.state is state
    assert status.late is late
    assert status.remaining == remaining
    assert status.out_of_order == out_of_order
    assert status.time_remaining == time_left


def test_scanned_lists_checkpoints_in_scan_order_and_completion_time():
    walked = scans(("C", sh("22:30")), ("A", sh("22:10")), ("D", sh("22:40")), ("B", sh("22:20")))
    status = round_status(round_2200(ANY_ORDER), walked, sh("22:45"))
    assert status.scanned == ("A", "B", "C", "D")
    assert status.completed_at == sh("22:40")


@pytest.mark.parametrize(
    ("now", "state"),
    [
        (sh("02:30", day=11), RoundState.IN_PROGRESS),
        (sh("03:01", day=11), RoundState.LATE),
        (sh("07:59", day=11), RoundState.LATE),
        (sh("08:00", day=11), RoundState.MISSED),
    ],
)
def test_round_at_0200_is_missed_only_once_the_shift_is_over(now, state):
    rnd = Round(ORDERED, sh("02:00", day=11), sh("03:00", day=11), SHIFT_END)
    assert round_status(rnd, HALF, now).state is state


def test_late_scan_after_late_until_does_not_count():
    rnd = round_2200(late_until=sh("00:00", day=11))
    walked = HALF + scans(("C", sh("23:50")), ("D", sh("00:10", day=11)))
    status = round_status(rnd, walked, sh("00:30", day=11))
    assert status.state is RoundState.LATE
    assert status.remaining == ("D",)


def test_naive_times_are_refused():
    with pytest.raises(ValueError):
        round_status(round_2200(), [], datetime(2026, 3, 10, 22, 30))


def test_round_window_must_lie_inside_shift():
    with pytest.raises(ValueError):
        Round(ORDERED, sh("07:30", day=11), sh("08:30", day=11), SHIFT_END)


# --- planning rounds -------------------------------------------------------------------------


def test_shift_bounds_night_shift_in_shanghai_crosses_midnight():
    assert shift_bounds(date(2026, 3, 10), time(20), time(8), "Asia/Shanghai") == (
        utc(10, 12),
        utc(11, 0),
    )


def test_shift_bounds_over_dst_change_is_real_time():
    # Berlin moves clocks forward at 02:00 on 29 March 2026: 20:00 CET to 08:00 CEST is 11 hours.
    start, end = shift_bounds(date(2026, 3, 28), time(20), time(8), "Europe/Berlin")
    assert (start, end) == (utc(28, 19), utc(29, 6))
    day_start, day_end = local_day_bounds(date(2026, 3, 29), "Europe/Berlin")
    assert day_end - day_start == timedelta(hours=23)


def test_plan_rounds_every_two_hours_on_a_night_shift():
    start, end = shift_bounds(date(2026, 3, 10), time(20), time(8), "Asia/Shanghai")
    windows = plan_rounds(start, end, every_minutes=120, window_minutes=60)
    local = [(w.start.astimezone(SHANGHAI).strftime("%d %H:%M")) for w in windows]
    assert local == ["10 20:00", "10 22:00", "11 00:00", "11 02:00", "11 04:00", "11 06:00"]
    assert windows[2].start == utc(10, 16) and windows[2].end == utc(10, 17)
    assert windows[0].late_until == windows[1].start
    assert windows[-1].late_until == end


def test_plan_rounds_per_shift_spreads_evenly():
    windows = plan_rounds(sh("20:00"), SHIFT_END, rounds_per_shift=4, window_minutes=45)
    assert [w.start for w in windows] == [
        sh("20:00"),
        sh("23:00"),
        sh("02:00", 11),
        sh("05:00", 11),
    ]
    assert windows[1].end == sh("23:45")


def test_plan_rounds_last_window_clipped_at_shift_end():
    # 720 min / 330 -> rounds at 20:00, 01:30, 07:00; the last 90-min window stops at 08:00.
    windows = plan_rounds(sh("20:00"), SHIFT_END, every_minutes=330, window_minutes=90)
    assert [w.start for w in windows] == [sh("20:00"), sh("01:30", 11), sh("07:00", 11)]
    assert windows[-1].end == SHIFT_END


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"every_minutes": 60, "rounds_per_shift": 12},
        {"every_minutes": 30, "window_minutes": 60},
        {"every_minutes": 0},
    ],
)
def test_plan_rounds_rejects_bad_parameters(kwargs):
    with pytest.raises(ValueError):
        plan_rounds(sh("20:00"), SHIFT_END, **kwargs)


def test_one_walk_never_completes_two_rounds():
    plan = PatrolPlan(("A", "B"), window_minutes=60)
    first, second = rounds_for_shift(plan, sh("20:00"), SHIFT_END, every_minutes=120)[:2]
    walk = scans(("A", sh("22:10")), ("B", sh("22:20")))  # inside the second round's window
    assert round_status(second, walk, sh("22:30")).state is RoundState.DONE
    assert round_status(first, walk, sh("22:30")).state is RoundState.LATE


# --- coverage, on-site hours, handover --------------------------------------------------------

DAY = local_day_bounds(date(2026, 3, 10), "Asia/Shanghai")  # 00:00-24:00 Shanghai on 10 March
PREV_NIGHT = (sh("20:00", 9), sh("08:00"))
DAY_SHIFT = (sh("08:00"), sh("20:00"))
NIGHT = (sh("20:00"), sh("08:00", 11))


@pytest.mark.parametrize(
    ("shifts", "gaps"),
    [
        ([PREV_NIGHT, DAY_SHIFT, NIGHT], []),
        ([DAY_SHIFT, NIGHT], [(sh("00:00"), sh("08:00"))]),
        ([PREV_NIGHT, (sh("08:00"), sh("12:00")), (sh("11:00"), sh("13:00")),
          (sh("14:00"), NIGHT[1])],
         [(sh("13:00"), sh("14:00"))]),
        ([], [DAY]),
    ],
    ids=["full-24h", "night-before-uncovered", "overlaps-and-one-hole", "no-shifts"],
)  # fmt: skip
def test_coverage_gaps(shifts, gaps):
    assert coverage_gaps(shifts, *DAY) == gaps


def test_supervisor_onsite_hours_merges_overlaps():
    presence = [(sh("08:00"), sh("11:00")), (sh("10:00"), sh("13:00")), (sh("14:00"), sh("17:00"))]
    assert supervisor_onsite_hours(presence) == 8.0


def test_supervisor_onsite_hours_clipped_to_the_day():
    presence = [(sh("22:00", 9), sh("02:00")), (sh("09:00"), sh("12:00"))]
    assert supervisor_onsite_hours(presence, within=DAY) == 5.0


@pytest.mark.parametrize(("hours", "meets"), [(5.99, False), (6.0, True), (7.5, True), (0, False)])
def test_meets_onsite_rule_six_hours(hours, meets):
    assert meets_onsite_rule(hours) is meets


@pytest.mark.parametrize(
    ("actual", "grace", "late"),
    [
        (sh("07:50"), timedelta(minutes=5), False),
        (sh("08:05"), timedelta(minutes=5), False),
        (sh("08:05") + timedelta(seconds=1), timedelta(minutes=5), True),
        (sh("08:01"), timedelta(0), True),
        (None, timedelta(minutes=5), True),
    ],
    ids=["early", "at-grace-limit", "one-second-over", "no-grace", "nobody-took-over"],
)
def test_handover_late(actual, grace, late):
    assert handover_late(sh("08:00"), actual, grace) is late


def test_handover_default_grace_is_five_minutes():
    assert handover_late(sh("08:00"), sh("08:05")) is False
    assert handover_late(sh("08:00"), sh("08:06")) is True
