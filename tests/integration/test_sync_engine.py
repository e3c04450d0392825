"""The sync engine through its HTTP API: exactly once, in order, nothing lost or blocked."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from fieldapp.extensions import db
from fieldapp.models import Device, Team, User
from fieldapp.sync.models import Conflict, Mutation
from tests.sync_types import notes, tickets

PHONE = "6f1d2c3b-4a5e-4f60-8a7b-9c0d1e2f3a4b"
SECOND_PHONE = "7a2e3d4c-5b6f-4071-9b8c-0d1e2f3a4b5c"


def note(seq, title="到店", amount=100, **extra):
    return {
        "id": str(uuid.uuid4()),
        "seq": seq,
        "type": "test.note",
        "payload": {"id": str(uuid.uuid4()), "title": title, "amount": amount, **extra},
        "device_time": datetime.now(UTC).isoformat(),
    }


class Phone:
    """A logged-in phone speaking the sync protocol."""

    def __init__(self, client, device_id):
        self.client, self.device_id = client, device_id

    def push(self, mutations, lang="en"):
        return self.client.raw.post(
            "/api/sync/push",
            json={"device_id": self.device_id, "mutations": mutations},
            headers={"X-CSRFToken": self.client.token, "Accept-Language": lang},
        )

    def statuses(self, mutations, lang="en"):
        response = self.push(mutations, lang)
        assert response.status_code == 200, response.get_data(as_text=True)
        return [r["status"] for r in response.json["results"]]


@pytest.fixture
def phone(login):
    return Phone(login("courier1", device_id=PHONE), PHONE)


def stored_notes():
    return db.session.scalar(select(func.count()).select_from(notes))


def test_a_batch_is_applied_in_order_and_replays_store_one_copy(phone):
    batch = [note(seq) for seq in range(1, 6)]
    assert phone.statuses(batch) == ["applied"] * 5
    for _ in range(3):
        assert phone.statuses(batch) == ["duplicate"] * 5
    assert stored_notes() == 5
    assert db.session.get(Device, PHONE).last_seq == 5


def test_same_id_with_other_content_is_a_conflict_and_changes_nothing(phone):
    first = note(1, title="原来的")
    phone.statuses([first])
    forged = {**first, "payload": {**first["payload"], "title": "改过的"}}
    response = phone.push([forged]).json["results"][0]
    assert (response["status"], response["reason"]) == ("conflict", "id_reused")
    assert db.session.execute(select(notes.c.title)).scalar_one() == "原来的"


def test_one_invalid_record_does_not_block_the_other_19(phone):
    batch = [note(seq) for seq in range(1, 21)]
    batch[7]["payload"]["amount"] = -5
    batch[7]["payload"]["title"] = ""
    results = phone.push(batch, lang="zh-CN").json["results"]
    assert [r["status"] for r in results].count("applied") == 19
    bad = results[7]
    assert bad["status"] == "rejected" and bad["reason"] == "invalid"
    assert bad["fields"] == {"amount": "至少为 0。", "title": "此项必填。"}
    assert bad["message"] == "有些内容需要修改。"
    assert stored_notes() == 19
    # The same rejected mutation sent again gets the same answer; fixed, it is a new one.
    assert phone.statuses([batch[7]]) == ["rejected"]
    fixed = note(21, title="改好了", amount=5)
    fixed["payload"]["id"] = batch[7]["payload"]["id"]
    assert phone.statuses([fixed]) == ["applied"]
    assert stored_notes() == 20


def test_a_business_rule_refusal_is_shown_in_the_users_words(phone):
    result = phone.push([note(1, title="refused")]).json["results"][0]
    assert result["status"] == "rejected"
    assert result["reason"] == "test.refused"
    assert result["message"] == "This note is refused by a business rule."
    assert phone.statuses([note(2)]) == ["applied"]  # the queue goes on


def test_a_refusal_inside_a_batch_rolls_back_that_record_only(phone):
    batch = [note(seq, title="refused" if seq == 4 else f"第{seq}条") for seq in range(1, 11)]
    results = phone.push(batch).json["results"]
    assert [r["status"] for r in results] == ["applied"] * 3 + ["rejected"] + ["applied"] * 6
    assert results[3]["reason"] == "test.refused"
    titles = {t for (t,) in db.session.execute(select(notes.c.title))}
    assert titles == {f"第{seq}条" for seq in range(1, 11) if seq != 4}


def test_a_record_sent_twice_as_two_mutations_is_stored_once(phone):
    first = note(1)
    again = note(2)
    again["payload"] = first["payload"]
    results = phone.push([first, again, note(3)]).json["results"]
    assert [r["status"] for r in results] == ["applied", "rejected", "applied"]
    assert results[1]["reason"] == "duplicate_record"
    assert stored_notes() == 2


def test_a_gap_in_the_sequence_is_refused_so_the_phone_resends_in_order(phone):
    phone.statuses([note(1)])
    later = [note(3), note(4)]
    results = phone.push(later).json["results"]
    assert [(r["status"], r["expected_seq"]) for r in results] == [("retry", 2), ("retry", 2)]
    assert stored_notes() == 1
    assert phone.statuses([note(2), *later]) == ["applied"] * 3
    assert stored_notes() == 4


def test_a_number_the_server_already_used_is_refused_not_applied(phone):
    phone.statuses([note(1), note(2)])
    result = phone.push([note(2)]).json["results"][0]
    assert (result["status"], result["reason"]) == ("rejected", "stale_sequence")
    assert stored_notes() == 2


def test_two_phones_of_one_user_have_their_own_sequences(login, phone):
    other = Phone(login("courier1", device_id=SECOND_PHONE), SECOND_PHONE)
    assert phone.statuses([note(1), note(2)]) == ["applied", "applied"]
    assert other.statuses([note(1)]) == ["applied"]
    assert stored_notes() == 3


def test_a_revoked_phone_is_refused_and_nothing_is_applied(login, phone):
    admin = login("admin")
    admin.get("/devices")
    admin.post(f"/devices/{PHONE}/revoke")
    response = phone.push([note(1)])
    assert response.status_code == 403
    assert response.json["error"] == "device_revoked"
    assert "stay on" in response.json["message"]
    assert stored_notes() == 0


def test_another_users_phone_id_is_refused(login, phone):
    guard = Phone(login("guard1"), PHONE)
    response = guard.push([note(1)])
    assert response.status_code == 403 and response.json["error"] == "unknown_device"


def test_unknown_record_type_and_clock_skew(phone):
    unknown = {**note(1), "type": "delivery.teleport"}
    assert phone.push([unknown]).json["results"][0]["reason"] == "unknown_type"
    slow_clock = note(2)
    slow_clock["device_time"] = (datetime.now(UTC) - timedelta(minutes=7)).isoformat()
    phone.statuses([slow_clock])
    mutation = db.session.get(Mutation, slow_clock["id"])
    assert mutation.skew_flagged and -430 < mutation.skew_seconds < -410


@pytest.mark.parametrize(
    "body,reason",
    [
        ("not json", "malformed_json"),
        ({"device_id": PHONE, "mutations": [{"id": "x"}]}, "invalid_batch"),
    ],
)
def test_malformed_requests_get_a_readable_400(phone, body, reason):
    kwargs = {"data": body} if isinstance(body, str) else {"json": body}
    response = phone.client.raw.post(
        "/api/sync/push",
        headers={"X-CSRFToken": phone.client.token, "Content-Type": "application/json"},
        **kwargs,
    )
    assert response.status_code == 400
    assert response.json["error"] == reason and response.json["message"]


def test_a_huge_batch_is_refused(phone):
    response = phone.push([note(seq) for seq in range(1, 502)])
    assert response.status_code == 400
    assert "mutations" in response.json["fields"]


def test_api_without_login_answers_401_json(client):
    response = client.raw.get("/api/sync/pull")
    assert response.status_code == 401 and response.json["error"] == "login_required"


def ticket(seq, ticket_id, base_version=None, **fields):
    return {
        "id": str(uuid.uuid4()),
        "seq": seq,
        "type": "test.ticket",
        "payload": {"id": ticket_id, **fields},
        "base_version": base_version,
        "device_time": datetime.now(UTC).isoformat(),
    }


def test_office_and_phone_edits_both_survive_under_field_ownership(phone, login):
    ticket_id = str(uuid.uuid4())
    created = phone.push(
        [ticket(1, ticket_id, assignee="李师傅", status="open", address="福州路 318 号")]
    ).json["results"][0]
    assert created["version"] == 1
    # The dispatcher reassigns and changes the address (version 2) while the courier is offline.
    db.session.execute(
        tickets.update()
        .where(tickets.c.id == ticket_id)
        .values(version=2, assignee="王师傅", address="福州路 320 号")
    )
    db.session.commit()
    # The courier, offline from version 1, completes it and also touches office fields.
    result = phone.push(
        [
            ticket(
                2,
                ticket_id,
                base_version=1,
                status="done",
                note="已送达",
                assignee="李师傅",
                address="福州路 318 号后门",
            )
        ]
    ).json["results"][0]
    assert result["status"] == "conflict"
    row = db.session.execute(select(tickets).where(tickets.c.id == ticket_id)).mappings().one()
    assert (row["status"], row["note"]) == ("done", "已送达")  # the worker's fields: phone wins
    assert row["assignee"] == "王师傅"  # the dispatcher's field: server wins
    assert row["address"] == "福州路 320 号"  # nobody's field: kept until a supervisor decides
    conflict = db.session.scalar(select(Conflict))
    assert conflict.server_fields == {"address": "福州路 320 号"}
    assert conflict.phone_fields == {"address": "福州路 318 号后门"}

    # The supervisor of another team sees nothing of it and cannot decide it.
    courier = db.session.scalar(select(User).where(User.username == "courier1"))
    other = User(
        org_id=courier.org_id, username="supervisor-b", display_name="B组主管", role="supervisor"
    )
    other.set_password("demo-2026")
    db.session.add(other)
    db.session.flush()
    db.session.add(Team(org_id=courier.org_id, name="B组", kind="delivery", supervisor_id=other.id))
    db.session.commit()
    outsider = login("supervisor-b")
    assert "福州路 318 号后门" not in outsider.get("/sync/conflicts").get_data(as_text=True)
    refused = outsider.post(f"/sync/conflicts/{conflict.id}", {"keep": "phone"})
    assert refused.status_code == 404

    supervisor = login("supervisor")
    page = supervisor.get("/sync/conflicts").get_data(as_text=True)
    assert "福州路 318 号后门" in page
    supervisor.post(f"/sync/conflicts/{conflict.id}", {"keep": "phone"})
    db.session.expire_all()
    row = db.session.execute(select(tickets).where(tickets.c.id == ticket_id)).mappings().one()
    assert row["address"] == "福州路 318 号后门" and row["version"] == 4
    assert db.session.get(Conflict, conflict.id).resolution == "phone"


def test_an_up_to_date_edit_applies_every_field(phone):
    ticket_id = str(uuid.uuid4())
    phone.statuses([ticket(1, ticket_id, assignee="a", status="open")])
    result = phone.push([ticket(2, ticket_id, base_version=1, assignee="b")]).json["results"][0]
    assert (result["status"], result["version"]) == ("applied", 2)


def test_workers_cannot_open_the_conflicts_list(phone):
    assert phone.client.get("/sync/conflicts").status_code == 403


def test_openapi_document_describes_the_sync_endpoints(client):
    doc = client.get("/api/openapi.json").json
    assert doc["openapi"].startswith("3.1")
    assert {"/api/sync/push", "/api/sync/pull", "/api/sync/files/{sha256}"} <= set(doc["paths"])
    assert "payload:test.note" in doc["components"]["schemas"]
    assert doc["components"]["schemas"]["PushIn"]["properties"]["mutations"]["maxItems"] == 500


def test_devices_tell_how_many_records_they_still_hold(phone):
    oldest = "2026-11-23T02:40:00Z"
    response = phone.client.raw.get(
        f"/api/sync/pull?device_id={PHONE}&cursor=0&pending=12&oldest_pending={oldest}"
    )
    assert response.status_code == 200
    for wrong in ("cursor=-1", "cursor=abc", "pending=many", "oldest_pending=yesterday"):
        refused = phone.client.raw.get(f"/api/sync/pull?device_id={PHONE}&{wrong}")
        assert refused.status_code == 400 and refused.json["message"]
    device = db.session.get(Device, PHONE)
    assert device.pending_count == 12
    assert device.oldest_pending_at == datetime(2026, 11, 23, 2, 40, tzinfo=UTC)


def test_the_user_of_a_mutation_is_the_logged_in_user(phone):
    phone.statuses([note(1)])
    courier = db.session.scalar(select(User).where(User.username == "courier1"))
    assert db.session.execute(select(notes.c.user_id)).scalar_one() == courier.id
