"""A rep's visit on a Pixel 7 with no network, then the office takes the complaint to closure.

Offline: check in, write a visit report with a photo and a satisfaction score, take a
complaint and hand the client the acceptance slip, check out. Online: everything reaches the
server once; the complaint is in the office queue with its working-day deadlines and goes
through routing, plan, approval, answer, callback and closure (at the HTTP level, as the
office's browser would post the forms), and a return visit is scheduled.
"""

import io
import re
import time
from datetime import UTC, datetime

import pytest
import requests
from PIL import Image

from fieldapp.rules.calendar import WorkingCalendar
from fieldapp.rules.complaints import complaint_deadlines
from tests.browser.conftest import log_in, query, screenshot, wait_for_service_worker
from tests.browser.test_sync import wait_status

pytestmark = pytest.mark.browser

OFFICE = {"latitude": 31.2353, "longitude": 121.5056, "accuracy": 12}
TOKEN = re.compile(r'name="csrf-token" content="([^"]+)"')


def photo() -> dict:
    buffer = io.BytesIO()
    Image.new("RGB", (2400, 1800), (30, 120, 200)).save(buffer, "JPEG")
    return {"name": "IMG_0001.jpg", "mimeType": "image/jpeg", "buffer": buffer.getvalue()}


def wait_until_cached(page, urls, timeout=20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = page.evaluate(
            "urls => caches.open('fieldapp-pages')"
            ".then(c => Promise.all(urls.map(u => c.match(u))))"
            ".then(found => found.every(Boolean))",
            urls,
        )
        if found:
            return
        time.sleep(0.2)
    raise AssertionError(f"pages not cached for offline use: {urls}")


def utc(text: str) -> datetime:
    """A time as the live server's SQLite keeps it (naive UTC)."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


class Office:
    """The supervisor's browser at the HTTP level: log in, open a page, post its form."""

    def __init__(self, server):
        self.url = server.url
        self.http = requests.Session()
        self.token = None
        self.get("/login")
        response = self.post("/login", {"username": "supervisor", "password": "demo-2026"})
        assert response.status_code == 302

    def get(self, path):
        response = self.http.get(self.url + path, timeout=10)
        match = TOKEN.search(response.text)
        if match:
            self.token = match.group(1)
        return response

    def post(self, path, form):
        return self.http.post(
            self.url + path,
            data={"csrf_token": self.token, **form},
            allow_redirects=False,
            timeout=10,
        )

    def step(self, complaint_id, name, **form):
        self.get(f"/complaints/{complaint_id}")
        response = self.post(f"/complaints/{complaint_id}/{name}", form)
        assert response.status_code == 302, (name, response.text[:2000])


def test_a_visit_offline_then_the_complaint_closed_by_the_office(fresh_phone, fresh_server):
    server, phone = fresh_server, fresh_phone
    phone.grant_permissions(["geolocation"], origin=server.url)
    phone.set_geolocation(OFFICE)
    ((visit_id, site_id),) = query(
        server,
        "SELECT v.id, v.site_id FROM visit v JOIN user u ON u.id = v.rep_id "
        "WHERE u.username = 'rep1'",
    )
    complaint_page = f"/complaints/new?site_id={site_id}&visit_id={visit_id}"
    page = phone.new_page()
    log_in(page, "rep1")
    wait_for_service_worker(page)
    # The day pack puts today's visit and the complaint form on the phone.
    wait_until_cached(page, [f"/visits/{visit_id}", complaint_page])

    phone.set_offline(True)
    page.goto(f"/visits/{visit_id}")
    page.wait_for_function(
        "() => document.querySelector('#check-in-form [name=latitude]').value !== ''"
    )
    page.click("#check-in-form button[type=submit]")
    page.wait_for_selector("#check-ins li.pending-record")

    page.fill("#discussed", "续签合同，夜班安排")
    page.fill("#client_opinions", "希望加强夜间巡查")
    page.set_input_files("#photos", files=[photo()])
    for name, score in (("timeliness", 5), ("skill", 4), ("attitude", 5)):
        page.check(f"#{name}-{score}")
    page.fill("#follow_up_action", "发送夜班排班表")
    page.fill("#follow_up_due", "2026-12-01")
    page.click("#report-form button[type=submit]")
    page.wait_for_selector("#reports li.pending-record")

    page.click("#take-complaint")
    page.wait_for_selector("#complaint-form")
    page.fill("#complainant", "陈经理")
    page.fill("#complainant_phone", "021-5888 1001")
    page.fill("#subject", "夜班保安巡逻记录缺失")
    page.fill("#request", "更换夜班保安并书面答复")
    page.select_option("#severity", "serious")
    page.click("#complaint-form button[type=submit]")
    slip = page.locator("#slip-now")
    slip.wait_for(state="visible")
    reference = slip.locator('[data-slip="id"]').inner_text()
    assert re.fullmatch(r"[0-9a-f-]{36}", reference)
    pending = slip.get_attribute("data-pending")
    assert slip.locator('[data-slip="number"]').inner_text() == pending  # "number pending"
    assert slip.locator('[data-slip="client"]').inner_text() == "东方物业办公室"
    assert slip.locator('[data-slip="subject"]').inner_text() == "夜班保安巡逻记录缺失"
    # Offline, the slip still has its QR code: one the server reserved for this page.
    assert slip.locator('[data-slip="qr"] svg').is_visible()
    assert page.locator(f'[data-reserved-id="{reference}"]').count() == 1
    screenshot(page, "visits-acceptance-slip-offline")

    page.goto(f"/visits/{visit_id}")
    page.click("#check-out-form button[type=submit]")
    page.wait_for_selector("#check-outs li.pending-record")
    wait_status(page, "4 条待发送")
    assert query(server, "SELECT count(*) FROM visit_check_in") == [(0,)]
    screenshot(page, "visits-visit-offline")

    phone.set_offline(False)
    wait_status(page, "全部已同步", timeout=90_000)
    assert query(server, "SELECT count(*) FROM visit_check_in WHERE inside = 1") == [(1,)]
    assert query(server, "SELECT count(*) FROM visit_check_out") == [(1,)]
    ((score, satisfied, photos),) = query(
        server, "SELECT satisfaction_score, satisfied, photos FROM visit_report"
    )
    assert (score, satisfied) == (14, 1)
    (sha,) = re.findall(r"[0-9a-f]{64}", photos)
    assert query(server, "SELECT complete FROM sync_file WHERE sha256 = ?", sha) == [(1,)]
    assert query(server, "SELECT state FROM visit WHERE id = ?", visit_id) == [("done",)]
    assert query(server, "SELECT count(*) FROM visit_follow_up") == [(1,)]

    rows = query(
        server,
        "SELECT slip_number, logged_at, investigate_by, reply_by, state FROM complaint "
        "WHERE id = ?",
        reference,
    )
    ((number, logged_at, investigate_by, reply_by, state),) = rows  # stored once
    assert state == "received"
    expected = complaint_deadlines(utc(logged_at), WorkingCalendar(), "Asia/Shanghai")
    assert (utc(investigate_by), utc(reply_by)) == (expected.investigate_by, expected.reply_by)

    # The slip on the phone now shows the number the server gave.
    page.goto(complaint_page)
    page.wait_for_selector(f"#my-complaints a:has-text('{number}')")

    office = Office(server)
    queue = office.get("/complaints/").text
    assert number in queue and "夜班保安巡逻记录缺失" in queue
    ((rep2_id,),) = query(server, "SELECT id FROM user WHERE username = 'rep2'")
    office.step(reference, "triage", valid="yes", category="attitude", cause_class="human")
    office.step(reference, "route", department="保安部", handler_id=str(rep2_id))
    office.step(reference, "plan", plan="更换夜班人员，增加夜间抽查")
    office.step(reference, "approve", note="同意")
    office.step(reference, "answer", answer="已更换夜班保安，本周起每晚抽查")
    office.step(reference, "callback", callback_result="satisfied", client_opinion="满意")
    office.step(
        reference,
        "close",
        root_cause="夜班连续排班过长",
        corrective_action="夜班不超过两晚，主管每晚抽查",
    )
    assert query(server, "SELECT state FROM complaint WHERE id = ?", reference) == [("closed",)]
    steps = query(
        server,
        "SELECT step FROM complaint_event WHERE complaint_id = ? ORDER BY version",
        reference,
    )
    assert [s for (s,) in steps] == [
        "received",
        "triage",
        "route",
        "plan",
        "approve",
        "answer",
        "callback",
        "close",
    ]
    assert query(
        server, "SELECT reason FROM visit_return_visit WHERE complaint_id = ?", reference
    ) == [("complaint_closed",)]
    assert "东方物业办公室" in office.get("/visits/return-visits").text
