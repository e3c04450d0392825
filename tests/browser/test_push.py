"""Push notifications in Chromium: the page subscribes, the service worker shows and opens.

Headless Chromium has no push service, so ``PushManager.prototype.subscribe`` is replaced (an
init script) by one that returns a subscription of the test's own push service, with keys the
test made. Everything after that is real: the page sends it, the server encrypts and posts to
it, and the decrypted message is handed to the service worker through the DevTools protocol.
"""

import json
import re
import shutil
import tempfile
from pathlib import Path

import pytest
import requests

from tests.browser.conftest import LiveServer, log_in, screenshot, wait_for_service_worker
from tests.push_service import PushService, b64url_decode

pytestmark = pytest.mark.browser

FAKE_PUSH_MANAGER = """
(() => {
  const fake = %s;
  const key = (name) => Uint8Array.from(atob(fake.keys[name].replace(/-/g, "+")
    .replace(/_/g, "/").padEnd(Math.ceil(fake.keys[name].length / 4) * 4, "=")),
    (c) => c.charCodeAt(0)).buffer;
  let subscription = null;
  PushManager.prototype.subscribe = async function (options) {
    window.__pushOptions = { userVisibleOnly: options.userVisibleOnly,
      applicationServerKey: Array.from(new Uint8Array(options.applicationServerKey)) };
    subscription = {
      endpoint: fake.endpoint, expirationTime: null, options,
      getKey: key,
      toJSON: () => ({ endpoint: fake.endpoint, expirationTime: null, keys: fake.keys }),
      unsubscribe: async () => { subscription = null; return true; },
    };
    return subscription;
  };
  PushManager.prototype.getSubscription = async function () { return subscription; };
})();
"""


@pytest.fixture(scope="module")
def push_server():
    """The app as served, allowed to post to a push service on 127.0.0.1, with VAPID keys."""
    instance = Path(tempfile.mkdtemp(prefix="fieldapp-push-live-"))
    server = LiveServer(instance, env_extra={"FIELDAPP_PUSH_HOSTS": "127.0.0.1"})
    server.flask("db", "upgrade", "heads")
    server.flask("seed-demo")
    server.flask("vapid-keys")
    server.start()
    yield server
    server.stop()
    shutil.rmtree(instance, ignore_errors=True)


@pytest.fixture
def push_service():
    with PushService() as service:
        yield service


def _phones_of(server, username: str) -> int:
    """How many phones the settings page lists for a user (seen through a second login)."""
    session = requests.Session()
    login_page = session.get(f"{server.url}/login").text
    token = re.search(r'name="csrf-token" content="([^"]+)"', login_page).group(1)
    form = {"username": username, "password": "demo-2026", "csrf_token": token}
    assert session.post(f"{server.url}/login", data=form).ok
    page = session.get(f"{server.url}/notifications/settings").text
    return page.count('class="push-phone"')


def _context(browser, playwright_instance, server, device="Pixel 7"):
    spec = dict(playwright_instance.devices[device])
    spec.pop("default_browser_type", None)
    context = browser.new_context(
        **spec, locale="zh-CN", base_url=server.url, permissions=["notifications"]
    )
    context.set_default_timeout(15_000)
    return context


def test_subscribe_receive_show_and_open(browser, playwright_instance, push_server, push_service):
    phone = push_service.phone("guard1-pixel")
    context = _context(browser, playwright_instance, push_server)
    try:
        context.add_init_script(FAKE_PUSH_MANAGER % json.dumps(phone.as_json()))
        page = context.new_page()
        cdp = context.new_cdp_session(page)
        registrations = []
        cdp.on(
            "ServiceWorker.workerRegistrationUpdated",
            lambda event: registrations.extend(event["registrations"]),
        )
        cdp.send("ServiceWorker.enable")

        log_in(page, "guard1")
        wait_for_service_worker(page)
        # The page subscribed with the server's key and sent the subscription.
        page.wait_for_function("() => sessionStorage.getItem('fieldapp.push.sent') !== null")
        key = page.evaluate("() => fetch('/api/push/key').then(r => r.json())")["publicKey"]
        options = page.evaluate("() => window.__pushOptions")
        assert options == {
            "userVisibleOnly": True,
            "applicationServerKey": list(b64url_decode(key)),
        }

        page.goto("/notifications/settings")
        page.wait_for_function("() => document.getElementById('push-setup').dataset.state === 'on'")
        assert "Pixel 7" in page.locator("section.card ul.rows").inner_text()

        # A real notification: the server encrypts it for this subscription and posts it.
        page.click("form[action='/notifications/test'] button")
        page.wait_for_url("**/notifications/settings")
        (request,) = push_service.wait_for(1)
        message = phone.decrypt(request)
        assert message["url"] == "/notifications"
        assert message["body"].startswith("赵保安")
        assert page.locator("#inbox-count").inner_text() == "1"

        # Hand the message to the service worker as a push service would.
        registration_id = next(
            r["registrationId"] for r in reversed(registrations) if r["scopeURL"].endswith("/")
        )
        cdp.send(
            "ServiceWorker.deliverPushMessage",
            {
                "origin": push_server.url,
                "registrationId": registration_id,
                "data": json.dumps(message, ensure_ascii=False),
            },
        )
        shown = page.evaluate(
            """async () => {
                 const registration = await navigator.serviceWorker.ready;
                 for (let i = 0; i < 100; i++) {
                   const [n] = await registration.getNotifications();
                   if (n) return {title: n.title, body: n.body, tag: n.tag, data: n.data};
                   await new Promise((resolve) => setTimeout(resolve, 100));
                 }
                 return null;
               }"""
        )
        assert shown == {
            "title": message["title"],
            "body": message["body"],
            "tag": message["tag"],
            "data": {"url": "/notifications", "id": message["id"]},
        }

        # Tap: the service worker's own notificationclick handler runs with that notification.
        worker = context.service_workers[0]
        tapped = worker.evaluate(
            """async () => {
                 const [notification] = await self.registration.getNotifications();
                 if (!notification) return false;
                 self.dispatchEvent(new NotificationEvent("notificationclick", { notification }));
                 return true;
               }"""
        )
        assert tapped
        page.wait_for_url(f"{push_server.url}/notifications")
        assert page.locator("#inbox").is_visible()
        page.wait_for_function(
            "() => fetch('/api/push/unread').then(r => r.json()).then(j => j.unread === 0)"
        )
        count = "() => navigator.serviceWorker.ready.then(r => r.getNotifications())"
        assert page.evaluate(count + ".then(n => n.length)") == 0
        screenshot(page, "push-inbox")

        # Logging out forgets this phone's subscription; logging in again sends it again.
        assert _phones_of(push_server, "guard1") == 1
        page.click("footer button[type=submit]")
        page.wait_for_url("**/login")
        assert _phones_of(push_server, "guard1") == 0
        log_in(page, "guard1")
        page.wait_for_function("() => sessionStorage.getItem('fieldapp.push.sent') !== null")
        assert _phones_of(push_server, "guard1") == 1
    finally:
        context.close()


def test_an_iphone_is_told_to_add_the_app_to_the_home_screen(
    browser, playwright_instance, push_server
):
    context = _context(browser, playwright_instance, push_server, device="iPhone 13")
    try:
        page = context.new_page()
        log_in(page, "courier1")
        page.goto("/notifications")
        card = page.locator("#push-setup")
        page.wait_for_function(
            "() => document.getElementById('push-setup').dataset.state === 'ios-install'"
        )
        assert "主屏幕" in card.inner_text() or "Home Screen" in card.inner_text()
        assert page.locator("#push-enable").is_hidden()
        screenshot(page, "push-iphone-guide")
    finally:
        context.close()
