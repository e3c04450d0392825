"""The complaint taken in the field: a fact that creates the case and its acceptance slip."""

from datetime import datetime
from typing import Annotated, Literal

from flask_babel import lazy_gettext as _l
from pydantic import BaseModel, BeforeValidator, Field

from fieldapp.complaints import service
from fieldapp.rules.complaints import ComplaintSeverity
from fieldapp.sync import registry
from fieldapp.sync.engine import UUID_PATTERN
from fieldapp.sync.registry import Kind, RecordType


def _blank_to_none(value):
    return None if isinstance(value, str) and not value.strip() else value


Id = Annotated[str, Field(pattern=UUID_PATTERN)]
OptId = Annotated[
    Annotated[str, Field(pattern=UUID_PATTERN)] | None, BeforeValidator(_blank_to_none)
]
OptInt = Annotated[int | None, BeforeValidator(_blank_to_none)]
OptText = Annotated[Annotated[str, Field(max_length=4000)] | None, BeforeValidator(_blank_to_none)]
OptShort = Annotated[Annotated[str, Field(max_length=120)] | None, BeforeValidator(_blank_to_none)]
# From <input type="datetime-local">: the site's wall clock when it has no zone.
OptTime = Annotated[datetime | None, BeforeValidator(_blank_to_none)]


class IntakePayload(BaseModel):
    id: Id
    site_id: OptInt = None
    client_name: OptShort = None
    visit_id: OptId = None
    complainant: str = Field(min_length=1, max_length=80)
    complainant_phone: Annotated[
        str | None, BeforeValidator(_blank_to_none), Field(max_length=32)
    ] = None
    channel: Literal[service.CHANNELS]  # type: ignore[valid-type]
    first_known_at: OptTime = None
    subject: str = Field(min_length=1, max_length=200)
    content: OptText = None
    category: Literal[service.CATEGORIES]  # type: ignore[valid-type]
    cause_class: Literal[service.CAUSE_CLASSES]  # type: ignore[valid-type]
    severity: Literal[tuple(s.value for s in ComplaintSeverity)]  # type: ignore[valid-type]
    request: OptText = None
    solved_on_spot: bool = False


# Anyone may take a complaint, for any client: nobody can refuse it as "not my area" (CMP-11).
INTAKE = registry.register(
    RecordType(
        name="complaint.intake",
        schema=IntakePayload,
        kind=Kind.FACT,
        apply=service.take_complaint,
        roles=None,
        label=_l("Complaint"),
        labels={
            "client_name": _l("Client"),
            "complainant": _l("Complainant"),
            "complainant_phone": _l("Complainant's phone"),
            "first_known_at": _l("First known at"),
            "subject": _l("Who or what is complained about"),
            "content": _l("What happened"),
            "request": _l("The client's request"),
        },
        summary_field="subject",
    )
)
