"""Where push work and the rule clock run.

Without ``REDIS_URL``: an in-process worker thread per app (one machine, one process is the
embedded default). With ``REDIS_URL``: an RQ queue, worked by ``flask --app wsgi worker``.

Jobs carry only database IDs. The database says what is pending, so a job lost with a process
is found again by the rule clock's sweep (``service.dispatch_due``).
"""

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from importlib import import_module

from flask import Flask, current_app, has_app_context

from fieldapp.extensions import db

log = logging.getLogger(__name__)

DELIVER = "fieldapp.push.tasks.deliver"
TICK = "fieldapp.jobs.tasks.tick"
IDLE_EXIT_SECONDS = 30.0


def resolve(path: str) -> Callable:
    module, _sep, name = path.rpartition(".")
    return getattr(import_module(module), name)


class InProcessQueue:
    """A heap of (when, job) worked by one daemon thread inside the web process."""

    def __init__(self, app: Flask):
        self.app = app
        self._heap: list = []
        self._counter = itertools.count()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._busy = False
        self._recurring: dict[str, float] = {}

    def enqueue(self, path: str, *args, delay: float = 0.0) -> None:
        with self._cond:
            heapq.heappush(self._heap, (time.monotonic() + delay, next(self._counter), path, args))
            self._ensure_thread()
            self._cond.notify()

    def every(self, path: str, interval: float) -> None:
        """Run ``path`` every ``interval`` seconds from now on (the rule clock)."""
        with self._cond:
            if path in self._recurring:
                return
            self._recurring[path] = interval
        self.enqueue(path, delay=interval)

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="push-worker", daemon=True)
            self._thread.start()

    def _next(self):
        with self._cond:
            while True:
                if self._heap:
                    due = self._heap[0][0] - time.monotonic()
                    if due <= 0:
                        self._busy = True
                        return heapq.heappop(self._heap)
                    self._cond.wait(timeout=due)
                elif not self._cond.wait(timeout=IDLE_EXIT_SECONDS) and not self._heap:
                    self._thread = None  # idle: the next enqueue starts a new thread
                    return None

    def _run(self) -> None:
        while True:
            item = self._next()
            if item is None:
                return
            _when, _n, path, args = item
            try:
                with self.app.app_context():
                    try:
                        resolve(path)(*args)
                    finally:
                        db.session.remove()
            except Exception:
                log.exception("job %s failed", path)
            finally:
                with self._cond:
                    self._busy = False
                    interval = self._recurring.get(path)
                    self._cond.notify_all()
                if interval:
                    self.enqueue(path, delay=interval)

    def wait_idle(self, timeout: float = 10.0, horizon: float = 5.0) -> bool:
        """Until nothing runs and nothing is due within ``horizon`` seconds (tests, benchmark).

        Jobs further away (a push held for quiet hours, the rule clock) do not count.
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._busy or (self._heap and self._heap[0][0] - time.monotonic() < horizon):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(timeout=min(left, 0.05))
        return True


class RedisQueue:
    """An RQ queue; ``flask --app wsgi worker`` (or ``rq worker --with-scheduler``) works it."""

    def __init__(self, app: Flask):
        from redis import Redis
        from rq import Queue

        self.connection = Redis.from_url(app.config["REDIS_URL"])
        self.name = app.config["PUSH_QUEUE"]
        self.queue = Queue(self.name, connection=self.connection)

    def enqueue(self, path: str, *args, delay: float = 0.0) -> None:
        options = {"result_ttl": 0, "failure_ttl": 7 * 24 * 3600, "job_timeout": 600}
        if delay > 0:
            self.queue.enqueue_in(timedelta(seconds=delay), path, *args, **options)
        else:
            self.queue.enqueue(path, *args, **options)


def get_queue(app: Flask | None = None):
    app = app or current_app._get_current_object()
    state = app.extensions.setdefault("fieldapp.push", {})
    queue = state.get("queue")
    if queue is None:
        with _create_lock:
            queue = state.get("queue")
            if queue is None:
                queue = RedisQueue(app) if app.config.get("REDIS_URL") else InProcessQueue(app)
                state["queue"] = queue
    return queue


_create_lock = threading.Lock()
_standalone_app: Flask | None = None


@contextmanager
def app_context() -> Iterator[None]:
    """The current app context, or one of an app built here (a bare ``rq worker`` process)."""
    global _standalone_app
    if has_app_context():
        yield
        return
    if _standalone_app is None:
        from fieldapp import create_app

        _standalone_app = create_app()
    with _standalone_app.app_context():
        try:
            yield
        finally:
            db.session.remove()
