"""Queue entry points of the rule clock."""

from fieldapp import jobs
from fieldapp.push import queue


def tick() -> dict[str, str]:
    """One run of the rule clock (the in-process thread and the RQ worker both call this)."""
    with queue.app_context():
        return jobs.run_clock()
