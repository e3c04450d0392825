"""The rule clock: a periodic job that evaluates the service rules and raises events once.

A domain registers a check next to its service::

    from fieldapp import jobs, push

    @jobs.rule_check("patrol.missed_rounds")
    def missed_rounds(now):
        for round_ in rounds_due_before(now):            # the domain's own query
            if rules.patrols.round_status(...) == MISSED:   # the regulation, a plain function
                push.notify("patrol.round_missed", user_ids=[...], org_id=round_.org_id,
                            url=f"/rounds/{round_.id}", params={...},
                            dedupe_key=f"round-missed:{round_.id}")

The clock may run every minute, on several machines at once: ``dedupe_key`` makes each event
happen once. Each check runs in its own transaction; one failing check does not stop the rest.
"""

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fieldapp.extensions import db
from fieldapp.models import utcnow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Check:
    name: str
    run: Callable[[datetime], Any]


_CHECKS: dict[str, Check] = {}


def register(name: str, run: Callable[[datetime], Any]) -> Check:
    """Add a check; registering a name again replaces it."""
    check = _CHECKS[name] = Check(name, run)
    return check


def rule_check(name: str):
    """Decorator form of ``register``."""

    def decorator(run):
        register(name, run)
        return run

    return decorator


def unregister(name: str) -> None:
    _CHECKS.pop(name, None)


def checks() -> list[Check]:
    return sorted(_CHECKS.values(), key=lambda c: c.name)


def run_clock(now: datetime | None = None, only: Iterable[str] | None = None) -> dict[str, str]:
    """One tick: every check, then the sweep that queues pushes that are due. Needs an app.

    ``now`` is the instant the checks evaluate the rules at (tests pass their own); ``only``
    names the checks to run (default: all).
    """
    from fieldapp.push.service import dispatch_due

    now = now or utcnow()
    results: dict[str, str] = {}
    wanted = set(only) if only is not None else None
    for check in checks():
        if wanted is not None and check.name not in wanted:
            continue
        started = time.monotonic()
        try:
            check.run(now)
            db.session.commit()
            results[check.name] = "ok"
        except Exception:
            db.session.rollback()
            log.exception("rule check %s failed", check.name)
            results[check.name] = "failed"
        elapsed = time.monotonic() - started
        if elapsed > 10:
            log.warning("rule check %s took %.1f s", check.name, elapsed)
    try:
        results["push.dispatch_due"] = str(dispatch_due())  # real time, like sending
        db.session.commit()
    except Exception:
        db.session.rollback()
        log.exception("push sweep failed")
        results["push.dispatch_due"] = "failed"
    return results
