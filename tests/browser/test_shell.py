"""On a phone in Chromium: log in, install, go offline, and still have the app."""

import tempfile

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import (
    ARGS,
    CHROMIUM,
    log_in,
    screenshot,
    wait_for_service_worker,
    wait_until,
)

pytestmark = pytest.mark.browser


def test_logged_in_app_opens_offline_with_a_banner(phone):
    page = phone.new_page()
    log_in(page, "courier1")
    assert page.locator("h1.greeting").inner_text() == "李师傅，您好"
    wait_for_service_worker(page)
    # The page asks the worker to keep a copy of itself; wait until it is in the cache.
    page.wait_for_function(
        "() => caches.open('fieldapp-pages').then(c => c.match('/')).then(Boolean)"
    )
    assert page.locator("#offline-banner").is_hidden()

    phone.set_offline(True)
    page.reload()
    assert page.locator("h1.greeting").inner_text() == "李师傅，您好"
    banner = page.locator("#offline-banner")
    expect(banner).to_be_visible()  # shown by the page's script when it sees no network
    assert "您已离线" in banner.inner_text()
    screenshot(page, "shell-offline")

    # A page never opened on this phone gets the offline page, not the browser's dinosaur.
    page.goto("/people")
    assert page.locator("h1").inner_text() == "没有网络"

    phone.set_offline(False)
    page.goto("/")
    page.wait_for_function("() => navigator.onLine")
    assert page.locator("#offline-banner").is_hidden()


def test_logout_removes_cached_pages_but_not_the_shell(phone):
    page = phone.new_page()
    log_in(page, "guard1")
    wait_for_service_worker(page)
    page.wait_for_function(
        "() => caches.open('fieldapp-pages').then(c => c.match('/')).then(Boolean)"
    )
    page.click("footer button[type=submit]")
    page.wait_for_url("**/login")
    page.wait_for_function(
        "() => caches.open('fieldapp-pages').then(c => c.keys()).then(k => !k.length)"
    )
    phone.set_offline(True)
    page.goto("/")
    assert page.locator("h1").inner_text() == "没有网络"  # the guard's home is not readable


def test_language_switch_on_the_phone(phone):
    page = phone.new_page()
    log_in(page, "rep1")
    page.click("form.lang button")
    assert page.locator("h1.greeting").inner_text() == "Hello, 孙经理"
    assert page.locator("html").get_attribute("lang") == "en"


def test_chromium_considers_the_app_installable(playwright_instance, live_server):
    device = dict(playwright_instance.devices["Pixel 7"])
    device.pop("default_browser_type", None)
    with tempfile.TemporaryDirectory() as profile:
        context = playwright_instance.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, args=ARGS, headless=True, **device
        )
        try:
            page = context.new_page()
            page.goto(f"{live_server.url}/login")
            wait_for_service_worker(page)
            cdp = context.new_cdp_session(page)
            errors = cdp.send("Page.getInstallabilityErrors")["installabilityErrors"]
            assert errors == []
            manifest = cdp.send("Page.getAppManifest")
            assert manifest["errors"] == []
        finally:
            context.close()


def test_a_new_version_is_offered_and_taken_on_reload(fresh_phone, fresh_server):
    page = fresh_phone.new_page()
    log_in(page, "courier2")
    wait_for_service_worker(page)
    old_caches = page.evaluate("() => caches.keys()")
    assert page.locator("#update-banner").is_hidden()

    fresh_server.kill()  # a deploy: same data, new release
    fresh_server.env["FIELDAPP_RELEASE"] = "next"
    fresh_server.start()
    page.evaluate("() => navigator.serviceWorker.getRegistration().then(r => r.update())")
    banner = page.locator("#update-banner")
    banner.wait_for(state="visible")
    assert "有新版本可用" in banner.inner_text()
    with page.expect_navigation():
        page.click("#update-reload")
    wait_for_service_worker(page)
    wait_until(
        page,
        "old => caches.keys().then(k => k.filter(n => n.startsWith('fieldapp-shell-'))"
        ".every(n => !old.includes(n)))",
        arg=old_caches,
    )
    assert page.locator("h1.greeting").inner_text() == "王师傅，您好"
