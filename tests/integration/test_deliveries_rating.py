"""The customer rates a delivery from the e-receipt's QR code, without an account (DEL-15)."""

import html
import re

from sqlalchemy import func, select

from fieldapp.deliveries.models import DeliveryRating
from fieldapp.extensions import db
from tests.helpers import Client
from tests.integration.test_deliveries_report import EN
from tests.integration.test_deliveries_sync import (
    NEAR_SHOP,
    PHONE,
    Phone,
    proof_payload,
    start_route,
    stops,
    the_route,
)


def ratings() -> int:
    return db.session.scalar(select(func.count()).select_from(DeliveryRating))


def rate_url(client, stop_id) -> str:
    receipt = client.get(f"/deliveries/stops/{stop_id}/receipt").get_data(as_text=True)
    url = re.search(r'class="button wide rate-link" href="([^"]+)"', receipt).group(1)
    return url.replace("http://localhost", "")


def test_the_customer_rates_once_without_an_account_and_the_report_shows_it(demo, login):
    courier = Phone(login("courier1", device_id=PHONE), PHONE)
    start_route(courier)
    first = stops()[0]
    courier.send("delivery.arrival", {"stop_id": first.id, **NEAR_SHOP})
    _, result = courier.send("delivery.proof", proof_payload(first))
    assert result["status"] == "applied", result
    url = rate_url(courier.client, first.id)

    customer = Client(demo.test_client())  # the customer's own phone: nobody logged in
    page = customer.get(url, headers=EN)
    assert page.status_code == 200 and "rating-form" in page.get_data(as_text=True)
    bad = customer.post(url, {"stars": "9"}, headers=EN)
    assert bad.status_code == 422
    assert "Choose 1 to 5 stars." in html.unescape(bad.get_data(as_text=True))
    assert ratings() == 0

    sent = customer.post(url, {"stars": "4", "comment": "送货很准时"}, headers=EN)
    assert sent.status_code == 302
    shown = html.unescape(customer.get(url, headers=EN).get_data(as_text=True))
    assert "You rated this delivery 4 of 5 stars" in shown and "rating-form" not in shown
    again = customer.post(url, {"stars": "1"}, headers=EN)
    assert again.status_code == 200
    db.session.expire_all()
    stored = db.session.scalars(select(DeliveryRating)).all()
    assert [(r.stop_id, r.stars, r.comment) for r in stored] == [(first.id, 4, "送货很准时")]

    office = login("supervisor")
    day = the_route().date.isoformat()
    report = office.get(f"/deliveries/daily-report.csv?date={day}").get_data(as_text=True)
    header, row = report.lstrip("\ufeff").splitlines()[:2]
    assert header.endswith(",rating") and row.endswith(",4.0")


def test_a_forged_token_or_an_undelivered_stop_cannot_be_rated(demo, login):
    courier = login("courier1")
    second = stops()[1]
    url = rate_url(courier, second.id)
    customer = Client(demo.test_client())
    page = customer.get(url, headers=EN)
    assert page.status_code == 200
    assert "not completed yet" in html.unescape(page.get_data(as_text=True))
    customer.post(url, {"stars": "5"}, headers=EN)
    assert ratings() == 0
    assert customer.get(url[:-3] + "abc").status_code == 404
    assert customer.get(f"/deliveries/rate/{second.id}").status_code == 404
