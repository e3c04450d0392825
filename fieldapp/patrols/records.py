"""The guard duty record types the phone sends (all append-only facts)."""

import re
from typing import Annotated, Literal

from flask_babel import lazy_gettext as _l
from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from fieldapp.models import Role
from fieldapp.patrols import service
from fieldapp.sync import registry
from fieldapp.sync.engine import UUID_PATTERN
from fieldapp.sync.registry import Kind, RecordType


def _blank_to_none(value):
    """An empty form field (or one the phone could not fill, like GPS) means "not given"."""
    return None if isinstance(value, str) and not value.strip() else value


Id = Annotated[str, Field(pattern=UUID_PATTERN)]
OptFloat = Annotated[float | None, BeforeValidator(_blank_to_none)]
OptTime = Annotated[AwareDatetime | None, BeforeValidator(_blank_to_none)]


def text(max_length: int):
    """Optional text of at most ``max_length`` characters; empty means not given."""
    return Annotated[
        Annotated[str, Field(max_length=max_length)] | None, BeforeValidator(_blank_to_none)
    ]


OptText = text(2000)
Short = text(80)
ShiftId = Annotated[int, Field(ge=1)]
Sha = Annotated[str | None, BeforeValidator(_blank_to_none)]

GUARDS = frozenset({Role.GUARD})
MANAGERS = service.MANAGERS


class Located(BaseModel):
    latitude: OptFloat = Field(default=None, ge=-90, le=90)
    longitude: OptFloat = Field(default=None, ge=-180, le=180)
    accuracy: OptFloat = Field(default=None, ge=0)


class SignInPayload(Located):
    id: Id
    shift_id: ShiftId
    action: Literal["in", "out"] = "in"


class ScanPayload(Located):
    id: Id
    shift_id: ShiftId
    code: str = Field(min_length=1, max_length=200)
    manual: bool = False
    note: OptText = None
    hazard: bool = False
    photo: Sha = None


class IncidentPayload(BaseModel):
    id: Id
    shift_id: ShiftId
    incident_type: Literal[tuple(service.INCIDENT_TYPES)]  # type: ignore[valid-type]
    severity: Literal["minor", "major"]
    place: text(120) = None
    description: OptText = None
    people: OptText = None
    # PAT-06: whether the person opened their bag themselves; there is no "searched" option.
    opened_voluntarily: Literal["yes", "no", ""] | None = None
    photos: list[str] = Field(default_factory=list, max_length=10)
    step_report_at: OptTime = None
    step_disperse_at: OptTime = None
    step_protect_at: OptTime = None
    step_rescue_at: OptTime = None
    step_stop_at: OptTime = None


class GateEntryPayload(BaseModel):
    id: Id
    shift_id: ShiftId
    entry_kind: Literal["visitor", "vehicle"]
    direction: Literal["in", "out"] = "in"
    name: Short = None
    id_type: Literal[tuple(service.ID_TYPES)] | None = None  # type: ignore[valid-type]
    id_number: text(40) = None
    organisation: text(120) = None
    host: Short = None
    purpose: text(200) = None
    host_notified: bool = False
    plate: text(16) = None
    driver: Short = None
    goods: text(200) = None
    pass_number: text(40) = None


class GateExitPayload(BaseModel):
    id: Id
    shift_id: ShiftId
    entry_id: Id


EQUIPMENT_FIELD = re.compile(r"^eq_([0-9]{1,12})$")


class HandoverPayload(BaseModel):
    """The handover form; each item of the post's equipment register is a radio group named
    ``eq_<item id>`` with the condition found: ok, damaged or missing (PAT-23)."""

    model_config = ConfigDict(extra="allow")

    id: Id
    shift_id: ShiftId
    incoming_guard_id: int
    equipment: OptText = None
    open_incidents: OptText = None
    visitors_inside: OptText = None
    notes: OptText = None
    outgoing_signature: str
    incoming_signature: str

    @model_validator(mode="after")
    def _only_equipment_extras(self):
        for name, value in (self.model_extra or {}).items():
            if not EQUIPMENT_FIELD.match(name):
                raise ValueError(f"unknown field {name}")
            if value not in (None, "", "ok", "damaged", "missing"):
                raise ValueError(f"{name}: ok, damaged or missing")
        return self

    def equipment_conditions(self) -> dict[int, str]:
        return {
            int(EQUIPMENT_FIELD.match(name).group(1)): value
            for name, value in (self.model_extra or {}).items()
            if value
        }


class RoundEndedEarlyPayload(BaseModel):
    id: Id
    shift_id: ShiftId
    round_number: Annotated[int, Field(ge=1, le=1000)]
    reason: text(500) = None


class SpotCheckPayload(Located):
    id: Id
    site_id: int
    guard_id: Annotated[int | None, BeforeValidator(_blank_to_none)] = None
    guard_present: bool = False
    in_uniform: bool = False
    findings: OptText = None
    photo: Sha = None
    v_off_post: bool = False
    v_reading: bool = False
    v_drinking: bool = False
    v_gambling: bool = False
    v_abuse: bool = False
    v_bribes: bool = False
    v_visitors: bool = False
    v_secrets: bool = False


for record_type in (
    RecordType(
        name="patrol.sign_in",
        schema=SignInPayload,
        kind=Kind.FACT,
        apply=service.apply_sign_in,
        roles=GUARDS,
        label=_l("Shift sign-in"),
        labels={"action": _l("In or out")},
        summary_field="action",
    ),
    RecordType(
        name="patrol.scan",
        schema=ScanPayload,
        kind=Kind.FACT,
        apply=service.apply_scan,
        file_fields=("photo",),
        roles=GUARDS,
        label=_l("Checkpoint scan"),
        labels={"code": _l("Checkpoint code"), "note": _l("Note")},
        summary_field="code",
    ),
    RecordType(
        name="patrol.incident",
        schema=IncidentPayload,
        kind=Kind.FACT,
        apply=service.apply_incident,
        file_fields=("photos",),
        roles=GUARDS,
        label=_l("Incident"),
        labels={
            "place": _l("Place"),
            "description": _l("What happened"),
            "people": _l("People involved"),
        },
        summary_field="place",
    ),
    RecordType(
        name="patrol.gate_entry",
        schema=GateEntryPayload,
        kind=Kind.FACT,
        apply=service.apply_gate_entry,
        roles=GUARDS,
        label=_l("Gate register"),
        labels={
            "name": _l("Name"),
            "id_number": _l("ID number"),
            "organisation": _l("Organisation"),
            "host": _l("Visiting"),
            "purpose": _l("Purpose"),
            "plate": _l("Plate"),
            "driver": _l("Driver"),
            "goods": _l("Goods"),
            "pass_number": _l("Pass number"),
        },
        summary_field="name",
    ),
    RecordType(
        name="patrol.gate_exit",
        schema=GateExitPayload,
        kind=Kind.FACT,
        apply=service.apply_gate_exit,
        roles=GUARDS,
        label=_l("Visitor left"),
    ),
    RecordType(
        name="patrol.handover",
        schema=HandoverPayload,
        kind=Kind.FACT,
        apply=service.apply_handover,
        file_fields=("outgoing_signature", "incoming_signature"),
        roles=GUARDS,
        label=_l("Shift handover"),
        labels={
            "equipment": _l("Keys, radios and equipment"),
            "open_incidents": _l("Open incidents"),
            "visitors_inside": _l("Visitors still inside"),
            "notes": _l("Notes"),
        },
        summary_field="notes",
    ),
    RecordType(
        name="patrol.round_ended_early",
        schema=RoundEndedEarlyPayload,
        kind=Kind.FACT,
        apply=service.apply_round_ended_early,
        roles=GUARDS,
        label=_l("Round ended early"),
        labels={"round_number": _l("Round"), "reason": _l("Why the round ended early")},
        summary_field="reason",
    ),
    RecordType(
        name="patrol.spot_check",
        schema=SpotCheckPayload,
        kind=Kind.FACT,
        apply=service.apply_spot_check,
        file_fields=("photo",),
        roles=MANAGERS,
        label=_l("Spot check"),
        labels={"findings": _l("Findings")},
        summary_field="findings",
    ),
):
    registry.register(record_type)
