"""The visit record types the phone sends: check-in, check-out and the visit report (facts)."""

from datetime import date
from typing import Annotated

from flask_babel import lazy_gettext as _l
from pydantic import BaseModel, BeforeValidator, Field

from fieldapp.models import Role
from fieldapp.sync import registry
from fieldapp.sync.engine import UUID_PATTERN
from fieldapp.sync.registry import Kind, RecordType
from fieldapp.visits import service


def _blank_to_none(value):
    """An empty form field (or one the phone could not fill, like GPS) means "not given"."""
    return None if isinstance(value, str) and not value.strip() else value


Id = Annotated[str, Field(pattern=UUID_PATTERN)]
OptId = Annotated[
    Annotated[str, Field(pattern=UUID_PATTERN)] | None, BeforeValidator(_blank_to_none)
]
OptFloat = Annotated[float | None, BeforeValidator(_blank_to_none)]
OptText = Annotated[Annotated[str, Field(max_length=4000)] | None, BeforeValidator(_blank_to_none)]
OptShort = Annotated[Annotated[str, Field(max_length=80)] | None, BeforeValidator(_blank_to_none)]
OptDate = Annotated[date | None, BeforeValidator(_blank_to_none)]
OptInt = Annotated[int | None, BeforeValidator(_blank_to_none)]
Sha = Annotated[str | None, BeforeValidator(_blank_to_none)]
Rating = Annotated[int, Field(ge=1, le=5)]

VISITORS = frozenset({Role.REP, Role.SUPERVISOR, Role.ADMIN})


class PresencePayload(BaseModel):
    id: Id
    visit_id: Id
    latitude: OptFloat = Field(default=None, ge=-90, le=90)
    longitude: OptFloat = Field(default=None, ge=-180, le=180)
    accuracy: OptFloat = Field(default=None, ge=0)
    note: OptText = None


class FollowUp(BaseModel):
    action: str = Field(min_length=1, max_length=2000)
    due_date: OptDate = None
    owner_id: OptInt = None


class ReportPayload(BaseModel):
    id: Id
    visit_id: Id
    replaces_id: OptId = None
    purpose: OptText = None
    discussed: OptText = None
    problems_solved: OptText = None
    client_opinions: OptText = None
    survey_handed_out: bool = False
    photos: list[str] = Field(default_factory=list, max_length=10)
    timeliness: Rating
    skill: Rating
    attitude: Rating
    signature: Sha = None
    signed_by: OptShort = None
    follow_ups: list[FollowUp] = Field(default_factory=list, max_length=20)
    # The phone's form has one follow-up row in plain fields.
    follow_up_action: OptText = None
    follow_up_due: OptDate = None
    follow_up_owner_id: OptInt = None

    def all_follow_ups(self) -> list[FollowUp]:
        extra = []
        if self.follow_up_action:
            extra.append(
                FollowUp(
                    action=self.follow_up_action,
                    due_date=self.follow_up_due,
                    owner_id=self.follow_up_owner_id,
                )
            )
        return [*self.follow_ups, *extra]


_PRESENCE_LABELS = {
    "latitude": _l("Latitude"),
    "longitude": _l("Longitude"),
    "accuracy": _l("GPS accuracy (m)"),
    "note": _l("Note"),
}

CHECK_IN = registry.register(
    RecordType(
        name="visit.check_in",
        schema=PresencePayload,
        kind=Kind.FACT,
        apply=service.apply_check_in,
        roles=VISITORS,
        label=_l("Visit check-in"),
        labels=_PRESENCE_LABELS,
    )
)
CHECK_OUT = registry.register(
    RecordType(
        name="visit.check_out",
        schema=PresencePayload,
        kind=Kind.FACT,
        apply=service.apply_check_out,
        roles=VISITORS,
        label=_l("Visit check-out"),
        labels=_PRESENCE_LABELS,
    )
)
REPORT = registry.register(
    RecordType(
        name="visit.report",
        schema=ReportPayload,
        kind=Kind.FACT,
        apply=service.apply_report,
        file_fields=("photos", "signature"),
        roles=VISITORS,
        label=_l("Visit report"),
        labels={
            "purpose": _l("Purpose"),
            "discussed": _l("What was discussed"),
            "problems_solved": _l("Problems solved"),
            "client_opinions": _l("The client's opinions"),
            "timeliness": _l("Timeliness"),
            "skill": _l("Skill"),
            "attitude": _l("Attitude"),
            "signed_by": _l("Signed by"),
            "follow_up_action": _l("Follow-up"),
            "follow_up_due": _l("Due"),
        },
        summary_field="discussed",
    )
)
