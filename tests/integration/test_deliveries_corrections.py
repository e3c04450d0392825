"""The office corrects a delivery record: a new record naming the old one, never an edit; the
courier sees who corrected what and why."""

import html

from sqlalchemy import select

from fieldapp.deliveries import service
from fieldapp.deliveries.models import ProofOfDelivery
from fieldapp.extensions import db
from fieldapp.models import User
from fieldapp.push.models import Notification, PushEvent
from tests.integration.test_deliveries_sync import (
    NEAR_SHOP,
    PHONE,
    Phone,
    proof_payload,
    start_route,
    stops,
)

EN = {"Accept-Language": "en"}


def deliver_first_stop(login) -> tuple[Phone, str]:
    courier = Phone(login("courier1", device_id=PHONE), PHONE)
    start_route(courier)
    first = stops()[0]
    courier.send("delivery.arrival", {"stop_id": first.id, **NEAR_SHOP})
    proof, result = courier.send("delivery.proof", proof_payload(first))
    assert result["status"] == "applied", result
    return courier, proof["payload"]["id"]


def page(client, url) -> str:
    response = client.get(url, headers=EN)
    assert response.status_code == 200
    return html.unescape(response.get_data(as_text=True))


def test_an_office_correction_is_a_new_record_and_the_courier_sees_it(login):
    courier, original_id = deliver_first_stop(login)
    stop_id = stops()[0].id
    office = login("supervisor")
    text = page(office, f"/deliveries/stops/{stop_id}")
    assert f'action="/deliveries/stops/{stop_id}/correct"' in text
    assert f'value="{original_id}"' in text

    response = office.post(
        f"/deliveries/stops/{stop_id}/correct",
        {"proof_id": original_id, "cash_received": "1200", "reason": "客户实付 1200 元，小票写错"},
        headers=EN,
    )
    assert response.status_code == 302, response.get_data(as_text=True)

    db.session.expire_all()
    proofs = db.session.scalars(select(ProofOfDelivery).order_by(ProofOfDelivery.received_at)).all()
    assert len(proofs) == 2
    original, correction = proofs
    # The courier's fact is untouched; the correction names it, with who and why.
    assert (original.id, original.cash_received_fen, original.corrects_id) == (
        original_id,
        128_050,
        None,
    )
    supervisor = db.session.scalar(select(User).where(User.username == "supervisor"))
    assert correction.corrects_id == original_id and correction.user_id == supervisor.id
    assert (correction.cash_received_fen, correction.cash_variance_fen) == (120_000, -8_050)
    assert correction.signature == original.signature  # the customer's signature stays
    assert correction.correction_reason == "客户实付 1200 元，小票写错"
    route = stops()[0].route
    assert service.effective_proofs([stop_id])[stop_id].id == correction.id
    assert service.cash_collected_fen(route) == 120_000

    # The courier sees the correction on the stop page, and was told.
    text = page(courier.client, f"/deliveries/stops/{stop_id}")
    assert "客户实付 1200 元，小票写错" in text
    assert "¥1280.50 → ¥1200.00" in text
    assert "张主管" in text
    assert "correction-form" not in text  # only the office corrects
    courier1 = db.session.scalar(select(User).where(User.username == "courier1"))
    told = db.session.scalar(
        select(Notification)
        .join(PushEvent, PushEvent.id == Notification.event_id)
        .where(Notification.user_id == courier1.id, PushEvent.kind == "delivery.corrected")
    )
    assert told is not None


def test_a_correction_without_reason_or_with_a_bad_amount_is_refused_in_words(login):
    _, original_id = deliver_first_stop(login)
    stop_id = stops()[0].id
    office = login("supervisor")
    office.get(f"/deliveries/stops/{stop_id}", headers=EN)
    url = f"/deliveries/stops/{stop_id}/correct"

    response = office.post(url, {"proof_id": original_id, "cash_received": "1200"}, headers=EN)
    assert response.status_code == 422
    assert "Say why you correct the record." in html.unescape(response.get_data(as_text=True))

    response = office.post(
        url, {"proof_id": original_id, "cash_received": "12.345", "reason": "x"}, headers=EN
    )
    assert response.status_code == 422
    assert "Enter an amount in yuan" in html.unescape(response.get_data(as_text=True))

    response = office.post(
        url, {"proof_id": original_id, "cash_received": "1280.50", "reason": "x"}, headers=EN
    )
    assert response.status_code == 422
    assert "changes nothing" in html.unescape(response.get_data(as_text=True))

    # Correct once; a second correction of the old record (a stale page) is refused.
    assert office.post(url, {"proof_id": original_id, "damage_quantity": "2", "reason": "y"})
    response = office.post(
        url, {"proof_id": original_id, "cash_received": "1000", "reason": "z"}, headers=EN
    )
    assert response.status_code == 422
    assert "corrected meanwhile" in html.unescape(response.get_data(as_text=True))
    db.session.expire_all()
    assert db.session.scalar(select(db.func.count()).select_from(ProofOfDelivery)) == 2


def test_a_courier_cannot_correct(login):
    courier, original_id = deliver_first_stop(login)
    stop_id = stops()[0].id
    courier.client.get(f"/deliveries/stops/{stop_id}")
    response = courier.client.post(
        f"/deliveries/stops/{stop_id}/correct",
        {"proof_id": original_id, "cash_received": "1", "reason": "mine"},
    )
    assert response.status_code == 403
    db.session.expire_all()
    assert db.session.scalar(select(db.func.count()).select_from(ProofOfDelivery)) == 1
