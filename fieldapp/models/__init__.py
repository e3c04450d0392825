"""Models shared by every domain. Each domain keeps its own in ``fieldapp/<domain>/models.py``."""

from fieldapp.models.org import Organisation, Site, SiteKind, Team, TeamKind
from fieldapp.models.types import UTCDateTime, new_uuid, utcnow
from fieldapp.models.user import Device, LoginAttempt, Role, User

__all__ = [
    "Device",
    "LoginAttempt",
    "Organisation",
    "Role",
    "Site",
    "SiteKind",
    "Team",
    "TeamKind",
    "UTCDateTime",
    "User",
    "new_uuid",
    "utcnow",
]

# Domain models register with the metadata when imported; migrations and tests need them all.
import fieldapp.audit.models  # noqa: E402, F401
import fieldapp.complaints.models  # noqa: E402, F401  (imports fieldapp.visits.models too)
import fieldapp.dashboard.models  # noqa: E402, F401
import fieldapp.deliveries.models  # noqa: E402, F401
import fieldapp.patrols.models  # noqa: E402, F401
import fieldapp.push.models  # noqa: E402, F401
import fieldapp.sync.models  # noqa: E402, F401
