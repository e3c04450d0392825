"""PAT-09: the supervisor's "on site" page (big arrive/leave buttons, offline), on the patrols
blueprint. Imported at the end of ``fieldapp.patrols.routes``."""

from datetime import datetime
from zoneinfo import ZoneInfo

from flask import render_template
from flask_login import current_user

import fieldapp.patrols.presence_records  # noqa: F401  (registers patrol.presence)
from fieldapp.access import roles_required
from fieldapp.models import Role
from fieldapp.patrols import presence
from fieldapp.patrols.routes import bp
from fieldapp.patrols.service import onsite_hours
from fieldapp.rules.patrols import SUPERVISOR_MIN_ONSITE_HOURS


@bp.get("/presence")
@roles_required(Role.SUPERVISOR)
def presence_page():
    """Tap "Arrived on site" / "Leaving site" at a site; today's hours and the last days'."""
    tz_name = current_user.organisation.timezone
    today = datetime.now(ZoneInfo(tz_name)).date()
    return render_template(
        "patrols/presence.html",
        states=presence.today_by_site(current_user, today, tz_name),
        hours=onsite_hours(current_user, today, tz_name),
        days=presence.recent_days(current_user, today, tz_name),
        minimum=SUPERVISOR_MIN_ONSITE_HOURS,
        action_labels=presence.ACTION_LABELS,
    )
