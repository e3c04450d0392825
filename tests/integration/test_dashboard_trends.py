"""Figures that link to their records, formulas on hover, and the month-over-month trend charts
(inline SVG drawn on the server), on SQLite and PostgreSQL, with the October 2026 world of
test_dashboard: hand-computed numbers, and team B's supervisor reaches nothing of team A."""

import re

from tests.integration.test_dashboard import (  # noqa: F401  (fixtures)
    kpi_cell,
    log_in,
    october,
    row,
    world,
)


def records(html: str) -> list[str]:
    return re.findall(r'<tr data-record="([^"]+)"', html)


def test_every_figure_links_to_the_records_behind_it(october, log_in):  # noqa: F811
    client = log_in("supa")
    html = client.get("/dashboard/kpi?month=2026-10").get_data(as_text=True)
    courier = october.id("couriera")
    link = f"/dashboard/kpi/{courier}/slip_accuracy?month=2026-10"
    assert f'href="{link}"' in row(html, "worker", "李师傅")
    # Handover signatures: all 4 delivered stops carry a signature (d3 twice, corrected).
    num, den, title = kpi_cell(html, "李师傅", "handover_signatures")
    assert (num, den) == (4, 4) and "÷" in title and "100 %" in title

    page = client.get(link).get_data(as_text=True)
    assert len(records(page)) == 4  # d1..d4 delivered; the refused stop and September's not
    assert "/deliveries/stops/" in page and "十月乙线" not in page

    guard = client.get(f"/dashboard/kpi/{october.id('guarda')}/patrol_completion?month=2026-10")
    assert len(records(guard.get_data(as_text=True))) == 2  # the two October shifts

    rep = client.get(f"/dashboard/kpi/{october.id('repa')}/complaints_answered?month=2026-10")
    text = rep.get_data(as_text=True)
    # Complaints 11, 12, 13 and 15; 14 was closed as invalid, 16 is September's.
    for slip in ("DASH-0011", "DASH-0012", "DASH-0013", "DASH-0015"):
        assert slip in text, slip
    assert "DASH-0014" not in text and "DASH-0016" not in text
    assert len(records(text)) == 4
    # From a record straight to proposing a penalty with it as the evidence.
    propose = re.search(r'href="(/dashboard/penalties\?[^"]+)"', text).group(1)
    form = client.get(propose.replace("&amp;", "&")).get_data(as_text=True)
    assert re.search(r'name="evidence_url"[^>]*value="/complaints/', form)
    assert re.search(rf'<option selected value="{october.id("repa")}"', form)

    assert client.get(f"/dashboard/kpi/{courier}/nonsense?month=2026-10").status_code == 404
    other = log_in("supb")
    assert other.get(link).status_code == 404
    assert other.get(f"/dashboard/kpi/{october.id('courierb')}/on_time").status_code == 200


def points(html: str, series: str) -> list[str]:
    group = re.search(rf'<g data-series="{series}">(.*?)</g>', html, re.S)
    assert group, series
    return re.findall(r'data-value="(\d+/\d+)"', group.group(1))


def test_the_trend_charts_are_inline_svg_month_over_month(october, log_in):  # noqa: F811
    client = log_in("supa")
    html = client.get("/dashboard/kpi?month=2026-10").get_data(as_text=True)
    assert html.count("<svg viewBox=") == 4 and "<script" not in html.split("<main")[-1]
    for month in ("2026-05", "2026-06", "2026-07", "2026-08", "2026-09", "2026-10"):
        assert f">{month}</text>" in html, month
    # Team A, October: slip accuracy 2/4, on time 2/3. September's stop (on time: no) is on
    # 30 Sep: accuracy 1/1 (no proof, no discrepancy) and on time 0/1.
    assert points(html, "slip_accuracy") == ["1/1", "2/4"]
    assert points(html, "on_time") == ["0/1", "2/3"]
    # Complaint 16 was logged a second before October: September, unanswered, 0/1.
    assert points(html, "complaints_answered") == ["0/1", "1/4"]
    assert "<polyline" in html
    # CMP-17, team A: October's 4 valid complaints over 6 services (4 stops delivered, 2 shifts
    # worked), September's 1 over 1; no visit was rated (KPI-18), so no point but the line.
    assert points(html, "complaint_rate") == ["1/1", "4/6"]
    assert points(html, "satisfied") == []

    november = client.get("/dashboard/kpi?month=2026-11").get_data(as_text=True)
    assert points(november, "slip_accuracy") == ["1/1", "2/4", "1/1"]
    admin = log_in("admin").get("/dashboard/kpi?month=2026-10").get_data(as_text=True)
    assert points(admin, "slip_accuracy") == ["1/1", "3/5"]  # team B's 1/1 added
    assert points(admin, "complaint_rate") == ["1/1", "5/7"]  # team B: 1 complaint, 1 stop
