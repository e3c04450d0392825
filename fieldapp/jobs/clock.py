"""Running the rule clock periodically: in the web process, or once per interval over Redis."""

import logging
import threading
import time

from flask import Flask

from fieldapp.push import queue

log = logging.getLogger(__name__)


def start_in_process(app: Flask) -> bool:
    """Tick every RULE_CLOCK_INTERVAL seconds on the app's in-process worker thread."""
    interval = app.config.get("RULE_CLOCK_INTERVAL", 60)
    if not interval or app.config.get("REDIS_URL"):
        return False
    queue.get_queue(app).every(queue.TICK, float(interval))
    return True


class RedisTicker(threading.Thread):
    """Queues one tick per interval however many workers run it (a SET NX per time slot)."""

    def __init__(self, app: Flask):
        super().__init__(name="rule-clock", daemon=True)
        self.interval = max(1, int(app.config.get("RULE_CLOCK_INTERVAL", 60)))
        self.q = queue.get_queue(app)
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            slot = int(time.time() // self.interval)
            key = f"fieldapp:{self.q.name}:clock:{slot}"
            try:
                if self.q.connection.set(key, "1", nx=True, ex=self.interval * 2):
                    self.q.enqueue(queue.TICK)
            except Exception:
                log.exception("rule clock: could not reach Redis")
            self.stopping.wait((slot + 1) * self.interval - time.time() + 0.05)

    def stop(self) -> None:
        self.stopping.set()
