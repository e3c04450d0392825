"""A checkpoint scanned with the phone camera: Chromium's fake camera plays a video of the
printed QR code, jsQR reads it from the frames, the scan is saved and reaches the server as a
camera scan (not a typed code). Online; the offline path is the same outbox as every form."""

import io
from pathlib import Path

import pytest
import segno
from PIL import Image
from playwright.sync_api import expect

from tests.browser.conftest import (
    ARGS,
    CHROMIUM,
    log_in,
    new_phone,
    query,
    wait_for_service_worker,
)
from tests.browser.test_patrols import GATE, guard1_on_duty_now

pytestmark = pytest.mark.browser


def qr_video(text: str, path: Path, frames: int = 10) -> Path:
    """A .y4m video (YUV 4:2:0, 640x480) showing the QR code, as Chromium's fake camera
    plays it."""
    png = io.BytesIO()
    segno.make(text, error="m").save(png, kind="png", scale=8, border=4)
    png.seek(0)
    code = Image.open(png).convert("L")
    frame = Image.new("L", (640, 480), 255)
    frame.paste(code, ((640 - code.width) // 2, (480 - code.height) // 2))
    y, u, v = frame.convert("RGB").convert("YCbCr").split()
    u, v = u.resize((320, 240)), v.resize((320, 240))
    planes = y.tobytes() + u.tobytes() + v.tobytes()
    with path.open("wb") as video:
        video.write(b"YUV4MPEG2 W640 H480 F10:1 Ip A1:1 C420jpeg\n")
        for _ in range(frames):
            video.write(b"FRAME\n" + planes)
    return path


def test_the_camera_reads_a_checkpoint_code(browser, playwright_instance, fresh_server, tmp_path):
    guard1_on_duty_now(fresh_server)
    office = new_phone(browser, playwright_instance, fresh_server)
    boss = office.new_page()
    log_in(boss, "supervisor")
    site_id = query(fresh_server, "SELECT id FROM site WHERE name = '外滩中心大门岗'")[0][0]
    boss.goto(f"/patrols/sites/{site_id}/qr")
    printed = boss.locator("figure[data-code=CP2] .qr-text").inner_text()
    office.close()
    video = qr_video("".join(printed.split()), tmp_path / "cp2.y4m")

    camera_browser = playwright_instance.chromium.launch(
        executable_path=CHROMIUM,
        headless=True,
        args=[
            *ARGS,
            "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-video-capture={video}",
        ],
    )
    try:
        context = new_phone(camera_browser, playwright_instance, fresh_server)
        context.grant_permissions(["camera", "geolocation"])
        context.set_geolocation(GATE)
        page = context.new_page()
        log_in(page, "guard1")
        wait_for_service_worker(page)
        page.goto("/patrols/duty")
        expect(page.locator("#round-left li[data-code=CP2]")).to_have_count(1)  # drawn by JS
        page.click("#camera-start")
        # Read, saved and shown as scanned without typing anything.
        page.wait_for_selector("#round-done li[data-code=CP2]", timeout=20_000)
        assert page.locator("#camera-box").is_hidden()
        assert page.input_value("#scan-code") == ""  # the form was reset after saving
        assert page.input_value("#scan-manual") == "true"  # the next typed code is "manual"
        page.wait_for_function(
            "() => document.getElementById('sync-status').textContent.includes('全部已同步')",
            timeout=60_000,
        )
        rows = query(
            fresh_server,
            "SELECT c.code, s.manual FROM patrol_scan s "
            "JOIN patrol_checkpoint c ON c.id = s.checkpoint_id",
        )
        assert rows == [("CP2", 0)]
    finally:
        camera_browser.close()
