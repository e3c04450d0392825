"""At the stop the courier points the phone's camera at the parcels' QR codes: Chromium's fake
camera plays a QR code of an item code, jsQR reads it, and the item is ticked on the slip."""

from pathlib import Path

import pytest
import segno
from PIL import Image
from playwright.sync_api import expect

from tests.browser.conftest import ARGS, CHROMIUM, log_in, query, screenshot

pytestmark = pytest.mark.browser
WIDTH, HEIGHT = 640, 480


def write_y4m(path: Path, text: str, frames: int = 5) -> None:
    """A few frames of a QR code in YUV 4:2:0, the format Chromium's fake camera plays."""
    qr = segno.make(text, error="m", micro=False)  # jsQR reads no Micro QR
    buffer = path.with_suffix(".png")
    qr.save(str(buffer), scale=10, border=4)
    code = Image.open(buffer).convert("L")
    frame = Image.new("L", (WIDTH, HEIGHT), 255)
    frame.paste(code, ((WIDTH - code.width) // 2, (HEIGHT - code.height) // 2))
    luma = frame.tobytes()
    chroma = bytes([128]) * (WIDTH // 2 * HEIGHT // 2)
    with path.open("wb") as out:
        out.write(f"YUV4MPEG2 W{WIDTH} H{HEIGHT} F10:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(frames):
            out.write(b"FRAME\n" + luma + chroma + chroma)


@pytest.fixture
def camera_phone(playwright_instance, live_server, tmp_path):
    """A Pixel 7 whose camera sees the QR code of the first stop's first item."""
    (stop_id, code) = query(
        live_server,
        "SELECT s.id, i.code FROM delivery_stop s JOIN delivery_slip_item i ON i.stop_id = s.id"
        " WHERE s.customer_code = 'SH0101' ORDER BY i.id LIMIT 1",
    )[0]
    video = tmp_path / "qr.y4m"
    write_y4m(video, code)
    browser = playwright_instance.chromium.launch(
        executable_path=CHROMIUM,
        headless=True,
        args=[
            *ARGS,
            "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-video-capture={video}",
        ],
    )
    device = dict(playwright_instance.devices["Pixel 7"])
    device.pop("default_browser_type", None)
    context = browser.new_context(
        **device, locale="zh-CN", base_url=live_server.url, permissions=["camera"]
    )
    context.set_default_timeout(20_000)
    yield context, stop_id, code
    context.close()
    browser.close()


def test_the_camera_reads_an_item_qr_code_and_ticks_it_on_the_slip(camera_phone, live_server):
    context, stop_id, code = camera_phone
    page = context.new_page()
    log_in(page, "courier1")
    page.goto(f"/deliveries/stops/{stop_id}")
    tick = page.locator(f"input.item-tick[data-code='{code}']")
    assert not tick.is_checked()

    page.click("[data-scan-start]")
    page.wait_for_function(
        "code => document.getElementById('scanned_codes').value.split(' ').includes(code)",
        arg=code,
        timeout=15_000,
    )
    expect(tick).to_be_checked()
    expect(page.locator("[data-scan-status]")).to_contain_text(code)
    # Only the scanned item is ticked: the other line of the slip still needs checking.
    expect(page.locator("input.item-tick:checked")).to_have_count(1)
    screenshot(page, "deliveries-camera-scan")
    page.click("[data-scan-stop]")
    page.wait_for_function(
        "() => document.querySelector('[data-scan-video]').srcObject.getTracks()"
        ".every(t => t.readyState === 'ended')"
    )

    # Typed fallback: a code of another customer's parcel is flagged at once.
    other = query(
        live_server,
        "SELECT i.code FROM delivery_slip_item i JOIN delivery_stop s ON s.id = i.stop_id"
        " WHERE s.customer_code = 'SH0102' LIMIT 1",
    )[0][0]
    page.fill("#scanned_codes", f"{code} {other}")
    warning = page.locator("[data-code-warning]")
    expect(warning).to_be_visible()
    expect(warning).to_contain_text(other)
