"""Queue entry points for push: importable by path, so RQ workers and the thread share them."""

import math
from collections import defaultdict

from fieldapp.push import queue, sender


def deliver(ids: list[int]) -> int:
    """Send these deliveries; schedule the ones the push service asked us to retry."""
    with queue.app_context():
        retries = sender.deliver(ids)
        by_delay: dict[float, list[int]] = defaultdict(list)
        for delivery_id, delay in retries:
            # Never early: a job that arrives before next_attempt_at claims nothing.
            by_delay[math.ceil(delay * 10) / 10 + 0.1].append(delivery_id)
        q = queue.get_queue()
        for delay, group in by_delay.items():
            q.enqueue(queue.DELIVER, group, delay=delay)
        return len(ids) - len(retries)
