"""Background Sync with the app closed: the service worker itself sends what waits offline."""

import re
import time

import pytest

from tests.browser.conftest import BackgroundSync, log_in, query, wait_for_service_worker

pytestmark = pytest.mark.browser


def pushes(server) -> list[int]:
    """The status of every push the server answered, from its request log (Playwright does not
    report the service worker's own requests)."""
    log = (server.instance / "server.log").read_text(encoding="utf-8", errors="replace")
    return [int(s) for s in re.findall(r"POST /api/sync/push HTTP/[\d.]+\S*\" (\d{3})", log)]


def wait_status(page, text: str) -> None:
    page.wait_for_function(
        "t => document.getElementById('sync-status').textContent.includes(t)", arg=text
    )


def test_a_record_saved_offline_is_sent_by_the_worker_with_no_page_open(fresh_phone, fresh_server):
    page = fresh_phone.new_page()
    log_in(page, "courier1")
    wait_for_service_worker(page)
    page.goto("/test/notes")
    page.wait_for_function("() => document.documentElement.dataset.offlineReady")

    background_sync = BackgroundSync(fresh_phone, fresh_server)

    fresh_phone.set_offline(True)
    page.fill("#title", "锁屏后发送")
    page.fill("#amount", "7")
    page.click("#note-form button[type=submit]")
    wait_status(page, "1 条待发送")
    page.close()  # the courier closes the app
    assert [p.url for p in fresh_phone.pages] == ["about:blank"]

    assert query(fresh_server, "SELECT count(*) FROM test_note") == [(0,)]  # nothing sent yet

    # The network is back. Chromium fires the sync event once it sees that (it may already have
    # done so here); the DevTools call makes sure it does, as it would on a phone.
    fresh_phone.set_offline(False)
    background_sync.fire()
    deadline = time.monotonic() + 20
    while query(fresh_server, "SELECT count(*) FROM test_note") == [(0,)]:
        assert time.monotonic() < deadline, "the service worker did not send the outbox"
        time.sleep(0.2)
    assert query(fresh_server, "SELECT title, amount FROM test_note") == [("锁屏后发送", 7)]
    assert [p.url for p in fresh_phone.pages] == ["about:blank"]  # still no page of the app

    # Opened later with no network (it cannot send itself): the phone knows all went through.
    fresh_phone.set_offline(True)
    reopened = fresh_phone.new_page()
    reopened.goto("/test/notes")
    wait_status(reopened, "全部已同步")
    assert reopened.locator("li.pending-record").count() == 0
    assert pushes(fresh_server) == [200]  # sent once, by the worker (no page was open to send)
    assert query(fresh_server, "SELECT count(*) FROM test_note") == [(1,)]
