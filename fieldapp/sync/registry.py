"""The typed registry of record types the phone may send."""

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from pydantic import BaseModel


class Kind(StrEnum):
    FACT = "fact"  # append-only: a scan, a proof of delivery, a handover; never conflicts
    VERSIONED = "versioned"  # changed by office and phone alike: carries a version


@dataclass(frozen=True)
class ApplyContext:
    """Who sent a mutation, from which phone, and when (device and server clocks)."""

    user: Any
    device: Any
    mutation_id: str
    device_time: Any
    received_at: Any


@dataclass(frozen=True)
class Current:
    """A versioned record as the server holds it now."""

    version: int
    fields: dict[str, Any]


@dataclass(frozen=True)
class RecordType:
    """What the engine needs to know about one kind of record.

    ``apply(ctx, payload)`` is the domain's service function (the same one the online form
    calls); it raises ``fieldapp.rules.errors.RuleViolation`` to reject. For versioned types,
    ``load(ctx, record_id)`` returns the ``Current`` record or None, and ``apply`` receives only
    the fields the ownership rules let through. ``file_fields`` name payload fields holding
    SHA-256 references to uploaded files (a string or a list of strings).
    """

    name: str
    schema: type[BaseModel]
    kind: Kind
    apply: Callable[[ApplyContext, BaseModel], Any]
    load: Callable[[ApplyContext, str], Current | None] | None = None
    worker_fields: frozenset[str] = field(default_factory=frozenset)
    office_fields: frozenset[str] = field(default_factory=frozenset)
    file_fields: tuple[str, ...] = ()
    roles: frozenset[str] | None = None  # None: any signed-in user may send it
    # For the phone's outbox page: what the record is called, its fields' labels (lazy
    # translated strings), and which payload field names it in a list.
    label: object = ""
    labels: dict[str, object] = field(default_factory=dict)
    summary_field: str | None = None

    def __post_init__(self):
        if self.kind is Kind.VERSIONED and self.load is None:
            raise ValueError(f"versioned record type {self.name} needs a load function")
        if "id" not in self.schema.model_fields:
            raise ValueError(f"record type {self.name}: the payload needs the record's own id")


_TYPES: dict[str, RecordType] = {}


def register(record_type: RecordType) -> RecordType:
    """Add a record type; registering the same name again (a second app) replaces it."""
    _TYPES[record_type.name] = record_type
    return record_type


def get(name: str) -> RecordType | None:
    return _TYPES.get(name)


def all_types() -> list[RecordType]:
    return sorted(_TYPES.values(), key=lambda t: t.name)


def describe_for_phone() -> dict:
    """Labels the outbox page shows, in the current language, per record type."""
    return {
        t.name: {
            "label": str(t.label) or t.name,
            "labels": {name: str(text) for name, text in t.labels.items()},
            "files": list(t.file_fields),
            "summary": t.summary_field,
        }
        for t in all_types()
    }
