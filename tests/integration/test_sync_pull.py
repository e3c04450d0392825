"""Pull: what changed for a user after a cursor, and the day pack."""

from fieldapp.extensions import db
from fieldapp.models import Site, Team, User
from tests.integration.test_sync_engine import PHONE


def pull(client, cursor=0, device="", entity=None):
    """A pull; with ``entity``, only the changes of that kind (other domains publish too)."""
    response = client.raw.get(f"/api/sync/pull?cursor={cursor}&device_id={device}")
    assert response.status_code == 200
    answer = response.json
    if entity:
        answer["changes"] = [c for c in answer["changes"] if c["entity"] == entity]
    return answer


def test_a_site_change_reaches_the_phones_of_its_team_only(login, demo):
    courier = login("courier1", device_id=PHONE)
    guard = login("guard1")
    start_courier, start_guard = pull(courier)["cursor"], pull(guard)["cursor"]

    admin = login("admin")
    site = db.session.scalar(db.select(Site).where(Site.name == "福民便利店"))
    admin.get(f"/sites/{site.id}")
    form = {
        "kind": site.kind,
        "name": site.name,
        "address": "福州路 320 号",
        "latitude": "31.2335",
        "longitude": "121.4797",
        "geofence_radius_m": "80",
        "timezone": "Asia/Shanghai",
        "contact_phone": "",
        "team_id": str(site.team_id),
    }
    assert admin.post(f"/sites/{site.id}", form).status_code == 302

    answer = pull(courier, start_courier, entity="site")
    assert [(c["entity"], c["id"], c["data"]["address"]) for c in answer["changes"]] == [
        ("site", str(site.id), "福州路 320 号")
    ]
    assert pull(guard, start_guard, entity="site")["changes"] == []

    # Moving the shop to the security team: a tombstone for the couriers, a new row for guards.
    security = db.session.scalar(db.select(Team).where(Team.name == "保安一队"))
    admin.post(f"/sites/{site.id}", {**form, "team_id": str(security.id)})
    moved = pull(courier, start_courier, entity="site")["changes"]
    assert moved[-1]["deleted"] is True and moved[-1]["data"] is None
    assert pull(guard, start_guard, entity="site")["changes"][-1]["data"]["name"] == "福民便利店"


def test_the_cursor_resumes_and_pages(login, demo):
    from fieldapp.sync import changes

    courier = login("courier1", device_id=PHONE)
    org_id = db.session.scalar(db.select(Site.org_id))
    team_id = db.session.scalar(db.select(Team.id).where(Team.name == "配送一组"))
    for n in range(3):
        changes.publish(org_id, "note", n, {"n": n}, team_id=team_id)
    db.session.commit()
    first = pull(courier, device=PHONE, entity="note")
    assert [c["data"]["n"] for c in first["changes"]] == [0, 1, 2]
    # The cursor moves past what was sent, at once: nothing comes twice.
    assert pull(courier, first["cursor"], entity="note")["changes"] == []
    # Pages: the cursor resumes after the last change of the page.
    user = db.session.scalar(db.select(User).where(User.username == "courier1"))
    page, cursor, more = changes.pull(user, 0, limit=2)
    assert len(page) == 2 and more is True and cursor == page[-1]["seq"]
    rest, _, _ = changes.pull(user, cursor)
    assert [c["seq"] for c in page + rest] == sorted(c["seq"] for c in page + rest)
    assert [c["data"]["n"] for c in rest if c["entity"] == "note"] == [0, 1, 2]


def test_the_day_pack_holds_the_team_sites_and_the_pages(login, demo):
    courier = login("courier1", device_id=PHONE)
    pack = courier.raw.get("/api/sync/daypack").json
    assert sorted(s["name"] for s in pack["data"]["sites"]) == sorted(
        ["福民便利店", "好邻居超市", "老城烟酒店", "万家乐商行"]
    )
    assert "/" in pack["pages"]
    assert isinstance(pack["cursor"], int)
