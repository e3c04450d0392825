"""A photo the server refuses for good is sent once, kept on the phone and shown, never resent;
a passing failure (the server busy) is tried again."""

import hashlib
import io
import os
import re

import pytest
from PIL import Image
from playwright.sync_api import expect

from tests.browser.conftest import log_in, screenshot, wait_for_service_worker

pytestmark = pytest.mark.browser

# The app's own modules, from the versioned URL the page loaded them from: the same module
# instances (and IndexedDB connection) as the page's.
MODULE = """(name) => document.querySelector('script[type=module][src$="/js/app.js"]')
  .src.replace(/app\\.js$/, name)"""

# Queue a test.note whose photo is `bytes`, as forms.js would after taking the picture.
ENQUEUE = """async ({ bytes, sha256, title, base }) => {
  const outbox = await import(base + "outbox.js");
  const blob = new Blob([new Uint8Array(bytes)], { type: "image/jpeg" });
  const payload = { id: outbox.uuidv7(), title, amount: 1, photo: sha256, signature: null };
  const files = [{ sha256, blob, type: "image/jpeg" }];
  await outbox.enqueue(document.body.dataset.deviceId, "test.note", payload, { files });
}"""

# One sync, as the "Sync now" button does it; resolves when it is over and the page redrawn.
FLUSH = """async (base) => { await (await import(base + "sync.js")).flush(); }"""

STORED_FILE = """(sha256) => new Promise((resolve) => {
  const open = indexedDB.open("fieldapp");
  open.onsuccess = () => {
    const get = open.result.transaction("files").objectStore("files").get(sha256);
    get.onsuccess = () => {
      const f = get.result;
      resolve(f ? { size: f.blob ? f.blob.size : null, confirmed: f.confirmed,
                    refused: f.refused || null } : null);
    };
  };
})"""


def not_an_image() -> bytes:
    """Bytes that start like a JPEG and match their hash, but decode as nothing (415)."""
    return b"\xff\xd8\xff\xe0" + os.urandom(3000)


def small_photo() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), tuple(os.urandom(3))).save(buffer, "JPEG")
    return buffer.getvalue()


def outbox_page_in_english(phone):
    page = phone.new_page()
    log_in(page, "courier1")
    wait_for_service_worker(page)
    # The phone speaks Chinese; this test reads English (remembered for the user: a server of
    # the test's own, so no other test's courier1 changes language).
    page.click("form.lang button[value=en]")
    page.wait_for_function("() => document.documentElement.lang === 'en'")
    page.goto("/sync/outbox")
    # The sync every page starts when it opens is over (the day pack follows it): from here on
    # the test's own syncs are the only ones (the page's next timed one is 30 s away).
    page.wait_for_function("() => document.documentElement.dataset.offlineReady")
    return page


def enqueue_photo(page, data: bytes, title: str) -> str:
    sha256 = hashlib.sha256(data).hexdigest()
    base = page.evaluate(MODULE, "")
    page.evaluate(ENQUEUE, {"bytes": list(data), "sha256": sha256, "title": title, "base": base})
    return sha256


def file_requests(page, sha256: str) -> list[str]:
    """Every request for this file the phone makes from now on, as "POST", "PATCH"..."""
    seen = []
    page.context.on(
        "request",
        lambda request: (
            seen.append(request.method)
            if request.url.endswith(f"/api/sync/files/{sha256}")
            else None
        ),
    )
    return seen


def server_saw(server, sha256: str) -> list[str]:
    """The same, from the server's request log (it also sees what the service worker sends)."""
    log = (server.instance / "server.log").read_text(encoding="utf-8", errors="replace")
    # Werkzeug colours the line of a 4xx answer.
    return re.findall(rf"\"(?:\x1b\[[0-9;]*m)*(POST|PATCH|HEAD|GET) /api/sync/files/{sha256} ", log)


def test_a_refused_photo_is_sent_once_kept_and_shown(fresh_phone, fresh_server):
    page = outbox_page_in_english(fresh_phone)
    data = not_an_image()
    sha256 = hashlib.sha256(data).hexdigest()
    requests = file_requests(page, sha256)
    enqueue_photo(page, data, "坏照片")

    page.click("#outbox-sync-now")
    item = page.locator("li.outbox-item", has_text="坏照片")
    refusal = item.locator("p.file-refused")
    expect(refusal).to_have_text(re.compile(r"^Photo refused by the server: damaged image · "))
    expect(refusal).to_contain_text("Kept on this phone and not sent again.")
    assert requests == ["PATCH"]  # announced and sent in one request, once: the server said 415

    stored = page.evaluate(STORED_FILE, sha256)
    assert stored["refused"]["reason"] == "damaged_image" and stored["refused"]["at"] > 0
    assert stored["size"] == len(data) and stored["confirmed"] is False  # kept, bytes and all

    # The next syncs leave it alone. The status line asks for the user's attention (it is not
    # waiting to be sent) until they tap "Noted"; the refusal stays listed after that.
    base = page.evaluate(MODULE, "")
    page.evaluate(FLUSH, base)
    page.evaluate(FLUSH, base)
    assert requests == ["PATCH"]
    assert server_saw(fresh_server, sha256) == ["PATCH"]
    status = page.locator("#sync-status")
    expect(status).to_contain_text("1 need your attention")
    expect(status).not_to_contain_text("to upload")
    refusal.locator("button.refusal-noted").click()
    expect(status).to_contain_text("All synced")
    expect(refusal).to_contain_text("Kept on this phone and not sent again.")
    expect(refusal.locator("button.refusal-noted")).to_have_count(0)
    assert page.evaluate(STORED_FILE, sha256)["size"] == len(data)

    # Still shown after the page is opened again (it is in IndexedDB, not in the page).
    page.reload()
    expect(
        page.locator("li.outbox-item", has_text="坏照片").locator("p.file-refused")
    ).to_have_text(re.compile(r"^Photo refused by the server: damaged image"))
    assert requests == ["PATCH"]  # opening the page synced again: still nothing sent
    screenshot(page, "sync-outbox-refused-photo")


def test_a_busy_server_is_tried_again(fresh_phone):
    page = outbox_page_in_english(fresh_phone)
    data = small_photo()
    sha256 = hashlib.sha256(data).hexdigest()
    requests = file_requests(page, sha256)
    answered_busy = []

    def busy_once(route):
        if answered_busy:
            route.fallback()
        else:
            answered_busy.append(route.request.method)
            route.fulfill(status=503, json={"error": "unavailable", "message": "busy"})

    page.route(f"**/api/sync/files/{sha256}", busy_once)
    enqueue_photo(page, data, "好照片")
    base = page.evaluate(MODULE, "")

    page.evaluate(FLUSH, base)
    assert answered_busy == ["PATCH"] and requests == ["PATCH"]
    stored = page.evaluate(STORED_FILE, sha256)
    assert stored["refused"] is None and stored["confirmed"] is False
    expect(page.locator("#sync-status")).to_contain_text("1 photos or signatures to upload")

    page.evaluate(FLUSH, base)  # the next sync tries again, and it goes through
    assert requests == ["PATCH", "PATCH"]
    stored = page.evaluate(STORED_FILE, sha256)
    assert stored["confirmed"] is True and stored["size"] is None  # the server has it: bytes go
    expect(page.locator("#sync-status")).to_contain_text("All synced")
    expect(page.locator("p.file-refused")).to_have_count(0)
