"""The kinds of notification a domain declares: what it is called, how it reads, how it travels.

A domain declares each kind once, at import time, next to the service that raises it::

    from flask_babel import lazy_gettext as _l
    from fieldapp import push

    ROUND_MISSED = push.declare(push.Kind(
        name="patrol.round_missed",
        label=_l("A patrol round was missed"),          # the preferences page
        title=_l("Round missed: %(site)s"),             # rendered in the recipient's language
        body=_l("Round %(round)s was due at %(due)s."),
        alarm=True,                            # Urgency: high, TTL 1 hour, no quiet hours
    ))

Title and body are ``%(name)s`` templates filled from the ``params`` given to ``notify``.
"""

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

ASSIGNMENT_TTL = 24 * 60 * 60  # new work: still worth showing a day later
ALARM_TTL = 60 * 60  # an alarm older than an hour is history, not an alarm
URGENCIES = ("very-low", "low", "normal", "high")  # RFC 8030 section 5.3


class Channel(StrEnum):
    PUSH = "push"  # the inbox, and the phone buzzes
    INAPP = "inapp"  # the inbox only


@dataclass(frozen=True)
class Kind:
    """One kind of notification. ``ttl`` and ``urgency`` default from ``alarm``."""

    name: str
    label: Any  # lazy string: what the preferences page calls it
    title: Any  # lazy string template
    body: Any  # lazy string template
    alarm: bool = False  # alarms are urgent and ignore quiet hours
    ttl: int | None = None  # seconds the push service keeps it for an unreachable phone
    urgency: str | None = None
    default_channel: Channel = Channel.PUSH
    quiet: bool | None = None  # held back during quiet hours; default: every kind but alarms
    roles: frozenset[str] | None = None  # who can receive it (preferences page); None: anyone

    def __post_init__(self):
        if not self.name or len(self.name) > 64:
            raise ValueError("a notification kind needs a name of at most 64 characters")
        if self.ttl is None:
            object.__setattr__(self, "ttl", ALARM_TTL if self.alarm else ASSIGNMENT_TTL)
        if self.urgency is None:
            object.__setattr__(self, "urgency", "high" if self.alarm else "normal")
        if self.quiet is None:
            object.__setattr__(self, "quiet", not self.alarm)
        if self.urgency not in URGENCIES:
            raise ValueError(f"urgency must be one of {URGENCIES}")
        if self.ttl < 0:
            raise ValueError("ttl must not be negative")
        object.__setattr__(self, "default_channel", Channel(self.default_channel))

    def for_role(self, role: str) -> bool:
        return self.roles is None or role in self.roles


_KINDS: dict[str, Kind] = {}


def declare(kind: Kind) -> Kind:
    """Add a kind; declaring the same name again (a second app, a reload) replaces it."""
    _KINDS[kind.name] = kind
    return kind


def forget(name: str) -> None:
    """Remove a kind (tests declare their own and clean up)."""
    _KINDS.pop(name, None)


def get(name: str) -> Kind:
    try:
        return _KINDS[name]
    except KeyError:
        raise KeyError(f"notification kind {name!r} was never declared") from None


def all_kinds() -> list[Kind]:
    return sorted(_KINDS.values(), key=lambda k: k.name)
