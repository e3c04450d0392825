"""The audit trail: who created, changed, reassigned or deleted what; tampering is detected."""

import threading
import uuid
from datetime import UTC, datetime

import pytest
from flask import current_app
from sqlalchemy import delete, func, select, text

from fieldapp.audit import service
from fieldapp.audit.models import AuditEntry
from fieldapp.complaints.models import ComplaintEvent
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
from fieldapp.models import Organisation, Site, Team, User
from fieldapp.models.facts import AppendOnlyError
from fieldapp.patrols.models import (
    CheckpointScan,
    GateExit,
    Handover,
    MissedSignIn,
    RoundEndedEarly,
    ShiftSignIn,
    SpotCheck,
)
from fieldapp.visits.models import VisitCheckIn, VisitCheckOut, VisitReport

PHONE = "7a1d2c3b-4a5e-4f60-8a7b-9c0d1e2f3a50"
SIG = "c" * 64
NEAR_SHOP = {"latitude": 31.2336, "longitude": 121.4798, "accuracy_m": 8}
CHECK_OK = dict.fromkeys(("no_faults", "condition", "licence", "registration", "insurance"), True)


def entries(**where) -> list[AuditEntry]:
    db.session.expire_all()
    query = select(AuditEntry).order_by(AuditEntry.id)
    for key, value in where.items():
        query = query.where(getattr(AuditEntry, key) == value)
    return list(db.session.scalars(query))


def verify_cli(app):
    return app.test_cli_runner().invoke(args=["audit-verify"])


def site_form(**fields) -> dict:
    form = {
        "kind": "shop",
        "name": "审计测试店",
        "address": "南京路 1 号",
        "latitude": "31.2",
        "longitude": "121.4",
        "geofence_radius_m": "150",
        "timezone": "Asia/Shanghai",
        "contact_phone": "",
        "team_id": "0",
    }
    form.update(fields)
    return form


# ---------------------------------------------------------------- what is recorded


def test_the_trail_covers_business_tables_and_skips_technical_ones(app):
    tables = service.audited_tables()
    for name in ("user", "team", "site", "device", "organisation", "delivery_stop"):
        assert name in tables
    for name in ("delivery_proof", "patrol_scan", "visit", "complaint", "complaint_event"):
        assert name in tables
    for name in tables:
        assert not name.startswith(("sync_", "push_", "audit_")) and name != "login_attempt"


def test_an_admin_creating_and_changing_a_site_is_recorded_with_old_and_new(login):
    admin = login("admin")
    assert admin.post("/sites/new", site_form()).status_code == 302
    site = db.session.scalar(select(Site).where(Site.name == "审计测试店"))
    admin_user = db.session.scalar(select(User).where(User.username == "admin"))
    created = entries(table_name="site", row_id=str(site.id))
    assert [e.action for e in created] == ["create"]
    assert created[0].actor == "admin" and created[0].actor_user_id == admin_user.id
    assert created[0].org_id == admin_user.org_id
    assert created[0].fields["name"] == "审计测试店"

    admin.get(f"/sites/{site.id}")
    form = site_form(address="南京路 99 号", geofence_radius_m="300")
    assert admin.post(f"/sites/{site.id}", form).status_code == 302
    changed = entries(table_name="site", row_id=str(site.id))[-1]
    assert changed.action == "update"
    assert changed.fields == {
        "address": ["南京路 1 号", "南京路 99 号"],
        "geofence_radius_m": [150, 300],
    }


def test_moving_a_person_to_another_team_is_a_reassignment(login):
    admin = login("admin")
    courier = db.session.scalar(select(User).where(User.username == "courier1"))
    other = db.session.scalar(
        select(Team).where(Team.org_id == courier.org_id, Team.id != courier.team_id)
    )
    old_team = courier.team_id
    admin.get(f"/people/{courier.id}")
    form = {
        "username": courier.username,
        "display_name": courier.display_name,
        "role": courier.role,
        "team_id": str(other.id),
        "phone": courier.phone,
    }
    assert admin.post(f"/people/{courier.id}", form).status_code == 302
    last = entries(table_name="user", row_id=str(courier.id))[-1]
    assert last.action == "reassign" and last.actor == "admin"
    assert last.fields["team_id"] == [old_team, other.id]


def test_a_password_reset_is_recorded_without_the_hash(login):
    admin = login("admin")
    courier = db.session.scalar(select(User).where(User.username == "courier1"))
    admin.get(f"/people/{courier.id}")
    response = admin.post(f"/people/{courier.id}/password", {"password": "Neues-Passwort-2026"})
    assert response.status_code == 302
    db.session.expire_all()
    new_hash = db.session.get(User, courier.id).password_hash
    last = entries(table_name="user", row_id=str(courier.id))[-1]
    assert last.fields["password_hash"] == ["***", "***"]
    stored = db.session.execute(text("SELECT changes FROM audit_entry")).scalars().all()
    assert not any(new_hash in str(row) for row in stored)


def test_a_delete_keeps_what_was_deleted(demo):
    org = db.session.scalar(select(Organisation))
    site = Site(org_id=org.id, kind="shop", name="将被删除")
    db.session.add(site)
    db.session.commit()
    site_id = site.id
    db.session.delete(site)
    db.session.commit()
    gone = entries(table_name="site", row_id=str(site_id))
    assert [e.action for e in gone] == ["create", "delete"]
    assert gone[1].actor == "system" and gone[1].fields["name"] == "将被删除"


def test_a_rolled_back_savepoint_leaves_no_entry(demo):
    org = db.session.scalar(select(Organisation))
    savepoint = db.session.begin_nested()
    db.session.add(Site(org_id=org.id, kind="shop", name="回滚的店"))
    db.session.flush()
    savepoint.rollback()
    db.session.add(Site(org_id=org.id, kind="shop", name="保留的店"))
    db.session.commit()
    names = [e.fields["name"] for e in entries(table_name="site")]
    assert "保留的店" in names and "回滚的店" not in names
    # A whole transaction rolled back: nothing either.
    db.session.add(Site(org_id=org.id, kind="shop", name="整个回滚"))
    db.session.flush()
    db.session.rollback()
    db.session.add(Team(org_id=org.id, name="新队", kind="delivery"))
    db.session.commit()
    assert "整个回滚" not in [e.fields["name"] for e in entries(table_name="site")]
    assert verify_cli(current_app).exit_code == 0


# ---------------------------------------------------------------- through the sync engine


class Phone:
    def __init__(self, client, device_id):
        self.client, self.device_id, self.seq = client, device_id, 0

    def mutation(self, type_, payload):
        self.seq += 1
        return {
            "id": str(uuid.uuid4()),
            "seq": self.seq,
            "type": type_,
            "payload": {"id": str(uuid.uuid4()), **payload},
            "device_time": datetime.now(UTC).isoformat(),
        }

    def push(self, mutations):
        response = self.client.raw.post(
            "/api/sync/push",
            json={"device_id": self.device_id, "mutations": mutations},
            headers={"X-CSRFToken": self.client.token},
        )
        assert response.status_code == 200, response.get_data(as_text=True)
        return response.json["results"]


def deliver_first_stop(phone: Phone) -> tuple[Stop, dict]:
    route = db.session.scalar(select(Route).where(Route.name == "黄浦 1 号线"))
    check = phone.mutation("delivery.vehicle_check", {"route_id": route.id, **CHECK_OK})
    assert phone.push([check])[0]["status"] == "applied"
    db.session.expire_all()
    stop = route.stops[0]
    payload = {
        "stop_id": stop.id,
        "checked_codes": " ".join(i.code for i in stop.items),
        "special_confirmed": any(i.special_shape for i in stop.items),
        "signature": SIG,
        **NEAR_SHOP,
    }
    if stop.is_cash:
        payload["cash_received"] = f"{stop.amount_due_fen // 100}.{stop.amount_due_fen % 100:02d}"
    arrival = phone.mutation("delivery.arrival", {"stop_id": stop.id, **NEAR_SHOP})
    proof = phone.mutation("delivery.proof", payload)
    assert [r["status"] for r in phone.push([arrival, proof])] == ["applied", "applied"]
    return stop, proof


@pytest.fixture
def phone(login):
    return Phone(login("courier1", device_id=PHONE), PHONE)


def test_records_synced_from_a_phone_name_the_courier_and_the_phone(phone):
    stop, proof = deliver_first_stop(phone)
    created = entries(table_name="delivery_proof", row_id=proof["payload"]["id"])
    assert len(created) == 1
    entry = created[0]
    assert entry.action == "create" and entry.actor == "courier1"
    assert entry.actor_device_id == PHONE and entry.fields["stop_id"] == stop.id
    stop_changes = entries(table_name="delivery_stop", row_id=str(stop.id))
    assert stop_changes[-1].fields["state"][1] == "delivered"
    # The phone's sync book-keeping (sequence numbers, last sync) is not an audit event.
    assert not [e for e in entries(table_name="device") if e.action != "create"]
    assert verify_cli(current_app).exit_code == 0


def test_field_records_are_never_changed_or_deleted(phone):
    _, proof = deliver_first_stop(phone)
    stored = db.session.get(ProofOfDelivery, proof["payload"]["id"])
    db.session.delete(stored)
    with pytest.raises(AppendOnlyError):
        db.session.flush()
    db.session.rollback()
    stored = db.session.get(ProofOfDelivery, proof["payload"]["id"])
    stored.signature = "d" * 64
    with pytest.raises(AppendOnlyError):
        db.session.flush()
    db.session.rollback()
    # A bulk statement would skip the per-row guard: it is refused as well.
    with pytest.raises(AppendOnlyError):
        db.session.execute(delete(ProofOfDelivery))
    db.session.rollback()
    with pytest.raises(AppendOnlyError):
        db.session.execute(db.update(ProofOfDelivery).values(signature="e" * 64))
    db.session.rollback()
    with pytest.raises(AppendOnlyError):
        db.session.execute(ProofOfDelivery.__table__.delete())
    db.session.rollback()
    db.session.expire_all()
    assert db.session.get(ProofOfDelivery, proof["payload"]["id"]).signature == SIG
    assert not entries(table_name="delivery_proof", action="delete")


@pytest.mark.parametrize(
    "model",
    [
        VehicleCheck,
        StopArrival,
        ProofOfDelivery,
        Refusal,
        CashHandover,
        DayClose,
        ShiftSignIn,
        CheckpointScan,
        GateExit,
        Handover,
        SpotCheck,
        MissedSignIn,
        RoundEndedEarly,
        VisitCheckIn,
        VisitCheckOut,
        VisitReport,
        ComplaintEvent,
    ],
)
def test_every_kind_of_field_evidence_is_append_only(model):
    assert service.is_append_only(model), f"{model.__name__} can be changed or deleted"


# ---------------------------------------------------------------- the chain


def test_tampering_with_an_entry_is_named_by_audit_verify(demo):
    ok = verify_cli(demo)
    assert ok.exit_code == 0, ok.output
    total = db.session.scalar(select(func.count()).select_from(AuditEntry))
    assert total > 10 and f"{total} entries" in ok.output
    with db.engine.begin() as conn:
        conn.execute(
            text("UPDATE audit_entry SET actor = 'someone_else' WHERE id = 7"),
        )
    broken = verify_cli(demo)
    assert broken.exit_code == 1
    assert "entry 7" in broken.output and "does not match its hash" in broken.output


def test_a_removed_entry_and_a_relinked_entry_are_detected(demo):
    with db.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_entry WHERE id = 5"))
    broken = verify_cli(demo)
    assert broken.exit_code == 1 and "entry 6" in broken.output and "missing" in broken.output
    # Forging entry 6 to point at entry 4 still fails: its own hash no longer matches.
    with db.engine.begin() as conn:
        prev = conn.execute(text("SELECT hash FROM audit_entry WHERE id = 4")).scalar()
        conn.execute(
            text("UPDATE audit_entry SET id = 5, prev_hash = :p WHERE id = 6"), {"p": prev}
        )
    again = verify_cli(demo)
    assert again.exit_code == 1 and "entry 5" in again.output


def test_concurrent_writers_keep_one_unbroken_chain(demo):
    """Several workers appending at once (threads here, gunicorn workers in production)."""
    org_id = db.session.scalar(select(Organisation.id))
    errors = []

    def writer(n: int):
        try:
            with demo.app_context():
                for i in range(5):
                    db.session.add(Site(org_id=org_id, kind="shop", name=f"并发 {n}-{i}"))
                    db.session.commit()
                db.session.remove()
        except Exception as error:  # noqa: BLE001  (reported below)
            errors.append(error)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    names = [e.fields["name"] for e in entries(table_name="site", action="create")]
    assert sum(name.startswith("并发") for name in names) == 20
    result = verify_cli(demo)
    assert result.exit_code == 0, result.output


# ---------------------------------------------------------------- the admin page


def test_the_admin_page_filters_and_stays_in_the_organisation(login):
    admin = login("admin")
    admin.post("/sites/new", site_form(name="页面上的店"))
    other = Organisation(code="OTHER", name="别家公司")
    db.session.add(other)
    db.session.flush()
    db.session.add(Site(org_id=other.id, kind="shop", name="别家的店"))
    db.session.commit()
    page = admin.get("/audit?table=site").get_data(as_text=True)
    assert "页面上的店" in page and "别家的店" not in page
    admin_id = db.session.scalar(select(User.id).where(User.username == "admin"))
    mine = admin.get(f"/audit?user={admin_id}").get_data(as_text=True)
    assert "页面上的店" in mine
    assert "页面上的店" not in admin.get("/audit?table=team").get_data(as_text=True)
    assert "页面上的店" not in admin.get("/audit?from=2000-01-01&to=2000-01-02").get_data(
        as_text=True
    )
    assert login("courier1").get("/audit").status_code == 403
    assert login("supervisor").get("/audit").status_code == 403
