"""Who may reach what: every route of the app × every role, on SQLite and PostgreSQL.

``ROUTES`` below is the table: one line per route (method + rule, exactly as in ``app.url_map``)
saying which roles the route lets through and which kind of record its URL names. A route that
is not in the table fails ``test_every_route_is_in_the_matrix``, so a new page or API endpoint
cannot slip past this test unclassified.

For each route, each role and each record of the named kind (one the role may see, one of
another worker or team, one of a second organisation created here), the test asks for the URL
as that role and checks:

- anonymous: pages redirect to the login form, ``/api/*`` answers 401 (public pages excepted);
- a role the route does not let through: 403 or 404;
- a record the role may not see (another worker's, another team's, another organisation's):
  403 or 404 — never 200 with the data, never a 5xx;
- a record the role may see: 2xx/3xx on GET (mutating POSTs are only sent where they must be
  refused, so the demo data stays intact for the rest of the run);
- no page or API answer ever shows a name of the second organisation, and nobody but the
  supervisor of team B and the admin sees team B's route.

The same IDs of others are also sent in form fields (``form_target``) and inside sync payloads
(``test_ids_of_others_in_sync_payloads_are_refused``), and the pull feed and day pack are
searched for them (``test_pull_and_day_pack_carry_only_what_the_user_may_see``).
"""

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from fieldapp.deliveries import service as deliveries
from fieldapp.deliveries.models import Route, Stop
from fieldapp.demo import DEMO_SEEDERS, SITES, TEAMS, USERS
from fieldapp.extensions import db
from fieldapp.models import Device, Organisation, Role, Site, Team, TeamKind, User
from fieldapp.rules.kpi import PENALTY_SCHEDULE
from fieldapp.sync.models import Conflict, Mutation, StoredFile
from tests.helpers import Client

# ----- roles --------------------------------------------------------------------------------

C, G, R = "courier", "guard", "rep"
SA, SB, AD = "supervisor A", "supervisor B", "admin"
ANON = "anonymous"
WORKERS = frozenset({C, G, R})
MANAGERS = frozenset({SA, SB, AD})
ANYONE = WORKERS | MANAGERS
NOBODY = frozenset()
RULE_CODE = next(iter(PENALTY_SCHEDULE))
EQUIPMENT_KIND = "radio"
ROLES = (C, G, R, SA, SB, AD, ANON)
USERNAMES = {C: "courier1", G: "guard1", R: "rep1", SA: "supervisor", SB: "zz-sup-b", AD: "admin"}

# Names no page may show to the wrong people.
ORG2 = "ZZORG2"  # every name of the second organisation carries it
TEAM_B = "ZZTEAMB"  # team B's route and its stop


@dataclass(frozen=True)
class Rule:
    who: frozenset = ANYONE  # roles the route lets through (anonymous never, unless public)
    target: str | None = None  # the kind of record the URL names (see ``targets``)
    values: tuple = ()  # other URL parts, as (name, value) pairs
    query: str = ""  # query string sent with every request
    form: tuple = ()  # what a POST sends, as (name, value) pairs
    json: tuple | None = None  # a JSON body instead of a form
    form_target: str | None = None  # the record kind is named in this form field, not the URL
    public: bool = False  # served to anonymous visitors too
    exercise: bool = False  # also send this POST where it is allowed (it changes nothing shared)
    ok: tuple = (200,)  # what an allowed GET answers
    refused: tuple = (403, 404)  # what a refusal may be


P = Rule(public=True)
SELF = Rule()  # acts on the caller's own session, inbox or settings: nothing to name

ROUTES: dict[str, Rule] = {
    # shell
    "GET /": SELF,
    "GET /offline": P,
    "GET /manifest.webmanifest": P,
    "GET /sw.js": P,
    "GET /healthz": P,
    "GET /static/<path:filename>": Rule(public=True, values=(("filename", "css/app.css"),)),
    "GET /static/v/<version>/<path:filename>": Rule(
        public=True, values=(("version", "0"), ("filename", "css/app.css")), ok=(200, 302)
    ),
    "GET /audit": Rule(frozenset({AD})),
    # accounts
    "GET /login": Rule(public=True, ok=(200, 302)),
    "POST /login": Rule(public=True, ok=(400,)),
    "POST /logout": SELF,
    "POST /language": Rule(public=True, form=(("lang", "zh-CN"),), ok=(302,)),
    "GET /people": Rule(MANAGERS),
    "GET /people/new": Rule(MANAGERS),
    "POST /people/new": Rule(MANAGERS),
    "GET /people/<int:user_id>": Rule(MANAGERS, "person"),
    "POST /people/<int:user_id>": Rule(MANAGERS, "person", form=(("display_name", ORG2),)),
    "POST /people/<int:user_id>/active": Rule(MANAGERS, "person", form=(("active", "0"),)),
    "POST /people/<int:user_id>/password": Rule(
        MANAGERS, "person", form=(("password", "leaked-password-1"),)
    ),
    "POST /people/<int:user_id>/unlock": Rule(MANAGERS, "person"),
    "GET /teams": Rule(MANAGERS),
    "GET /teams/new": Rule(frozenset({AD})),
    "POST /teams/new": Rule(frozenset({AD})),
    "GET /teams/<int:team_id>": Rule(frozenset({AD}), "team"),
    "POST /teams/<int:team_id>": Rule(frozenset({AD}), "team", form=(("name", "x"),)),
    "GET /sites": Rule(MANAGERS),
    "GET /sites/new": Rule(MANAGERS),
    "POST /sites/new": Rule(MANAGERS),
    "GET /sites/<int:site_id>": Rule(MANAGERS, "shop"),
    "POST /sites/<int:site_id>": Rule(MANAGERS, "shop", form=(("name", "x"),)),
    "GET /devices": Rule(MANAGERS),
    "POST /devices/<device_id>/revoke": Rule(MANAGERS, "device"),
    "GET /devices/<device_id>/held": Rule(MANAGERS, "device"),
    "POST /devices/<device_id>/held": Rule(MANAGERS, "device", form=(("action", "apply"),)),
    # sync API and pages
    "GET /api/openapi.json": P,
    "POST /api/sync/push": SELF,  # its payloads: test_ids_of_others_in_sync_payloads_are_refused
    "GET /api/sync/pull": SELF,
    "GET /api/sync/daypack": SELF,
    "GET /api/sync/files/<sha256>": Rule(ANYONE, "file"),
    "POST /api/sync/files/<sha256>": Rule(
        ANYONE,
        "file",
        json=(("size", 68), ("content_type", "image/png")),
        exercise=True,
        refused=(404, 409),  # 409: "this file cannot be stored", nothing about it is told
    ),
    "PATCH /api/sync/files/<sha256>": Rule(ANYONE, "file"),
    "GET /sync/outbox": SELF,
    "GET /sync/conflicts": Rule(MANAGERS),
    "POST /sync/conflicts/<int:conflict_id>": Rule(
        MANAGERS, "conflict", form=(("keep", "server"),)
    ),
    # push
    "GET /api/push/key": Rule(public=True, ok=(200, 503)),  # 503 until VAPID keys are set up
    "POST /api/push/subscription": SELF,
    "DELETE /api/push/subscription": SELF,
    "GET /api/push/unread": SELF,
    "POST /api/push/notifications/<int:notification_id>/read": Rule(
        ANYONE, "notification", json=(), exercise=True
    ),
    "GET /notifications": SELF,
    "GET /notifications/<int:notification_id>/open": Rule(ANYONE, "notification", ok=(302,)),
    "POST /notifications/read": SELF,
    "GET /notifications/settings": SELF,
    "POST /notifications/settings": SELF,
    "POST /notifications/test": SELF,
    # deliveries
    "GET /deliveries/today": Rule(frozenset({C})),
    "GET /deliveries/end-of-day": Rule(frozenset({C})),
    "GET /deliveries/routes/<int:route_id>/vehicle-check": Rule(frozenset({C}), "route"),
    "GET /deliveries/stops/<stop_id>": Rule(MANAGERS | {C}, "stop"),
    "GET /deliveries/stops/<stop_id>/receipt": Rule(MANAGERS | {C}, "stop"),
    "GET /deliveries/stops/<stop_id>/report": Rule(MANAGERS | {C}, "stop"),
    "POST /deliveries/stops/<stop_id>/report": Rule(
        MANAGERS | {C}, "stop", form=(("topic", "x"), ("text", "x"), ("name", "x"))
    ),
    "GET /deliveries/routes": Rule(MANAGERS),
    "GET /deliveries/routes/new": Rule(MANAGERS),
    "POST /deliveries/routes/new": Rule(MANAGERS),
    "GET /deliveries/routes/<int:route_id>": Rule(MANAGERS, "route"),
    "POST /deliveries/routes/<int:route_id>/assign": Rule(MANAGERS, "route"),
    "POST /deliveries/routes/<int:route_id>/stops": Rule(MANAGERS, "route"),
    "POST /deliveries/stops/<stop_id>/correct": Rule(MANAGERS, "stop"),
    "POST /deliveries/stops/<stop_id>/move": Rule(MANAGERS, "stop", form=(("direction", "up"),)),
    "POST /deliveries/stops/<stop_id>/resolve": Rule(
        MANAGERS, "stop", form=(("resolution", "return"),)
    ),
    "GET /deliveries/import": Rule(MANAGERS),
    "POST /deliveries/import": Rule(MANAGERS),
    "GET /deliveries/registers": Rule(MANAGERS),
    "GET /deliveries/daily-report": Rule(MANAGERS),
    # the customer's rating page: no account, the signed token in the receipt's QR code
    "GET /deliveries/rate/<token>": Rule(public=True, target="rating_token"),
    "POST /deliveries/rate/<token>": Rule(
        public=True, target="rating_token", form=(("stars", "5"),), ok=(200, 422)
    ),
    "GET /deliveries/daily-report.csv": Rule(MANAGERS),
    "GET /deliveries/registers/<kind>.<any(csv, xlsx):fmt>": Rule(
        MANAGERS, values=(("kind", "status"), ("fmt", "csv")), query="from={day}&to={day}"
    ),
    "GET /deliveries/registers/<kind>/print": Rule(
        MANAGERS, values=(("kind", "status"),), query="from={day}&to={day}"
    ),
    # guard duty
    "GET /patrols/duty": Rule(frozenset({G})),
    "GET /patrols/incident": Rule(frozenset({G})),
    "GET /patrols/gate": Rule(frozenset({G})),
    "GET /patrols/handover": Rule(frozenset({G})),
    "GET /patrols/call-outs": Rule(frozenset({G}), ok=(200, 404)),  # 404 off the rapid team
    "GET /patrols/sites": Rule(MANAGERS),
    "GET /patrols/sites/<int:site_id>": Rule(MANAGERS, "guarded_site"),
    "POST /patrols/sites/<int:site_id>/posts": Rule(
        MANAGERS, "guarded_site", form=(("name", "x"), ("kind", "gate"))
    ),
    "POST /patrols/sites/<int:site_id>/checkpoints": Rule(
        MANAGERS, "guarded_site", form=(("code", "X1"), ("name", "x"))
    ),
    "POST /patrols/sites/<int:site_id>/plan": Rule(MANAGERS, "guarded_site"),
    "GET /patrols/sites/<int:site_id>/qr": Rule(MANAGERS, "guarded_site"),
    "GET /patrols/sites/<int:site_id>/roster": Rule(MANAGERS, "guarded_site"),
    "POST /patrols/sites/<int:site_id>/roster": Rule(MANAGERS, "guarded_site"),
    "GET /patrols/sites/<int:site_id>/equipment": Rule(MANAGERS, "guarded_site"),
    "POST /patrols/sites/<int:site_id>/equipment": Rule(MANAGERS, "guarded_site"),
    "GET /patrols/sites/<int:site_id>/equipment.csv": Rule(MANAGERS, "guarded_site"),
    "GET /patrols/equipment/<int:item_id>": Rule(MANAGERS, "equipment"),
    "POST /patrols/equipment/<int:item_id>": Rule(MANAGERS, "equipment"),
    "GET /patrols/posts/<int:post_id>/edit": Rule(MANAGERS, "post"),
    "POST /patrols/posts/<int:post_id>/edit": Rule(MANAGERS, "post"),
    "GET /patrols/checkpoints/<int:checkpoint_id>/edit": Rule(MANAGERS, "checkpoint"),
    "POST /patrols/checkpoints/<int:checkpoint_id>/edit": Rule(MANAGERS, "checkpoint"),
    "GET /patrols/shifts/<int:shift_id>/edit": Rule(MANAGERS, "shift"),
    "POST /patrols/shifts/<int:shift_id>/edit": Rule(MANAGERS, "shift"),
    "POST /patrols/shifts/<int:shift_id>/remove": Rule(MANAGERS, "shift"),
    "GET /patrols/guards": Rule(MANAGERS),
    "POST /patrols/guards": Rule(
        MANAGERS, form_target="guard_id", form=(("licence_number", ORG2),)
    ),
    "GET /patrols/board": Rule(MANAGERS),
    "GET /patrols/spot-check": Rule(MANAGERS),
    "GET /patrols/presence": Rule(frozenset({SA, SB})),  # PAT-09: supervisors tap arrive/leave
    "GET /patrols/incidents/<incident_id>": Rule(MANAGERS | {G}, "incident"),
    "POST /patrols/incidents/<incident_id>/acknowledge": Rule(MANAGERS, "incident"),
    "POST /patrols/incidents/<incident_id>/arrived": Rule(MANAGERS, "incident"),
    "POST /patrols/incidents/<incident_id>/close": Rule(MANAGERS, "incident"),
    # visits
    "GET /visits/": SELF,
    "GET /visits/<visit_id>": Rule(ANYONE, "visit"),
    "GET /visits/plan": Rule(MANAGERS),
    "POST /visits/plan": Rule(
        MANAGERS,
        form_target="rep_id",
        form=(("planned_date", "2031-01-02"), ("purpose", ORG2)),
        refused=(400, 403, 404),  # 400: "not a rep of your teams", shown next to the form
    ),
    "POST /visits/clients/agreement": Rule(
        MANAGERS, form_target="site_id", form=(("signed_on", "{day}"),)
    ),
    "POST /visits/follow-ups/<task_id>/done": Rule(ANYONE, "follow_up"),
    "GET /visits/return-visits": SELF,
    "POST /visits/return-visits/sample": Rule(MANAGERS),
    "POST /visits/return-visits/<rv_id>/done": Rule(
        ANYONE, "return_visit", form=(("result", "accepted"),)
    ),
    # complaints
    "GET /complaints/": SELF,
    "GET /complaints/new": SELF,
    "GET /complaints/calendar": Rule(MANAGERS),
    "POST /complaints/calendar": Rule(frozenset({AD}), form=(("action", "none"),)),
    "GET /complaints/<complaint_id>": Rule(ANYONE, "complaint"),
    "POST /complaints/<complaint_id>/<step>": Rule(
        ANYONE, "complaint", values=(("step", "triage"),)
    ),
    "GET /complaints/<complaint_id>/slip": Rule(ANYONE, "complaint"),
    # dashboard
    "GET /dashboard/": Rule(MANAGERS),
    "GET /dashboard/kpi": Rule(MANAGERS),
    "GET /dashboard/map.json": Rule(MANAGERS),
    "GET /dashboard/kpi/<int:worker_id>/<name>": Rule(
        MANAGERS, "person", values=(("name", "on_time"),)
    ),
    "GET /dashboard/assessment": Rule(MANAGERS),
    "GET /dashboard/registers": Rule(MANAGERS),
    "GET /dashboard/registers/<kind>.<any(csv, xlsx):fmt>": Rule(
        MANAGERS, values=(("kind", "incidents"), ("fmt", "csv")), query="from={day}&to={day}"
    ),
    "GET /dashboard/registers/<kind>/print": Rule(
        MANAGERS, values=(("kind", "incidents"),), query="from={day}&to={day}"
    ),
    "GET /dashboard/penalties": Rule(MANAGERS),
    "POST /dashboard/penalties": Rule(
        MANAGERS,
        form_target="person_id",
        form=(("rule_code", "{rule}"), ("occurred_on", "{day}"), ("evidence_url", "/x")),
        refused=(403, 404, 422),  # 422: "only people of your teams", next to the field
    ),
    "POST /dashboard/penalties/<int:entry_id>/approve": Rule(MANAGERS, "penalty"),
    "POST /dashboard/penalties/<int:entry_id>/reject": Rule(MANAGERS, "penalty"),
    "POST /dashboard/penalties/<int:entry_id>/void": Rule(
        MANAGERS, "penalty", form=(("note", "x"),)
    ),
    "GET /dashboard/penalties/payroll.csv": Rule(frozenset({AD})),
    "GET /dashboard/weights": Rule(frozenset({AD})),
    "POST /dashboard/weights": Rule(frozenset({AD})),
    # the test suite's own record type page (tests/sync_types.py)
    "GET /test/notes": SELF,
}


@dataclass(frozen=True)
class Variant:
    label: str
    id: object
    seen_by: frozenset  # roles that may see / act on this record


# ----- the world: the demo organisation, team B, and a second organisation -------------------


def _user(username: str) -> User:
    return db.session.scalar(select(User).where(User.username == username))


def _ctx(user: User):
    now = datetime.now(UTC)
    return SimpleNamespace(
        user=user, device=None, mutation_id=str(uuid.uuid4()), device_time=now, received_at=now
    )


def _password_hash() -> str:
    return _user("courier1").password_hash  # the demo password, hashed once already


def _add_team_b(org: Organisation) -> dict:
    """Team B of the demo organisation: its own supervisor, courier, route and stop."""
    supervisor = User(
        org_id=org.id,
        username=USERNAMES[SB],
        display_name="B 组主管",
        role=Role.SUPERVISOR,
        password_hash=_password_hash(),
    )
    db.session.add(supervisor)
    db.session.flush()
    team = Team(org_id=org.id, name="配送二组", kind=TeamKind.DELIVERY, supervisor_id=supervisor.id)
    db.session.add(team)
    db.session.flush()
    courier = User(
        org_id=org.id,
        username="zz-courier-b",
        display_name="B 组司机",
        role=Role.COURIER,
        team_id=team.id,
        password_hash=_password_hash(),
    )
    db.session.add(courier)
    db.session.flush()
    route = Route(
        org_id=org.id,
        team_id=team.id,
        date=deliveries.today_for(org.id),
        name=f"{TEAM_B} 线",
        kind="fixed",
        courier_id=courier.id,
        vehicle_plate="沪B·00001",
    )
    db.session.add(route)
    db.session.flush()
    stop = deliveries.add_stop_quietly(
        route, deliveries.StopSpec(customer_name=f"{TEAM_B} 客户", customer_code="B1"), 1
    )
    return {"route": route.id, "stop": stop.id, "courier": courier.id}


def _seed_other_org() -> Organisation:
    """A second organisation built like the demo one by the same seeders, its names marked."""
    org = Organisation(code="ZZ2", name=f"{ORG2} 公司", timezone="Asia/Shanghai")
    db.session.add(org)
    db.session.flush()
    users = {}
    for spec in USERS:
        users[spec.username] = User(
            org_id=org.id,
            username=f"o2-{spec.username}",
            display_name=f"{ORG2} {spec.name}",
            role=spec.role,
            password_hash=_password_hash(),
        )
        db.session.add(users[spec.username])
    db.session.flush()
    teams = {}
    for name, kind in TEAMS:
        teams[name] = Team(
            org_id=org.id, name=f"{ORG2} {name}", kind=kind, supervisor_id=users["supervisor"].id
        )
        db.session.add(teams[name])
    db.session.flush()
    for spec in USERS:
        if spec.team:
            users[spec.username].team_id = teams[spec.team].id
    sites = {}
    for kind, team, name, address, lat, lon in SITES:
        sites[name] = Site(
            org_id=org.id,
            team_id=teams[team].id,
            kind=kind,
            name=f"{ORG2} {name}",
            address=address,
            latitude=lat,
            longitude=lon,
            timezone="Asia/Shanghai",
            contact_phone="",
        )
        db.session.add(sites[name])
    db.session.flush()
    for seed in DEMO_SEEDERS:
        seed(org, users, teams, sites)
    db.session.flush()
    return org


def _incident_by(username: str) -> str:
    from fieldapp.patrols.models import Shift
    from fieldapp.patrols.records import IncidentPayload
    from fieldapp.patrols.service import apply_incident

    guard = _user(username)
    shift_id = db.session.scalar(select(Shift.id).where(Shift.guard_id == guard.id))
    payload = IncidentPayload(
        id=str(uuid.uuid4()), shift_id=shift_id, incident_type="other", severity="minor"
    )
    return apply_incident(_ctx(guard), payload).id


def _patrol(model: str, username: str) -> int:
    """The first post, checkpoint or shift at the guard's site."""
    from fieldapp.patrols import models

    guard = _user(username)
    shift = db.session.scalar(select(models.Shift).where(models.Shift.guard_id == guard.id))
    if model == "Shift":
        return shift.id
    table = getattr(models, model)
    return db.session.scalar(
        select(table.id).where(table.site_id == shift.site_id).order_by(table.id)
    )


def _equipment(username: str) -> int:
    from fieldapp.patrols.models import EquipmentItem, Shift

    shift = db.session.scalar(select(Shift).where(Shift.guard_id == _user(username).id))
    item = EquipmentItem(
        org_id=shift.org_id,
        site_id=shift.site_id,
        post_id=shift.post_id,
        kind=EQUIPMENT_KIND,
        label="对讲机",
    )
    db.session.add(item)
    db.session.flush()
    return item.id


def _visit_of(username: str):
    from fieldapp.visits.models import Visit

    return db.session.scalar(select(Visit).where(Visit.rep_id == _user(username).id))


def _follow_up_of(username: str) -> str:
    """A visit report by the rep with one follow-up they own; the task's ID."""
    from fieldapp.visits.models import FollowUpTask
    from fieldapp.visits.records import ReportPayload
    from fieldapp.visits.service import apply_report

    rep = _user(username)
    payload = ReportPayload(
        id=str(uuid.uuid4()),
        visit_id=_visit_of(username).id,
        timeliness=5,
        skill=5,
        attitude=5,
        follow_up_action="送资料",
        follow_up_due="2031-01-01",
    )
    report = apply_report(_ctx(rep), payload)
    db.session.flush()
    return db.session.scalar(select(FollowUpTask.id).where(FollowUpTask.report_id == report.id))


def _return_visit(org_id: int, username: str, assigned: bool = True) -> str:
    from fieldapp.visits.models import ReturnVisit

    rep = _user(username)
    site = _visit_of(username).site
    rv = ReturnVisit(
        org_id=org_id,
        site_id=site.id,
        source_key=f"authz-{uuid.uuid4()}",
        reason="call_again",
        due_date=datetime(2031, 1, 1).date(),
        assigned_to_id=rep.id if assigned else None,
    )
    db.session.add(rv)
    db.session.flush()
    return rv.id


def _complaint_by(username: str) -> str:
    from fieldapp.complaints.records import IntakePayload
    from fieldapp.complaints.service import take_complaint

    rep = _user(username)
    payload = IntakePayload(
        id=str(uuid.uuid4()),
        site_id=_visit_of(username).site_id,
        complainant="x",
        channel="phone",
        subject=f"{ORG2} 投诉",
        category="efficiency",
        cause_class="human",
        severity="minor",
    )
    return take_complaint(_ctx(rep), payload).id


def _notification_for(username: str) -> int:
    from fieldapp.push.models import Notification
    from fieldapp.push.service import notify

    user = _user(username)
    notify("push.test", user_ids=[user.id], org_id=user.org_id, url="/", params={"name": "x"})
    db.session.flush()
    return db.session.scalar(
        select(Notification.id).where(Notification.user_id == user.id).order_by(Notification.id)
    )


def _device_of(username: str) -> str:
    device = Device(id=str(uuid.uuid4()), user_id=_user(username).id, label="authz")
    db.session.add(device)
    db.session.flush()
    return device.id


def _file_of(username: str) -> str:
    user = _user(username)
    sha = uuid.uuid4().hex * 2
    db.session.add(
        StoredFile(
            sha256=sha,
            org_id=user.org_id,
            uploaded_by_id=user.id,
            content_type="image/png",
            size=68,
        )
    )
    return sha


def _conflict_of(username: str) -> int:
    user = _user(username)
    stop_id = _first_stop(username).id
    mutation = Mutation(
        id=str(uuid.uuid4()),
        org_id=user.org_id,
        user_id=user.id,
        device_id=_device_of(username),
        seq=1,
        record_type="delivery.stop",
        record_id=stop_id,
        content_hash="0" * 64,
        payload={"id": stop_id, "state": "skipped"},
        status="conflict",
        device_time=datetime.now(UTC),
    )
    db.session.add(mutation)
    db.session.flush()
    conflict = Conflict(
        org_id=user.org_id,
        mutation_id=mutation.id,
        record_type="delivery.stop",
        record_id=stop_id,
        server_version=1,
        server_fields={"state": "pending"},
        phone_fields={"state": "skipped"},
    )
    db.session.add(conflict)
    db.session.flush()
    return conflict.id


def _first_stop(username: str) -> Stop:
    route = db.session.scalar(select(Route).where(Route.courier_id == _user(username).id))
    return min(route.stops, key=lambda s: s.sequence)


def _token() -> str:
    return deliveries.rating_token(_first_stop("courier1"))


def _site(name: str) -> int:
    return db.session.scalar(select(Site.id).where(Site.name == name))


def _build_world() -> dict[str, list[Variant]]:
    """Every kind of record a URL can name: one of each the roles may see, and others'."""
    org = db.session.scalar(select(Organisation).where(Organisation.code == "DEMO"))
    team_b = _add_team_b(org)
    _seed_other_org()
    world = {
        "route": [
            Variant("courier1's route", _first_stop("courier1").route_id, frozenset({C, SA, AD})),
            Variant("team B's route", team_b["route"], frozenset({SB, AD})),
            Variant("org 2's route", _first_stop("o2-courier1").route_id, NOBODY),
        ],
        "stop": [
            Variant("courier1's stop", _first_stop("courier1").id, frozenset({C, SA, AD})),
            Variant("team B's stop", team_b["stop"], frozenset({SB, AD})),
            Variant("org 2's stop", _first_stop("o2-courier1").id, NOBODY),
        ],
        "rating_token": [
            Variant("courier1's stop's receipt QR", _token(), ANYONE | {ANON}),
            Variant("a forged QR", _token()[:-3] + "xyz", NOBODY),
        ],
        "guarded_site": [
            Variant("the demo post", _site("外滩中心大门岗"), frozenset({SA, AD})),
            Variant("org 2's post", _site(f"{ORG2} 外滩中心大门岗"), NOBODY),
        ],
        "post": [
            Variant("the demo post's gate", _patrol("Post", "guard1"), frozenset({SA, AD})),
            Variant("org 2's gate", _patrol("Post", "o2-guard1"), NOBODY),
        ],
        "checkpoint": [
            Variant("a demo checkpoint", _patrol("Checkpoint", "guard1"), frozenset({SA, AD})),
            Variant("org 2's checkpoint", _patrol("Checkpoint", "o2-guard1"), NOBODY),
        ],
        "shift": [
            Variant("guard1's shift", _patrol("Shift", "guard1"), frozenset({SA, AD})),
            Variant("org 2's shift", _patrol("Shift", "o2-guard1"), NOBODY),
        ],
        "equipment": [
            Variant("a radio at the demo post", _equipment("guard1"), frozenset({SA, AD})),
            Variant("org 2's radio", _equipment("o2-guard1"), NOBODY),
        ],
        "shop": [
            Variant("a team A shop", _site("福民便利店"), frozenset({SA, AD})),
            Variant("org 2's shop", _site(f"{ORG2} 福民便利店"), NOBODY),
        ],
        "incident": [
            Variant("guard1's incident", _incident_by("guard1"), frozenset({G, SA, AD})),
            Variant("guard2's incident", _incident_by("guard2"), frozenset({SA, AD})),
            Variant("org 2's incident", _incident_by("o2-guard1"), NOBODY),
        ],
        "visit": [
            Variant("rep1's visit", _visit_of("rep1").id, frozenset({R, SA, AD})),
            Variant("rep2's visit", _visit_of("rep2").id, frozenset({SA, AD})),
            Variant("org 2's visit", _visit_of("o2-rep1").id, NOBODY),
        ],
        "follow_up": [
            Variant("rep2's follow-up", _follow_up_of("rep2"), frozenset({SA, AD})),
            Variant("org 2's follow-up", _follow_up_of("o2-rep1"), NOBODY),
        ],
        "return_visit": [
            Variant("rep2's return visit", _return_visit(org.id, "rep2"), frozenset({SA, AD})),
            Variant(
                "an unassigned return visit",
                _return_visit(org.id, "rep2", assigned=False),
                frozenset({SA, AD}),
            ),
            Variant(
                "org 2's return visit",
                _return_visit(_user("o2-rep1").org_id, "o2-rep1"),
                NOBODY,
            ),
        ],
        "complaint": [
            # The demo complaint, taken by rep2 for a client of the visits team.
            Variant("rep2's complaint", _demo_complaint_id(), frozenset({SA, AD})),
            Variant("org 2's complaint", _complaint_by("o2-rep1"), NOBODY),
        ],
        "notification": [
            Variant("courier1's notification", _notification_for("courier1"), frozenset({C})),
            Variant("courier2's notification", _notification_for("courier2"), NOBODY),
            Variant("org 2's notification", _notification_for("o2-courier1"), NOBODY),
        ],
        "person": [
            Variant("courier1", _user("courier1").id, frozenset({SA, AD})),
            Variant("team B's courier", team_b["courier"], frozenset({SB, AD})),
            Variant("org 2's courier", _user("o2-courier1").id, NOBODY),
        ],
        "team": [
            Variant("team A", _user("courier1").team_id, frozenset({AD})),
            Variant("org 2's team", _user("o2-courier1").team_id, NOBODY),
        ],
        "device": [
            Variant("courier2's phone", _device_of("courier2"), frozenset({SA, AD})),
            Variant("team B courier's phone", _device_of("zz-courier-b"), frozenset({SB, AD})),
            Variant("org 2's phone", _device_of("o2-courier1"), NOBODY),
        ],
        "conflict": [
            Variant(
                "org 2's conflict",
                _conflict_of("o2-courier1"),
                NOBODY,
            ),
        ],
        "file": [
            Variant("a file of the demo org", _file_of("courier2"), ANYONE),
            Variant("org 2's file", _file_of("o2-courier1"), NOBODY),
        ],
        "guard_id": [
            Variant("guard1", _user("guard1").id, frozenset({SA, AD})),
            Variant("org 2's guard", _user("o2-guard1").id, NOBODY),
        ],
        "person_id": [
            Variant("courier1", _user("courier1").id, frozenset({SA, AD})),
            Variant("team B's courier", team_b["courier"], frozenset({SB, AD})),
            Variant("org 2's courier", _user("o2-courier1").id, NOBODY),
        ],
        "penalty": [
            Variant(
                "courier1's penalty", _penalty_for("supervisor", "courier1"), frozenset({SA, AD})
            ),
            Variant("org 2's penalty", _penalty_for("o2-supervisor", "o2-courier1"), NOBODY),
        ],
        "site_id": [
            Variant("rep2's client", _visit_of("rep2").site_id, frozenset({SA, AD})),
            Variant("org 2's client", _visit_of("o2-rep1").site_id, NOBODY),
        ],
        "rep_id": [
            Variant("rep1", _user("rep1").id, frozenset({SA, AD})),
            Variant("org 2's rep", _user("o2-rep1").id, NOBODY),
        ],
    }
    db.session.commit()
    return world


def _penalty_for(by: str, username: str) -> int:
    from fieldapp.dashboard.assessment import propose

    day = deliveries.today_for(_user(username).org_id)
    return propose(_user(by), _user(username).id, RULE_CODE, day, "/deliveries/today").id


def _demo_complaint_id() -> str:
    from fieldapp.visits.demo import DEMO_COMPLAINT_ID

    return DEMO_COMPLAINT_ID


# ----- requests -----------------------------------------------------------------------------

_PART = re.compile(r"<(?:[^>]*:)?(\w+)>")


def _routes(app) -> list[tuple[str, str]]:
    """Every (method, rule) the app serves, HEAD and OPTIONS aside (Flask adds those)."""
    return sorted(
        (method, rule.rule)
        for rule in app.url_map.iter_rules()
        for method in rule.methods - {"HEAD", "OPTIONS"}
    )


def _url(path: str, values: dict, query: str) -> str:
    url = _PART.sub(lambda m: str(values[m.group(1)]), path)
    return f"{url}?{query}" if query else url


def _send(client: Client, method: str, url: str, rule: Rule, extra: dict, fill: dict):
    raw, token = client.raw, client.token
    headers = {"X-CSRFToken": token} if token else {}
    if rule.json is not None:
        return raw.open(url, method=method, json=dict(rule.json), headers=headers)
    if method in ("GET", "DELETE"):
        return raw.open(url, method=method, headers=headers)
    data = {k: v.format(**fill) for k, v in rule.form} | extra
    if token:
        data["csrf_token"] = token
    if method == "PATCH":
        return raw.open(url, method=method, data=b"x", headers={**headers, "Upload-Offset": "0"})
    return raw.open(url, method=method, data=data, headers=headers)


def _problems(response, role: str, expected: tuple, what: str) -> list[str]:
    problems = []
    status = response.status_code
    if status not in expected:
        problems.append(f"{what}: {status}, expected {expected}")
    body = response.get_data(as_text=True) if status < 500 else ""
    if ORG2 in body:
        problems.append(f"{what}: shows the second organisation's data ({status})")
    if TEAM_B in body and role not in (SB, AD):
        problems.append(f"{what}: shows team B's route to {role} ({status})")
    return problems


@pytest.fixture
def world(login):
    world = _build_world()
    clients = {role: login(name) for role, name in USERNAMES.items()}
    return world, clients


def test_every_route_is_in_the_matrix(app):
    served = {f"{method} {path}" for method, path in _routes(app)}
    unclassified = sorted(served - set(ROUTES))
    gone = sorted(set(ROUTES) - served)
    assert not unclassified, f"routes missing from ROUTES in {__file__}: {unclassified}"
    assert not gone, f"ROUTES names routes the app no longer serves: {gone}"


def test_every_route_for_every_role(world, demo):
    world, clients = world
    anonymous = Client(demo.test_client())
    anonymous.get("/login")  # a visitor's session has a CSRF token too: refusals are not CSRF's
    day = deliveries.today_for(_user("courier1").org_id).isoformat()
    problems, checked = [], 0
    for method, path in _routes(demo):
        rule = ROUTES.get(f"{method} {path}")
        if rule is None:
            problems.append(f"{method} {path}: not in ROUTES, not checked")
            continue
        kind = rule.target or rule.form_target
        variants = world[kind] if kind else [Variant("", None, ANYONE | {ANON})]
        is_api = path.startswith("/api/")
        for role in ROLES:
            for variant in variants:
                values = dict(rule.values)
                extra = {}
                if rule.target:
                    (name,) = set(_PART.findall(path)) - set(values)
                    values[name] = variant.id
                elif rule.form_target:
                    extra[rule.form_target] = variant.id
                url = _url(path, values, rule.query.format(day=day))
                what = f"{method} {url} as {role} ({variant.label or 'no record'})"
                allowed = role != ANON and role in rule.who and role in variant.seen_by
                if role == ANON:
                    if rule.public:
                        expected = rule.ok if ANON in variant.seen_by else rule.refused
                    elif is_api:
                        expected = (401,)
                    else:
                        expected = (302,)
                elif rule.public and method == "POST":
                    continue  # logging in or choosing a language: no one else's data
                elif not allowed:
                    expected = rule.refused if role in rule.who else (403, 404)
                elif method in ("GET",):
                    expected = rule.ok
                elif rule.exercise:
                    expected = (200, 204, 302)
                else:
                    continue  # allowed and it would change the shared demo data
                response = _send(
                    anonymous if role == ANON else clients[role],
                    method,
                    url,
                    rule,
                    extra,
                    {"day": day, "rule": RULE_CODE},
                )
                checked += 1
                problems += _problems(response, role, expected, what)
                location = response.headers.get("Location", "")
                if role == ANON and not rule.public and "/login" not in location and not is_api:
                    problems.append(f"{what}: redirects elsewhere than the login form")
    print(
        f"authorization matrix: {checked} requests over {len(ROUTES)} routes × {len(ROLES)} roles"
    )
    assert not problems, "\n".join(problems)


# ----- IDs of others inside sync payloads, and what the phone is told -----------------------

PHONES = {C: str(uuid.uuid4()), G: str(uuid.uuid4()), R: str(uuid.uuid4())}


def _ids(world, kind: str, role: str) -> list:
    """The IDs of records of ``kind`` that ``role`` may not see."""
    return [v.id for v in world[kind] if role not in v.seen_by]


def _payloads(world) -> dict[str, list[tuple[str, dict]]]:
    """For each worker: mutations that name someone else's stop, route, shift, visit or site."""
    courier = []
    for stop_id in _ids(world, "stop", C):
        courier += [
            ("delivery.arrival", {"stop_id": stop_id}),
            ("delivery.refusal", {"stop_id": stop_id, "reason_code": "customer_absent"}),
            ("delivery.proof", {"stop_id": stop_id}),
            ("delivery.stop", {"id": stop_id, "state": "skipped"}),
        ]
    for route_id in _ids(world, "route", C):
        courier += [
            ("delivery.vehicle_check", {"route_id": route_id, "no_faults": True}),
            ("delivery.day_close", {"route_id": route_id}),
        ]
    guard = []
    for shift_id in [_patrol("Shift", "guard2"), _patrol("Shift", "o2-guard1")]:
        guard += [
            (
                "patrol.incident",
                {"shift_id": shift_id, "incident_type": "other", "severity": "minor"},
            ),
            ("patrol.gate_entry", {"shift_id": shift_id, "entry_kind": "visitor", "name": "x"}),
        ]
    rep = []
    for visit_id in _ids(world, "visit", R):
        rep += [
            ("visit.check_in", {"visit_id": visit_id}),
            ("visit.report", {"visit_id": visit_id, "timeliness": 5, "skill": 5, "attitude": 5}),
        ]
    rep.append(
        (
            "visit.report",
            {
                "visit_id": _visit_of("rep1").id,
                "timeliness": 5,
                "skill": 5,
                "attitude": 5,
                "follow_up_action": "x",
                "follow_up_due": "2031-01-01",
                "follow_up_owner_id": _user("o2-rep1").id,
            },
        )
    )
    complaint = {"complainant": "x", "channel": "phone", "subject": "x", "category": "efficiency"}
    complaint |= {"cause_class": "human", "severity": "minor"}
    rep += [
        ("complaint.intake", {**complaint, "site_id": _visit_of("o2-rep1").site_id}),
        (
            "complaint.intake",
            {**complaint, "client_name": "x", "visit_id": _visit_of("o2-rep1").id},
        ),
    ]
    return {C: courier, G: guard, R: rep}


def test_ids_of_others_in_sync_payloads_are_refused(world, login):
    world, _clients = world
    payloads = _payloads(world)
    problems = []
    for role, mutations in payloads.items():
        phone = login(USERNAMES[role], device_id=PHONES[role])
        batch = []
        for seq, (type_, payload) in enumerate(mutations, 1):
            batch.append(
                {
                    "id": str(uuid.uuid4()),
                    "seq": seq,
                    "type": type_,
                    "payload": {"id": str(uuid.uuid4()), **payload},
                    "device_time": datetime.now(UTC).isoformat(),
                }
            )
        response = phone.raw.post(
            "/api/sync/push",
            json={"device_id": PHONES[role], "mutations": batch},
            headers={"X-CSRFToken": phone.token, "Accept-Language": "en"},
        )
        assert response.status_code == 200, response.get_data(as_text=True)
        for mutation, result in zip(batch, response.json["results"], strict=True):
            what = f"{role} pushing {mutation['type']} {mutation['payload']}"
            if result["status"] not in ("rejected", "conflict"):
                problems.append(f"{what}: {result['status']}")
            elif result.get("fields"):  # refused by the form check: the ID was never tried
                problems.append(f"{what}: invalid payload in the test, {result['fields']}")
            elif not result.get("message"):
                problems.append(f"{what}: refused without a readable reason")
    assert not problems, "\n".join(problems)


def test_pull_and_day_pack_carry_only_what_the_user_may_see(world):
    world, clients = world
    secrets = {
        role: [
            str(v.id)
            for kind in ("stop", "visit", "incident")
            for v in world[kind]
            if role not in v.seen_by
        ]
        for role in ANYONE
    }
    problems = []
    for role, client in clients.items():
        bodies = [client.get("/api/sync/daypack").get_data(as_text=True)]
        cursor, more = 0, True
        while more and len(bodies) < 50:
            page = client.get(f"/api/sync/pull?cursor={cursor}").json
            bodies.append(str(page))
            cursor, more = page["cursor"], page["more"]
        for secret in secrets[role]:
            if any(secret in body for body in bodies):
                problems.append(f"{role} is sent record {secret}")
    assert not problems, "\n".join(problems)
