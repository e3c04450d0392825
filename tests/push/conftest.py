"""Fixtures for push notifications: VAPID keys, a test push service, test notification kinds."""

import pytest
from flask import current_app
from flask_babel import lazy_gettext as _l

from fieldapp import push
from fieldapp.extensions import db
from fieldapp.models import User
from fieldapp.push import kinds, vapid
from fieldapp.push.queue import get_queue
from tests.push_service import PushService

# Texts that already have a Chinese translation, so the language of a push can be checked now.
ASSIGNMENT = push.Kind(
    name="test.assignment",
    label=_l("Courier"),
    title=_l("Hello, %(name)s"),
    body=_l("Geofence %(m)d m"),
)
ALARM = push.Kind(
    name="test.alarm",
    label=_l("Security guard"),
    title=_l("Hello, %(name)s"),
    body=_l("Geofence %(m)d m"),
    alarm=True,
)


class PushEnv:
    def __init__(self, served, service: PushService, keys: vapid.KeyPair):
        self.served = served
        self.service = service
        self.keys = keys

    def user(self, username: str) -> User:
        return db.session.scalar(db.select(User).where(User.username == username))

    def subscribe(self, client, phone):
        """What static/js/push.js does: post the browser's subscription with the CSRF token."""
        return client.raw.post(
            "/api/push/subscription", json=phone.as_json(), headers={"X-CSRFToken": client.token}
        )

    def settle(self, timeout: float = 15.0) -> None:
        """Until both apps' worker threads have nothing due."""
        assert get_queue(self.served).wait_idle(timeout)
        assert get_queue(current_app._get_current_object()).wait_idle(timeout)


@pytest.fixture
def push_env(demo):
    keys, _created = vapid.ensure_keys(current_app.instance_path)
    for app in (demo, current_app):
        app.config["PUSH_EXTRA_HOSTS"] = ["127.0.0.1"]
        app.config["PUSH_RETRY_BASE"] = 1
    kinds.declare(ASSIGNMENT)
    kinds.declare(ALARM)
    with PushService() as service:
        env = PushEnv(demo, service, keys)
        yield env
        env.settle()
    kinds.forget(ASSIGNMENT.name)
    kinds.forget(ALARM.name)
