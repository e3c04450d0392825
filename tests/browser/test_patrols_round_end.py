"""A round ended early on the phone: the form insists on a reason, then the fact reaches the
server with the round number (online; the offline path is the same outbox as every form)."""

import pytest

from tests.browser.conftest import log_in, query, wait_for_service_worker, wait_until
from tests.browser.test_patrols import GATE, guard1_on_duty_now, saved

pytestmark = pytest.mark.browser


def test_ending_a_round_with_checkpoints_left_needs_a_reason(fresh_server, fresh_phone):
    guard1_on_duty_now(fresh_server)
    fresh_phone.grant_permissions(["geolocation"])
    fresh_phone.set_geolocation(GATE)
    page = fresh_phone.new_page()
    log_in(page, "guard1")
    wait_for_service_worker(page)
    page.goto("/patrols/duty")
    page.wait_for_selector("#end-round-form:not([hidden])")
    assert page.input_value("#end-round-number") == "1"

    page.click("#end-round-form button[type=submit]")  # no reason: the phone refuses
    assert page.evaluate("() => !document.getElementById('end-round-reason').validity.valid")
    assert page.locator("#end-round-form [data-saved]:not([hidden])").count() == 0

    page.fill("#end-round-reason", "东门积水")
    page.click("#end-round-form button[type=submit]")
    saved(page, "#end-round-form")
    wait_until(page, "() => document.getElementById('end-round-controls').hidden")
    page.wait_for_function(
        "() => document.getElementById('sync-status').textContent.includes('全部已同步')",
        timeout=60_000,
    )
    rows = query(fresh_server, "SELECT round_number, reason FROM patrol_round_ended_early")
    assert rows == [(1, "东门积水")]
