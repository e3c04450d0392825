"""Offline for real: records made with no network reach the server exactly once."""

import io
import time

import pytest
from PIL import Image
from playwright.sync_api import expect

from tests.browser.conftest import (
    log_in,
    query,
    screenshot,
    wait_for_service_worker,
    wait_until,
)

pytestmark = pytest.mark.browser


def photo(n: int) -> dict:
    """A camera-sized photo, different for every n (so each is its own file)."""
    buffer = io.BytesIO()
    Image.new("RGB", (2400, 1800), (n * 5 % 256, 80, 255 - n * 5 % 256)).save(buffer, "JPEG")
    return {"name": f"IMG_{n:04d}.jpg", "mimeType": "image/jpeg", "buffer": buffer.getvalue()}


def sign(page, n: int) -> None:
    """A signature different for every n up to 60: files are stored by content, so two
    identical drawings would be one file (the stroke shape alone repeats every 36 n, and
    then only the pen's speed told them apart: one run in many stored 99 files, not 100)."""
    box = page.locator("canvas[data-signature]").bounding_box()
    x, y = box["x"] + 20 + 2 * n, box["y"] + 40
    page.mouse.move(x, y)
    page.mouse.down()
    for step in range(1, 8):
        page.mouse.move(x + step * 25, y + ((step + n) % 4) * 18 + n % 9, steps=2)
    page.mouse.up()


def add_note(page, n: int, title: str | None = None, amount: int = 10, with_files=True) -> None:
    page.fill("#title", title if title is not None else f"记录 {n}")
    page.fill("#amount", str(amount))
    if with_files:
        page.set_input_files("#photo", files=[photo(n)])
        sign(page, n)
    page.click("#note-form button[type=submit]")
    page.wait_for_function(
        "n => document.querySelectorAll('li.pending-record, li.server-note').length >= n",
        arg=n,
    )


def status(page) -> str:
    return page.locator("#sync-status").inner_text()


def wait_status(page, text: str, timeout: int = 60_000) -> None:
    """Until the sync status line (what the user reads) contains ``text``."""
    page.wait_for_function(
        "t => document.getElementById('sync-status').textContent.includes(t)",
        arg=text,
        timeout=timeout,
    )


def open_notes_for_offline(page, username="courier1"):
    log_in(page, username)
    wait_for_service_worker(page)
    page.goto("/test/notes")
    wait_until(
        page, "() => caches.open('fieldapp-pages').then(c => c.match('/test/notes')).then(Boolean)"
    )


def test_fifty_records_made_offline_survive_closing_and_sync_exactly_once(
    fresh_phone, fresh_server
):
    page = fresh_phone.new_page()
    open_notes_for_offline(page)
    fresh_phone.set_offline(True)
    page.reload()
    for n in range(1, 51):
        add_note(page, n)
    wait_status(page, "50 条待发送")
    page.close()

    reopened = fresh_phone.new_page()
    reopened.goto("/test/notes")  # still offline: from the service worker and IndexedDB
    reopened.wait_for_function("() => document.querySelectorAll('li.pending-record').length === 50")
    wait_status(reopened, "50 条待发送")
    assert query(fresh_server, "SELECT count(*) FROM test_note") == [(0,)]
    screenshot(reopened, "sync-50-pending-offline")

    fresh_phone.set_offline(False)
    wait_status(reopened, "全部已同步", timeout=90_000)
    titles = query(fresh_server, "SELECT title FROM test_note")
    assert sorted(t for (t,) in titles) == sorted(f"记录 {n}" for n in range(1, 51))
    files = query(fresh_server, "SELECT count(*), sum(complete), max(size) FROM sync_file")
    assert files[0][0] == 100 and files[0][1] == 100  # 50 photos + 50 signatures, all complete
    assert files[0][2] < 1_000_000  # shrunk on the phone, not 2400 px camera originals
    refs = query(
        fresh_server,
        "SELECT count(*) FROM sync_file_ref r JOIN sync_file f "
        "ON f.sha256 = r.sha256 WHERE f.complete = 1",
    )
    assert refs == [(100,)]
    # Every photo is where its own record says it is: no record got another's signature.
    pairs = query(
        fresh_server, "SELECT count(DISTINCT photo), count(DISTINCT signature) FROM test_note"
    )
    assert pairs == [(50, 50)]


def test_one_invalid_record_is_shown_fixed_and_resent(fresh_phone, fresh_server):
    page = fresh_phone.new_page()
    open_notes_for_offline(page)
    fresh_phone.set_offline(True)
    page.reload()
    for n in range(1, 21):
        add_note(page, n, title="太长" * 50 if n == 7 else None, with_files=False)
    fresh_phone.set_offline(False)
    wait_status(page, "1 条需要您处理")
    assert query(fresh_server, "SELECT count(*) FROM test_note") == [(19,)]

    page.goto("/sync/outbox")
    item = page.locator("li.outbox-item.rejected")
    expect(item).to_have_count(1)  # drawn by the page's script from IndexedDB
    expect(item).to_contain_text("太长了：最多 80 个字符。")
    screenshot(page, "sync-outbox-rejected")
    assert item.locator("label", has_text="标题").count() == 1  # the field's name, not its key
    assert item.locator("input[name=photo]").count() == 0  # files are not edited as text
    item.locator("input[name=title]").fill("已改短")
    item.locator("button[type=submit]").click()
    wait_status(page, "全部已同步")
    assert query(fresh_server, "SELECT count(*) FROM test_note WHERE title = '已改短'") == [(1,)]
    assert query(fresh_server, "SELECT count(*) FROM test_note") == [(20,)]


def test_server_killed_mid_batch_loses_nothing_and_doubles_nothing(fresh_phone, fresh_server):
    page = fresh_phone.new_page()
    open_notes_for_offline(page)
    fresh_phone.set_offline(True)
    page.reload()
    for n in range(1, 11):
        add_note(page, n, title="slow" if n == 5 else None, with_files=False)
    (fresh_server.instance / "slow-once").touch()
    with page.expect_request("**/api/sync/push"):
        fresh_phone.set_offline(False)
    time.sleep(1.0)  # the server is inside the batch, applying record 5
    fresh_server.kill()
    assert query(fresh_server, "SELECT count(*) FROM test_note") == [(0,)]  # nothing committed

    fresh_server.start()
    fresh_phone.set_offline(True)  # the phone notices the network again and retries
    fresh_phone.set_offline(False)
    wait_status(page, "全部已同步")
    rows = query(fresh_server, "SELECT title, count(*) FROM test_note GROUP BY title")
    assert len(rows) == 10 and all(count == 1 for _title, count in rows)
    # Replaying the same batch changes nothing: flush again and count.
    page.goto("/sync/outbox")
    page.click("#outbox-sync-now")
    page.wait_for_timeout(1000)
    assert query(fresh_server, "SELECT count(*) FROM test_note") == [(10,)]
