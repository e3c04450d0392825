"""The registers as CSV, XLSX and print pages (REC-01 to REC-04, DEL-10), and the customer's
report from the e-receipt that opens a complaint (DEL-15).

The day is the one of ``finished_day``: three stops delivered (two of them cash), the fourth
refused, cash handed over and the day closed with the refused stop's six cartons returned.
"""

import io
from datetime import date, datetime
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select
from werkzeug.security import generate_password_hash

from fieldapp.complaints.models import Complaint
from fieldapp.deliveries.registers import REGISTERS, default_range
from fieldapp.extensions import db
from fieldapp.models import Organisation, Team, User
from tests.integration.test_deliveries_pages import finished_day, read_csv  # noqa: F401

EN = {"Accept-Language": "en"}
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def read_xlsx(response) -> list[tuple]:
    assert response.status_code == 200 and response.mimetype == XLSX
    sheet = load_workbook(io.BytesIO(response.data)).active
    return list(sheet.iter_rows(values_only=True))


def complaints() -> int:
    return db.session.scalar(select(func.count()).select_from(Complaint))


def user_id(username: str) -> int:
    return db.session.scalar(select(User.id).where(User.username == username))


def test_the_slip_archive_and_the_vehicle_summary_hold_the_days_slips(finished_day, login):  # noqa: F811
    dispatcher = login("supervisor")
    day = finished_day.date
    query = f"from={day}&to={day}"
    ticket = f"{day:%Y%m%d}"
    week = f"{day.isocalendar().year}-W{day.isocalendar().week:02d}"

    slips = read_csv(dispatcher.get(f"/deliveries/registers/slips.csv?{query}"))
    assert [
        (r["ticket_no"], r["quantity"], r["special"], r["amount_due"], r["cash_collected"])
        for r in slips
    ] == [
        (f"{ticket}-001", "15", "no", "1280.50", "1280.50"),
        (f"{ticket}-002", "20", "no", "860.00", ""),
        (f"{ticket}-003", "10", "yes", "542.00", "542.00"),
        (f"{ticket}-004", "6", "no", "399.00", ""),
    ]
    assert slips[0]["items"] == "中华(硬) ×5 [6901028075015]; 玉溪(软) ×10 [6901028180559]"
    assert slips[0]["week"] == week and slips[0]["tote_boxes"] == "1, 2"
    assert [(r["signature"], r["e_receipt"], r["state"]) for r in slips][2:] == [
        ("yes", "yes", "delivered"),
        ("no", "no", "refused"),
    ]

    rows = read_xlsx(dispatcher.raw.get(f"/deliveries/registers/slips.xlsx?{query}", headers=EN))
    assert rows[0][:5] == ("Week", "Date", "Route", "Courier", "Ticket no.")
    assert len(rows) == 5
    first, refused = (
        dict(zip(rows[0], rows[1], strict=True)),
        dict(zip(rows[0], rows[4], strict=True)),
    )
    assert first["Date"] == datetime.combine(day, datetime.min.time())
    assert (first["Quantity"], first["Amount due (yuan)"], first["Cash collected (yuan)"]) == (
        15,
        1280.5,
        1280.5,
    )
    assert (first["Settlement"], first["Signed by the customer"]) == ("Cash", "Yes")
    assert (refused["Status"], refused["Cash collected (yuan)"], refused["E-receipt issued"]) == (
        "Refused",
        None,
        "No",
    )

    summary = read_csv(dispatcher.get(f"/deliveries/registers/vehicles.csv?{query}"))
    assert len(summary) == 1
    # Loaded 5+10+20+2+8+6 = 51 cartons; the refused stop's 6 came back.
    assert {k: summary[0][k] for k in ("vehicle", "stops", "delivered", "refused")} == {
        "vehicle": "沪A·D1234",
        "stops": "4",
        "delivered": "3",
        "refused": "1",
    }
    assert [summary[0][k] for k in ("loaded", "delivered_items", "returned_items")] == [
        "51",
        "45",
        "6",
    ]
    assert (summary[0]["cash_collected"], summary[0]["cash_deposited"]) == ("1822.50", "1822.50")
    assert summary[0]["month"] == f"{day:%Y-%m}"
    (header, row) = read_xlsx(
        dispatcher.raw.get(f"/deliveries/registers/vehicles.xlsx?{query}", headers=EN)
    )
    cells = dict(zip(header, row, strict=True))
    assert (cells["Items loaded"], cells["Items delivered"], cells["Items returned"]) == (51, 45, 6)
    assert (cells["Cash collected (yuan)"], cells["Cash deposited (yuan)"]) == (1822.5, 1822.5)
    assert cells["Driver"] == "李师傅"


def test_the_status_register_and_driving_log_as_xlsx(finished_day, login):  # noqa: F811
    dispatcher = login("supervisor")
    day = finished_day.date
    rows = read_xlsx(
        dispatcher.raw.get(f"/deliveries/registers/status.xlsx?from={day}&to={day}", headers=EN)
    )
    header = rows[0]
    assert header[:3] == ("Date", "Route", "Courier")
    picked = [
        (r[header.index("No.")], r[header.index("Customer")], r[header.index("Status")])
        + (r[header.index("Amount due (yuan)")], r[header.index("Cash collected (yuan)")])
        for r in rows[1:]
    ]
    assert picked == [
        (1, "福民便利店", "Delivered", 1280.5, 1280.5),
        (2, "好邻居超市", "Delivered", 860, None),
        (3, "老城烟酒店", "Delivered", 542, 542),
        (4, "万家乐商行", "Refused", 399, None),
    ]
    assert rows[4][header.index("Refusal reason")] == "Customer absent, shop closed"

    (header, row) = read_xlsx(
        dispatcher.raw.get(
            f"/deliveries/registers/driving-log.xlsx?from={day}&to={day}", headers=EN
        )
    )
    cells = dict(zip(header, row, strict=True))
    assert (cells["Vehicle"], cells["Pre-trip check"], cells["Delivered"], cells["Refused"]) == (
        "沪A·D1234",
        "Passed",
        3,
        1,
    )
    assert (cells["Odometer in (km)"], cells["Cash deposited (yuan)"]) == (1200, 1822.5)
    assert cells["Parked at the designated place"] == "Yes"

    # Filtered by courier: courier1's day is there, courier2 has none.
    mine = f"from={day}&to={day}&courier={user_id('courier1')}"
    other = f"from={day}&to={day}&courier={user_id('courier2')}"
    assert len(read_csv(dispatcher.get(f"/deliveries/registers/status.csv?{mine}"))) == 4
    assert read_csv(dispatcher.get(f"/deliveries/registers/status.csv?{other}")) == []
    assert len(read_xlsx(dispatcher.raw.get(f"/deliveries/registers/slips.xlsx?{other}"))) == 1
    # A nonsense range or register is refused.
    assert dispatcher.get("/deliveries/registers/slips.xlsx?from=x&to=y").status_code == 400
    assert dispatcher.get(f"/deliveries/registers/nope.csv?from={day}&to={day}").status_code == 404


def test_the_print_page_is_a4_ready_with_no_inline_code(finished_day, login):  # noqa: F811
    dispatcher = login("supervisor")
    day = finished_day.date
    for kind in REGISTERS:
        response = dispatcher.get(
            f"/deliveries/registers/{kind}/print?from={day}&to={day}", headers=EN
        )
        assert response.status_code == 200, kind
        page = response.get_data(as_text=True)
        assert 'class="register-table"' in page and "李师傅" in page
        assert "style=" not in page and "<script>" not in page
        assert "Prepared by" in page
    page = dispatcher.get(
        f"/deliveries/registers/status/print?from={day}&to={day}", headers=EN
    ).get_data(as_text=True)
    assert page.count("<tr data-row>") == 4 and "Customer absent, shop closed" in page
    css = Path("static/css/app.css").read_text(encoding="utf-8")
    assert "@page register { size: A4 landscape" in css
    chinese = dispatcher.get(f"/deliveries/registers/status/print?from={day}&to={day}")
    assert chinese.status_code == 200 and 'lang="zh' in chinese.get_data(as_text=True)
    listing = dispatcher.get("/deliveries/registers", headers=EN).get_data(as_text=True)
    for kind in REGISTERS:
        assert f"/deliveries/registers/{kind}.xlsx" in listing
        assert f"/deliveries/registers/{kind}/print" in listing


def test_a_courier_gets_403_and_another_teams_supervisor_no_rows(finished_day, login):  # noqa: F811
    day = finished_day.date
    courier = login("courier1")
    assert courier.get("/deliveries/registers").status_code == 403
    for kind in REGISTERS:
        for url in (f"{kind}.csv", f"{kind}.xlsx", f"{kind}/print"):
            assert (
                courier.get(f"/deliveries/registers/{url}?from={day}&to={day}").status_code == 403
            )

    org = db.session.scalar(select(Organisation))
    other = User(
        org_id=org.id,
        username="supervisor2",
        display_name="别的主管",
        role="supervisor",
        password_hash=generate_password_hash("demo-2026"),
    )
    db.session.add(other)
    db.session.flush()
    db.session.add(Team(org_id=org.id, name="配送二组", kind="delivery", supervisor_id=other.id))
    db.session.commit()
    stranger = login("supervisor2")
    query = f"from={day}&to={day}"
    for kind in REGISTERS:
        assert read_csv(stranger.get(f"/deliveries/registers/{kind}.csv?{query}")) == [], kind
        assert len(read_xlsx(stranger.raw.get(f"/deliveries/registers/{kind}.xlsx?{query}"))) == 1
        page = stranger.get(f"/deliveries/registers/{kind}/print?{query}").get_data(as_text=True)
        assert "福民便利店" not in page and "沪A·D1234" not in page
    # Naming the other team's courier does not help.
    spy = f"{query}&courier={user_id('courier1')}"
    assert read_csv(stranger.get(f"/deliveries/registers/status.csv?{spy}")) == []


def test_the_customer_reports_a_problem_from_the_e_receipt(finished_day, login):  # noqa: F811
    stop = finished_day.stops[0]
    courier = login("courier1")
    receipt = courier.get(f"/deliveries/stops/{stop.id}/receipt").get_data(as_text=True)
    before = complaints()
    assert f"/deliveries/stops/{stop.id}/report" in receipt
    assert courier.get(f"/deliveries/stops/{stop.id}/report").status_code == 200
    # Nothing written yet: the text and the name are needed.
    empty = courier.post(f"/deliveries/stops/{stop.id}/report", data={"topic": "conduct"})
    assert empty.status_code == 422 and 'class="field-error"' in empty.get_data(as_text=True)
    assert complaints() == before

    sent = courier.post(
        f"/deliveries/stops/{stop.id}/report",
        data={
            "topic": "conduct",
            "text": "送货员要烟抽",
            "name": "周老板",
            "phone": "13800000000",
        },
    )
    assert sent.status_code == 302 and sent.headers["Location"].endswith(f"/{stop.id}/receipt")
    assert complaints() == before + 1
    complaint = db.session.scalar(select(Complaint).where(Complaint.complainant == "周老板"))
    assert (complaint.client_name, complaint.complainant, complaint.complainant_phone) == (
        "福民便利店",
        "周老板",
        "13800000000",
    )
    assert (complaint.channel, complaint.category, complaint.cause_class) == (
        "app",
        "attitude",
        "human",
    )
    assert "送货员要烟抽" in complaint.content and stop.ticket_no in complaint.subject
    # The dispatcher owns it, not the courier it is about.
    assert complaint.owner_id == user_id("supervisor") != user_id("courier1")
    page = courier.get(f"/deliveries/stops/{stop.id}/receipt").get_data(as_text=True)
    assert complaint.slip_number in page
    # Another courier cannot file against a stop that is not theirs.
    assert login("courier2").get(f"/deliveries/stops/{stop.id}/report").status_code == 404


@pytest.mark.parametrize(
    ("kind", "today", "expected"),
    [
        ("status", date(2026, 11, 23), (date(2026, 11, 17), date(2026, 11, 23))),
        ("slips", date(2026, 11, 26), (date(2026, 11, 23), date(2026, 11, 29))),
        ("vehicles", date(2026, 12, 15), (date(2026, 12, 1), date(2026, 12, 31))),
        ("vehicles", date(2027, 2, 3), (date(2027, 2, 1), date(2027, 2, 28))),
    ],
)
def test_the_default_ranges_are_the_week_and_the_month(kind, today, expected):
    assert default_range(REGISTERS[kind], today) == expected
