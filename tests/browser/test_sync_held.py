"""A revoked phone hands its offline records over: held for the office, never resent."""

import pytest

from tests.browser.conftest import log_in, new_phone, query, wait_until
from tests.browser.test_sync import add_note, open_notes_for_offline

pytestmark = pytest.mark.browser

HELD = """() => new Promise((resolve) => {
  const open = indexedDB.open("fieldapp");
  open.onsuccess = () => {
    const all = open.result.transaction("mutations").objectStore("mutations").getAll();
    all.onsuccess = () => resolve(all.result.length === 1 && all.result[0].status === "held");
  };
})"""


def test_a_revoked_phone_hands_its_outbox_to_the_office(
    fresh_phone, fresh_server, browser, playwright_instance
):
    page = fresh_phone.new_page()
    open_notes_for_offline(page)
    fresh_phone.set_offline(True)
    page.reload()
    add_note(page, 1, "收款 300", with_files=False)

    office = new_phone(browser, playwright_instance, fresh_server)
    admin = office.new_page()
    log_in(admin, "admin")
    admin.goto("/devices")
    admin.locator("li", has_text="李师傅").locator("button").click()
    admin.wait_for_url("**/devices")
    office.close()

    fresh_phone.set_offline(False)  # the "online" event sends: the batch is held, not applied
    wait_until(page, HELD)
    assert query(fresh_server, "select count, status from sync_held_batch") == [(1, "held")]
    assert query(fresh_server, "select count(*) from test_note") == [(0,)]
