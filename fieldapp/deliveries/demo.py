"""Demo data: today's route for courier1 on the four demo shops, so ./run.sh shows a real day."""

from datetime import time

from fieldapp.deliveries import service
from fieldapp.deliveries.models import Route, Settlement
from fieldapp.demo import DEMO_SEEDERS
from fieldapp.extensions import db

ROUTE_NAME = "黄浦 1 号线"
# VEH-02: the depot's car park, where the van must stand at the day's end.
PARKING = ("黄浦配送站停车场", 31.2290, 121.4720, 150)
# (shop, customer code, window from, window to, settlement, amount due in fen, items)
STOPS = (
    (
        "福民便利店",
        "SH0101",
        time(9),
        time(11),
        Settlement.CASH,
        128_050,
        (("6901028075015", "中华(硬)", 5, False), ("6901028180559", "玉溪(软)", 10, False)),
    ),
    (
        "好邻居超市",
        "SH0102",
        time(10),
        time(12),
        Settlement.ELECTRONIC,
        86_000,
        (("6901028001014", "红塔山(经典)", 20, False),),
    ),
    (
        "老城烟酒店",
        "SH0103",
        time(13),
        time(15),
        Settlement.CASH,
        54_200,
        (("6901028150286", "黄鹤楼(1916)", 2, True), ("6901028045919", "利群(新版)", 8, False)),
    ),
    (
        "万家乐商行",
        "SH0104",
        time(14),
        time(17),
        Settlement.ELECTRONIC,
        39_900,
        (("6901028122108", "云烟(紫)", 6, False),),
    ),
)


def seed(org, users, teams, sites) -> None:
    """Idempotent: one route per day for courier1; nothing is added if it is there."""
    courier = users.get("courier1")
    team = teams.get("配送一组")
    if courier is None or team is None:
        return
    day = service.today_for(org.id)
    exists = db.session.scalar(
        db.select(Route.id).where(
            Route.org_id == org.id, Route.courier_id == courier.id, Route.date == day
        )
    )
    if exists:
        return
    route = Route(
        org_id=org.id,
        team_id=team.id,
        date=day,
        name=ROUTE_NAME,
        kind="fixed",
        courier_id=courier.id,
        vehicle_plate="沪A·D1234",
        parking_name=PARKING[0],
        parking_latitude=PARKING[1],
        parking_longitude=PARKING[2],
        parking_radius_m=PARKING[3],
        created_by_id=users["supervisor"].id if "supervisor" in users else None,
    )
    db.session.add(route)
    db.session.flush()
    for sequence, (shop, code, start, end, settlement, due, items) in enumerate(STOPS, 1):
        site = sites.get(shop)
        service.add_stop_quietly(
            route,
            service.StopSpec(
                customer_name=shop,
                customer_code=code,
                address=site.address if site else "",
                ticket_no=f"{day:%Y%m%d}-{sequence:03d}",
                tote_boxes=f"{sequence * 2 - 1}, {sequence * 2}",
                amount_due_fen=due,
                settlement=settlement,
                window_start=service.local_datetime(org.id, day, start),
                window_end=service.local_datetime(org.id, day, end),
                site_id=site.id if site else None,
                items=list(items),
            ),
            sequence,
        )
    service.publish_route(route)


if seed not in DEMO_SEEDERS:
    DEMO_SEEDERS.append(seed)
