"""A courier's whole day offline on a Pixel 7: vehicle check, three stops (cash collected with
signature and photo, an electronic delivery with signature, a refusal), the night cash
handover with both signatures; back online the server holds each record exactly once, with its
files, and the dispatcher sees the refusal."""

import io
import time

import pytest
from PIL import Image
from playwright.sync_api import expect

from tests.browser.conftest import log_in, new_phone, query, screenshot, wait_for_service_worker

pytestmark = pytest.mark.browser
SHOP = {"latitude": 31.2336, "longitude": 121.4798, "accuracy": 8}


def photo() -> dict:
    buffer = io.BytesIO()
    Image.new("RGB", (2000, 1500), (200, 120, 40)).save(buffer, "JPEG")
    return {"name": "IMG_0001.jpg", "mimeType": "image/jpeg", "buffer": buffer.getvalue()}


def sign(page, selector: str = "canvas[data-signature]", variant: int = 0) -> None:
    """Each ``variant`` draws another stroke: files are stored by content, so two identical
    drawings would be one file (only the pen's speed told equal strokes apart)."""
    canvas = page.locator(selector)
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    x, y = box["x"] + 20 + 9 * variant, box["y"] + 40
    page.mouse.move(x, y)
    page.mouse.down()
    for step in range(1, 8):
        page.mouse.move(x + step * 25, y + ((step + variant) % 3) * 20, steps=2)
    page.mouse.up()


def wait_until_cached(page, urls: list[str], timeout: float = 30) -> None:
    """Until the service worker's page cache holds every URL (evaluate awaits the promise)."""
    script = (
        "urls => caches.open('fieldapp-pages')"
        ".then(c => Promise.all(urls.map(u => c.match(u)))).then(found => found.every(Boolean))"
    )
    deadline = time.monotonic() + timeout
    while not page.evaluate(script, urls):
        assert time.monotonic() < deadline, "the day pack's pages were not cached"
        time.sleep(0.2)


def wait_status(page, text: str, timeout: int = 60_000) -> None:
    page.wait_for_function(
        "t => document.getElementById('sync-status').textContent.includes(t)",
        arg=text,
        timeout=timeout,
    )


def test_a_courier_day_recorded_offline_reaches_the_server_once(
    fresh_phone, fresh_server, browser, playwright_instance
):
    fresh_phone.grant_permissions(["geolocation"], origin=fresh_server.url)
    fresh_phone.set_geolocation(SHOP)
    (route_id,) = query(fresh_server, "SELECT id FROM delivery_route")[0]
    # Today the courier has three stops: the demo route's fourth is taken off before login.
    (fourth,) = query(
        fresh_server,
        "SELECT id FROM delivery_stop WHERE route_id = ? AND sequence = 4",
        route_id,
    )[0]
    query(fresh_server, "DELETE FROM delivery_slip_item WHERE stop_id = ?", fourth)
    query(fresh_server, "DELETE FROM delivery_stop WHERE id = ?", fourth)
    stop_ids = [
        s
        for (s,) in query(
            fresh_server,
            "SELECT id FROM delivery_stop WHERE route_id = ? ORDER BY sequence",
            route_id,
        )
    ]
    page = fresh_phone.new_page()
    log_in(page, "courier1")
    wait_for_service_worker(page)
    page.goto("/deliveries/today")
    # The day pack puts every page of the day in the service worker's cache.
    wait_until_cached(
        page,
        [f"/deliveries/stops/{s}" for s in stop_ids]
        + [f"/deliveries/routes/{route_id}/vehicle-check", "/deliveries/end-of-day"],
    )

    fresh_phone.set_offline(True)
    page.goto(f"/deliveries/routes/{route_id}/vehicle-check")
    for name in ("no_faults", "condition", "licence", "registration", "insurance"):
        page.check(f"input[name={name}]")
    page.fill("#odometer_km", "48100")
    page.click("#vehicle-check-form button[type=submit]")
    wait_status(page, "1 条待发送")

    # Stop 1: cash customer, goods ticked, cash taken, signed, photo of the goods.
    page.goto(f"/deliveries/stops/{stop_ids[0]}")
    page.click("#arrive-form button[type=submit]")
    wait_status(page, "2 条待发送")
    for tick in page.locator("input.item-tick").all():
        tick.check()
    page.fill("#cash_received", "1280")
    expect(page.locator("[data-cash-diff]")).to_contain_text("¥0.50")  # 50 fen short, flagged
    page.fill("#cash_received", "1280.50")
    page.set_input_files("#photo", files=[photo()])
    sign(page, variant=0)
    page.click("#proof-form button[type=submit]")
    wait_status(page, "3 条待发送")

    # Stop 2: electronic settlement, no cash step; goods ticked, customer signs.
    page.goto(f"/deliveries/stops/{stop_ids[1]}")
    page.wait_for_function("() => document.querySelector('[data-out-of-order]').hidden")
    assert page.locator("#cash_received").count() == 0
    page.click("#arrive-form button[type=submit]")
    wait_status(page, "4 条待发送")
    for tick in page.locator("input.item-tick").all():
        tick.check()
    sign(page, variant=1)
    page.click("#proof-form button[type=submit]")
    wait_status(page, "5 条待发送")

    # Stop 3: refused. The cached page still thinks stops 1 and 2 are open; the phone knows.
    page.goto(f"/deliveries/stops/{stop_ids[2]}")
    page.wait_for_function("() => document.querySelector('[data-out-of-order]').hidden")
    page.click("#arrive-form button[type=submit]")
    wait_status(page, "6 条待发送")
    page.select_option("#reason_code", "refused_goods")
    page.fill("#refusal_note", "店主说这周不要货")
    page.click("#refusal-form button[type=submit]")
    wait_status(page, "7 条待发送")
    page.goto("/deliveries/today")
    page.wait_for_function(
        "() => document.querySelectorAll('li.phone-proof, li.phone-refusal').length === 3"
    )
    screenshot(page, "deliveries-today-offline")

    # Night: the cash collected on this phone is handed over with both signatures.
    page.goto("/deliveries/end-of-day")
    page.wait_for_function(
        "() => document.querySelector('[data-collected]').textContent === '1280.50'"
    )
    page.fill(f"#deposited-{route_id}", "1280.50")
    page.fill(f"#deposit_reference-{route_id}", "DEP-778")
    page.fill(f"#bookkeeper_name-{route_id}", "王会计")
    sign(page, "canvas[data-signature=courier_signature]", variant=2)
    sign(page, "canvas[data-signature=bookkeeper_signature]", variant=3)
    page.click(".handover-form button[type=submit]")
    wait_status(page, "8 条待发送")
    assert query(fresh_server, "SELECT count(*) FROM delivery_proof") == [(0,)]

    fresh_phone.set_offline(False)
    wait_status(page, "全部已同步", timeout=90_000)
    assert query(fresh_server, "SELECT count(*), min(passed) FROM delivery_vehicle_check") == [
        (1, 1)
    ]
    assert query(
        fresh_server, "SELECT stop_id FROM delivery_stop_arrival ORDER BY device_time"
    ) == [(s,) for s in stop_ids]
    proofs = query(
        fresh_server,
        "SELECT stop_id, cash_received_fen, cash_variance_fen, signature, photo, latitude "
        "FROM delivery_proof ORDER BY device_time",
    )
    assert [p[:3] for p in proofs] == [(stop_ids[0], 128_050, 0), (stop_ids[1], None, None)]
    (_, _, _, signature1, photo1, latitude), (_, _, _, signature2, photo2, _) = proofs
    assert abs(latitude - SHOP["latitude"]) < 1e-6
    assert photo2 is None and len({signature1, photo1, signature2}) == 3
    handover = query(
        fresh_server,
        "SELECT route_id, collected_fen, deposited_fen, variance_fen, deposit_reference,"
        " bookkeeper_name, courier_signature, bookkeeper_signature FROM delivery_cash_handover",
    )
    assert len(handover) == 1
    assert handover[0][:6] == (route_id, 128_050, 128_050, 0, "DEP-778", "王会计")
    files = [signature1, photo1, signature2, *handover[0][6:]]
    assert len(set(files)) == 5
    stored = query(
        fresh_server,
        "SELECT count(*) FROM sync_file WHERE complete = 1 AND sha256 IN (?, ?, ?, ?, ?)",
        *files,
    )
    assert stored == [(5,)]
    # Each file hangs on the record it belongs to, once.
    proof_ids = [
        p for (p,) in query(fresh_server, "SELECT id FROM delivery_proof ORDER BY device_time")
    ]
    (handover_id,) = query(fresh_server, "SELECT id FROM delivery_cash_handover")[0]
    refs = query(fresh_server, "SELECT record_type, record_id, field, sha256 FROM sync_file_ref")
    assert sorted(refs) == sorted(
        [
            ("delivery.proof", proof_ids[0], "signature", signature1),
            ("delivery.proof", proof_ids[0], "photo", photo1),
            ("delivery.proof", proof_ids[1], "signature", signature2),
            ("delivery.cash_handover", handover_id, "courier_signature", handover[0][6]),
            ("delivery.cash_handover", handover_id, "bookkeeper_signature", handover[0][7]),
        ]
    )
    assert query(fresh_server, "SELECT stop_id, reason_code, note FROM delivery_refusal") == [
        (stop_ids[2], "refused_goods", "店主说这周不要货")
    ]
    assert query(
        fresh_server,
        "SELECT state FROM delivery_stop WHERE route_id = ? ORDER BY sequence",
        route_id,
    ) == [("delivered",), ("delivered",), ("refused",)]
    alerts = query(
        fresh_server,
        "SELECT count(*) FROM push_notification n JOIN user u ON u.id = n.user_id "
        "JOIN push_event e ON e.id = n.event_id "
        "WHERE u.username = 'supervisor' AND e.kind = 'delivery.refused'",
    )
    assert alerts == [(1,)]

    office = new_phone(browser, playwright_instance, fresh_server)
    try:
        desk = office.new_page()
        log_in(desk, "supervisor")
        desk.goto(f"/deliveries/routes/{route_id}")
        refusal = desk.locator(".refusals li.refusal")
        assert refusal.count() == 1
        assert "店主说这周不要货" in refusal.inner_text()
        screenshot(desk, "deliveries-dispatcher-refusal")
    finally:
        office.close()
