"""Push notifications: an inbox that is the truth, and Web Push that makes the phone buzz.

What a domain uses::

    from fieldapp import push

    NEW_STOP = push.declare(push.Kind(name="delivery.new_stop", label=..., title=..., body=...))
    push.notify("delivery.new_stop", user_ids=[courier.id], org_id=courier.org_id,
                url=f"/stops/{stop.id}", params={"shop": shop.name}, dedupe_key=f"stop:{stop.id}")

See ``kinds.py`` for declaring a kind and ``fieldapp.jobs`` for the rule clock. A check that
raises with a ``dedupe_key`` says with ``forget_keys`` when its keys are dead (``retention.py``).
"""

from flask_babel import lazy_gettext as _l

from fieldapp.push.dedupe import dead_if, dead_unless, forget_keys, forget_once_stored
from fieldapp.push.kinds import ALARM_TTL, ASSIGNMENT_TTL, Channel, Kind, declare
from fieldapp.push.service import notify, withdraw

__all__ = [
    "ALARM_TTL",
    "ASSIGNMENT_TTL",
    "Channel",
    "Kind",
    "dead_if",
    "dead_unless",
    "declare",
    "forget_keys",
    "forget_once_stored",
    "notify",
    "withdraw",
]

# The one kind push itself raises: "send me a test notification" on the settings page.
TEST = declare(
    Kind(
        name="push.test",
        label=_l("Test notification"),
        title=_l("Notifications work"),
        body=_l("%(name)s, this phone will buzz for what you chose to hear about."),
        ttl=10 * 60,
        quiet=False,  # the user just asked for it
    )
)
