"""Sending to push services: aes128gcm encryption and VAPID (``webpush``), HTTP (``requests``).

``deliver(ids)`` is the whole job a worker does: claim the deliveries in the database, encrypt
and post them concurrently, write down what each push service answered, and return the ones to
try again later (with how long to wait).
"""

import json
import logging
import random
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime

import requests
from flask import Flask, current_app
from webpush import WebPush, WebPushSubscription

from fieldapp.extensions import db
from fieldapp.models import utcnow
from fieldapp.push import vapid
from fieldapp.push.models import Delivery, Notification, PushEvent, PushSubscription

log = logging.getLogger(__name__)

SENT, GONE, RETRY, FAILED, EXPIRED = "sent", "gone", "retry", "failed", "expired"
MAX_TITLE = 120
MAX_BODY = 600  # Chinese is 3 bytes a character; the whole payload must stay under 4 KB
CLAIM_FOR = timedelta(minutes=5)


@dataclass(frozen=True)
class Outcome:
    result: str  # sent | gone | retry | failed
    status: int | None = None
    retry_after: float | None = None  # seconds, from the push service's Retry-After
    error: str | None = None


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """Retry-After as seconds: either a number of seconds or an HTTP date (RFC 9110)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - now).total_seconds())


class Sender:
    """Encrypts and posts; one per app, shared by the worker's threads."""

    def __init__(self, keys: vapid.KeyPair, subject: str, timeout: tuple[float, float]):
        if not subject.startswith("mailto:") or "@" not in subject:
            raise ValueError("VAPID_SUBJECT must be a mailto: address, e.g. mailto:ops@example.cn")
        self.keys = keys
        self.webpush = WebPush(private_key=keys.private_pem, public_key=keys.public_pem)
        # webpush 1.0.6 writes "mailto:" in front of the subscriber itself.
        self.subscriber = subject.removeprefix("mailto:")
        self.timeout = timeout
        self._local = threading.local()
        self._vapid_cache: dict[str, tuple[float, str]] = {}
        self._vapid_lock = threading.Lock()
        self._proxy_cache: dict[str, dict] = {}

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
            # Looking up proxy variables and .netrc on every request costs a quarter of a
            # send; proxies (HTTPS_PROXY, NO_PROXY) are resolved once per push service instead.
            session.trust_env = False
        return session

    def _proxies(self, endpoint: str) -> dict:
        origin = endpoint.split("/", 3)[:3]
        key = "/".join(origin)
        proxies = self._proxy_cache.get(key)
        if proxies is None:
            proxies = self._proxy_cache[key] = requests.utils.get_environ_proxies(key + "/")
        return proxies

    def _authorization(self, subscription: WebPushSubscription) -> str:
        """The VAPID header for the push service's origin, signed once an hour, not per message.

        (``WebPush.get`` signs a new JWT for every message, which is half the cost of a send,
        and keeps ttl/subscriber on the shared instance; we call its two halves ourselves.)
        """
        audience = f"{subscription.endpoint.scheme}://{subscription.endpoint.host}"
        now = time.time()
        with self._vapid_lock:
            cached = self._vapid_cache.get(audience)
            if cached and cached[0] > now:
                return cached[1]
        header = self.webpush.vapid.get_authorization_header(
            endpoint=subscription.endpoint, subscriber=self.subscriber, expiration=12 * 3600
        )
        with self._vapid_lock:
            self._vapid_cache[audience] = (now + 3600, header)
        return header

    def encrypt(self, payload: bytes, endpoint: str, p256dh: str, auth: str):
        """(subscription, aes128gcm body) for one phone (RFC 8291)."""
        subscription = WebPushSubscription(endpoint=endpoint, keys={"p256dh": p256dh, "auth": auth})
        return subscription, self.webpush._encrypt(payload, subscription)

    def send(
        self, payload: bytes, endpoint: str, p256dh: str, auth: str, ttl: int, urgency: str
    ) -> Outcome:
        try:
            subscription, body = self.encrypt(payload, endpoint, p256dh, auth)
        except Exception as error:  # a broken key from a browser: this one can never work
            return Outcome(FAILED, error=f"encryption: {error}"[:200])
        headers = {
            "Authorization": self._authorization(subscription),
            "Content-Encoding": "aes128gcm",
            "Content-Type": "application/octet-stream",
            "TTL": str(ttl),
            "Urgency": urgency,
        }
        try:
            response = self._session().post(
                endpoint,
                data=body,
                headers=headers,
                timeout=self.timeout,
                proxies=self._proxies(endpoint),
                allow_redirects=False,
            )
        except requests.RequestException as error:
            return Outcome(RETRY, error=type(error).__name__)
        status = response.status_code
        if 200 <= status < 300:
            return Outcome(SENT, status)
        if status in (404, 410):
            return Outcome(GONE, status)
        if status == 429 or status >= 500:
            return Outcome(
                RETRY, status, retry_after_seconds(response.headers.get("Retry-After"), utcnow())
            )
        return Outcome(FAILED, status, error=response.text[:200])


def get_sender(app: Flask | None = None) -> Sender | None:
    """The app's sender, or None while the VAPID keys have not been generated."""
    app = app or current_app._get_current_object()
    state = app.extensions.setdefault("fieldapp.push", {})
    sender = state.get("sender")
    if sender is None:
        keys = vapid.load_keys(app.instance_path)
        if keys is None:
            return None
        timeout = app.config.get("PUSH_HTTP_TIMEOUT", (5.0, 10.0))
        sender = state["sender"] = Sender(keys, app.config["VAPID_SUBJECT"], timeout)
    return sender


def _executor(app: Flask) -> ThreadPoolExecutor:
    state = app.extensions.setdefault("fieldapp.push", {})
    pool = state.get("executor")
    if pool is None:
        pool = state["executor"] = ThreadPoolExecutor(
            max_workers=app.config.get("PUSH_HTTP_CONCURRENCY", 8),
            thread_name_prefix="push-http",
        )
    return pool


def payload_for(notification: Notification, event: PushEvent) -> bytes:
    """What the service worker gets: enough to show the notification and open the record."""
    data = {
        "id": notification.id,
        "kind": event.kind,
        "title": notification.title[:MAX_TITLE],
        "body": notification.body[:MAX_BODY],
        "url": event.url,
        "tag": f"{event.kind}:{event.dedupe_key or event.id}"[:200],
        "alarm": event.alarm,
        "at": event.created_at.isoformat(),
    }
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()


def _backoff(attempts: int) -> float:
    base = current_app.config.get("PUSH_RETRY_BASE", 30)
    delay = min(current_app.config.get("PUSH_RETRY_MAX", 3600), base * 2 ** max(0, attempts - 1))
    return delay * random.uniform(0.8, 1.2)


def _claim(ids: list[int], now: datetime) -> str:
    token = uuid.uuid4().hex
    due = db.or_(
        db.and_(Delivery.status == "pending", Delivery.next_attempt_at <= now),
        db.and_(Delivery.status == "sending", Delivery.claimed_until < now),  # a dead worker's
    )
    for start in range(0, len(ids), 500):
        db.session.execute(
            db.update(Delivery)
            .where(Delivery.id.in_(ids[start : start + 500]), due)
            .values(
                status="sending",
                claim=token,
                claimed_until=now + CLAIM_FOR,
                attempts=Delivery.attempts + 1,
            )
        )
    db.session.commit()
    return token


def deliver(ids: list[int]) -> list[tuple[int, float]]:
    """Send the deliveries that are due among ``ids``; return [(id, seconds)] to retry."""
    app = current_app._get_current_object()
    sender = get_sender(app)
    if sender is None:
        log.warning("push: no VAPID keys (run flask vapid-keys); %d deliveries wait", len(ids))
        return []
    now = utcnow()
    token = _claim(list(ids), now)
    rows = db.session.execute(
        db.select(
            Delivery.id,
            Delivery.attempts,
            Notification,
            PushEvent,
            PushSubscription.id.label("subscription_id"),
            PushSubscription.endpoint,
            PushSubscription.p256dh,
            PushSubscription.auth,
        )
        .join(Notification, Delivery.notification_id == Notification.id)
        .join(PushEvent, Notification.event_id == PushEvent.id)
        .join(PushSubscription, Delivery.subscription_id == PushSubscription.id)
        .where(Delivery.claim == token)
    ).all()
    if not rows:
        return []

    jobs, updates = [], []
    payloads: dict[int, bytes] = {}
    for row in rows:
        event = row.PushEvent
        remaining = event.ttl - int((now - event.created_at).total_seconds())
        if remaining <= 0 and event.ttl > 0:
            updates.append({"id": row.id, "status": EXPIRED})
            continue
        payload = payloads.get(row.Notification.id)
        if payload is None:
            payload = payloads[row.Notification.id] = payload_for(row.Notification, event)
        args = (payload, row.endpoint, row.p256dh, row.auth, max(0, remaining), event.urgency)
        jobs.append((row, args))

    # A few threads, each sending its share in turn: push services answer in tens of
    # milliseconds, so one batch waits on many of them at once; one hand-off per thread.
    threads = min(app.config.get("PUSH_HTTP_CONCURRENCY", 8), len(jobs))
    if threads > 1:
        shares = [jobs[i::threads] for i in range(threads)]
        results = _executor(app).map(lambda share: [sender.send(*a) for _r, a in share], shares)
        by_row = {}
        for share, outcomes in zip(shares, results, strict=True):
            by_row.update({id(job): out for job, out in zip(share, outcomes, strict=True)})
        outcomes = [by_row[id(job)] for job in jobs]
    else:
        outcomes = [sender.send(*args) for _row, args in jobs]

    finished = utcnow()
    retries: list[tuple[int, float]] = []
    gone: list[int] = []
    reached: list[int] = []
    max_attempts = app.config.get("PUSH_MAX_ATTEMPTS", 6)
    for (row, _args), outcome in zip(jobs, outcomes, strict=True):
        update = {"id": row.id, "last_status": outcome.status, "last_error": outcome.error}
        event = row.PushEvent
        if outcome.result == SENT:
            update |= {"status": SENT, "sent_at": finished}
            reached.append(row.subscription_id)
        elif outcome.result == GONE:
            gone.append(row.subscription_id)
            continue  # deleted with its subscription below
        elif outcome.result == RETRY and row.attempts < max_attempts:
            wait = outcome.retry_after
            if wait is None:
                wait = _backoff(row.attempts)
            wait = min(max(wait, 1.0), 24 * 3600.0)
            expires = event.created_at + timedelta(seconds=event.ttl)
            if event.ttl and finished + timedelta(seconds=wait) >= expires:
                update["status"] = EXPIRED
            else:
                update |= {
                    "status": "pending",
                    "next_attempt_at": finished + timedelta(seconds=wait),
                }
                retries.append((row.id, wait))
        else:
            update["status"] = FAILED
            log.warning("push: delivery %s failed: %s %s", row.id, outcome.status, outcome.error)
        updates.append(update)

    # Bulk UPDATE by primary key: a few statements per batch, not one per delivery.
    for update in updates:
        update.setdefault("claim", None)
        update.setdefault("claimed_until", None)
    by_keys: dict[tuple, list[dict]] = {}
    for update in updates:
        by_keys.setdefault(tuple(sorted(update)), []).append(update)
    for group in by_keys.values():
        db.session.execute(db.update(Delivery), group)
    if reached:
        db.session.execute(
            db.update(PushSubscription)
            .where(PushSubscription.id.in_(reached))
            .values(last_success_at=finished)
        )
    if gone:
        # The push service says this subscription is over (the user unsubscribed, the browser
        # was reset): forget it with its deliveries (ON DELETE CASCADE).
        db.session.execute(db.delete(PushSubscription).where(PushSubscription.id.in_(gone)))
    db.session.commit()
    return retries
