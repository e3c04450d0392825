"""Device clock skew flagged by the sync engine (over 5 minutes)."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from fieldapp.rules.clock import SkewResult, clock_skew, ensure_aware

SERVER = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("offset", "seconds", "flagged"),
    [
        (timedelta(0), 0, False),
        (timedelta(minutes=5), 300, False),  # exactly the limit is tolerated
        (timedelta(minutes=5, seconds=1), 301, True),
        (timedelta(minutes=-5), -300, False),
        (timedelta(minutes=-5, seconds=-1), -301, True),  # device behind
        (timedelta(minutes=5, microseconds=1), 300, True),  # flagged on the exact skew
        (timedelta(seconds=299, milliseconds=900), 299, False),  # truncated, not rounded
        (timedelta(hours=-8), -28_800, True),  # local time sent as if it were UTC
    ],
)
def test_clock_skew(offset: timedelta, seconds: int, flagged: bool) -> None:
    assert clock_skew(SERVER + offset, SERVER) == SkewResult(seconds=seconds, flagged=flagged)


def test_skew_compares_instants_across_time_zones() -> None:
    device = datetime(2026, 11, 23, 17, 36, tzinfo=ZoneInfo("Asia/Shanghai"))  # 09:36 UTC
    assert clock_skew(device, SERVER) == SkewResult(seconds=360, flagged=True)


def test_skew_limit_is_configurable() -> None:
    got = clock_skew(SERVER + timedelta(seconds=90), SERVER, limit=timedelta(minutes=1))
    assert got == SkewResult(seconds=90, flagged=True)


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError):
        clock_skew(datetime(2026, 11, 23, 9, 30), SERVER)
    with pytest.raises(ValueError):
        ensure_aware(datetime(2026, 11, 23, 9, 30), "x")
    assert ensure_aware(SERVER) is SERVER


def test_a_phone_clock_decades_off_is_flagged_and_kept_within_the_column():
    server = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
    result = clock_skew(datetime(2, 1, 1, tzinfo=UTC), server)
    assert result.flagged and result.seconds == -(2**31 - 1)
