"""The courier's and the dispatcher's pages, the CSV import, the registers and the day pack."""

import csv
import html
import io
from datetime import date

import pytest
from sqlalchemy import func, select
from werkzeug.security import generate_password_hash

from fieldapp.deliveries import service
from fieldapp.deliveries.models import Route, SlipItem, Stop
from fieldapp.extensions import db
from fieldapp.models import Organisation, Team, User
from fieldapp.sync.models import Change
from tests.integration.test_deliveries_sync import (
    AT_DEPOT,
    PHONE,
    Phone,
    handover,
    proof_payload,
    start_route,
    stops,
    the_route,
)

HEADER = (
    "date,route,courier,vehicle,kind,sequence,customer_code,customer,address,ticket_no,"
    "tote_boxes,amount_due,settlement,phone_confirmed_at,window_start,window_end,item_code,"
    "variety,quantity,special\n"
)
GOOD_LINES = (
    "2026-12-01,浦东 2 号线,courier2,沪B·12345,flexible,1,PD0001,东方便利,世纪大道 1 号,T-9001,"
    "1,88.50,cash,2026-12-01 08:00,,,690100000001,中华(硬),2,\n"
    "2026-12-01,浦东 2 号线,courier2,沪B·12345,flexible,1,PD0001,东方便利,世纪大道 1 号,T-9001,"
    "1,88.50,cash,2026-12-01 08:00,,,690100000002,玉溪(软),3,异型\n"
    "2026-12-01,浦东 2 号线,courier2,沪B·12345,flexible,2,PD0002,陆家嘴烟酒,银城路 9 号,T-9002,"
    "2,120,electronic,2026-12-01 09:30,,,690100000003,利群,4,\n"
)


def upload(client, text: str, team_id: int):
    client.get("/deliveries/import")
    return client.raw.post(
        "/deliveries/import",
        data={
            "csrf_token": client.token,
            "team_id": str(team_id),
            "file": (io.BytesIO(text.encode("utf-8")), "slips.csv"),
        },
        content_type="multipart/form-data",
        headers={"Accept-Language": "en"},  # the assertions read the English reasons
    )


def delivery_team() -> Team:
    return db.session.scalar(select(Team).where(Team.name == "配送一组"))


def test_a_csv_of_slips_with_bad_lines_imports_nothing_and_names_the_lines(login):
    dispatcher = login("supervisor")
    bad = (
        HEADER
        + GOOD_LINES
        + "2026-12-01,浦东 2 号线,courier2,沪B·12345,flexible,x,PD0003,张记,,T-9003,,12.345,"
        "cash,2026-12-01 10:00,,,690100000004,红塔山,0,\n"
        + "2026-12-01,浦东 2 号线,courier2,沪B·12345,flexible,4,PD0004,李记,,T-9004,,1,cash,"
        "2026-12-01 10:00,,,690100000001,中华(硬),1,\n"
        + "2026-12-01,浦东 2 号线,nobody,沪B·12345,flexible,5,PD0005,王记,,T-9005,,1,cash,"
        "2026-12-01 10:00,,,690100000009,中华(硬),1,\n"
    )
    routes_before = db.session.scalar(select(func.count()).select_from(Route))
    response = upload(dispatcher, bad, delivery_team().id)
    assert response.status_code == 422
    page = html.unescape(response.get_data(as_text=True))
    assert "Line 5" in page or "第 5 行" in page
    for problem in ("sequence 'x'", "quantity '0'", "amount_due '12.345'", "courier 'nobody'"):
        assert problem in page
    assert "Line 6" in page and "690100000001 is on two customers" in page
    assert "Line 7" in page
    db.session.expire_all()
    assert db.session.scalar(select(func.count()).select_from(Route)) == routes_before
    assert (
        db.session.scalar(
            select(func.count()).select_from(Stop).where(Stop.customer_code.like("PD%"))
        )
        == 0
    )

    response = upload(dispatcher, HEADER + GOOD_LINES, delivery_team().id)
    assert response.status_code == 302
    route = db.session.scalar(select(Route).where(Route.name == "浦东 2 号线"))
    assert route.kind == "flexible" and route.courier.username == "courier2"
    assert [(s.sequence, s.customer_code, s.amount_due_fen, len(s.items)) for s in route.stops] == [
        (1, "PD0001", 8850, 2),
        (2, "PD0002", 12000, 1),
    ]
    # SLA-01: a flexible route is due 24 hours after the phone confirmation.
    first = route.stops[0]
    assert (first.promised_at - first.phone_confirmed_at).total_seconds() == 24 * 3600
    special = db.session.scalar(select(SlipItem).where(SlipItem.code == "690100000002"))
    assert special.special_shape is True
    # courier2's phone learns the new route on its next pull.
    assert (
        db.session.scalar(
            select(func.count())
            .select_from(Change)
            .where(Change.entity == "delivery.stop", Change.user_id == route.courier_id)
        )
        == 2
    )


def test_a_supervisor_of_another_team_gets_404(login):
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
    route = the_route()
    client = login("supervisor2")
    assert client.get(f"/deliveries/routes/{route.id}").status_code == 404
    assert client.get(f"/deliveries/stops/{route.stops[0].id}").status_code == 404
    assert route.name not in client.get("/deliveries/routes").get_data(as_text=True)
    # Their own dispatcher sees it.
    assert login("supervisor").get(f"/deliveries/routes/{route.id}").status_code == 200


def test_a_courier_is_not_a_dispatcher(login):
    courier = login("courier1")
    assert courier.get("/deliveries/routes").status_code == 403
    assert courier.get(f"/deliveries/routes/{the_route().id}").status_code == 403


def test_the_dispatcher_builds_a_route_by_hand_and_the_courier_is_told(login):
    dispatcher = login("supervisor")
    courier2 = db.session.scalar(select(User).where(User.username == "courier2"))
    dispatcher.get("/deliveries/routes/new")
    response = dispatcher.post(
        "/deliveries/routes/new",
        {
            "date": "2026-12-02",
            "name": "静安 3 号线",
            "team_id": str(delivery_team().id),
            "kind": "fixed",
            "courier_id": str(courier2.id),
            "vehicle_plate": "沪c·77777",
        },
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    route = db.session.scalar(select(Route).where(Route.name == "静安 3 号线"))
    assert route.vehicle_plate == "沪C·77777"
    dispatcher.get(f"/deliveries/routes/{route.id}")
    response = dispatcher.post(
        f"/deliveries/routes/{route.id}/stops",
        {
            "stop-site_id": "0",
            "stop-customer_name": "静安烟酒",
            "stop-customer_code": "JA0001",
            "stop-ticket_no": "T-1",
            "stop-amount_due": "99.9",
            "stop-settlement": "cash",
            "stop-window_end": "2026-12-02T16:00",
            "stop-items": "690200000001, 中华(硬), 3\n690200000002, 黄鹤楼, 1, 异型",
        },
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    db.session.expire_all()
    stop = db.session.scalar(select(Stop).where(Stop.customer_code == "JA0001"))
    assert stop.amount_due_fen == 9990 and stop.settlement == "cash"
    assert stop.promised_at.isoformat() == "2026-12-02T08:00:00+00:00"  # 16:00 in Shanghai
    assert [(i.code, i.special_shape) for i in stop.items] == [
        ("690200000001", False),
        ("690200000002", True),
    ]
    from fieldapp.push.models import Notification

    told = db.session.scalars(select(Notification).where(Notification.user_id == courier2.id))
    assert any("静安 3 号线" in n.body for n in told)

    bad = dispatcher.post(
        f"/deliveries/routes/{route.id}/stops",
        {"stop-site_id": "0", "stop-customer_code": "", "stop-items": "oops"},
        headers={"Accept-Language": "en"},
    )
    assert bad.status_code == 422
    assert "code, variety, quantity" in bad.get_data(as_text=True)


def test_the_courier_pages_show_the_day_and_say_how_gps_is_used(login):
    courier = login("courier1")
    courier.raw.post("/language", data={"csrf_token": courier.token, "lang": "en"})
    today = courier.get("/deliveries/today").get_data(as_text=True)
    assert "黄浦 1 号线" in today
    names = ["福民便利店", "好邻居超市", "老城烟酒店", "万家乐商行"]
    positions = [today.index(n) for n in names]
    assert positions == sorted(positions)
    assert "does not track you in the background" in today
    assert "data-deadline" in today
    stop = the_route().stops[2]
    page = courier.get(f"/deliveries/stops/{stop.id}").get_data(as_text=True)
    for needle in (
        'data-record-type="delivery.arrival"',
        'data-record-type="delivery.proof"',
        'data-record-type="delivery.refusal"',
        'canvas data-signature="signature"',
        "Special shape",
        'name="cash_received"',
        "Earlier stops are still open",
    ):
        assert needle in page, needle
    end = courier.get("/deliveries/end-of-day").get_data(as_text=True)
    assert 'data-record-type="delivery.cash_handover"' in end
    assert 'data-signature="bookkeeper_signature"' in end
    home = courier.get("/").get_data(as_text=True)
    assert "/deliveries/today" in home and "/deliveries/end-of-day" in home
    assert "/deliveries/routes" in login("supervisor").get("/").get_data(as_text=True)


def test_the_day_pack_carries_todays_route_and_its_pages(login):
    courier = login("courier1")
    pack = courier.get("/api/sync/daypack").json
    route = the_route()
    assert "/deliveries/today" in pack["pages"]
    for stop in route.stops:
        assert f"/deliveries/stops/{stop.id}" in pack["pages"]
    assert [r["id"] for r in pack["data"]["delivery.route"]] == [route.id]
    assert len(pack["data"]["delivery.stop"]) == 4
    other = login("courier2").get("/api/sync/daypack").json
    assert other["data"]["delivery.stop"] == []


@pytest.fixture
def finished_day(login):
    phone = Phone(login("courier1", device_id=PHONE), PHONE)
    start_route(phone)
    route_stops = stops()
    for stop in route_stops[:3]:
        phone.send("delivery.arrival", {"stop_id": stop.id})
        phone.send("delivery.proof", proof_payload(stop))
    last = route_stops[3]
    phone.send("delivery.arrival", {"stop_id": last.id})
    phone.send(
        "delivery.refusal", {"stop_id": last.id, "reason_code": "customer_absent", "note": "关门"}
    )
    _, result = phone.send("delivery.cash_handover", handover(the_route().id, "1822.50"))
    assert result["status"] == "applied", result
    _, closed = phone.send(
        "delivery.day_close",
        {
            "route_id": the_route().id,
            "returned": '{"6901028122108": 6}',
            "vehicle_cleaned": True,
            "parked_at_designated": True,
            "odometer_km": 1200,
            **AT_DEPOT,
        },
    )
    assert closed["status"] == "applied", closed
    return the_route()


def read_csv(response) -> list[dict]:
    text = response.get_data(as_text=True).lstrip("\ufeff")
    return list(csv.DictReader(io.StringIO(text)))


def test_the_registers_are_filled_from_the_days_records(finished_day, login):
    dispatcher = login("supervisor")
    day = finished_day.date.isoformat()
    status = dispatcher.get(f"/deliveries/registers/status.csv?from={day}&to={day}")
    assert status.status_code == 200 and status.mimetype == "text/csv"
    rows = read_csv(status)
    assert [(r["customer"], r["state"], r["signature"]) for r in rows] == [
        ("福民便利店", "delivered", "yes"),
        ("好邻居超市", "delivered", "yes"),
        ("老城烟酒店", "delivered", "yes"),
        ("万家乐商行", "refused", "no"),
    ]
    assert rows[0]["cash_collected"] == "1280.50" and rows[3]["refusal_reason"] == "customer_absent"
    log = read_csv(dispatcher.get(f"/deliveries/registers/driving-log.csv?from={day}&to={day}"))
    assert len(log) == 1
    entry = log[0]
    assert (entry["vehicle"], entry["pre_trip_check"], entry["delivered"], entry["refused"]) == (
        "沪A·D1234",
        "passed",
        "3",
        "1",
    )
    assert (entry["cash_collected"], entry["cash_deposited"], entry["parked_at_designated"]) == (
        "1822.50",
        "1822.50",
        "yes",
    )
    assert entry["odometer_end"] == "1200"
    # Another range is empty; a nonsense range is refused.
    assert (
        read_csv(dispatcher.get("/deliveries/registers/status.csv?from=2020-01-01&to=2020-01-02"))
        == []
    )
    assert dispatcher.get("/deliveries/registers/status.csv?from=x&to=y").status_code == 400
    page = dispatcher.get(f"/deliveries/routes/{finished_day.id}").get_data(as_text=True)
    assert "day-closed" in page and "关门" in page
    receipt = dispatcher.get(f"/deliveries/stops/{finished_day.stops[0].id}/receipt")
    assert receipt.status_code == 200 and "<svg" in receipt.get_data(as_text=True)


def test_demo_data_is_todays_route_and_seeding_again_adds_nothing(demo):
    from fieldapp.demo import seed_demo

    route = the_route()
    assert route.date == service.today_for(route.org_id)
    assert route.courier.username == "courier1" and len(route.stops) == 4
    seed_demo()
    assert db.session.scalar(select(func.count()).select_from(Route)) == 1
    assert db.session.scalar(select(func.count()).select_from(Stop)) == 4
    assert isinstance(route.date, date)
