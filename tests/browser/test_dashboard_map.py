"""A supervisor at a desk opens the Today board: the map plots today's located actions of their
teams over the sites' geofences. The tile server is set but unreachable (as everywhere without
internet), so the map falls back to the plain plot; Leaflet runs under the app's CSP with no
violation. A screenshot is kept as a test artifact. Data and scoping: test_dashboard_map.py in
tests/integration."""

import shutil
import sqlite3
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import LiveServer, free_port, log_in, screenshot

pytestmark = pytest.mark.browser

SHOP = (31.2335, 121.4797)
OFFICE = (31.2352, 121.5055)


@pytest.fixture
def map_server():
    """A server of its own whose tile server refuses connections (a closed local port)."""
    instance = Path(tempfile.mkdtemp(prefix="fieldapp-map-"))
    tiles = f"http://127.0.0.1:{free_port()}/tiles/{{z}}/{{x}}/{{y}}.png"
    server = LiveServer(instance, {"FIELDAPP_MAP_TILES": tiles})
    server.flask("db", "upgrade", "heads")
    server.flask("seed-demo")
    server.start()
    yield server
    server.kill()
    shutil.rmtree(instance, ignore_errors=True)


def record_todays_actions(server) -> str:
    """A courier's arrival at the demo route's first stop and a rep's check-in at a demo visit,
    both located and stamped now, written as the sync engine stores them. Returns the stop."""
    now = datetime.now(UTC).replace(tzinfo=None).isoformat(sep=" ")
    with sqlite3.connect(server.instance / "live.sqlite3") as conn:
        stop_id, org_id, courier_id = conn.execute(
            "SELECT s.id, s.org_id, r.courier_id FROM delivery_stop s"
            " JOIN delivery_route r ON r.id = s.route_id ORDER BY r.date DESC, s.sequence"
        ).fetchone()
        visit_id, rep_id = conn.execute(
            "SELECT id, rep_id FROM visit ORDER BY planned_date DESC"
        ).fetchone()
        conn.execute(
            "INSERT INTO delivery_stop_arrival (id, org_id, user_id, device_time, received_at,"
            " latitude, longitude, stop_id, out_of_order_reason)"
            " VALUES ('9b1f7c52-0000-4000-8000-000000000001', ?, ?, ?, ?, ?, ?, ?, '')",
            (org_id, courier_id, now, now, *SHOP, stop_id),
        )
        conn.execute(
            "INSERT INTO visit_check_in (id, org_id, user_id, at, received_at, latitude,"
            " longitude, note, visit_id)"
            " VALUES ('9b1f7c52-0000-4000-8000-000000000002', ?, ?, ?, ?, ?, ?, '', ?)",
            (org_id, rep_id, now, now, *OFFICE, visit_id),
        )
    return stop_id


def test_the_today_map_plots_the_actions_without_tiles(browser, map_server):
    stop_id = record_todays_actions(map_server)
    context = browser.new_context(
        viewport={"width": 1366, "height": 900}, locale="zh-CN", base_url=map_server.url
    )
    context.set_default_timeout(20_000)
    page = context.new_page()
    problems = []
    page.on(
        "console",
        lambda m: problems.append(m.text) if m.type == "error" and "Policy" in m.text else None,
    )
    page.on("pageerror", lambda error: problems.append(str(error)))
    log_in(page, "supervisor")

    page.goto("/dashboard/")
    canvas = page.locator("#dashboard-map")
    page.wait_for_selector('#dashboard-map[data-state="ready"]')
    assert canvas.get_attribute("data-markers") == "2"
    markers = page.locator("#dashboard-map path.dashboard-map-action")
    assert markers.count() == 2
    assert page.locator("#dashboard-map path.dashboard-map-site").count() >= 2
    box = canvas.bounding_box()
    assert box and box["width"] > 600 and box["height"] > 300, box

    # The tiles cannot load: the map says so and keeps the points on a plain background.
    page.wait_for_selector('#dashboard-map.no-tiles[data-tiles-state="failed"]')
    assert page.locator("[data-map-note]").inner_text().strip()
    assert page.locator("#dashboard-map img.leaflet-tile").count() == 0
    for index in range(2):  # the points are inside the visible map
        point = markers.nth(index).bounding_box()
        assert point and box["x"] <= point["x"] <= box["x"] + box["width"], point
        assert box["y"] <= point["y"] <= box["y"] + box["height"], point

    # A marker's popup names the worker and links to the record.
    page.locator("#dashboard-map path.dashboard-map-arrival").click()
    link = page.locator(".leaflet-popup-content a")
    assert link.get_attribute("href") == f"/deliveries/stops/{stop_id}"
    expect(page.locator(".leaflet-popup-content")).to_contain_text("李师傅")
    page.wait_for_function(
        "() => getComputedStyle(document.querySelector('.leaflet-popup')).opacity === '1'"
    )
    screenshot(page, "dashboard-today-map")

    assert problems == [], problems
    context.close()
