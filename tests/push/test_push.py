"""Web Push end to end without a browser: the app posts to a local push service.

The test makes each subscription's keys itself, verifies the VAPID JWT with PyJWT against the
app's public key and decrypts the body with ``http_ece``: independent of the app's own code.
"""

import time

import pytest
from flask import current_app
from flask_babel import force_locale

from fieldapp import push
from fieldapp.extensions import db
from fieldapp.push import notify
from fieldapp.push.models import Delivery, Notification, PushEvent, PushSubscription
from tests.push_service import verify_vapid


def _raise(env, kind, usernames, key=None, url="/stops/42"):
    users = [env.user(u) for u in usernames]
    event = notify(
        kind,
        user_ids=[u.id for u in users],
        org_id=users[0].org_id,
        url=url,
        params={"name": "李师傅", "m": 150},
        dedupe_key=key,
    )
    db.session.commit()
    return event


def test_a_notification_reaches_each_phone_in_its_owners_language(push_env, login):
    service = push_env.service
    chinese, english = service.phone("courier1"), service.phone("courier2")
    courier1, courier2 = login("courier1"), login("courier2", lang="en")
    assert push_env.subscribe(courier1, chinese).status_code == 200
    assert push_env.subscribe(courier2, english).status_code == 200
    push_env.user("courier2").locale = "en"
    db.session.commit()

    _raise(push_env, "test.assignment", ["courier1", "courier2"], key="stop:42")
    push_env.settle()
    received = service.wait_for(2)
    assert len(received) == 2

    (to_chinese,) = service.for_phone(chinese)
    (to_english,) = service.for_phone(english)
    assert chinese.decrypt(to_chinese) | {"id": 0, "at": ""} == {
        "id": 0,
        "at": "",
        "kind": "test.assignment",
        "title": "李师傅，您好",
        "body": "电子围栏 150 米",
        "url": "/stops/42",
        "tag": "test.assignment:stop:42",
        "alarm": False,
    }
    message = english.decrypt(to_english)
    assert (message["title"], message["body"], message["url"]) == (
        "Hello, 李师傅",
        "Geofence 150 m",
        "/stops/42",
    )
    for request in received:
        claims = verify_vapid(request, push_env.keys.application_server_key, "http://127.0.0.1")
        assert claims["sub"] == current_app.config["VAPID_SUBJECT"]
        assert claims["sub"] == "mailto:ops@fieldapp.example.cn"
        assert claims["exp"] > time.time() + 3600
        assert request.headers["Content-Encoding"] == "aes128gcm"
        assert 86400 - 5 <= int(request.headers["TTL"]) <= 86400  # a day for assignments
        assert request.headers["Urgency"] == "normal"

    deliveries = db.session.scalars(db.select(Delivery)).all()
    assert [(d.status, d.attempts, d.last_status) for d in deliveries] == [("sent", 1, 201)] * 2
    assert all(s.last_success_at for s in db.session.scalars(db.select(PushSubscription)))


def test_alarms_are_urgent_and_live_an_hour(push_env, login):
    phone = push_env.service.phone()
    push_env.subscribe(login("supervisor"), phone)
    _raise(push_env, "test.alarm", ["supervisor"], key="round:7")
    push_env.settle()
    (request,) = push_env.service.wait_for(1)
    assert request.headers["Urgency"] == "high"
    assert 3600 - 5 <= int(request.headers["TTL"]) <= 3600
    assert phone.decrypt(request)["alarm"] is True


@pytest.mark.parametrize("status", [404, 410])
def test_a_subscription_the_push_service_says_is_gone_is_deleted(push_env, login, status):
    gone, kept = push_env.service.phone(), push_env.service.phone()
    client = login("guard1")
    push_env.subscribe(client, gone)
    push_env.subscribe(client, kept)
    push_env.service.respond(gone, (status, {}))
    _raise(push_env, "test.assignment", ["guard1"])
    push_env.settle()
    assert len(push_env.service.wait_for(2)) == 2
    db.session.expire_all()
    endpoints = db.session.scalars(db.select(PushSubscription.endpoint)).all()
    assert endpoints == [kept.endpoint]
    # The inbox still has it: push is best effort, the inbox is the truth.
    assert db.session.scalar(db.select(db.func.count(Notification.id))) == 1


def test_too_many_requests_is_retried_after_the_time_the_push_service_asks(push_env, login):
    phone = push_env.service.phone()
    push_env.subscribe(login("courier1"), phone)
    push_env.service.respond(phone, (429, {"Retry-After": "2"}))
    _raise(push_env, "test.assignment", ["courier1"])
    received = push_env.service.wait_for(2, timeout=15)
    assert len(received) == 2
    assert received[1].at - received[0].at >= 1.9  # Retry-After honoured, not the back-off
    push_env.settle()
    db.session.expire_all()
    delivery = db.session.scalar(db.select(Delivery))
    assert (delivery.status, delivery.attempts, delivery.last_status) == ("sent", 2, 201)
    assert phone.decrypt(received[1])["title"] == "李师傅，您好"


def test_a_server_error_is_retried_with_back_off_and_given_up_in_the_end(push_env, login):
    current_app.config["PUSH_MAX_ATTEMPTS"] = 2
    phone = push_env.service.phone()
    push_env.subscribe(login("courier1"), phone)
    push_env.service.respond(phone, (503, {}), (500, {}), (500, {}))
    _raise(push_env, "test.assignment", ["courier1"])
    assert len(push_env.service.wait_for(2, timeout=15)) == 2
    push_env.settle()
    time.sleep(0.3)
    assert len(push_env.service.received) == 2  # no third attempt
    db.session.expire_all()
    delivery = db.session.scalar(db.select(Delivery))
    assert (delivery.status, delivery.attempts, delivery.last_status) == ("failed", 2, 500)


def test_raising_the_same_event_twice_is_a_no_op(push_env, login):
    push_env.subscribe(login("courier1"), push_env.service.phone())
    first = _raise(push_env, "test.assignment", ["courier1"], key="stop:9")
    second = _raise(push_env, "test.assignment", ["courier1"], key="stop:9")
    assert first is not None and second is None
    push_env.settle()
    assert len(push_env.service.wait_for(1)) == 1
    time.sleep(0.2)
    assert len(push_env.service.received) == 1
    assert db.session.scalar(db.select(db.func.count(PushEvent.id))) == 1
    assert db.session.scalar(db.select(db.func.count(Notification.id))) == 1
    # Without a key every raise is a new event.
    _raise(push_env, "test.assignment", ["courier1"])
    _raise(push_env, "test.assignment", ["courier1"])
    assert db.session.scalar(db.select(db.func.count(Notification.id))) == 3


def test_only_people_of_the_organisation_are_notified(push_env):
    from fieldapp.models import Organisation, User

    other = Organisation(code="OTHER", name="Other")
    db.session.add(other)
    db.session.flush()
    stranger = User(
        org_id=other.id, username="stranger", display_name="x", role="courier", password_hash="x"
    )
    db.session.add(stranger)
    db.session.commit()
    courier = push_env.user("courier1")
    notify(
        "test.assignment",
        user_ids=[courier.id, stranger.id],
        org_id=courier.org_id,
        url="/x",
        params={"name": "a", "m": 1},
    )
    db.session.commit()
    assert db.session.scalars(db.select(Notification.user_id)).all() == [courier.id]
    with pytest.raises(ValueError):
        notify(
            "test.assignment",
            user_ids=[courier.id],
            org_id=courier.org_id,
            url="https://evil.example.com/",
            params={"name": "a", "m": 1},
        )


def test_the_inbox_keeps_every_notification_with_an_unread_count(push_env, login):
    client = login("guard1")
    _raise(push_env, "test.assignment", ["guard1"], url="/sites")
    _raise(push_env, "test.alarm", ["guard1"], url="/people")
    page = client.get("/").get_data(as_text=True)
    assert '<span id="inbox-count" class="badge">2</span>' in page
    inbox = client.get("/notifications").get_data(as_text=True)
    assert inbox.count("李师傅，您好") == 2 and "电子围栏 150 米" in inbox
    alarm, assignment = db.session.scalars(
        db.select(Notification).join(PushEvent).order_by(PushEvent.alarm.desc())
    ).all()
    # Newest first.
    assert inbox.index(f"/notifications/{alarm.id}/open") < inbox.index(
        f"/notifications/{assignment.id}/open"
    )
    response = client.get(f"/notifications/{alarm.id}/open")
    assert response.status_code == 302 and response.headers["Location"] == "/people"
    assert client.raw.get("/api/push/unread").json == {"unread": 1}
    # Someone else's notification is not found.
    assert login("guard2").get(f"/notifications/{alarm.id}/open").status_code == 404
    client.post("/notifications/read")
    assert client.raw.get("/api/push/unread").json == {"unread": 0}
    assert 'id="inbox-count" class="badge" hidden' in client.get("/").get_data(as_text=True)


def test_the_service_worker_marks_a_tapped_notification_read(push_env, login):
    client = login("guard1")
    _raise(push_env, "test.assignment", ["guard1"])
    notification = db.session.scalar(db.select(Notification))
    url = f"/api/push/notifications/{notification.id}/read"
    assert client.raw.post(url, data="{}").status_code == 415  # JSON only
    assert client.raw.post(url, json={}).status_code == 204  # no CSRF token: a worker has none
    assert client.raw.get("/api/push/unread").json == {"unread": 0}


def test_in_app_only_keeps_the_inbox_but_does_not_push(push_env, login):
    client = login("courier1")
    push_env.subscribe(client, push_env.service.phone())
    page = client.get("/notifications/settings").get_data(as_text=True)
    assert 'name="channel-test.assignment" value="push" checked' in page
    response = client.post(
        "/notifications/settings",
        {"channel-test.assignment": "inapp", "channel-test.alarm": "push"},
    )
    assert response.status_code == 302
    _raise(push_env, "test.assignment", ["courier1"])
    _raise(push_env, "test.alarm", ["courier1"])
    push_env.settle()
    received = push_env.service.wait_for(1)
    time.sleep(0.2)
    assert len(push_env.service.received) == 1
    assert received[0].headers["Urgency"] == "high"  # only the alarm buzzed
    assert db.session.scalar(db.select(db.func.count(Notification.id))) == 2


def test_quiet_hours_are_validated_on_the_settings_page(push_env, login):
    client = login("courier1")
    response = client.post("/notifications/settings", {"quiet_start": "22:00"})
    assert response.status_code == 400
    assert "22:00" in response.get_data(as_text=True)
    assert (
        client.post(
            "/notifications/settings", {"quiet_start": "22:00", "quiet_end": "07:00"}
        ).status_code
        == 302
    )
    page = client.get("/notifications/settings").get_data(as_text=True)
    assert 'value="22:00"' in page and 'value="07:00"' in page


def test_logging_out_stops_the_phones_pushes(push_env, login):
    client = login("rep1")
    phone, other = push_env.service.phone(), push_env.service.phone()
    push_env.subscribe(client, phone)
    push_env.subscribe(login("rep1"), other)  # the same person on a second phone
    client.post("/logout")
    endpoints = db.session.scalars(db.select(PushSubscription.endpoint)).all()
    assert endpoints == [other.endpoint]


def test_a_browser_used_by_someone_else_moves_to_them(push_env, login):
    phone = push_env.service.phone()
    push_env.subscribe(login("courier1"), phone)
    push_env.subscribe(login("courier2"), phone)
    subscription = db.session.scalar(db.select(PushSubscription))
    assert subscription.user_id == push_env.user("courier2").id
    _raise(push_env, "test.assignment", ["courier1"])
    push_env.settle()
    time.sleep(0.2)
    assert push_env.service.received == []


@pytest.mark.parametrize(
    ("endpoint", "status"),
    [
        ("https://fcm.googleapis.com/fcm/send/abc", 200),
        ("https://updates.push.services.mozilla.com/wpush/v2/abc", 200),
        ("https://web.push.apple.com/abc", 200),
        ("https://evil.example.com/push", 400),
        ("https://fcm.googleapis.com.evil.example.com/push", 400),
        ("http://localhost/push", 400),  # loopback, but not named in PUSH_EXTRA_HOSTS
        ("http://10.0.0.1/push", 400),
        ("ftp://127.0.0.1/push", 400),
    ],
)
def test_only_push_services_may_be_subscribed(push_env, login, endpoint, status):
    phone = push_env.service.phone()
    body = phone.as_json() | {"endpoint": endpoint}
    client = login("courier1")
    response = client.raw.post(
        "/api/push/subscription", json=body, headers={"X-CSRFToken": client.token}
    )
    assert response.status_code == status


def test_subscribing_needs_a_login_and_the_csrf_token(push_env, login, client):
    phone = push_env.service.phone()
    client.get("/login")
    response = client.raw.post(
        "/api/push/subscription", json=phone.as_json(), headers={"X-CSRFToken": client.token}
    )
    assert response.status_code == 401
    response = login("courier1").raw.post("/api/push/subscription", json=phone.as_json())
    assert response.status_code == 400  # no CSRF token
    assert db.session.scalar(db.select(db.func.count(PushSubscription.id))) == 0


def test_the_page_gets_the_public_key_of_the_instance(push_env, client):
    assert client.raw.get("/api/push/key").json == {
        "publicKey": push_env.keys.application_server_key
    }


def test_the_vapid_keys_command_keeps_the_key_pair(push_env, tmp_path):
    from fieldapp import create_app

    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/x.sqlite3"})
    app.instance_path = str(tmp_path)
    runner = app.test_cli_runner()
    with app.app_context():  # the test body runs in another app's context
        first = runner.invoke(args=["vapid-keys"])
        private = (tmp_path / "vapid_private.pem").read_bytes()
        second = runner.invoke(args=["vapid-keys"])
    assert first.exit_code == 0 and "Created" in first.output
    assert (tmp_path / "vapid_private.pem").stat().st_mode & 0o077 == 0
    assert second.exit_code == 0 and "Kept" in second.output
    assert (tmp_path / "vapid_private.pem").read_bytes() == private
    key = first.output.strip().rsplit(" ", 1)[-1]
    assert key in second.output and len(key) == 87  # 65-byte P-256 point, base64url


def test_the_settings_page_sends_a_test_notification(push_env, login):
    client = login("supervisor")
    phone = push_env.service.phone()
    push_env.subscribe(client, phone)
    client.get("/notifications/settings")
    assert client.post("/notifications/test").status_code == 302
    (request,) = push_env.service.wait_for(1)
    message = phone.decrypt(request)
    with force_locale("zh_CN"):
        assert message["title"] == str(push.TEST.title)
    assert message["body"].startswith("张主管")
    assert message["url"] == "/notifications"
