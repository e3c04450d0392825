"""A shift the supervisor rosters, changes or removes reaches the guard's phone at its next pull.

The change feed's kind is the day pack's name for a guard's shifts (``patrol_shifts``), so the
phone's entry from the day pack is replaced or removed. Builds on the demo site of
``test_patrols_duty``. SQLite and PostgreSQL.
"""

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest

from fieldapp.extensions import db
from fieldapp.models import Organisation, Role, User, utcnow
from fieldapp.patrols.models import Post, Shift
from tests.integration.test_patrols_duty import (
    GUARD_PHONE,
    OTHER_PHONE,
    Phone,
    put_on_shift,
    site,
    user,
)
from tests.integration.test_patrols_setup import local_form, post_named

KIND = "patrol_shifts"
STRANGER_PHONE = "2d9c7e3a-5f4b-4a8c-8d9e-3f4a5b6c7d8e"


@pytest.fixture
def now():
    return utcnow().replace(microsecond=0)


@pytest.fixture
def guard_phone(login):
    return Phone(login("guard1", device_id=GUARD_PHONE), GUARD_PHONE)


@pytest.fixture
def other_guard_phone(login):
    return Phone(login("guard2", device_id=OTHER_PHONE), OTHER_PHONE)


@pytest.fixture
def stranger_phone(login):
    """A guard of another organisation."""
    org = Organisation(code="OTHER", name="别的保安公司")
    db.session.add(org)
    db.session.flush()
    guard = User(org_id=org.id, username="stranger", display_name="外人", role=Role.GUARD)
    guard.set_password("demo-2026")
    db.session.add(guard)
    db.session.commit()
    return Phone(login("stranger", device_id=STRANGER_PHONE), STRANGER_PHONE)


def pull(phone: Phone, cursor: int) -> tuple[list[dict], int]:
    """Every change after ``cursor`` for the phone's user (all pages), and the new cursor."""
    found = []
    while True:
        response = phone.client.raw.get(
            f"/api/sync/pull?cursor={cursor}&device_id={phone.device_id}"
        )
        assert response.status_code == 200, response.get_data(as_text=True)
        found += response.json["changes"]
        cursor = response.json["cursor"]
        if not response.json["more"]:
            return found, cursor


def shift_changes(phone: Phone, cursor: int) -> list[dict]:
    return [c for c in pull(phone, cursor)[0] if c["entity"] == KIND]


def cursor_of(phone: Phone) -> int:
    return pull(phone, 0)[1]


def local_time(at) -> str:
    return at.astimezone(ZoneInfo(site().timezone)).strftime("%H:%M")


def test_a_changed_and_a_removed_shift_reach_only_that_guard(
    guard_phone, other_guard_phone, stranger_phone, login, now
):
    start = (now + timedelta(days=1)).replace(minute=0, second=0)
    shift_id = put_on_shift("guard1", start, start + timedelta(hours=8))
    mine, others, strangers = (
        cursor_of(p) for p in (guard_phone, other_guard_phone, stranger_phone)
    )
    supervisor = login("supervisor")
    later = start + timedelta(hours=2)
    patrol_post = post_named("巡逻岗")
    moved = supervisor.post(
        f"/patrols/shifts/{shift_id}/edit",
        local_form(later, later + timedelta(hours=8), user("guard1"), patrol_post),
    )
    assert moved.status_code == 302

    changed = shift_changes(guard_phone, mine)
    assert len(changed) == 1
    assert changed[0]["id"] == str(shift_id) and changed[0]["deleted"] is False
    data = changed[0]["data"]
    assert (data["id"], data["post"], data["site"]) == (shift_id, "巡逻岗", site().name)
    assert (data["starts_at"], data["ends_at"]) == (
        later.isoformat(),
        (later + timedelta(hours=8)).isoformat(),
    )
    assert shift_changes(other_guard_phone, others) == []
    assert shift_changes(stranger_phone, strangers) == []
    # The day pack names the guard's shift the same way, so the pulled change replaces it.
    pack = guard_phone.client.raw.get("/api/sync/daypack").json
    assert KIND in pack["data"]

    mine = cursor_of(guard_phone)
    others = cursor_of(other_guard_phone)
    assert supervisor.post(f"/patrols/shifts/{shift_id}/remove").status_code == 302
    removed = shift_changes(guard_phone, mine)
    assert [(c["id"], c["deleted"], c["data"]) for c in removed] == [(str(shift_id), True, None)]
    assert shift_changes(other_guard_phone, others) == []
    assert shift_changes(stranger_phone, strangers) == []


def test_a_shift_moved_to_another_guard_leaves_the_first_guards_phone(
    guard_phone, other_guard_phone, login, now
):
    start = (now + timedelta(days=3)).replace(minute=0, second=0)
    shift_id = put_on_shift("guard1", start, start + timedelta(hours=8))
    db.session.execute(db.delete(Shift).where(Shift.guard_id == user("guard2").id))
    db.session.commit()
    mine, others = cursor_of(guard_phone), cursor_of(other_guard_phone)
    post = db.session.get(Shift, shift_id).post
    moved = login("supervisor").post(
        f"/patrols/shifts/{shift_id}/edit",
        local_form(start, start + timedelta(hours=8), user("guard2"), post),
    )
    assert moved.status_code == 302
    gone = shift_changes(guard_phone, mine)
    assert [(c["id"], c["deleted"]) for c in gone] == [(str(shift_id), True)]
    arrived = shift_changes(other_guard_phone, others)
    assert [(c["id"], c["deleted"]) for c in arrived] == [(str(shift_id), False)]
    assert arrived[0]["data"]["starts_at"] == start.isoformat()


def test_a_rostered_shift_reaches_the_guard(guard_phone, other_guard_phone, login, now):
    put_on_shift("guard1", now - timedelta(days=3), now - timedelta(days=3) + timedelta(hours=1))
    mine, others = cursor_of(guard_phone), cursor_of(other_guard_phone)
    start = (now + timedelta(days=5)).replace(minute=0, second=0)
    post = db.session.scalar(db.select(Post).where(Post.site_id == site().id))
    form = local_form(start, start + timedelta(hours=6), user("guard1"), post)
    added = login("supervisor").post(f"/patrols/sites/{site().id}/roster", form)
    assert added.status_code == 302, added.get_data(as_text=True)
    new = db.session.scalar(
        db.select(Shift).where(Shift.guard_id == user("guard1").id, Shift.starts_at == start)
    )
    rostered = shift_changes(guard_phone, mine)
    assert [(c["id"], c["deleted"]) for c in rostered] == [(str(new.id), False)]
    assert rostered[0]["data"]["post"] == post.name
    assert shift_changes(other_guard_phone, others) == []


def test_a_refused_change_publishes_nothing(guard_phone, login, now):
    supervisor = login("supervisor")
    patrol_post = post_named("巡逻岗")
    running = put_on_shift("guard1", now - timedelta(hours=1), now + timedelta(hours=7))
    mine = cursor_of(guard_phone)
    refused = supervisor.post(
        f"/patrols/shifts/{running}/edit",
        local_form(now, now + timedelta(hours=7), user("guard1"), patrol_post),
    )
    assert refused.status_code == 400
    supervisor.post(f"/patrols/shifts/{running}/remove")
    assert db.session.get(Shift, running) is not None
    assert shift_changes(guard_phone, mine) == []

    # A shift not started yet but with a record of the guard's (an early sign-in) stays too.
    start = now + timedelta(minutes=30)
    early = put_on_shift("guard1", start, start + timedelta(hours=8))
    assert guard_phone.send("patrol.sign_in", {"shift_id": early})["status"] == "applied"
    mine = cursor_of(guard_phone)
    later = start + timedelta(hours=1)
    refused = supervisor.post(
        f"/patrols/shifts/{early}/edit",
        local_form(later, later + timedelta(hours=8), user("guard1"), patrol_post),
    )
    assert refused.status_code == 400
    supervisor.post(f"/patrols/shifts/{early}/remove")
    assert shift_changes(guard_phone, mine) == []
    assert db.session.get(Shift, early).starts_at == start
    assert local_time(start) in guard_phone.client.get("/patrols/duty").get_data(as_text=True)
