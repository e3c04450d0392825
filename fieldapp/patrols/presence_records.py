"""The supervisor's "Arrived on site" / "Leaving site" tap (PAT-09), an append-only fact.

Imported with the patrols pages; registers the record type, the offline page and demo taps.
"""

from typing import Annotated, Literal

from flask_babel import lazy_gettext as _l
from pydantic import Field

from fieldapp import demo
from fieldapp.models import Role
from fieldapp.patrols import presence
from fieldapp.patrols.records import Id, Located
from fieldapp.sync import changes, registry
from fieldapp.sync.registry import Kind, RecordType


class PresencePayload(Located):
    """``latitude``/``longitude``/``accuracy`` come from the phone's GPS (refused without)."""

    id: Id
    site_id: Annotated[int, Field(ge=1)]
    action: Literal["arrive", "leave"]


registry.register(
    RecordType(
        name="patrol.presence",
        schema=PresencePayload,
        kind=Kind.FACT,
        apply=presence.apply_presence,
        roles=frozenset({Role.SUPERVISOR}),
        label=_l("On site (arrived or leaving)"),
        labels={"action": _l("Arrived or leaving"), "site_id": _l("Site")},
        summary_field="action",
    )
)

if presence.daypack_pages not in changes.DAYPACK_PAGES:
    changes.DAYPACK_PAGES.append(presence.daypack_pages)
if presence.seed_presence not in demo.DEMO_SEEDERS:
    demo.DEMO_SEEDERS.append(presence.seed_presence)
