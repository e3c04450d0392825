"""Push use cases: raise a notification, keep the inbox, manage subscriptions and preferences."""

import ipaddress
import logging
from collections import defaultdict
from collections.abc import Iterable
from datetime import date, datetime, time
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_datetime
from flask import current_app
from flask_babel import force_locale
from sqlalchemy import event as sa_event
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from fieldapp.extensions import db
from fieldapp.models import Device, Organisation, User, utcnow
from fieldapp.push import kinds, queue
from fieldapp.push.kinds import Channel, Kind
from fieldapp.push.models import (
    Delivery,
    Notification,
    Preference,
    PushDedupe,
    PushEvent,
    PushSubscription,
    QuietHours,
)
from fieldapp.push.quiet import quiet_until

log = logging.getLogger(__name__)
BATCH = 100  # deliveries per job
PENDING_KEY = "fieldapp.push.pending"

# Push services browsers use; an endpoint elsewhere is refused, so a subscription cannot make
# the server post to arbitrary hosts. PUSH_EXTRA_HOSTS (FIELDAPP_PUSH_HOSTS) adds more.
PUSH_SERVICE_HOSTS = (
    "fcm.googleapis.com",  # Chrome, Android browsers
    "push.services.mozilla.com",  # Firefox
    "push.apple.com",  # Safari, iPhone Home Screen apps
    "notify.windows.com",  # Edge
)


class InvalidSubscription(ValueError):
    pass


# ----- raising a notification ---------------------------------------------------------------


def _jsonable(params: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, date | datetime) else v for k, v in params.items()}


def _localised(params: dict[str, Any], locale: str, tz: ZoneInfo) -> dict[str, Any]:
    """Times and dates in the recipient's language and the organisation's time zone."""
    out = {}
    for key, value in params.items():
        if isinstance(value, datetime):
            out[key] = format_datetime(value, "short", tzinfo=tz, locale=locale)
        elif isinstance(value, date):
            out[key] = format_date(value, "medium", locale=locale)
        else:
            out[key] = value
    return out


def _render(template: Any, params: dict[str, Any]) -> str:
    """A lazy string in the forced locale, filled in; a broken translation falls back."""
    translated = str(template)
    try:
        return translated % params if params else translated
    except (KeyError, ValueError, TypeError):
        source = getattr(template, "_args", (translated,))[0]
        return source % params if params else source


def notify(
    kind: str | Kind,
    *,
    user_ids: Iterable[int],
    org_id: int,
    url: str,
    params: dict[str, Any] | None = None,
    dedupe_key: str | None = None,
) -> PushEvent | None:
    """Raise one event for some people of one organisation.

    Each recipient gets an inbox line (title and body in their language) and, if they chose
    push for this kind, a delivery to each of their phones: at once, or at the end of their
    quiet hours unless the kind is an alarm. Nothing is committed here: it is part of the
    caller's transaction, and the pushes go out when that commits.

    Raising an event with a ``dedupe_key`` already used in the organisation does nothing and
    returns None (that is what makes the rule clock safe to run every minute).
    """
    kind = kinds.get(kind) if isinstance(kind, str) else kind
    params = dict(params or {})
    now = utcnow()  # not the rule clock's "now": quiet hours and TTL run on real time
    if not url.startswith("/") or url.startswith("//"):
        raise ValueError("url must be a path inside the app, e.g. /deliveries/42")
    if dedupe_key is not None:
        # The event, or what retention kept of it once deleted: one statement, so a deletion
        # committing meanwhile is seen either before or after, never neither.
        exists = db.session.scalar(
            db.select(
                db.or_(
                    db.select(PushEvent.id)
                    .where(PushEvent.org_id == org_id, PushEvent.dedupe_key == dedupe_key)
                    .exists(),
                    db.select(PushDedupe.org_id)
                    .where(PushDedupe.org_id == org_id, PushDedupe.dedupe_key == dedupe_key)
                    .exists(),
                )
            )
        )
        if exists:
            return None
    event = PushEvent(
        org_id=org_id,
        kind=kind.name,
        dedupe_key=dedupe_key,
        url=url[:512],
        params=_jsonable(params),
        alarm=kind.alarm,
        ttl=kind.ttl,
        urgency=kind.urgency,
        created_at=now,
    )
    try:
        with db.session.begin_nested():  # a concurrent raise of the same key loses here
            db.session.add(event)
            db.session.flush()
    except IntegrityError:
        return None

    users = db.session.scalars(
        db.select(User).where(
            User.id.in_(set(user_ids)), User.org_id == org_id, User.active.is_(True)
        )
    ).all()
    if not users:
        return event
    ids = [u.id for u in users]
    chosen = dict(
        db.session.execute(
            db.select(Preference.user_id, Preference.channel).where(
                Preference.user_id.in_(ids), Preference.kind == kind.name
            )
        ).all()
    )
    tz_name = db.session.scalar(db.select(Organisation.timezone).where(Organisation.id == org_id))
    tz = ZoneInfo(tz_name or current_app.config["BABEL_DEFAULT_TIMEZONE"])

    default_locale = current_app.config["BABEL_DEFAULT_LOCALE"]
    rendered: dict[str, tuple[str, str]] = {}
    rows = []
    for user in users:
        locale = user.locale or default_locale
        if locale not in rendered:
            with force_locale(locale):
                local_params = _localised(params, locale, tz)
                rendered[locale] = (
                    _render(kind.title, local_params)[:200],
                    _render(kind.body, local_params),
                )
        title, body = rendered[locale]
        channel = chosen.get(user.id, kind.default_channel)
        rows.append(
            {
                "event_id": event.id,
                "user_id": user.id,
                "title": title,
                "body": body,
                "channel": channel,
                "created_at": now,
            }
        )
    created = db.session.execute(
        db.insert(Notification).returning(Notification.id, Notification.user_id), rows
    ).all()
    push_to = {
        user_id: nid
        for nid, user_id in created
        if chosen.get(user_id, kind.default_channel) == Channel.PUSH
    }
    if push_to:
        _add_deliveries(kind, push_to, tz_name, now)
    return event


def _add_deliveries(kind: Kind, push_to: dict[int, int], tz_name: str | None, now) -> None:
    """One delivery per phone of each recipient, held to the end of their quiet hours."""
    subscriptions = db.session.execute(
        db.select(PushSubscription.id, PushSubscription.user_id)
        .outerjoin(Device, PushSubscription.device_id == Device.id)
        .where(PushSubscription.user_id.in_(list(push_to)), Device.revoked_at.is_(None))
    ).all()
    if not subscriptions:
        return
    held: dict[int, datetime] = {}
    if kind.quiet:
        tz = tz_name or current_app.config["BABEL_DEFAULT_TIMEZONE"]
        for quiet in db.session.scalars(
            db.select(QuietHours).where(QuietHours.user_id.in_(list(push_to)))
        ):
            until = quiet_until(now, quiet.start, quiet.end, tz)
            if until is not None:
                held[quiet.user_id] = until
    rows = [
        {
            "notification_id": push_to[user_id],
            "subscription_id": sub_id,
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": held.get(user_id, now),
            "created_at": now,
        }
        for sub_id, user_id in subscriptions
    ]
    created = db.session.execute(
        db.insert(Delivery).returning(Delivery.id, Delivery.next_attempt_at), rows
    ).all()
    pending = db.session.info.setdefault(PENDING_KEY, [])
    pending.extend((did, (when - now).total_seconds()) for did, when in created)


@sa_event.listens_for(Session, "after_commit")
def _send_after_commit(session: Session) -> None:
    """Hand the deliveries of a committed transaction to the queue (never before commit)."""
    if session.in_nested_transaction():  # a savepoint: the real commit is still to come
        return
    pending = session.info.pop(PENDING_KEY, None)
    if pending:
        try:
            enqueue(pending)
        except Exception:  # e.g. Redis down: the rows are saved, the clock's sweep sends them
            log.exception("push: could not queue %d deliveries", len(pending))


@sa_event.listens_for(Session, "after_rollback")
def _forget_after_rollback(session: Session) -> None:
    if session.in_nested_transaction():
        return  # deliveries of a rolled-back savepoint no longer exist: sending skips them
    session.info.pop(PENDING_KEY, None)


def enqueue(pending: list[tuple[int, float]]) -> None:
    """Queue deliveries in batches, each batch after its delay (quiet hours)."""
    by_delay: dict[int, list[int]] = defaultdict(list)
    for delivery_id, delay in pending:
        by_delay[max(0, int(delay + 0.999))].append(delivery_id)
    q = queue.get_queue()
    for delay, ids in sorted(by_delay.items()):
        for start in range(0, len(ids), BATCH):
            q.enqueue(queue.DELIVER, ids[start : start + BATCH], delay=delay)


def dispatch_due(now: datetime | None = None, limit: int = 10_000) -> int:
    """Queue every delivery that is due and not being sent (the sweep after a lost job).

    Runs with each tick of the rule clock. Sending claims each delivery first, so a delivery
    queued twice is still sent once.
    """
    now = now or utcnow()
    ids = list(
        db.session.scalars(
            db.select(Delivery.id)
            .where(
                db.or_(
                    db.and_(Delivery.status == "pending", Delivery.next_attempt_at <= now),
                    db.and_(Delivery.status == "sending", Delivery.claimed_until < now),
                )
            )
            .order_by(Delivery.id)
            .limit(limit)
        )
    )
    if ids:
        enqueue([(i, 0) for i in ids])
    return len(ids)


def withdraw(org_id: int, dedupe_key: str) -> int:
    """An alarm later facts contradict (a sign-in synced late): off the inbox, not sent.

    Its inbox lines are marked read and its pushes still waiting (quiet hours, retries) are
    dropped; the event itself stays, for the record. Returns the inbox lines taken off.
    """
    event_id = db.session.scalar(
        db.select(PushEvent.id).where(
            PushEvent.org_id == org_id, PushEvent.dedupe_key == dedupe_key
        )
    )
    if event_id is None:
        return 0
    lines = db.select(Notification.id).where(Notification.event_id == event_id)
    db.session.execute(
        db.update(Delivery)
        .where(Delivery.notification_id.in_(lines), Delivery.status == "pending")
        .values(status="withdrawn")
    )
    result = db.session.execute(
        db.update(Notification)
        .where(Notification.event_id == event_id, Notification.read_at.is_(None))
        .values(read_at=utcnow())
    )
    return result.rowcount


# ----- the inbox ----------------------------------------------------------------------------


def unread_count(user: User) -> int:
    return db.session.scalar(
        db.select(db.func.count(Notification.id)).where(
            Notification.user_id == user.id, Notification.read_at.is_(None)
        )
    )


def inbox(user: User, limit: int = 100) -> list[Notification]:
    return list(
        db.session.scalars(
            db.select(Notification)
            .where(Notification.user_id == user.id)
            .order_by(Notification.created_at.desc(), Notification.id.desc())
            .limit(limit)
        )
    )


def own_notification(user: User, notification_id: int) -> Notification | None:
    notification = db.session.get(Notification, notification_id)
    if notification is None or notification.user_id != user.id:
        return None
    return notification


def mark_read(notification: Notification) -> None:
    if notification.read_at is None:
        notification.read_at = utcnow()
        db.session.commit()


def mark_all_read(user: User) -> int:
    result = db.session.execute(
        db.update(Notification)
        .where(Notification.user_id == user.id, Notification.read_at.is_(None))
        .values(read_at=utcnow())
    )
    db.session.commit()
    return result.rowcount


# ----- subscriptions ------------------------------------------------------------------------


def _allowed_endpoint(endpoint: str) -> bool:
    parts = urlsplit(endpoint)
    host = (parts.hostname or "").lower()
    extra = [h.lower() for h in current_app.config.get("PUSH_EXTRA_HOSTS", ())]
    if parts.scheme == "http":
        # Only a push service on this machine that the operator named (tests, development).
        try:
            loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        return loopback and host in extra
    if parts.scheme != "https":
        return False
    return any(host == h or host.endswith("." + h) for h in (*PUSH_SERVICE_HOSTS, *extra))


def subscribe(user: User, device_id: str | None, data: dict, user_agent: str) -> PushSubscription:
    """Store (or refresh) the subscription a page sent; an endpoint belongs to one user."""
    endpoint = data.get("endpoint")
    keys = data.get("keys") or {}
    p256dh, auth = keys.get("p256dh"), keys.get("auth")
    if not (isinstance(endpoint, str) and isinstance(p256dh, str) and isinstance(auth, str)):
        raise InvalidSubscription("endpoint, keys.p256dh and keys.auth are required")
    if len(endpoint) > 1024 or not _allowed_endpoint(endpoint):
        raise InvalidSubscription("this push service is not allowed")
    if not (80 <= len(p256dh) <= 128 and 16 <= len(auth) <= 64):
        raise InvalidSubscription("the subscription keys have the wrong length")
    device = db.session.get(Device, device_id) if device_id else None
    if device is None or device.user_id != user.id:
        device_id = None
    now = utcnow()
    subscription = db.session.scalar(
        db.select(PushSubscription).where(PushSubscription.endpoint == endpoint)
    )
    if subscription is None:
        subscription = PushSubscription(endpoint=endpoint, created_at=now)
        db.session.add(subscription)
    elif subscription.user_id != user.id:
        # Another person now uses this browser: nothing of theirs may reach it.
        db.session.execute(db.delete(Delivery).where(Delivery.subscription_id == subscription.id))
    subscription.user_id = user.id
    subscription.device_id = device_id
    subscription.p256dh = p256dh
    subscription.auth = auth
    subscription.user_agent = (user_agent or "")[:255]
    subscription.last_seen_at = now
    db.session.commit()
    return subscription


def unsubscribe(user: User, endpoint: str) -> bool:
    result = db.session.execute(
        db.delete(PushSubscription).where(
            PushSubscription.user_id == user.id, PushSubscription.endpoint == endpoint
        )
    )
    db.session.commit()
    return result.rowcount > 0


def forget_device(user: User, device_id: str | None) -> int:
    """On logout: the phone stops getting this user's pushes."""
    if not device_id:
        return 0
    result = db.session.execute(
        db.delete(PushSubscription).where(
            PushSubscription.user_id == user.id, PushSubscription.device_id == device_id
        )
    )
    db.session.commit()
    return result.rowcount


def subscriptions_of(user: User) -> list[PushSubscription]:
    return list(
        db.session.scalars(
            db.select(PushSubscription)
            .where(PushSubscription.user_id == user.id)
            .order_by(PushSubscription.created_at)
        )
    )


# ----- preferences --------------------------------------------------------------------------


def kinds_for(user: User) -> list[Kind]:
    return [k for k in kinds.all_kinds() if k.for_role(user.role)]


def channels_of(user: User) -> dict[str, str]:
    """The channel per kind the user can receive: their choice, else the kind's default."""
    chosen = dict(
        db.session.execute(
            db.select(Preference.kind, Preference.channel).where(Preference.user_id == user.id)
        ).all()
    )
    return {k.name: chosen.get(k.name, k.default_channel.value) for k in kinds_for(user)}


def quiet_hours_of(user: User) -> tuple[time | None, time | None]:
    quiet = db.session.get(QuietHours, user.id)
    return (quiet.start, quiet.end) if quiet else (None, None)


def save_preferences(
    user: User, channels: dict[str, str], start: time | None, end: time | None
) -> None:
    known = {k.name for k in kinds_for(user)}
    for name, channel in channels.items():
        if name not in known:
            continue
        channel = Channel(channel).value
        pref = db.session.get(Preference, (user.id, name))
        if pref is None:
            db.session.add(Preference(user_id=user.id, kind=name, channel=channel))
        else:
            pref.channel = channel
    quiet = db.session.get(QuietHours, user.id)
    if start is None or end is None or start == end:
        if quiet is not None:
            db.session.delete(quiet)
    elif quiet is None:
        db.session.add(QuietHours(user_id=user.id, start=start, end=end))
    else:
        quiet.start, quiet.end = start, end
    db.session.commit()
