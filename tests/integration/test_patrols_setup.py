"""The supervisor edits posts, checkpoints and shifts, and keeps the equipment register (PAT-23).

Forms show their errors next to the field; everything is scoped to the supervisor's sites.
Builds on the demo site of ``test_patrols_duty``. SQLite and PostgreSQL.
"""

import csv
import io
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from fieldapp.extensions import db
from fieldapp.models import Role, Team, User, utcnow
from fieldapp.patrols.models import (
    Checkpoint,
    EquipmentCheck,
    EquipmentItem,
    Handover,
    Post,
    Shift,
)
from tests.integration.test_patrols_duty import (
    GUARD_PHONE,
    SHA,
    Phone,
    code_of,
    put_on_shift,
    site,
    user,
)


@pytest.fixture
def guard_phone(login):
    return Phone(login("guard1", device_id=GUARD_PHONE), GUARD_PHONE)


@pytest.fixture
def now():
    return utcnow().replace(microsecond=0)


def post_named(name: str) -> Post:
    return db.session.scalar(select(Post).where(Post.site_id == site().id, Post.name == name))


def error_next_to(page: str, field_id: str) -> bool:
    return f'id="{field_id}-error"' in page and f'aria-describedby="{field_id}-error"' in page


def stranger(login):
    """A supervisor of another team, who must see none of the demo site."""
    org_id = site().org_id
    boss = User(
        org_id=org_id,
        username="supervisor2",
        display_name="吴主管",
        role=Role.SUPERVISOR,
        password_hash=user("supervisor").password_hash,
    )
    db.session.add(boss)
    db.session.flush()
    db.session.add(Team(org_id=org_id, name="保安二队", kind="security", supervisor_id=boss.id))
    db.session.commit()
    return login("supervisor2")


# ----- posts and checkpoints ----------------------------------------------------------------


def test_the_supervisor_renames_a_post_with_errors_next_to_the_fields(login):
    supervisor = login("supervisor")
    gate = post_named("大门岗")
    page = supervisor.get(f"/patrols/sites/{site().id}").get_data(as_text=True)
    assert f"/patrols/posts/{gate.id}/edit" in page
    form = supervisor.get(f"/patrols/posts/{gate.id}/edit").get_data(as_text=True)
    assert 'value="大门岗"' in form

    empty = supervisor.post(f"/patrols/posts/{gate.id}/edit", {"name": "", "kind": "gate"})
    assert empty.status_code == 400 and error_next_to(empty.get_data(as_text=True), "name")
    taken = supervisor.post(f"/patrols/posts/{gate.id}/edit", {"name": "巡逻岗", "kind": "gate"})
    assert taken.status_code == 400
    assert error_next_to(taken.get_data(as_text=True), "name")
    assert "already has a post of that name" in taken.get_data(as_text=True) or "同名" in (
        taken.get_data(as_text=True)
    )

    saved = supervisor.post(
        f"/patrols/posts/{gate.id}/edit", {"name": "东大门", "kind": "guarding"}
    )
    assert saved.status_code == 302
    db.session.expire_all()
    assert (db.session.get(Post, gate.id).name, db.session.get(Post, gate.id).kind) == (
        "东大门",
        "guarding",
    )


def test_a_retired_checkpoint_no_longer_counts(guard_phone, login, now):
    shift_id = put_on_shift("guard1", now - timedelta(hours=1), now + timedelta(hours=8))
    cp4 = db.session.scalar(
        select(Checkpoint).where(Checkpoint.site_id == site().id, Checkpoint.code == "CP4")
    )
    payload = code_of("CP4")
    supervisor = login("supervisor")
    blank = supervisor.post(f"/patrols/checkpoints/{cp4.id}/edit", {"name": "", "position": "4"})
    assert blank.status_code == 400 and error_next_to(blank.get_data(as_text=True), "name")
    # Unticking "in use" retires it (a browser sends no value for an unticked box).
    saved = supervisor.post(
        f"/patrols/checkpoints/{cp4.id}/edit", {"name": "北门（已拆）", "position": "9"}
    )
    assert saved.status_code == 302
    db.session.expire_all()
    checkpoint = db.session.get(Checkpoint, cp4.id)
    assert (checkpoint.name, checkpoint.position, checkpoint.active) == ("北门（已拆）", 9, False)
    refused = guard_phone.send("patrol.scan", {"shift_id": shift_id, "code": payload})
    assert refused["reason"] == "patrol.unknown_checkpoint"
    assert "CP4" not in supervisor.get(f"/patrols/sites/{site().id}/qr").get_data(as_text=True)


def test_set_up_of_another_team_is_out_of_reach(login):
    gate = post_named("大门岗")
    cp1 = db.session.scalar(select(Checkpoint).where(Checkpoint.code == "CP1"))
    shift = db.session.scalar(select(Shift))
    other = stranger(login)
    for url in (
        f"/patrols/posts/{gate.id}/edit",
        f"/patrols/checkpoints/{cp1.id}/edit",
        f"/patrols/shifts/{shift.id}/edit",
        f"/patrols/sites/{site().id}/equipment",
        f"/patrols/sites/{site().id}/equipment.csv",
    ):
        assert other.get(url).status_code == 404, url
    assert (
        other.post(f"/patrols/posts/{gate.id}/edit", {"name": "x", "kind": "gate"}).status_code
        == 404
    )
    assert other.post(f"/patrols/shifts/{shift.id}/remove").status_code == 404
    assert login("guard1").get(f"/patrols/posts/{gate.id}/edit").status_code == 403


# ----- shifts --------------------------------------------------------------------------------


def local_form(start, end, guard, post) -> dict:
    tz = ZoneInfo(site().timezone)
    return {
        "guard_id": guard.id,
        "post_id": post.id,
        "day": start.astimezone(tz).date().isoformat(),
        "start": start.astimezone(tz).strftime("%H:%M"),
        "end": end.astimezone(tz).strftime("%H:%M"),
    }


def test_a_future_shift_is_moved_or_removed_a_started_one_is_not(login, now):
    start = (now + timedelta(days=2)).replace(minute=0, second=0)
    put_on_shift("guard2", start, start + timedelta(hours=4))
    shift_id = put_on_shift("guard1", start, start + timedelta(hours=8))
    supervisor = login("supervisor")
    patrol_post = post_named("巡逻岗")
    form = supervisor.get(f"/patrols/shifts/{shift_id}/edit").get_data(as_text=True)
    assert f'value="{start.astimezone(ZoneInfo(site().timezone)):%H:%M}"' in form

    clash = supervisor.post(
        f"/patrols/shifts/{shift_id}/edit",
        local_form(start, start + timedelta(hours=8), user("guard2"), patrol_post),
    )
    assert clash.status_code == 400 and error_next_to(clash.get_data(as_text=True), "guard_id")
    later = start + timedelta(hours=4)
    moved = supervisor.post(
        f"/patrols/shifts/{shift_id}/edit",
        local_form(later, later + timedelta(hours=8), user("guard2"), patrol_post),
    )
    assert moved.status_code == 302
    db.session.expire_all()
    shift = db.session.get(Shift, shift_id)
    assert (shift.guard_id, shift.post_id, shift.starts_at) == (
        user("guard2").id,
        patrol_post.id,
        later,
    )
    assert supervisor.post(f"/patrols/shifts/{shift_id}/remove").status_code == 302
    assert db.session.scalar(select(func.count(Shift.id)).where(Shift.id == shift_id)) == 0

    running = put_on_shift("guard1", now - timedelta(hours=1), now + timedelta(hours=7))
    refused = supervisor.post(
        f"/patrols/shifts/{running}/edit",
        local_form(now, now + timedelta(hours=7), user("guard1"), patrol_post),
    )
    text = refused.get_data(as_text=True)
    assert refused.status_code == 400 and 'id="form-error"' in text
    assert "already started" in text or "已开始" in text
    supervisor.post(f"/patrols/shifts/{running}/remove")
    assert db.session.get(Shift, running) is not None


def test_a_shift_the_guard_signed_in_for_early_cannot_be_changed(guard_phone, login, now):
    start = now + timedelta(minutes=30)
    shift_id = put_on_shift("guard1", start, start + timedelta(hours=8))
    assert guard_phone.send("patrol.sign_in", {"shift_id": shift_id})["status"] == "applied"
    supervisor = login("supervisor")
    supervisor.post(f"/patrols/shifts/{shift_id}/remove")
    assert db.session.get(Shift, shift_id) is not None
    page = supervisor.get(f"/patrols/shifts/{shift_id}/edit").get_data(as_text=True)
    assert "recorded something for this shift" in page or "已" in page


# ----- the equipment register (PAT-23) -------------------------------------------------------


def issue(supervisor, **fields):
    form = {"kind": "radio", "label": "", "post_id": post_named("大门岗").id, "guard_id": 0}
    return supervisor.post(f"/patrols/sites/{site().id}/equipment", {**form, **fields})


def test_equipment_is_issued_checked_at_handover_and_exported(guard_phone, login, now):
    supervisor = login("supervisor")
    bad = issue(supervisor, value_yuan="-3")
    assert bad.status_code == 400 and error_next_to(bad.get_data(as_text=True), "value_yuan")
    assert issue(supervisor, label="对讲机 A-07", value_yuan="480.50").status_code == 302
    assert issue(supervisor, kind="kit8", guard_id=user("guard1").id).status_code == 302
    radio, kit = db.session.scalars(select(EquipmentItem).order_by(EquipmentItem.id))
    assert (radio.value_fen, radio.guard_id, kit.guard_id) == (48050, None, user("guard1").id)

    shift_id = put_on_shift("guard1", now - timedelta(hours=8), now + timedelta(minutes=2))
    form = guard_phone.client.get("/patrols/handover").get_data(as_text=True)
    assert f'name="eq_{radio.id}" value="missing" required' in form
    assert "对讲机 A-07" in form and f'name="eq_{kit.id}"' in form

    handover = {
        "shift_id": shift_id,
        "incoming_guard_id": user("guard2").id,
        "outgoing_signature": SHA,
        "incoming_signature": "cd" * 32,
    }
    junk = guard_phone.send("patrol.handover", {**handover, "searched": True})
    assert junk["status"] == "rejected"
    wrong = guard_phone.send("patrol.handover", {**handover, f"eq_{radio.id}": "sold"})
    assert wrong["status"] == "rejected"
    done = guard_phone.send(
        "patrol.handover", {**handover, f"eq_{radio.id}": "missing", f"eq_{kit.id}": "ok"}
    )
    assert done["status"] == "applied"
    handover_id = db.session.scalar(select(Handover.id))
    checks = db.session.execute(
        select(EquipmentCheck.equipment_id, EquipmentCheck.condition).where(
            EquipmentCheck.handover_id == handover_id
        )
    ).all()
    assert sorted(checks) == sorted([(radio.id, "missing"), (kit.id, "ok")])

    board = supervisor.get("/patrols/board").get_data(as_text=True)
    assert f'data-equipment-problem="{radio.id}"' in board
    assert f'data-equipment-problem="{kit.id}"' not in board
    register = supervisor.get(f"/patrols/sites/{site().id}/equipment").get_data(as_text=True)
    assert 'data-condition="missing"' in register and "480.50" in register
    exported = supervisor.get(f"/patrols/sites/{site().id}/equipment.csv")
    assert exported.status_code == 200 and exported.mimetype == "text/csv"
    text = exported.get_data(as_text=True)
    assert text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert len(rows) == 3
    radio_row = next(r for r in rows if "对讲机 A-07" in r)
    assert radio_row[0] == "大门岗" and radio_row[-2:] == ["480.50", "480.50"]
    kit_row = next(r for r in rows if r is not radio_row and r is not rows[0])
    assert user("guard1").display_name in kit_row and kit_row[-1] == ""


def test_inspection_maintenance_and_return_make_the_items_history(login):
    supervisor = login("supervisor")
    issue(supervisor, kind="shield", label="盾牌 3 号", value_yuan="200")
    item = db.session.scalar(select(EquipmentItem))
    url = f"/patrols/equipment/{item.id}"
    assert "盾牌 3 号" in supervisor.get(url).get_data(as_text=True)
    bad = supervisor.post(url, {"check_kind": "stolen", "condition": "ok"})
    assert bad.status_code == 400 and error_next_to(bad.get_data(as_text=True), "check_kind")
    assert (
        supervisor.post(url, {"check_kind": "inspection", "condition": "damaged"}).status_code
        == 302
    )
    assert (
        supervisor.post(
            url, {"check_kind": "maintenance", "condition": "ok", "notes": "更换把手"}
        ).status_code
        == 302
    )
    assert supervisor.post(url, {"check_kind": "returned", "condition": "ok"}).status_code == 302
    db.session.expire_all()
    assert db.session.get(EquipmentItem, item.id).returned_at is not None
    kinds = db.session.scalars(
        select(EquipmentCheck.check_kind).where(EquipmentCheck.equipment_id == item.id)
    ).all()
    assert sorted(kinds) == ["inspection", "issue", "maintenance", "returned"]
    again = supervisor.post(url, {"check_kind": "inspection", "condition": "ok"})
    assert again.status_code == 400
    assert db.session.scalar(select(func.count(EquipmentCheck.id))) == 4
    page = supervisor.get(url).get_data(as_text=True)
    assert "更换把手" in page and 'name="check_kind"' not in page
