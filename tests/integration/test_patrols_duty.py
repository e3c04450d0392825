"""Guard duty through the sync API and the pages, on SQLite and PostgreSQL.

The demo seeder gives 外滩中心大门岗 four checkpoints (CP1-CP4), a plan and licences for
guard1/guard2; each test puts guard1 on a shift of its own around the time it needs.
"""

import json
import re
import uuid
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from fieldapp import jobs
from fieldapp.extensions import db
from fieldapp.models import Role, Site, SiteKind, Team, User, utcnow
from fieldapp.patrols import service
from fieldapp.patrols.models import (
    Checkpoint,
    CheckpointScan,
    GateEntry,
    GuardProfile,
    Handover,
    Incident,
    PatrolPlan,
    Post,
    Shift,
    ShiftSignIn,
)
from fieldapp.push.models import Notification, PushEvent
from fieldapp.rules.patrols import RoundState
from fieldapp.rules.qrcodes import sign_checkpoint

GUARD_PHONE = "0b9a5c1e-3d2f-4e6a-8b7c-1d2e3f4a5b6c"
OTHER_PHONE = "1c8b6d2f-4e3a-4f7b-9c8d-2e3f4a5b6c7d"
SITE = "外滩中心大门岗"
SHA = "ab" * 32


def uid() -> str:
    return str(uuid.uuid4())


class Phone:
    """A logged-in phone speaking the sync protocol, numbering its own mutations."""

    def __init__(self, client, device_id):
        self.client, self.device_id, self.seq = client, device_id, 0

    def mutation(self, type_, payload, at=None):
        self.seq += 1
        return {
            "id": uid(),
            "seq": self.seq,
            "type": type_,
            "payload": {"id": uid(), **payload},
            "device_time": (at or datetime.now(UTC)).isoformat(),
        }

    def push(self, *mutations, lang="en"):
        response = self.client.raw.post(
            "/api/sync/push",
            json={"device_id": self.device_id, "mutations": list(mutations)},
            headers={"X-CSRFToken": self.client.token, "Accept-Language": lang},
        )
        assert response.status_code == 200, response.get_data(as_text=True)
        return response.json["results"]

    def send(self, type_, payload, at=None, lang="en"):
        return self.push(self.mutation(type_, payload, at), lang=lang)[0]


def user(username) -> User:
    return db.session.scalar(select(User).where(User.username == username))


def site() -> Site:
    return db.session.scalar(select(Site).where(Site.name == SITE))


def put_on_shift(username, start, end, plan=None) -> int:
    """Replace the guard's demo shifts with one from ``start`` to ``end`` (UTC)."""
    guard = user(username)
    db.session.execute(db.delete(Shift).where(Shift.guard_id == guard.id))
    the_site = site()
    post = db.session.scalar(select(Post).where(Post.site_id == the_site.id))
    if plan is not None:
        existing = db.session.scalar(select(PatrolPlan).where(PatrolPlan.site_id == the_site.id))
        for key, value in plan.items():
            setattr(existing, key, value)
    shift = Shift(
        org_id=guard.org_id,
        site_id=the_site.id,
        post_id=post.id,
        guard_id=guard.id,
        starts_at=start,
        ends_at=end,
    )
    db.session.add(shift)
    db.session.commit()
    return shift.id


def code_of(code: str) -> str:
    checkpoint = db.session.scalar(
        select(Checkpoint).where(Checkpoint.site_id == site().id, Checkpoint.code == code)
    )
    return service.checkpoint_payload(checkpoint)


@pytest.fixture
def guard_phone(login):
    return Phone(login("guard1", device_id=GUARD_PHONE), GUARD_PHONE)


@pytest.fixture
def now():
    return utcnow().replace(microsecond=0)


def scans() -> int:
    return db.session.scalar(select(func.count()).select_from(CheckpointScan))


def test_a_valid_code_counts_once_however_often_it_is_sent(guard_phone, now):
    shift_id = put_on_shift("guard1", now - timedelta(minutes=10), now + timedelta(hours=8))
    scan = guard_phone.mutation("patrol.scan", {"shift_id": shift_id, "code": code_of("CP1")})
    assert guard_phone.push(scan)[0]["status"] == "applied"
    assert guard_phone.push(scan)[0]["status"] == "duplicate"
    # The same checkpoint scanned again in the same round is kept but counts once.
    assert guard_phone.send("patrol.scan", {"shift_id": shift_id, "code": code_of("CP1")})[
        "status"
    ] == ("applied")
    assert scans() == 2
    (first, *_rest) = service.round_views(db.session.get(Shift, shift_id), now)
    assert first.status.scanned == ("CP1",)
    assert first.status.remaining == ("CP2", "CP3", "CP4")
    assert db.session.scalar(select(CheckpointScan.round_number).limit(1)) == 1


def test_tampered_and_other_site_codes_are_refused_with_the_reason(guard_phone, now):
    shift_id = put_on_shift("guard1", now - timedelta(minutes=10), now + timedelta(hours=8))
    genuine = code_of("CP2")
    tampered = genuine[:-1] + ("A" if genuine[-1] != "A" else "B")
    other = Site(
        org_id=site().org_id,
        team_id=site().team_id,
        kind=SiteKind.GUARDED_POST,
        name="陆家嘴二号岗",
        timezone="Asia/Shanghai",
    )
    db.session.add(other)
    db.session.commit()
    photocopy = sign_checkpoint(service.qr_secret(other.org_id), str(other.id), "CP2")

    refused = guard_phone.send("patrol.scan", {"shift_id": shift_id, "code": tampered})
    assert (refused["status"], refused["reason"]) == ("rejected", "patrol.qr_bad_signature")
    assert (
        refused["message"] == "This checkpoint code has been altered or forged. It does not count."
    )
    refused = guard_phone.send("patrol.scan", {"shift_id": shift_id, "code": photocopy})
    assert (refused["status"], refused["reason"]) == ("rejected", "patrol.qr_wrong_site")
    assert "belongs to another site" in refused["message"]
    refused = guard_phone.send("patrol.scan", {"shift_id": shift_id, "code": "CP2"})
    assert refused["reason"] == "patrol.qr_malformed"
    assert scans() == 0
    # Typed with spaces, as read off the sheet: still the genuine code.
    spaced = " ".join([genuine[:10], genuine[10:]])
    assert guard_phone.send("patrol.scan", {"shift_id": shift_id, "code": spaced})["status"] == (
        "applied"
    )


def test_a_round_walked_offline_hours_ago_counts_by_device_time(guard_phone, now):
    start = now - timedelta(hours=6)
    shift_id = put_on_shift(
        "guard1",
        start,
        start + timedelta(hours=12),
        plan={"every_minutes": 120, "window_minutes": 60, "rounds_per_shift": None},
    )
    walked = [start + timedelta(minutes=10 + 5 * k) for k in range(4)]
    results = guard_phone.push(
        *[
            guard_phone.mutation("patrol.scan", {"shift_id": shift_id, "code": code_of(c)}, at)
            for c, at in zip(("CP1", "CP2", "CP3", "CP4"), walked, strict=True)
        ]
    )
    assert [r["status"] for r in results] == ["applied"] * 4
    views = service.round_views(db.session.get(Shift, shift_id), now)
    assert views[0].status.state == RoundState.DONE and not views[0].status.late
    assert {v.status.state for v in views[1:3]} == {RoundState.LATE}
    # The rule clock agrees: rounds 2 and 3 are late, round 1 raises nothing.
    jobs.run_clock(now)
    keys = set(db.session.scalars(select(PushEvent.dedupe_key)))
    assert f"round-late:{shift_id}:1" not in keys
    assert {f"round-late:{shift_id}:2", f"round-late:{shift_id}:3"} <= keys


def test_the_rule_clock_raises_one_alarm_for_a_missed_round_even_when_run_twice(login, now):
    shift_id = put_on_shift(
        "guard1",
        now - timedelta(hours=5),
        now - timedelta(hours=1),
        plan={"every_minutes": None, "rounds_per_shift": 1, "window_minutes": 60},
    )
    assert jobs.run_clock(now)["patrol.rounds"] == "ok"
    assert jobs.run_clock(now + timedelta(minutes=1))["patrol.rounds"] == "ok"
    events = db.session.scalars(
        select(PushEvent).where(PushEvent.kind == "patrol.round_missed")
    ).all()
    assert [e.dedupe_key for e in events] == [f"round-missed:{shift_id}:1"]
    supervisor = user("supervisor")
    # Only this alarm's lines: at some hours of the day the whole clock also warns the
    # supervisor of a demo delivery about to be late.
    inbox = db.session.scalars(
        select(Notification).where(
            Notification.user_id == supervisor.id, Notification.event_id == events[0].id
        )
    )
    titles = [n.title for n in inbox]
    assert len(titles) == 1 and SITE in titles[0]
    page = login("supervisor").get("/patrols/board").get_data(as_text=True)
    assert "1 missed" in page or "1 次漏巡" in page or 'data-state="missed"' in page


def test_a_major_incident_puts_one_alarm_in_the_supervisors_inbox(guard_phone, login, now):
    shift_id = put_on_shift("guard1", now - timedelta(hours=1), now + timedelta(hours=8))
    incident = guard_phone.mutation(
        "patrol.incident",
        {
            "shift_id": shift_id,
            "incident_type": "fire",
            "severity": "major",
            "place": "地下车库",
            "opened_voluntarily": "",
            "photos": [SHA],
            "step_report_at": (now - timedelta(minutes=3)).isoformat(),
            "step_disperse_at": "",
        },
        now - timedelta(minutes=4),
    )
    assert guard_phone.push(incident)[0]["status"] == "applied"
    assert guard_phone.push(incident)[0]["status"] == "duplicate"
    minor = {"shift_id": shift_id, "incident_type": "other", "severity": "minor"}
    assert guard_phone.send("patrol.incident", minor)["status"] == "applied"
    supervisor = user("supervisor")
    (alarm,) = db.session.scalars(select(Notification).where(Notification.user_id == supervisor.id))
    assert alarm.event.kind == "patrol.major_incident" and alarm.event.alarm
    assert "地下车库" in alarm.body
    stored = db.session.get(Incident, incident["payload"]["id"])
    assert stored.step_report_at == now - timedelta(minutes=3)
    assert stored.step_disperse_at is None and stored.opened_voluntarily is None
    board = login("supervisor").get("/patrols/board").get_data(as_text=True)
    assert f"/patrols/incidents/{stored.id}" in board


def test_the_incident_form_offers_no_search_option(guard_phone, now):
    put_on_shift("guard1", now - timedelta(hours=1), now + timedelta(hours=8))
    page = guard_phone.client.get("/patrols/incident").get_data(as_text=True)
    # PAT-06: the only choices are whether the person opened it themselves.
    choices = re.findall(r'name="opened_voluntarily" value="([^"]*)"[^>]*>\s*([^<]*)<', page)
    assert {value for value, _label in choices} == {"yes", "no", ""}
    for _value, label in choices:
        assert "搜" not in label and "search" not in label.lower()
    assert not re.search(r'<(input|option)[^>]*value="[^"]*search', page)


def test_sign_in_outside_the_geofence_is_kept_and_flagged(guard_phone, login, now):
    shift_id = put_on_shift("guard1", now - timedelta(minutes=5), now + timedelta(hours=8))
    here = {"latitude": 31.2405, "longitude": 121.4903, "accuracy": 10}
    away = {"latitude": 31.2305, "longitude": 121.4903, "accuracy": 10}  # ~1.1 km south
    assert guard_phone.send("patrol.sign_in", {"shift_id": shift_id, **away})["status"] == "applied"
    assert guard_phone.send("patrol.sign_in", {"shift_id": shift_id, **here})["status"] == "applied"
    far, near = db.session.scalars(select(ShiftSignIn).order_by(ShiftSignIn.distance_m.desc()))
    assert far.outside_geofence and 1000 < far.distance_m < 1300
    assert not near.outside_geofence and near.distance_m < 5
    board = login("supervisor").get("/patrols/board").get_data(as_text=True)
    assert "赵保安" in board


def test_gate_register_and_handover_with_both_signatures(guard_phone, login, now):
    shift_id = put_on_shift("guard1", now - timedelta(hours=12), now - timedelta(minutes=20))
    visitor = {
        "shift_id": shift_id,
        "entry_kind": "visitor",
        "name": "王来宾",
        "id_type": "id_card",
        "id_number": "310101199001011234",
        "organisation": "东方物业",
        "host": "物业办",
        "purpose": "送文件",
        "host_notified": True,
    }
    left = {**visitor, "name": "刘已走"}
    first = guard_phone.send("patrol.gate_entry", visitor)
    second_m = guard_phone.mutation("patrol.gate_entry", left)
    guard_phone.push(second_m)
    assert first["status"] == "applied"
    exit_ = {"shift_id": shift_id, "entry_id": second_m["payload"]["id"]}
    assert guard_phone.send("patrol.gate_exit", exit_)["status"] == "applied"
    nameless = guard_phone.send("patrol.gate_entry", {**visitor, "name": ""})
    assert nameless["reason"] == "patrol.visitor_name_required"
    assert [e.name for e in service.visitors_inside(site().id)] == ["王来宾"]

    guard2 = user("guard2")
    handover = {
        "shift_id": shift_id,
        "incoming_guard_id": guard2.id,
        "equipment": "对讲机 2 台",
        "visitors_inside": "王来宾",
        "outgoing_signature": SHA,
        "incoming_signature": "cd" * 32,
    }
    unsigned = guard_phone.send("patrol.handover", {**handover, "incoming_signature": None})
    assert unsigned["status"] == "rejected"
    assert guard_phone.send("patrol.handover", handover)["status"] == "applied"
    (stored,) = db.session.scalars(select(Handover))
    assert stored.late  # 20 minutes after the shift end: beyond the 5-minute grace
    events = db.session.scalars(select(PushEvent.kind)).all()
    assert "patrol.handover_late" in events
    board = login("supervisor").get("/patrols/board").get_data(as_text=True)
    assert "王来宾" in board and "刘已走" not in board


def test_a_guard_sees_only_their_own_duty_and_a_supervisor_only_their_sites(
    guard_phone, login, now
):
    shift_id = put_on_shift("guard1", now - timedelta(hours=1), now + timedelta(hours=8))
    put_on_shift("guard2", now - timedelta(hours=1), now + timedelta(hours=8))
    # guard2 cannot record on guard1's shift.
    other = Phone(login("guard2", device_id=OTHER_PHONE), OTHER_PHONE)
    refused = other.send("patrol.scan", {"shift_id": shift_id, "code": code_of("CP1")})
    assert refused["reason"] == "patrol.not_your_shift"
    refused = other.send(
        "patrol.incident", {"shift_id": shift_id, "incident_type": "theft", "severity": "minor"}
    )
    assert refused["reason"] == "patrol.not_your_shift"
    incident = guard_phone.mutation(
        "patrol.incident", {"shift_id": shift_id, "incident_type": "theft", "severity": "minor"}
    )
    guard_phone.push(incident)
    assert other.client.get(f"/patrols/incidents/{incident['payload']['id']}").status_code == 404
    assert guard_phone.client.get(
        f"/patrols/incidents/{incident['payload']['id']}"
    ).status_code == (200)
    # Guards do not reach the supervisor's pages, nor the spot-check record type.
    assert guard_phone.client.get("/patrols/board").status_code == 403
    the_site = site()
    spot = guard_phone.send("patrol.spot_check", {"site_id": the_site.id})
    assert spot["reason"] == "forbidden"
    # A supervisor of another team sees nothing of this site.
    org_id = the_site.org_id
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
    stranger = login("supervisor2")
    assert stranger.get(f"/patrols/sites/{the_site.id}").status_code == 404
    assert stranger.get(f"/patrols/sites/{the_site.id}/qr").status_code == 404
    assert stranger.get(f"/patrols/incidents/{incident['payload']['id']}").status_code == 404
    assert SITE not in stranger.get("/patrols/board").get_data(as_text=True)


def test_a_guard_without_a_valid_licence_cannot_be_rostered(login):
    supervisor = login("supervisor")
    the_site = site()
    guard = user("guard1")
    profile = db.session.get(GuardProfile, guard.id)
    profile.licence_expires = date(2020, 1, 1)
    db.session.commit()
    page = supervisor.get(f"/patrols/sites/{the_site.id}/roster")
    assert page.status_code == 200
    post = db.session.scalar(select(Post).where(Post.site_id == the_site.id))
    form = {
        "guard_id": guard.id,
        "post_id": post.id,
        "day": "2030-05-01",
        "start": "08:00",
        "end": "20:00",
    }
    refused = supervisor.post(f"/patrols/sites/{the_site.id}/roster", form)
    assert refused.status_code == 400
    assert "no valid security licence" in refused.get_data(as_text=True) or "保安员证" in (
        refused.get_data(as_text=True)
    )
    before = db.session.scalar(select(func.count()).select_from(Shift))
    profile.licence_expires = date(2031, 1, 1)
    db.session.commit()
    assert supervisor.post(f"/patrols/sites/{the_site.id}/roster", form).status_code == 302
    assert db.session.scalar(select(func.count()).select_from(Shift)) == before + 1
    # 08:00-20:00 Shanghai is 00:00-12:00 UTC; the night is not covered that day.
    page = supervisor.get(f"/patrols/sites/{the_site.id}/roster?day=2030-05-01")
    text = page.get_data(as_text=True)
    assert "00:00–08:00" in text and "20:00–24:00" in text


def test_the_qr_sheet_prints_one_signed_code_per_checkpoint(login):
    the_site = site()
    page = login("supervisor").get(f"/patrols/sites/{the_site.id}/qr").get_data(as_text=True)
    assert page.count("<svg") == 4
    for code in ("CP1", "CP2", "CP3", "CP4"):
        assert code_of(code) in page
    assert "东门岗亭" in page


def test_demo_seeding_twice_changes_nothing(demo):
    from fieldapp.demo import seed_demo

    counts = lambda: [  # noqa: E731
        db.session.scalar(select(func.count()).select_from(model))
        for model in (Post, Checkpoint, PatrolPlan, Shift, GuardProfile)
    ]
    first = counts()
    seed_demo()
    assert counts() == first
    assert first == [2, 4, 1, 2, 2]


def test_guard_pages_and_day_pack(guard_phone, now):
    put_on_shift("guard1", now - timedelta(hours=1), now + timedelta(hours=8))
    for url in ("/patrols/duty", "/patrols/incident", "/patrols/gate", "/patrols/handover"):
        assert guard_phone.client.get(url).status_code == 200, url
    pack = guard_phone.client.raw.get("/api/sync/daypack").json
    assert "/patrols/duty" in pack["pages"]
    assert pack["data"]["patrol_shifts"][0]["site"] == SITE
    home = guard_phone.client.get("/").get_data(as_text=True)
    assert "/patrols/duty" in home


def test_the_duty_page_lists_the_guards_next_two_weeks_of_shifts(guard_phone, now):
    """Kept offline with the day pack, so the guard knows next week's roster without signal."""
    put_on_shift("guard1", now - timedelta(hours=1), now + timedelta(hours=8))
    guard, the_site = user("guard1"), site()
    post = db.session.scalar(select(Post).where(Post.site_id == the_site.id))

    def rostered(*starts) -> str:
        """Roster eight-hour shifts at ``starts``; the duty page's list of next shifts."""
        for start in starts:
            db.session.add(
                Shift(
                    org_id=guard.org_id,
                    site_id=the_site.id,
                    post_id=post.id,
                    guard_id=guard.id,
                    starts_at=start,
                    ends_at=start + timedelta(hours=8),
                )
            )
        db.session.commit()
        page = guard_phone.client.get("/patrols/duty").get_data(as_text=True)
        return re.search(r'id="next-shifts".*?</section>', page, re.S).group(0)

    # Neither the past nor the far one; the one on duty is not "next": "none rostered".
    listed = rostered(now - timedelta(days=2), now + timedelta(days=20))
    assert '<li class="muted">' in listed and "<li>" not in listed

    soon = now + timedelta(days=1)
    listed = rostered(soon)
    local = soon.astimezone(ZoneInfo("Asia/Shanghai"))  # shown in the site's time
    assert f"{local:%m-%d %H:%M}–{local + timedelta(hours=8):%H:%M}" in listed
    assert listed.count("<li>") == 1 and SITE in listed and post.name in listed


def test_gate_entry_kept_for_the_site(guard_phone, now):
    shift_id = put_on_shift("guard1", now - timedelta(hours=1), now + timedelta(hours=8))
    vehicle = {
        "shift_id": shift_id,
        "entry_kind": "vehicle",
        "direction": "out",
        "plate": "沪A12345",
        "goods": "办公桌 3 张",
        "pass_number": "P-889",
    }
    assert guard_phone.send("patrol.gate_entry", vehicle)["status"] == "applied"
    (entry,) = db.session.scalars(select(GateEntry))
    assert (entry.direction, entry.plate, entry.site_id) == ("out", "沪A12345", site().id)


def _left_now_payloads(guard_phone) -> dict[str, dict]:
    """The gate page's "Left now" forms: entry id -> the payload the phone queues on a tap."""
    page = guard_phone.client.get("/patrols/gate").get_data(as_text=True)
    payloads = re.findall(r"data-record-type=\"patrol.gate_exit\" data-payload='([^']*)'", page)
    return {p["entry_id"]: p for p in map(json.loads, payloads)}


def test_a_visitor_let_out_leaves_the_inside_list_whichever_way_the_exit_came(guard_phone, now):
    shift_id = put_on_shift("guard1", now - timedelta(hours=1), now + timedelta(hours=8))
    visitor = {"shift_id": shift_id, "entry_kind": "visitor", "organisation": "东方物业"}
    ids = {}
    for name in ("甲来宾", "乙来宾", "丙来宾"):
        entry = guard_phone.mutation(
            "patrol.gate_entry", {**visitor, "name": name}, at=now - timedelta(minutes=50)
        )
        assert guard_phone.push(entry)[0]["status"] == "applied"
        ids[name] = entry["payload"]["id"]
    vehicle = {"shift_id": shift_id, "entry_kind": "vehicle", "plate": "沪A12345"}
    assert guard_phone.send("patrol.gate_entry", vehicle)["status"] == "applied"

    # 甲 synced from the phone's queue, as a record made offline earlier.
    synced_at = now - timedelta(minutes=40)
    exit_ = {"shift_id": shift_id, "entry_id": ids["甲来宾"]}
    assert guard_phone.send("patrol.gate_exit", exit_, at=synced_at)["status"] == "applied"
    # 乙 through the gate page's "Left now" form, which queues exactly its payload.
    form = _left_now_payloads(guard_phone)
    assert set(form) == {ids["甲来宾"], ids["乙来宾"], ids["丙来宾"]} - {ids["甲来宾"]}
    tapped_at = now - timedelta(minutes=5)
    assert guard_phone.send("patrol.gate_exit", form[ids["乙来宾"]], at=tapped_at)["status"] == (
        "applied"
    )

    assert [e.name for e in service.visitors_inside(site().id)] == ["丙来宾"]
    assert set(_left_now_payloads(guard_phone)) == {ids["丙来宾"]}
    db.session.expire_all()
    assert db.session.get(GateEntry, ids["甲来宾"]).exited_at == synced_at
    assert db.session.get(GateEntry, ids["乙来宾"]).exited_at == tapped_at
    # A second "left" for 甲 (another phone's queue) is refused; the first time out stays.
    again = guard_phone.send("patrol.gate_exit", exit_, at=now)
    assert again["reason"] == "duplicate_record"
    db.session.expire_all()
    assert db.session.get(GateEntry, ids["甲来宾"]).exited_at == synced_at
