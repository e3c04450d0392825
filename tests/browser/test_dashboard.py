"""A supervisor at a desk: the KPI page's trend charts render (a screenshot is kept as a test
artifact), and an XLSX register downloaded from the registers page reads back with the demo
complaint in it. HTTP-level behaviour is in tests/integration/test_dashboard*.py."""

import io
from pathlib import Path

import pytest
from openpyxl import load_workbook

from tests.browser.conftest import log_in, screenshot

pytestmark = pytest.mark.browser


@pytest.fixture
def desk(browser, live_server):
    context = browser.new_context(
        viewport={"width": 1366, "height": 900},
        locale="zh-CN",
        base_url=live_server.url,
        accept_downloads=True,
    )
    context.set_default_timeout(20_000)
    yield context
    context.close()


def test_charts_render_and_an_xlsx_register_reads_back(desk):
    page = desk.new_page()
    log_in(page, "supervisor")

    page.goto("/dashboard/kpi")
    charts = page.locator("figure.dashboard-chart > svg")
    assert charts.count() == 4  # deliveries, complaints, satisfaction, complaint rate
    for index in range(4):
        box = charts.nth(index).bounding_box()
        assert box and box["width"] > 400 and box["height"] > 100, box
    # Six months on the x axis, five ticks on the y axis, the dashed target line.
    first = charts.nth(0)
    assert first.locator("text").count() == 6 + 5
    assert first.locator("line[stroke-dasharray]").count() == 1
    screenshot(page, "dashboard-kpi-charts")

    page.goto("/dashboard/registers")
    link = page.locator('tr[data-register="complaints"] a[href*="complaints.xlsx"]')
    with page.expect_download() as info:
        link.click()
    download = info.value
    assert download.suggested_filename.startswith("complaints-")
    book = load_workbook(io.BytesIO(Path(download.path()).read_bytes()))
    rows = list(book.active.iter_rows(values_only=True))
    assert len(rows[0]) == 12  # the headings
    subjects = [row[4] for row in rows[1:]]
    assert "保洁人员晚到一小时" in subjects  # the demo complaint, logged today
    demo = rows[1 + subjects.index("保洁人员晚到一小时")]
    assert demo[0] and demo[3] == "投诉电话"  # a slip number; the channel in Chinese
    page.close()
