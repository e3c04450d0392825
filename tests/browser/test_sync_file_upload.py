"""How the phone sends files: a small one (a signature) in one request, a large photo announced
and then sent in pieces, and one the server already has part of from where the server is."""

import hashlib
import io
import os

import pytest
from PIL import Image, ImageDraw

from tests.browser.conftest import log_in, query, wait_for_service_worker
from tests.browser.test_sync_refused_file import FLUSH, MODULE, STORED_FILE, file_requests

pytestmark = pytest.mark.browser

CHUNK = 256 * 1024  # the phone's piece (sender.js)

# Queue a test.note with its photo and signature, as forms.js would: `files` are
# {bytes, sha256, type}.
ENQUEUE = """async ({ files, photo, signature, title, base }) => {
  const outbox = await import(base + "outbox.js");
  const payload = { id: outbox.uuidv7(), title, amount: 1, photo, signature };
  const kept = files.map((f) => ({
    sha256: f.sha256, type: f.type, blob: new Blob([new Uint8Array(f.bytes)], { type: f.type }),
  }));
  await outbox.enqueue(document.body.dataset.deviceId, "test.note", payload, { files: kept });
}"""

# What another attempt left on the server: announced, and the first `half` bytes sent.
SEND_HALF = """async ({ bytes, sha256, type, half }) => {
  const csrf = document.querySelector("meta[name=csrf-token]").content;
  const url = `/api/sync/files/${sha256}`;
  const headers = { "X-CSRFToken": csrf };
  await fetch(url, { method: "POST", headers: { ...headers, "Content-Type": "application/json" },
                     body: JSON.stringify({ size: bytes.length, content_type: type }) });
  const piece = new Uint8Array(bytes.slice(0, half));
  const sent = await fetch(url, { method: "PATCH", body: piece,
                                  headers: { ...headers, "Upload-Offset": "0" } });
  return (await sent.json()).offset;
}"""


def signature() -> bytes:
    picture = Image.new("RGB", (400, 150), "white")
    ImageDraw.Draw(picture).line([(20, 100), (150, 30), (380, 120)], fill="black", width=4)
    picture.putpixel((0, 0), tuple(os.urandom(3)))  # a new file for every run
    buffer = io.BytesIO()
    picture.save(buffer, "PNG")
    return buffer.getvalue()


def photo(width: int, height: int) -> bytes:
    """Noise: a JPEG that does not compress, as large as its pixels make it."""
    buffer = io.BytesIO()
    Image.frombytes("RGB", (width, height), os.urandom(width * height * 3)).save(
        buffer, "JPEG", quality=90
    )
    return buffer.getvalue()


def as_file(data: bytes, kind: str) -> dict:
    return {"bytes": list(data), "sha256": hashlib.sha256(data).hexdigest(), "type": kind}


def courier_outbox(phone):
    """The courier's outbox page, once the sync it starts on opening is over (from then on the
    test's syncs alone); with the base URL of the app's modules."""
    page = phone.new_page()
    log_in(page, "courier1")
    wait_for_service_worker(page)
    page.goto("/sync/outbox")
    page.wait_for_function("() => document.documentElement.dataset.offlineReady")
    return page, page.evaluate(MODULE, "")


def test_a_small_file_goes_in_one_request_a_large_one_in_pieces(phone, live_server):
    page, base = courier_outbox(phone)

    sig = as_file(signature(), "image/png")
    large = as_file(photo(640, 480), "image/jpeg")
    resumed = as_file(photo(160, 120), "image/jpeg")
    assert len(sig["bytes"]) < CHUNK < len(large["bytes"]) and len(resumed["bytes"]) < CHUNK
    half = len(resumed["bytes"]) // 2
    assert page.evaluate(SEND_HALF, {**resumed, "half": half}) == half

    requests = {f["sha256"]: file_requests(page, f["sha256"]) for f in (sig, large, resumed)}
    page.evaluate(
        ENQUEUE,
        {"files": [sig, large], "photo": large["sha256"], "signature": sig["sha256"],
         "title": "签收", "base": base},
    )  # fmt: skip
    page.evaluate(
        ENQUEUE,
        {"files": [resumed], "photo": resumed["sha256"], "signature": None, "title": "续传",
         "base": base},
    )  # fmt: skip
    page.evaluate(FLUSH, base)

    # The signature: announced and sent in one request.
    assert requests[sig["sha256"]] == ["PATCH"]
    # The large photo: announced, then one request per piece.
    pieces = -(-len(large["bytes"]) // CHUNK)
    assert requests[large["sha256"]] == ["POST"] + ["PATCH"] * pieces
    # Half of it on the server already: told where the server is (409), then the rest.
    assert requests[resumed["sha256"]] == ["PATCH", "PATCH"]

    for sent in (sig, large, resumed):
        assert page.evaluate(STORED_FILE, sent["sha256"])["confirmed"] is True
        stored = query(
            live_server,
            "SELECT complete, size FROM sync_file WHERE sha256 = ?",
            sent["sha256"],
        )
        assert stored == [(1, len(sent["bytes"]))]


def test_a_server_without_one_request_uploads_gets_the_file_announced_first(phone, live_server):
    """A phone already on the new page meets a server rolled back to before creation with
    upload: that server answers an unknown file's PATCH with 404, and the phone announces it."""
    page, base = courier_outbox(phone)
    sig = as_file(signature(), "image/png")
    url = f"**/api/sync/files/{sig['sha256']}"

    def as_the_old_server(route):
        creating = "upload-length" in route.request.headers
        if route.request.method == "PATCH" and creating:
            route.fulfill(status=404, json={"error": "not_found", "message": "Not found."})
        else:
            route.continue_()

    page.context.route(url, as_the_old_server)
    requests = file_requests(page, sig["sha256"])
    page.evaluate(
        ENQUEUE,
        {"files": [sig], "photo": None, "signature": sig["sha256"], "title": "旧服务器",
         "base": base},
    )  # fmt: skip
    page.evaluate(FLUSH, base)
    assert requests == ["PATCH", "POST", "PATCH"]
    assert page.evaluate(STORED_FILE, sig["sha256"])["confirmed"] is True
    stored = query(live_server, "SELECT complete FROM sync_file WHERE sha256 = ?", sig["sha256"])
    assert stored == [(1,)]
