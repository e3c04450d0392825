"""DEL-09 daily delivery report with its CSV, and the warning before a stop misses its promise."""

import csv
import html
import io
from datetime import timedelta

from sqlalchemy import func, select

from fieldapp import jobs
from fieldapp.extensions import db
from fieldapp.models import User
from fieldapp.push.models import Notification, PushEvent
from tests.integration.test_deliveries_sync import (
    NEAR_SHOP,
    PHONE,
    Phone,
    handover,
    proof_payload,
    start_route,
    stops,
    the_route,
)

EN = {"Accept-Language": "en"}


def a_day_with_a_refusal_and_a_cash_shortfall(login) -> None:
    courier = Phone(login("courier1", device_id=PHONE), PHONE)
    start_route(courier)
    first, second, third, fourth = stops()
    for stop in (first, second, third, fourth):
        _, arrived = courier.send("delivery.arrival", {"stop_id": stop.id, **NEAR_SHOP})
        assert arrived["status"] == "applied", arrived
        if stop is second:
            _, result = courier.send(
                "delivery.refusal", {"stop_id": stop.id, "reason_code": "customer_absent"}
            )
        else:
            extra = {"cash_received": "540.00"} if stop is third else {}
            _, result = courier.send("delivery.proof", proof_payload(stop, **extra))
        assert result["status"] == "applied", result
    # 1280.50 + 540.00 collected; 1810.50 handed in, 10 yuan explained as missing.
    _, result = courier.send(
        "delivery.cash_handover",
        handover(the_route().id, "1810.50", variance_explanation="少收 10 元，明天补"),
    )
    assert result["status"] == "applied", result


def test_the_daily_report_counts_the_couriers_day_and_exports_it(login):
    a_day_with_a_refusal_and_a_cash_shortfall(login)
    day = the_route().date.isoformat()
    office = login("supervisor")
    response = office.get(f"/deliveries/daily-report?date={day}", headers=EN)
    assert response.status_code == 200
    text = html.unescape(response.get_data(as_text=True))
    cells = {
        col: text.split(f'data-col="{col}">', 1)[1].split("</td>", 1)[0].strip()
        for col in ("stops", "delivered", "refused", "open", "collected", "handed-in")
    }
    assert cells == {
        "stops": "4",
        "delivered": "3",
        "refused": "1",
        "open": "0",
        "collected": "¥1820.50",
        "handed-in": "¥1810.50",
    }
    assert "¥-10.00" in text and "李师傅" in text

    response = office.get(f"/deliveries/daily-report.csv?date={day}")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert f"daily-report-{day}.csv" in response.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"))))
    assert len(rows) == 1
    row = rows[0]
    assert (row["date"], row["courier"], row["routes"]) == (day, "李师傅", "黄浦 1 号线")
    assert (row["stops"], row["delivered"], row["refused"], row["open"]) == ("4", "3", "1", "0")
    assert (row["cash_due"], row["cash_collected"], row["cash_handed_in"]) == (
        "1822.50",
        "1820.50",
        "1810.50",
    )
    assert (row["cash_difference"], row["deposit_reference"], row["day_closed"]) == (
        "-10.00",
        "ICBC-20261123-0042",
        "no",
    )


def test_the_report_is_for_the_office_and_says_so_when_the_date_is_bad(login):
    courier = login("courier1")
    assert courier.get("/deliveries/daily-report").status_code == 403
    assert courier.get("/deliveries/daily-report.csv").status_code == 403
    office = login("supervisor")
    response = office.get("/deliveries/daily-report?date=2026-13-45", headers=EN)
    assert response.status_code == 200
    assert "is not a date (YYYY-MM-DD)" in html.unescape(response.get_data(as_text=True))
    empty = office.get("/deliveries/daily-report.csv?date=2001-01-01").get_data(as_text=True)
    assert empty.lstrip("\ufeff").strip().count("\n") == 0  # the header only


def test_a_stop_the_route_order_will_make_late_is_warned_about_once(demo):
    first, second, third, _ = stops()
    # Half an hour before the second stop's promise, with the first still open: at 20 minutes
    # a stop, the courier reaches the second only after its promise.
    now = second.promised_at - timedelta(minutes=30)
    assert first.promised_at < now  # the first is already late: that is the late alert's job
    jobs.run_clock(now, only=["delivery.late_soon_stops"])
    jobs.run_clock(now + timedelta(minutes=1), only=["delivery.late_soon_stops"])
    events = db.session.scalars(
        select(PushEvent).where(PushEvent.kind == "delivery.late_soon")
    ).all()
    assert [e.dedupe_key for e in events] == [
        f"delivery-late-soon:{second.id}:{second.promised_at.isoformat()}"
    ]
    told = set(
        db.session.scalars(
            select(User.username)
            .join(Notification, Notification.user_id == User.id)
            .where(Notification.event_id == events[0].id)
        )
    )
    assert told == {"courier1", "supervisor"}
    # Hours before, nothing is at risk yet.
    assert (
        db.session.scalar(
            select(func.count())
            .select_from(PushEvent)
            .where(PushEvent.kind == "delivery.late_soon", PushEvent.dedupe_key.contains(third.id))
        )
        == 0
    )
