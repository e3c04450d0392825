"""A revoked phone's unsent records are held for the office, then applied once or discarded."""

import re

import pytest
from sqlalchemy import func, select

from fieldapp.extensions import db
from fieldapp.models import Role, Team, TeamKind, User
from fieldapp.sync.models import HeldBatch, Mutation
from tests.integration.test_sync_engine import PHONE, Phone, note
from tests.sync_types import notes


def stored_notes():
    return db.session.scalar(select(func.count()).select_from(notes))


def batches():
    db.session.expire_all()
    return db.session.scalars(select(HeldBatch).order_by(HeldBatch.id)).all()


@pytest.fixture
def revoked(login):
    """courier1's phone, with one record already stored, then revoked by the admin."""
    phone = Phone(login("courier1", device_id=PHONE), PHONE)
    assert phone.statuses([note(1, "早上")]) == ["applied"]
    admin = login("admin")
    admin.get("/devices")
    assert admin.post(f"/devices/{PHONE}/revoke").status_code == 302
    return phone, admin


def test_a_revoked_phone_hands_its_outbox_over_once_and_reads_nothing(revoked):
    phone, _admin = revoked
    batch = [note(2, "收款 300"), note(3, "收款 500")]
    for _ in range(2):  # the answer was lost: the phone sends the same batch again
        response = phone.push(batch)
        assert response.status_code == 403
        body = response.json
        assert body["error"] == "device_revoked" and body["held"] is True and body["count"] == 2
        assert "2 unsent records were handed to your office" in body["message"]
    assert stored_notes() == 1  # nothing applied
    [held] = batches()
    assert (held.status, held.count) == ("held", 2)
    assert [m["id"] for m in held.mutations] == [m["id"] for m in batch]

    # Nothing else: no pull, no day pack, no file, no page; the session itself stays.
    for url in ("/api/sync/pull?cursor=0", "/api/sync/daypack", "/sync/outbox", "/devices"):
        response = phone.client.raw.get(url)
        assert response.status_code == 403, url
        assert "早上" not in response.get_data(as_text=True)
    page = phone.client.raw.get("/").get_data(as_text=True)
    assert PHONE in page and "李师傅" not in page  # the scripts can hand over; no name shown
    # Another phone's ID in the body is not a way around the revocation.
    sneaky = phone.client.raw.post(
        "/api/sync/push",
        json={"device_id": "7a2e3d4c-5b6f-4071-9b8c-0d1e2f3a4b5c", "mutations": [note(5)]},
        headers={"X-CSRFToken": phone.client.token},
    )
    assert sneaky.status_code == 403 and "held" not in sneaky.json


def test_files_of_a_revoked_phone_are_accepted_inert(revoked):
    phone, _admin = revoked
    sha = "a" * 64
    response = phone.client.raw.post(
        f"/api/sync/files/{sha}",
        json={"size": 8, "content_type": "image/png"},
        headers={"X-CSRFToken": phone.client.token},
    )
    assert response.status_code == 200 and response.json["offset"] == 0
    assert phone.client.raw.get(f"/api/sync/files/{sha}").status_code == 403  # never read


def _decide(client, batch_id, **form):
    client.get(f"/devices/{PHONE}/held")
    return client.post(f"/devices/{PHONE}/held", {"batch_id": batch_id, **form})


def test_the_admin_applies_a_held_batch_exactly_once(revoked):
    phone, admin = revoked
    phone.push([note(2, "收款 300"), note(3, "refused")])
    phone.push([note(4, "收款 800")])  # a later batch: numbered on after the first
    first, second = batches()
    page = admin.get(f"/devices/{PHONE}/held", headers={"Accept-Language": "en"})
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and "收款 300" in text and "测试记录" in text
    devices = admin.get("/devices", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert "Records it handed over" in devices

    # Applying the later one first still works: it is numbered after what the server has.
    assert _decide(admin, second.id, action="apply").status_code == 302
    assert _decide(admin, first.id, action="apply").status_code == 302
    assert stored_notes() == 3  # 早上, 收款 800, 收款 300; "refused" was refused
    first, second = batches()
    assert (first.status, second.status) == ("applied", "applied")
    assert first.decided_by.username == "admin" and first.decided_at is not None
    assert [r["status"] for r in first.results] == ["applied", "rejected"]
    shown = admin.get(f"/devices/{PHONE}/held", headers={"Accept-Language": "en"})
    assert "refused by a business rule" in shown.get_data(as_text=True)

    again = _decide(admin, first.id, action="apply")
    assert again.status_code == 400
    assert stored_notes() == 3
    assert db.session.scalar(select(func.count()).select_from(Mutation)) == 4
    # What is applied is in the ledger: the phone's resend is no longer held, nothing doubles.
    assert phone.push([note(2, "收款 300")]).json["count"] == 1
    assert len(batches()) == 3


def test_discarding_needs_a_reason_and_is_recorded(revoked):
    phone, admin = revoked
    phone.push([note(2, "收款 300")])
    [held] = batches()
    refused = _decide(admin, held.id, action="discard", note="  ")
    assert refused.status_code == 400
    assert batches()[0].status == "held"
    assert _decide(admin, held.id, action="discard", note="手机被盗，记录不可信").status_code == 302
    [held] = batches()
    assert (held.status, held.note) == ("discarded", "手机被盗，记录不可信")
    assert _decide(admin, held.id, action="apply").status_code == 400
    assert stored_notes() == 1


def test_a_supervisor_of_another_team_can_neither_see_nor_decide(revoked, login, demo):
    phone, admin = revoked
    phone.push([note(2, "收款 300")])
    [held] = batches()
    other = User(org_id=admin_org(), username="sup-b", display_name="吴主管", role=Role.SUPERVISOR)
    other.set_password("demo-2026")
    db.session.add(other)
    db.session.flush()
    db.session.add(
        Team(org_id=other.org_id, name="配送二组", kind=TeamKind.DELIVERY, supervisor_id=other.id)
    )
    db.session.commit()
    sup_b = login("sup-b")
    assert sup_b.get(f"/devices/{PHONE}/held").status_code == 404
    assert "收款 300" not in sup_b.get("/devices").get_data(as_text=True)
    assert (
        sup_b.post(f"/devices/{PHONE}/held", {"batch_id": held.id, "action": "apply"}).status_code
        == 404
    )
    assert batches()[0].status == "held" and stored_notes() == 1
    supervisor = login("supervisor")  # courier1's team's supervisor may
    assert "收款 300" in supervisor.get(f"/devices/{PHONE}/held").get_data(as_text=True)


def admin_org() -> int:
    return db.session.scalar(select(User.org_id).where(User.username == "admin"))


def test_the_login_page_ends_the_hand_over_session(revoked):
    phone, _admin = revoked
    assert phone.client.get("/login").status_code == 200
    response = phone.push([note(2)])
    assert response.status_code in (400, 401)  # signed out: nothing is held
    assert batches() == [] and re.search("csrf|login", response.get_data(as_text=True))
