"""When a dedupe key is dead: declared by the code that builds it, read by retention.

A ``dedupe_key`` stops an alarm from being raised twice, so ``push_dedupe`` keeps it after its
event is deleted (``retention.py``). Kept for ever, that table would grow with history; a key
may go once the check that builds it can never raise it again, and only that check knows
when::

    @push.forget_keys("complaint-overdue", "complaint-due-soon")
    def _dead_deadline_keys(now, keys):
        # the check reads open complaints only; a closed complaint is never reopened
        return push.dead_unless(keys, Complaint.id, Complaint.state.not_in(CLOSED))

A key is read as ``kind:id`` or ``kind:id:more``. Keys of a kind nobody declared are kept.
"""

from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from fieldapp.extensions import db

# (now, keys of the declared kinds) -> those of them that can never be raised again.
DeadKeys = Callable[[datetime, list[str]], Iterable[str]]
_DEAD_KEYS: dict[str, DeadKeys] = {}


def kind_of(key: str) -> str:
    """A dedupe key is ``kind:id`` or ``kind:id:more``: ``round-missed:42:3`` is a round-missed."""
    return key.split(":", 1)[0]


def forget_keys(*kinds: str):
    """Decorator: the function says which keys of these kinds can never be raised again.

    Put it next to the ``notify`` that builds the keys, and make it read what the check reads:
    a key it calls dead and that is raised again would raise the alarm a second time.
    """

    def decorator(dead: DeadKeys) -> DeadKeys:
        for kind in kinds:
            _DEAD_KEYS[kind] = dead
        return dead

    return decorator


def forget_once_stored(id_column, *kinds: str) -> None:
    """Keys of alarms raised with the insert of their record (``kind:<record id>``): the
    database refuses that id a second time, so once the record is stored the alarm cannot be
    raised again."""
    forget_keys(*kinds)(lambda now, keys: dead_if(keys, id_column))


def dead_unless(keys: list[str], id_column, *still_live, convert: Callable[[str], Any] = str):
    """The keys whose id (the part after the kind) names no row with ``still_live`` true: for a
    check that reads only such rows, when a row never comes back to them."""
    by_id = _by_id(keys, convert)
    live = _ids_where(id_column, by_id, still_live)
    return [key for id_, some in by_id.items() if id_ not in live for key in some]


def dead_if(keys: list[str], id_column, *conditions, convert: Callable[[str], Any] = str):
    """The keys whose id names a row with ``conditions`` true: e.g. the key of an alarm raised
    with the insert of its record, whose primary key refuses the same record twice."""
    by_id = _by_id(keys, convert)
    found = _ids_where(id_column, by_id, conditions)
    return [key for id_, some in by_id.items() if id_ in found for key in some]


def _by_id(keys: list[str], convert: Callable[[str], Any]) -> dict[Any, list[str]]:
    """Keys by their id; a key whose id does not convert is left out, so kept."""
    by_id: dict[Any, list[str]] = defaultdict(list)
    for key in keys:
        try:
            by_id[convert(key.split(":")[1])].append(key)
        except (IndexError, ValueError):
            continue
    return by_id


def _ids_where(id_column, ids, conditions) -> set:
    if not ids:
        return set()
    return set(
        db.session.scalars(db.select(id_column).where(id_column.in_(list(ids)), *conditions))
    )


def dead_keys(now: datetime, keys: Iterable[str]) -> set[str]:
    """Which of these keys no check can raise again: one call per declaring function."""
    asked: dict[DeadKeys, list[str]] = defaultdict(list)
    for key in keys:
        dead = _DEAD_KEYS.get(kind_of(key))
        if dead is not None:
            asked[dead].append(key)
    found: set[str] = set()
    for dead, some in asked.items():
        found.update(set(dead(now, some)) & set(some))  # a function answers for its own keys only
    return found
