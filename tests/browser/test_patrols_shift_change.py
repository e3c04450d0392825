"""The supervisor moves a guard's shift; the guard's phone, which has its day pack, syncs once:
the shift page open on it shows the new time by itself (or, while the guard is typing there,
offers it), and offline the page shows the new time too (no new day pack)."""

import re
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import (
    BackgroundSync,
    log_in,
    new_phone,
    open_with_day_pack,
    query,
    screenshot,
    wait_until,
)
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


def duty_page_kept(phone, old: datetime):
    """guard1's phone, logged in, with its day pack's pages in the worker's cache."""
    page = phone.new_page()
    log_in(page, "guard1")
    open_with_day_pack(page, "/patrols/duty", ["/patrols/duty"])
    expect(page.locator(".patrol-shift")).to_contain_text(f"{old:%H:%M}")
    return page


def move_shift(browser, playwright_instance, server, shift_id: int, new: datetime) -> None:
    """The supervisor, in the office, moves the shift to ``new`` through the edit form."""
    office = new_phone(browser, playwright_instance, server)
    boss = office.new_page()
    log_in(boss, "supervisor")
    boss.goto(f"/patrols/shifts/{shift_id}/edit")
    boss.fill("#day", f"{new:%Y-%m-%d}")
    boss.fill("#start", f"{new:%H:%M}")
    boss.fill("#end", f"{new + timedelta(hours=8):%H:%M}")
    boss.click("form.card button.primary[type=submit]")
    boss.wait_for_url("**/roster**")
    office.close()
    saved = query(server, "SELECT starts_at FROM patrol_shift WHERE id = ?", shift_id)
    assert saved[0][0].startswith(_stamp(new.astimezone(UTC)))


def times(server, shift_id: int, start: datetime) -> tuple[datetime, datetime]:
    """The shift's start as the guard's page shows it, before and after a 45-minute move."""
    tz = ZoneInfo(query(server, "SELECT timezone FROM site WHERE name = ?", SITE)[0][0])
    return start.astimezone(tz), (start - timedelta(minutes=45)).astimezone(tz)


def test_a_moved_shift_shows_on_the_open_page_and_offline_after_one_sync(
    browser, playwright_instance, fresh_server, fresh_phone
):
    shift_id, start = guard1_due_soon(fresh_server)
    old, new = times(fresh_server, shift_id, start)
    page = duty_page_kept(fresh_phone, old)
    move_shift(browser, playwright_instance, fresh_server, shift_id, new)

    # The guard's phone loses the network and gets it back: it syncs, and the shift page on
    # screen shows the new time without the guard opening anything.
    fresh_phone.set_offline(True)
    fresh_phone.set_offline(False)
    expect(page.locator(".patrol-shift")).to_contain_text(f"{new:%H:%M}", timeout=60_000)
    expect(page.locator(".patrol-shift")).not_to_contain_text(f"{old:%H:%M}")
    expect(page.locator("#page-changed")).to_be_hidden()
    # The day pack's entry of the shift in IndexedDB was replaced by the pulled change too.
    assert page.evaluate(
        STORED_SHIFT, {"base": page.evaluate(MODULE, ""), "id": shift_id}
    ).startswith(f"{new.astimezone(UTC):%Y-%m-%dT%H:%M}")
    fresh_phone.set_offline(True)  # then offline for good
    open_offline(page, "/patrols/duty", ".patrol-shift")
    expect(page.locator(".patrol-shift")).to_contain_text(f"{new:%H:%M}")
    expect(page.locator(".patrol-shift")).not_to_contain_text(f"{old:%H:%M}")


def roster_shift(browser, playwright_instance, server, day, start: str, end: str) -> None:
    """The supervisor rosters guard1 at the demo post on ``day`` (site time) by the form."""
    site_id, guard_id = query(
        server,
        "SELECT site.id, user.id FROM site, user WHERE site.name = ? AND user.username = ?",
        SITE,
        "guard1",
    )[0]
    office = new_phone(browser, playwright_instance, server)
    boss = office.new_page()
    log_in(boss, "supervisor")
    boss.goto(f"/patrols/sites/{site_id}/roster")
    boss.select_option("#guard_id", str(guard_id))
    boss.fill("#day", f"{day:%Y-%m-%d}")
    boss.fill("#start", start)
    boss.fill("#end", end)
    boss.click("form.card button.primary[type=submit]")
    boss.wait_for_url("**/roster**")
    office.close()


def test_a_shift_rostered_for_next_week_shows_among_the_next_shifts_offline(
    browser, playwright_instance, fresh_server, fresh_phone
):
    shift_id, start = guard1_due_soon(fresh_server)
    old, _ = times(fresh_server, shift_id, start)
    page = duty_page_kept(fresh_phone, old)
    next_shifts = page.locator("#next-shifts")
    expect(next_shifts.locator("li.muted")).to_have_count(1)  # none rostered yet
    day = (old + timedelta(days=6)).date()
    roster_shift(browser, playwright_instance, fresh_server, day, "07:00", "15:00")

    fresh_phone.set_offline(True)  # the phone gets the network back: one sync
    fresh_phone.set_offline(False)
    expect(next_shifts).to_contain_text(f"{day:%m-%d} 07:00–15:00", timeout=60_000)
    expect(next_shifts.locator("li.muted")).to_have_count(0)
    fresh_phone.set_offline(True)
    open_offline(page, "/patrols/duty", "#next-shifts")
    expect(page.locator("#next-shifts")).to_contain_text(f"{day:%m-%d} 07:00–15:00")
    expect(page.locator(".patrol-shift")).to_contain_text(f"{old:%H:%M}")  # today's unchanged


def duty_page_fetches(server) -> int:
    log = (server.instance / "server.log").read_text(encoding="utf-8", errors="replace")
    return len(re.findall(r"GET /patrols/duty HTTP", log))


def test_with_the_app_closed_the_worker_keeps_the_moved_shift(
    browser, playwright_instance, fresh_server, fresh_phone
):
    """Background Sync with no page of the app open: the service worker pulls the change and
    fetches the pages itself, so the guard who opens the app offline sees the new time."""
    shift_id, start = guard1_due_soon(fresh_server)
    old, new = times(fresh_server, shift_id, start)
    page = duty_page_kept(fresh_phone, old)
    background_sync = BackgroundSync(fresh_phone, fresh_server)
    page.close()  # the guard closes the app

    move_shift(browser, playwright_instance, fresh_server, shift_id, new)
    fetched = duty_page_fetches(fresh_server)
    background_sync.fire()
    deadline = time.monotonic() + 30
    while duty_page_fetches(fresh_server) == fetched:
        assert time.monotonic() < deadline, "the worker did not fetch the duty page again"
        time.sleep(0.2)
    assert [p.url for p in fresh_phone.pages] == ["about:blank"]  # no page of the app did it

    # Opened with no network: what the worker kept (an offline page cannot refresh itself).
    fresh_phone.set_offline(True)
    reopened = fresh_phone.new_page()
    deadline = time.monotonic() + 10
    while True:  # the fetch is logged before the worker has put it in the cache
        open_offline(reopened, "/patrols/duty", ".patrol-shift")
        if f"{new:%H:%M}" in reopened.locator(".patrol-shift").inner_text():
            break
        assert time.monotonic() < deadline, "the cached duty page still shows the old time"
        reopened.wait_for_timeout(300)
    expect(reopened.locator(".patrol-shift")).not_to_contain_text(f"{old:%H:%M}")


def test_while_the_guard_types_the_moved_shift_is_offered_and_the_text_stays(
    browser, playwright_instance, fresh_server, fresh_phone
):
    shift_id, start = guard1_due_soon(fresh_server)
    old, new = times(fresh_server, shift_id, start)
    page = duty_page_kept(fresh_phone, old)
    page.fill("#scan-note", "东门锁坏了")  # half-way through recording a checkpoint
    move_shift(browser, playwright_instance, fresh_server, shift_id, new)

    fresh_phone.set_offline(True)
    fresh_phone.set_offline(False)
    wait_until(page, "() => document.documentElement.dataset.pagesRefreshedAt", timeout=60)
    banner = page.locator("#page-changed")
    expect(banner).to_be_visible()
    expect(page.locator("#scan-note")).to_have_value("东门锁坏了")
    expect(page.locator(".patrol-shift")).to_contain_text(f"{old:%H:%M}")
    screenshot(page, "patrols-shift-changed-banner")

    # The network drops before the guard taps: the new version comes from the phone.
    fresh_phone.set_offline(True)
    banner.get_by_role("button").click()
    expect(page.locator(".patrol-shift")).to_contain_text(f"{new:%H:%M}")
    expect(page.locator(".patrol-shift")).not_to_contain_text(f"{old:%H:%M}")
