"""Device clock checks for the offline sync engine, plus the aware-datetime guard.

Field devices work offline for hours and stamp records with their own clock. A device whose
clock is wrong can make a late delivery look on time (SLA-01) or a patrol look complete, so the
sync engine compares the device clock with the server clock at every sync and flags a skew.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

# The sync engine flags a device whose clock is more than 5 minutes off the server's.
DEFAULT_SKEW_LIMIT = timedelta(minutes=5)
# A phone whose date is decades off (a reset clock says 1970 or year 2) still gets its record
# stored, flagged; its skew is kept at the limit of a 32-bit column rather than overflowing it.
MAX_SKEW_SECONDS = 2**31 - 1


def ensure_aware(value: datetime, name: str = "datetime") -> datetime:
    """Return ``value`` unchanged, or raise ``ValueError`` if it has no time zone.

    Every rule compares instants; a naive datetime would silently be read as local time of
    the server, which is exactly the bug the offline app cannot afford.
    """
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {value!r}")
    return value


@dataclass(frozen=True)
class SkewResult:
    """Device clock minus server clock, in whole seconds (positive: device is ahead)."""

    seconds: int
    flagged: bool


def clock_skew(
    device_time: datetime,
    server_time: datetime,
    limit: timedelta = DEFAULT_SKEW_LIMIT,
) -> SkewResult:
    """Measure how far the device clock is off and flag it when the skew exceeds ``limit``.

    ``seconds`` is truncated toward zero; ``flagged`` is computed on the exact difference and
    is true only when the skew is strictly greater than ``limit`` (exactly 5 minutes is fine).
    """
    ensure_aware(device_time, "device_time")
    ensure_aware(server_time, "server_time")
    if limit < timedelta(0):
        raise ValueError("limit must not be negative")
    delta = device_time - server_time
    seconds = max(-MAX_SKEW_SECONDS, min(MAX_SKEW_SECONDS, int(delta.total_seconds())))
    return SkewResult(seconds=seconds, flagged=abs(delta) > limit)
