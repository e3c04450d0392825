"""The Today board's map on SQLite and PostgreSQL: today's located actions of the supervisor's
teams (deliveries, guard duty, visits), each with its time, worker, kind and record link; a
supervisor of team A sees nothing of team B, nobody sees another organisation, and the tile
server is a setting that the page's CSP follows.

Reuses the two-team world of test_dashboard.py (its own organisation, not the demo one).
"""
# The fixtures imported from test_dashboard.py are redefined names as arguments.
# ruff: noqa: F811

import uuid
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from fieldapp.deliveries.models import ProofOfDelivery, Refusal, Stop, StopArrival, StopState
from fieldapp.extensions import db
from fieldapp.models import Organisation, Role, Team, TeamKind, User
from fieldapp.patrols.models import CheckpointScan, ShiftSignIn, SpotCheck
from fieldapp.visits.models import Visit, VisitCheckIn, VisitCheckOut, VisitState
from tests.integration.test_dashboard import World, log_in, world  # noqa: F401 (fixtures)

SHANGHAI = ZoneInfo("Asia/Shanghai")


def uid() -> str:
    return str(uuid.uuid4())


def day_start() -> datetime:
    """Today's local midnight as a UTC instant: the facts are placed at fixed offsets of it."""
    day = datetime.now(UTC).astimezone(SHANGHAI).date()
    return datetime.combine(day, time.min, tzinfo=SHANGHAI).astimezone(UTC)


def at(minutes: int) -> datetime:
    return day_start() + timedelta(minutes=minutes)


def fact(model, w: World, worker: str, stop: Stop, minutes: int, gps=(31.2335, 121.4797), **kw):
    lat, lng = gps if gps else (None, None)
    row = model(
        id=uid(),
        org_id=w.org.id,
        user_id=w.id(worker),
        device_time=at(minutes),
        received_at=at(minutes),
        stop_id=stop.id,
        latitude=lat,
        longitude=lng,
        **kw,
    )
    db.session.add(row)
    return row


def proof_fields():
    return {"checked_codes": [], "scanned_codes": [], "signature": "ab" * 32}


def presence(model, w: World, worker: str, visit: Visit, minutes: int, gps):
    db.session.add(
        model(
            id=uid(),
            org_id=w.org.id,
            user_id=w.id(worker),
            visit_id=visit.id,
            at=at(minutes),
            received_at=at(minutes),
            latitude=gps[0],
            longitude=gps[1],
        )
    )


def scan(w: World, shift, checkpoint, minutes: int, gps):
    db.session.add(
        CheckpointScan(
            id=uid(),
            org_id=w.org.id,
            shift_id=shift.id,
            checkpoint_id=checkpoint.id,
            guard_id=shift.guard_id,
            scanned_at=at(minutes),
            received_at=at(minutes),
            latitude=gps[0],
            longitude=gps[1],
        )
    )


A_SHOP = (31.2335, 121.4797)
A_POST = (31.2405, 121.4903)
A_OFFICE = (31.2352, 121.5055)
B_PLACE = (30.5, 120.5)


@pytest.fixture
def mapped(world):
    """Today's located work of both teams, plus what the map must leave out."""
    w = world
    day = at(0).astimezone(SHANGHAI).date()
    for key, gps in (("posta", A_POST), ("officea", A_OFFICE), ("postb", B_PLACE)):
        w.sites[key].latitude, w.sites[key].longitude = gps
    w.sites["posta"].geofence_radius_m = 200

    route_a = w.route("da", "couriera", day, "甲线")
    s1 = w.stop(route_a, 1, StopState.DELIVERED)
    s2 = w.stop(route_a, 2, StopState.REFUSED)
    fact(StopArrival, w, "couriera", s1, 60)
    fact(ProofOfDelivery, w, "couriera", s1, 65, **proof_fields())
    fact(Refusal, w, "couriera", s2, 70, reason_code="customer_absent")
    fact(ProofOfDelivery, w, "couriera", s2, 75, gps=None, **proof_fields())  # no GPS fix
    route_b = w.route("db", "courierb", day, "乙线")
    stop_b = w.stop(route_b, 1, StopState.DELIVERED)
    fact(ProofOfDelivery, w, "courierb", stop_b, 61, gps=B_PLACE, **proof_fields())

    post_a, cp_a = w.guard_site("posta")
    shift_a = w.shift(post_a, "guarda", at(-120), at(600))
    db.session.add(
        ShiftSignIn(
            id=uid(),
            org_id=w.org.id,
            shift_id=shift_a.id,
            guard_id=w.id("guarda"),
            action="in",
            at=at(30),
            received_at=at(30),
            latitude=A_POST[0],
            longitude=A_POST[1],
        )
    )
    scan(w, shift_a, cp_a, 80, A_POST)
    scan(w, shift_a, cp_a, -30, A_POST)  # yesterday (local): not on today's map
    db.session.add(
        SpotCheck(
            id=uid(),
            org_id=w.org.id,
            site_id=w.sites["posta"].id,
            supervisor_id=w.id("supa"),
            guard_id=w.id("guarda"),
            at=at(100),
            received_at=at(100),
            latitude=A_POST[0],
            longitude=A_POST[1],
            guard_present=True,
            in_uniform=True,
        )
    )
    post_b, cp_b = w.guard_site("postb")
    scan(w, w.shift(post_b, "guardb", at(-120), at(600)), cp_b, 81, B_PLACE)

    visit_a = Visit(
        org_id=w.org.id,
        team_id=w.teams["va"].id,
        rep_id=w.id("repa"),
        site_id=w.sites["officea"].id,
        planned_date=day,
        state=VisitState.DONE,
    )
    visit_b = Visit(
        org_id=w.org.id,
        team_id=w.teams["vb"].id,
        rep_id=w.id("repb"),
        site_id=w.sites["officeb"].id,
        planned_date=day,
        state=VisitState.ON_SITE,
    )
    db.session.add_all([visit_a, visit_b])
    db.session.flush()
    presence(VisitCheckIn, w, "repa", visit_a, 90, A_OFFICE)
    presence(VisitCheckOut, w, "repa", visit_a, 120, A_OFFICE)
    presence(VisitCheckIn, w, "repb", visit_b, 91, B_PLACE)

    # Another organisation's courier, same day, same place: never on this map.
    other = Organisation(code="OTHR", name="别家公司", timezone="Asia/Shanghai")
    db.session.add(other)
    db.session.flush()
    stranger = User(
        org_id=other.id, username="x1", display_name="外人", role=Role.COURIER, password_hash="x"
    )
    db.session.add(stranger)
    db.session.flush()
    team = Team(org_id=other.id, name="别家配送", kind=TeamKind.DELIVERY)
    db.session.add(team)
    db.session.flush()
    other_route = w.route("da", "couriera", day, "别家线")
    other_route.org_id, other_route.team_id, other_route.courier_id = other.id, team.id, stranger.id
    other_stop = w.stop(other_route, 1, StopState.DELIVERED)
    other_stop.org_id = other.id
    db.session.add(
        ProofOfDelivery(
            id=uid(),
            org_id=other.id,
            user_id=stranger.id,
            device_time=at(66),
            stop_id=other_stop.id,
            latitude=A_SHOP[0],
            longitude=A_SHOP[1],
            **proof_fields(),
        )
    )
    db.session.commit()
    w.stops = {"s1": s1.id, "s2": s2.id}
    w.visit_a = visit_a.id
    return w


def summary(data) -> list[tuple[str, str, str]]:
    return [(a["kind"], a["worker"], a["time"]) for a in data["actions"]]


def local(minutes: int) -> str:
    return at(minutes).astimezone(SHANGHAI).strftime("%H:%M")


def test_the_map_lists_todays_located_actions_of_the_supervisors_teams(mapped, log_in):
    client = log_in("supa")
    response = client.get("/dashboard/map.json")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    data = response.get_json()
    assert summary(data) == [
        ("sign_in", "赵保安", local(30)),
        ("arrival", "李师傅", local(60)),
        ("proof", "李师傅", local(65)),
        ("refusal", "李师傅", local(70)),
        ("scan", "赵保安", local(80)),
        ("check_in", "孙经理", local(90)),
        ("spot_check", "甲主管", local(100)),
        ("check_out", "孙经理", local(120)),
    ]
    by_kind = {a["kind"]: a for a in data["actions"]}
    assert by_kind["proof"]["url"] == f"/deliveries/stops/{mapped.stops['s1']}"
    assert by_kind["refusal"]["url"] == f"/deliveries/stops/{mapped.stops['s2']}"
    assert by_kind["scan"]["url"] == f"/patrols/sites/{mapped.sites['posta'].id}"
    assert by_kind["check_in"]["url"] == f"/visits/{mapped.visit_a}"
    assert (by_kind["scan"]["lat"], by_kind["scan"]["lng"]) == A_POST
    assert by_kind["proof"]["domain"] == "deliveries" and by_kind["scan"]["domain"] == "patrols"
    assert by_kind["proof"]["label"] == "Delivery signed for"  # in the user's language
    assert datetime.fromisoformat(by_kind["proof"]["at"]) == at(65)
    # Every link opens the record for this supervisor.
    for action in data["actions"]:
        assert client.get(action["url"]).status_code == 200, action["url"]
    # The geofences drawn under the points: team A's located sites only.
    assert [(s["name"], s["radius_m"]) for s in data["sites"]] == [
        ("甲大门岗", 200),
        ("甲客户办公室", 150),
    ]


def test_a_supervisor_of_team_b_sees_nothing_of_team_a(mapped, log_in):
    data = log_in("supb").get("/dashboard/map.json").get_json()
    assert summary(data) == [
        ("proof", "王师傅", local(61)),
        ("scan", "钱保安", local(81)),
        ("check_in", "周经理", local(91)),
    ]
    assert [s["name"] for s in data["sites"]] == ["乙大门岗"]
    assert all((a["lat"], a["lng"]) == B_PLACE for a in data["actions"])


def test_an_admin_sees_every_team_of_the_org_only_and_workers_are_refused(mapped, log_in):
    data = log_in("admin").get("/dashboard/map.json").get_json()
    assert len(data["actions"]) == 8 + 3
    assert "外人" not in {a["worker"] for a in data["actions"]}
    for worker in ("couriera", "guarda", "repa"):
        assert log_in(worker).get("/dashboard/map.json").status_code == 403


def test_the_page_carries_the_tile_setting_and_its_csp_follows(app, mapped, log_in):
    client = log_in("supa")
    page = client.get("/dashboard/")
    html = page.get_data(as_text=True)
    assert 'id="dashboard-map"' in html and 'data-src="/dashboard/map.json"' in html
    assert 'data-tiles=""' in html  # no tile server by default: the plain plot
    assert "js/dashboard-map.js" in html and "vendor/leaflet/leaflet.css" in html
    assert "img-src 'self' data: blob:;" in page.headers["Content-Security-Policy"]
    # The polled fragment does not rebuild the map.
    fragment = client.get("/dashboard/", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "dashboard-map" not in fragment

    app.config["MAP_TILE_URL"] = "https://{s}.tiles.example.cn/{z}/{x}/{y}.png"
    page = client.get("/dashboard/")
    assert 'data-tiles="https://{s}.tiles.example.cn/{z}/{x}/{y}.png"' in page.get_data(
        as_text=True
    )
    csp = page.headers["Content-Security-Policy"]
    assert "img-src 'self' https://*.tiles.example.cn data: blob:;" in csp
    assert "script-src 'self';" in csp and "style-src 'self';" in csp
    # Other pages keep the app's policy.
    other = client.get("/dashboard/kpi").headers["Content-Security-Policy"]
    assert "example.cn" not in other


def test_leaflet_is_served_but_not_precached_on_phones(app, client):
    sw = client.get("/sw.js").get_data(as_text=True)
    assert "/js/dashboard-map.js" in sw  # every page script is in the shell (it is small)
    assert "leaflet" not in sw  # the library is loaded by the office page only
    version = client.get("/healthz").json["version"]
    for name in ("leaflet-src.esm.js", "leaflet.css", "images/layers.png"):
        assert client.raw.get(f"/static/v/{version}/vendor/leaflet/{name}").status_code == 200, name
