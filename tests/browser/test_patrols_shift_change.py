"""The supervisor moves a guard's shift; the guard's phone, which has its day pack, syncs once
and then, offline, shows the new time on its shift page (no new day pack)."""

import sqlite3
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import log_in, new_phone, query, wait_for_service_worker, wait_until
from tests.browser.test_patrols import _stamp, open_offline

pytestmark = pytest.mark.browser
SITE = "外滩中心大门岗"
# The app's own modules, from the versioned URL the page loaded them from.
MODULE = """(name) => document.querySelector('script[type=module][src$="/js/app.js"]')
  .src.replace(/app\\.js$/, name)"""
STORED_SHIFT = """async ({ base, id }) => {
  const outbox = await import(base + "outbox.js");
  return (await outbox.records("patrol_shifts")).find((shift) => shift.id === id).starts_at;
}"""


def guard1_due_soon(server) -> tuple[int, datetime]:
    """guard1's demo shift moved to start in 90 minutes (the phone already shows it)."""
    start = (datetime.now(UTC) + timedelta(minutes=90)).replace(second=0, microsecond=0)
    with sqlite3.connect(server.instance / "live.sqlite3") as conn:
        conn.execute(
            "UPDATE patrol_shift SET starts_at = ?, ends_at = ? "
            "WHERE guard_id = (SELECT id FROM user WHERE username = 'guard1')",
            (_stamp(start), _stamp(start + timedelta(hours=8))),
        )
    rows = query(
        server,
        "SELECT id FROM patrol_shift WHERE guard_id = (SELECT id FROM user WHERE username = ?)",
        "guard1",
    )
    assert len(rows) == 1
    return rows[0][0], start


def test_a_moved_shift_shows_offline_after_one_sync(
    browser, playwright_instance, fresh_server, fresh_phone
):
    shift_id, start = guard1_due_soon(fresh_server)
    tz = ZoneInfo(query(fresh_server, "SELECT timezone FROM site WHERE name = ?", SITE)[0][0])
    old, new = start.astimezone(tz), (start - timedelta(minutes=45)).astimezone(tz)

    page = fresh_phone.new_page()
    log_in(page, "guard1")
    wait_for_service_worker(page)
    page.goto("/patrols/duty")
    wait_until(page, "() => document.documentElement.dataset.offlineReady")
    wait_until(
        page,
        "() => caches.open('fieldapp-pages').then(c => c.match('/patrols/duty')).then(Boolean)",
    )
    expect(page.locator(".patrol-shift")).to_contain_text(f"{old:%H:%M}")

    # The supervisor, in the office, moves the shift 45 minutes earlier.
    office = new_phone(browser, playwright_instance, fresh_server)
    boss = office.new_page()
    log_in(boss, "supervisor")
    boss.goto(f"/patrols/shifts/{shift_id}/edit")
    boss.fill("#day", f"{new:%Y-%m-%d}")
    boss.fill("#start", f"{new:%H:%M}")
    boss.fill("#end", f"{new + timedelta(hours=8):%H:%M}")
    boss.click("form.card button.primary[type=submit]")
    boss.wait_for_url("**/roster**")
    office.close()
    saved = query(fresh_server, "SELECT starts_at FROM patrol_shift WHERE id = ?", shift_id)
    assert saved[0][0].startswith(_stamp(new.astimezone(UTC)))

    # The guard's phone loses the network and gets it back: it syncs (no page is opened, so
    # nothing but the sync can bring the new time), then goes offline for good.
    fresh_phone.set_offline(True)
    fresh_phone.set_offline(False)
    wait_until(page, "() => document.documentElement.dataset.pagesRefreshedAt", timeout=60)
    # The day pack's entry of the shift in IndexedDB was replaced by the pulled change too.
    assert page.evaluate(
        STORED_SHIFT, {"base": page.evaluate(MODULE, ""), "id": shift_id}
    ).startswith(f"{new.astimezone(UTC):%Y-%m-%dT%H:%M}")
    fresh_phone.set_offline(True)
    open_offline(page, "/patrols/duty", ".patrol-shift")
    expect(page.locator(".patrol-shift")).to_contain_text(f"{new:%H:%M}")
    expect(page.locator(".patrol-shift")).not_to_contain_text(f"{old:%H:%M}")
