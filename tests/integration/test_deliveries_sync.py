"""A courier's day through the sync API: facts stored once, the rules refusing what they must."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from fieldapp import jobs
from fieldapp.deliveries.models import (
    CashHandover,
    DayClose,
    ProofOfDelivery,
    Refusal,
    Route,
    Stop,
    StopArrival,
    VehicleCheck,
)
from fieldapp.extensions import db
from fieldapp.models import User
from fieldapp.push.models import Notification, PushEvent
from fieldapp.sync.models import Change

PHONE = "5e1d2c3b-4a5e-4f60-8a7b-9c0d1e2f3a40"
OTHER_PHONE = "5e1d2c3b-4a5e-4f60-8a7b-9c0d1e2f3a41"
SIG = "a" * 64
SIG2 = "b" * 64
NEAR_SHOP = {"latitude": 31.2336, "longitude": 121.4798, "accuracy_m": 8}
AT_DEPOT = {"latitude": 31.2291, "longitude": 121.4721, "accuracy_m": 10}  # the demo car park
CHECK_OK = dict.fromkeys(("no_faults", "condition", "licence", "registration", "insurance"), True)


def new_id() -> str:
    return str(uuid.uuid4())


class Phone:
    """A logged-in courier's phone speaking the sync protocol, numbering its own mutations."""

    def __init__(self, client, device_id):
        self.client, self.device_id, self.seq = client, device_id, 0

    def mutation(self, type_, payload, device_time=None, base_version=None):
        self.seq += 1
        m = {
            "id": new_id(),
            "seq": self.seq,
            "type": type_,
            "payload": {"id": new_id(), **payload},
            "device_time": (device_time or datetime.now(UTC)).isoformat(),
        }
        if base_version is not None:
            m["base_version"] = base_version
        return m

    def push(self, mutations, lang="en"):
        response = self.client.raw.post(
            "/api/sync/push",
            json={"device_id": self.device_id, "mutations": mutations},
            headers={"X-CSRFToken": self.client.token, "Accept-Language": lang},
        )
        assert response.status_code == 200, response.get_data(as_text=True)
        return response.json["results"]

    def send(self, type_, payload, **kwargs):
        m = self.mutation(type_, payload, **kwargs)
        return m, self.push([m])[0]


@pytest.fixture
def courier(login):
    return Phone(login("courier1", device_id=PHONE), PHONE)


def the_route() -> Route:
    return db.session.scalar(select(Route).where(Route.name == "黄浦 1 号线"))


def stops() -> list[Stop]:
    db.session.expire_all()
    return list(the_route().stops)


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def start_route(phone: Phone) -> None:
    _, result = phone.send("delivery.vehicle_check", {"route_id": the_route().id, **CHECK_OK})
    assert result["status"] == "applied", result


def proof_payload(stop: Stop, **extra) -> dict:
    payload = {
        "stop_id": stop.id,
        "checked_codes": " ".join(i.code for i in stop.items),
        "special_confirmed": any(i.special_shape for i in stop.items),
        "signature": SIG,
        **NEAR_SHOP,
    }
    if stop.is_cash:
        payload["cash_received"] = f"{stop.amount_due_fen // 100}.{stop.amount_due_fen % 100:02d}"
    payload.update(extra)
    return payload


def test_a_proof_of_delivery_sent_again_and_again_is_stored_once(courier):
    start_route(courier)
    first = stops()[0]
    arrival = courier.mutation("delivery.arrival", {"stop_id": first.id, **NEAR_SHOP})
    proof = courier.mutation("delivery.proof", proof_payload(first, photo=SIG2))
    results = courier.push([arrival, proof])
    assert [r["status"] for r in results] == ["applied", "applied"], results
    assert sorted(results[1]["files_missing"]) == [SIG, SIG2]  # the phone uploads them next
    for _ in range(3):
        assert [r["status"] for r in courier.push([arrival, proof])] == ["duplicate"] * 2
    assert count(ProofOfDelivery) == 1 and count(StopArrival) == 1
    stop = stops()[0]
    assert stop.state == "delivered" and stop.version == 3  # arrived, then delivered
    stored = db.session.get(ProofOfDelivery, proof["payload"]["id"])
    assert stored.cash_received_fen == 128_050 and stored.cash_variance_fen == 0
    assert stored.signature == SIG and stored.device_time is not None
    assert db.session.get(StopArrival, arrival["payload"]["id"]).inside_geofence is True
    # The courier's phone learns the new state on its next pull.
    change = db.session.scalar(
        select(Change)
        .where(Change.entity == "delivery.stop", Change.entity_id == stop.id)
        .order_by(Change.seq.desc())
    )
    assert change.data["state"] == "delivered" and change.data["version"] == 3


def test_an_item_of_another_customer_blocks_completion_with_the_reason_in_words(courier):
    start_route(courier)
    first, second = stops()[:2]
    courier.send("delivery.arrival", {"stop_id": first.id, **NEAR_SHOP})
    foreign = second.items[0].code
    _, result = courier.send("delivery.proof", proof_payload(first, scanned_codes=foreign))
    assert (result["status"], result["reason"]) == ("rejected", "delivery.wrong_customer_code")
    assert result["message"].startswith("A scanned item belongs to another customer.")
    assert count(ProofOfDelivery) == 0
    assert stops()[0].state == "arrived"
    # The fix (scanning only this customer's goods) is a new record and goes through.
    own = " ".join(i.code for i in first.items)
    _, fixed = courier.send("delivery.proof", proof_payload(first, scanned_codes=own))
    assert fixed["status"] == "applied"


def test_a_code_on_no_load_and_unchecked_items_are_refused(courier):
    start_route(courier)
    first = stops()[0]
    courier.send("delivery.arrival", {"stop_id": first.id})
    _, unknown = courier.send("delivery.proof", proof_payload(first, scanned_codes="NOPE-1"))
    assert unknown["reason"] == "delivery.unknown_item_code"
    _, unchecked = courier.send("delivery.proof", proof_payload(first, checked_codes=""))
    assert unchecked["reason"] == "delivery.items_not_checked"
    _, unsigned = courier.send("delivery.proof", proof_payload(first, signature=None))
    assert unsigned["reason"] == "delivery.signature_required"
    _, no_cash = courier.send("delivery.proof", proof_payload(first, cash_received=""))
    assert no_cash["reason"] == "delivery.cash_required"
    _, float_cash = courier.send("delivery.proof", proof_payload(first, cash_received="12.345"))
    assert float_cash["reason"] == "invalid" and "cash_received" in float_cash["fields"]
    assert count(ProofOfDelivery) == 0


def test_special_shape_items_need_their_own_confirmation(courier):
    start_route(courier)
    route_stops = stops()
    for stop in route_stops[:2]:
        courier.send("delivery.arrival", {"stop_id": stop.id})
        courier.send("delivery.proof", proof_payload(stop))
    third = route_stops[2]
    courier.send("delivery.arrival", {"stop_id": third.id})
    _, result = courier.send("delivery.proof", proof_payload(third, special_confirmed=False))
    assert result["reason"] == "delivery.special_items_unconfirmed"


def test_a_failed_vehicle_check_blocks_the_start_and_alerts_the_dispatcher(courier):
    route = the_route()
    failed = {**CHECK_OK, "insurance": False}
    _, check = courier.send("delivery.vehicle_check", {"route_id": route.id, **failed})
    assert check["status"] == "applied"  # the failure is a fact worth keeping
    _, arrival = courier.send("delivery.arrival", {"stop_id": stops()[0].id})
    assert arrival["reason"] == "delivery.vehicle_check_failed"
    supervisor = db.session.scalar(select(User).where(User.username == "supervisor"))
    alerts = db.session.scalars(
        select(Notification).where(Notification.user_id == supervisor.id)
    ).all()
    assert len(alerts) == 1 and route.vehicle_plate in alerts[0].title
    # A new, passed check lets the route start.
    start_route(courier)
    _, arrival = courier.send("delivery.arrival", {"stop_id": stops()[0].id})
    assert arrival["status"] == "applied"


def test_a_whole_day_sent_in_one_push_is_judged_record_by_record(courier):
    """A phone offline all day sends the day at once: each record meets the rules as the
    courier met them, in order, whatever the server remembers for the length of the push."""
    route_stops = stops()
    check = courier.mutation("delivery.vehicle_check", {"route_id": the_route().id, **CHECK_OK})
    day = [check]
    for stop in route_stops:
        day.append(courier.mutation("delivery.arrival", {"stop_id": stop.id, **NEAR_SHOP}))
        day.append(courier.mutation("delivery.proof", proof_payload(stop)))
    before = db.session.scalar(select(func.max(Change.seq)))
    results = courier.push(day)
    assert [r["status"] for r in results] == ["applied"] * len(day), results
    assert [s.state for s in stops()] == ["delivered"] * len(route_stops)
    assert count(StopArrival) == count(ProofOfDelivery) == len(route_stops)
    # The phone learns each stop's end state once, not "arrived" and then "delivered".
    learned = db.session.scalars(
        select(Change).where(Change.seq > before, Change.entity == "delivery.stop")
    ).all()
    assert sorted(c.entity_id for c in learned) == sorted(s.id for s in route_stops)
    assert {(c.data["state"], c.data["version"]) for c in learned} == {("delivered", 3)}


def test_a_failed_check_in_the_middle_of_a_push_stops_the_rest_of_the_route(courier):
    start_route(courier)
    first, second = stops()[:2]
    failed = {**CHECK_OK, "insurance": False}
    results = courier.push(
        [
            courier.mutation("delivery.arrival", {"stop_id": first.id}),
            courier.mutation("delivery.vehicle_check", {"route_id": the_route().id, **failed}),
            courier.mutation("delivery.arrival", {"stop_id": second.id}),
        ]
    )
    assert [r["status"] for r in results] == ["applied", "applied", "rejected"], results
    assert results[2]["reason"] == "delivery.vehicle_check_failed"
    assert [s.state for s in stops()[:2]] == ["arrived", "pending"]


def test_no_stop_before_any_vehicle_check(courier):
    _, arrival = courier.send("delivery.arrival", {"stop_id": stops()[0].id})
    assert arrival["reason"] == "delivery.vehicle_check_required"


def test_taking_a_stop_out_of_order_asks_for_a_reason(courier):
    start_route(courier)
    third = stops()[2]
    _, bare = courier.send("delivery.arrival", {"stop_id": third.id})
    assert bare["reason"] == "delivery.out_of_order_reason_required"
    _, explained = courier.send(
        "delivery.arrival", {"stop_id": third.id, "out_of_order_reason": "店主只在上午营业"}
    )
    assert explained["status"] == "applied"


def test_a_refusal_alerts_the_supervisor_once_and_waits_for_the_dispatcher(courier, login):
    start_route(courier)
    first = stops()[0]
    courier.send("delivery.arrival", {"stop_id": first.id})
    refusal = courier.mutation(
        "delivery.refusal",
        {"stop_id": first.id, "reason_code": "refused_goods", "note": "店主说没订货", "photo": SIG},
    )
    assert courier.push([refusal])[0]["status"] == "applied"
    assert courier.push([refusal])[0]["status"] == "duplicate"
    supervisor = db.session.scalar(select(User).where(User.username == "supervisor"))
    inbox = db.session.scalars(
        select(Notification).where(Notification.user_id == supervisor.id)
    ).all()
    assert len(inbox) == 1
    assert "福民便利店" in inbox[0].title and "店主说没订货" in inbox[0].body
    event = db.session.get(PushEvent, inbox[0].event_id)
    assert event.kind == "delivery.refused" and event.alarm is True
    assert stops()[0].state == "refused"
    # The courier's second stop needs no reason: the refused one counts as served.
    second = stops()[1]
    _, arrival = courier.send("delivery.arrival", {"stop_id": second.id})
    assert arrival["status"] == "applied"

    dispatcher = login("supervisor")
    page = dispatcher.get(f"/deliveries/routes/{the_route().id}")
    assert "店主说没订货" in page.get_data(as_text=True)
    response = dispatcher.post(f"/deliveries/stops/{first.id}/resolve", {"resolution": "redeliver"})
    assert response.status_code == 302
    assert stops()[0].state == "pending" and stops()[0].resolution == "redeliver"
    assert count(Refusal) == 1  # the refusal itself stays as it was


def deliver_everything(phone: Phone, cash_short_fen: int = 0) -> int:
    """Deliver all four demo stops; return the cash collected in fen."""
    start_route(phone)
    collected = 0
    for stop in stops():
        phone.send("delivery.arrival", {"stop_id": stop.id})
        extra = {}
        if stop.is_cash:
            fen = stop.amount_due_fen - cash_short_fen
            extra["cash_received"] = f"{fen // 100}.{fen % 100:02d}"
            collected += fen
        _, result = phone.send("delivery.proof", proof_payload(stop, **extra))
        assert result["status"] == "applied", result
    return collected


def handover(route_id: int, deposited: str, **extra) -> dict:
    return {
        "route_id": route_id,
        "deposited": deposited,
        "deposit_reference": "ICBC-20261123-0042",
        "bookkeeper_name": "陈会计",
        "courier_signature": SIG,
        "bookkeeper_signature": SIG2,
        **extra,
    }


def test_the_day_does_not_close_with_an_unexplained_cash_difference(courier):
    collected = deliver_everything(courier)
    assert collected == 128_050 + 54_200
    route_id = the_route().id
    _, short = courier.send("delivery.cash_handover", handover(route_id, "1822.00"))
    assert (short["status"], short["reason"]) == ("rejected", "cash.unexplained_variance")
    assert "explain the difference" in short["message"]
    _, explained = courier.send(
        "delivery.cash_handover",
        handover(route_id, "1822.00", variance_explanation="50 元假币被银行没收"),
    )
    assert explained["status"] == "applied"
    stored = db.session.scalar(select(CashHandover))
    assert (stored.collected_fen, stored.deposited_fen, stored.variance_fen) == (
        182_250,
        182_200,
        -50,
    )

    close = {
        "route_id": route_id,
        "vehicle_cleaned": True,
        "parked_at_designated": True,
        **AT_DEPOT,
    }
    _, unparked = courier.send("delivery.day_close", {**close, "parked_at_designated": False})
    assert unparked["reason"] == "delivery.vehicle_not_parked"
    # VEH-02: ticking "parked" is not enough; the phone must be at the designated place.
    _, elsewhere = courier.send("delivery.day_close", {**close, **NEAR_SHOP})
    assert elsewhere["reason"] == "delivery.not_at_parking"
    assert "designated parking place" in elsewhere["message"]
    no_fix = {**close, "latitude": "", "longitude": "", "accuracy_m": ""}
    _, blind = courier.send("delivery.day_close", no_fix)
    assert blind["reason"] == "delivery.parking_position_required"
    _, phantom = courier.send("delivery.day_close", {**close, "returned": '{"6901028001014": 2}'})
    assert phantom["reason"] == "delivery.items_unbalanced"  # nothing was left to bring back
    _, closed = courier.send("delivery.day_close", {**close, "odometer_km": 48213})
    assert closed["status"] == "applied"
    assert count(DayClose) == 1
    assert 0 < db.session.scalar(select(DayClose.parking_distance_m)) < 150


def test_cash_is_handed_over_only_when_no_stop_is_open(courier):
    start_route(courier)
    _, early = courier.send("delivery.cash_handover", handover(the_route().id, "0"))
    assert early["reason"] == "delivery.stops_still_open"


def test_a_courier_cannot_touch_or_see_another_couriers_route(courier, login):
    start_route(courier)
    stop = stops()[0]
    other = Phone(login("courier2", device_id=OTHER_PHONE), OTHER_PHONE)
    _, result = other.send("delivery.arrival", {"stop_id": stop.id})
    assert result["reason"] == "delivery.stop_not_found"
    _, check = other.send("delivery.vehicle_check", {"route_id": the_route().id, **CHECK_OK})
    assert check["reason"] == "delivery.route_not_found"
    assert other.client.get(f"/deliveries/stops/{stop.id}").status_code == 404
    assert other.client.get(f"/deliveries/routes/{the_route().id}/vehicle-check").status_code == 404
    assert "黄浦 1 号线" not in other.client.get("/deliveries/today").get_data(as_text=True)
    # And nothing of it reaches courier2's phone.
    pulled = other.client.raw.get(f"/api/sync/pull?cursor=0&device_id={OTHER_PHONE}").json
    assert not [c for c in pulled["changes"] if c["entity"].startswith("delivery.")]
    assert count(VehicleCheck) == 1


def test_stop_status_is_versioned_with_the_dispatcher_owning_the_order(courier, login):
    first, second = stops()[:2]
    base = first.version
    dispatcher = login("supervisor")
    assert (
        dispatcher.post(f"/deliveries/stops/{first.id}/move", {"direction": "down"}).status_code
        == 302
    )
    assert [s.customer_name for s in stops()][:2] == ["好邻居超市", "福民便利店"]
    moved = db.session.get(Stop, first.id)
    assert moved.version == base + 1
    # The phone, still on the old version, sets the state (its field) and the order (not its
    # field): the state is applied, the dispatcher's order stands.
    _, result = courier.send(
        "delivery.stop", {"id": first.id, "sequence": 1, "state": "skipped"}, base_version=base
    )
    result_payload = result
    assert result_payload["status"] == "applied", result_payload
    db.session.expire_all()
    moved = db.session.get(Stop, first.id)
    assert moved.state == "skipped" and moved.sequence == 2
    # Record ids of these mutations are the stop's own id.
    assert second.sequence == 1


def test_the_late_delivery_check_raises_one_alert_per_stop(demo):
    route = the_route()
    first = route.stops[0]
    now = first.promised_at + timedelta(minutes=5)
    jobs.run_clock(now)
    jobs.run_clock(now + timedelta(minutes=1))
    events = db.session.scalars(select(PushEvent).where(PushEvent.kind == "delivery.late")).all()
    assert [e.dedupe_key for e in events] == [f"delivery-late:{first.id}"]
    courier = db.session.scalar(select(User).where(User.username == "courier1"))
    assert (
        db.session.scalar(
            select(func.count())
            .select_from(Notification)
            .where(Notification.event_id == events[0].id, Notification.user_id == courier.id)
        )
        == 1
    )
