"""The supervisor dashboard on SQLite and PostgreSQL: today's board and the month's KPIs of
two teams seeded with known numbers, checked against hand-computed figures, and scoped so a
supervisor of team A sees nothing of team B and a worker is refused.

Each test builds its own organisation (not the demo one, whose seeders add today's work).
"""

import re
import uuid
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from werkzeug.security import generate_password_hash

from fieldapp.complaints.models import Complaint, ComplaintEvent
from fieldapp.deliveries.models import ProofOfDelivery, Route, Stop, StopState
from fieldapp.extensions import db
from fieldapp.models import Device, Organisation, Role, Site, SiteKind, Team, TeamKind, User
from fieldapp.patrols.models import (
    Checkpoint,
    CheckpointScan,
    Incident,
    PatrolPlan,
    Post,
    Shift,
)
from fieldapp.visits.models import Visit, VisitState
from tests.helpers import Client

SHANGHAI = ZoneInfo("Asia/Shanghai")
PASSWORD = "dash-2026-pass"


def uid() -> str:
    return str(uuid.uuid4())


class World:
    """Two teams' worth of people and places: A (led by supa) and B (led by supb)."""

    def __init__(self):
        self.org = Organisation(code="DASH", name="看板测试公司", timezone="Asia/Shanghai")
        db.session.add(self.org)
        db.session.flush()
        pw = generate_password_hash(PASSWORD)
        self.users = {}
        for username, name, role in (
            ("admin", "管理员", Role.ADMIN),
            ("supa", "甲主管", Role.SUPERVISOR),
            ("supb", "乙主管", Role.SUPERVISOR),
            ("couriera", "李师傅", Role.COURIER),
            ("courierb", "王师傅", Role.COURIER),
            ("guarda", "赵保安", Role.GUARD),
            ("guardb", "钱保安", Role.GUARD),
            ("repa", "孙经理", Role.REP),
            ("repb", "周经理", Role.REP),
        ):
            user = User(
                org_id=self.org.id,
                username=username,
                display_name=name,
                role=role,
                password_hash=pw,
            )
            db.session.add(user)
            self.users[username] = user
        db.session.flush()
        self.teams = {}
        for key, name, kind, sup in (
            ("da", "甲配送组", TeamKind.DELIVERY, "supa"),
            ("sa", "甲保安队", TeamKind.SECURITY, "supa"),
            ("va", "甲外勤组", TeamKind.VISITS, "supa"),
            ("db", "乙配送组", TeamKind.DELIVERY, "supb"),
            ("sb", "乙保安队", TeamKind.SECURITY, "supb"),
            ("vb", "乙外勤组", TeamKind.VISITS, "supb"),
        ):
            team = Team(org_id=self.org.id, name=name, kind=kind, supervisor_id=self.users[sup].id)
            db.session.add(team)
            self.teams[key] = team
        db.session.flush()
        for username, team in (
            ("couriera", "da"),
            ("guarda", "sa"),
            ("repa", "va"),
            ("courierb", "db"),
            ("guardb", "sb"),
            ("repb", "vb"),
        ):
            self.users[username].team_id = self.teams[team].id
        self.sites = {}
        for key, name, kind, team in (
            ("posta", "甲大门岗", SiteKind.GUARDED_POST, "sa"),
            ("postb", "乙大门岗", SiteKind.GUARDED_POST, "sb"),
            ("officea", "甲客户办公室", SiteKind.CLIENT_OFFICE, "va"),
            ("officeb", "乙客户办公室", SiteKind.CLIENT_OFFICE, "vb"),
        ):
            site = Site(org_id=self.org.id, name=name, kind=kind, team_id=self.teams[team].id)
            db.session.add(site)
            self.sites[key] = site
        db.session.flush()

    def id(self, username) -> int:
        return self.users[username].id

    # ----- deliveries -----
    def route(self, team, courier, day, name) -> Route:
        route = Route(
            org_id=self.org.id,
            team_id=self.teams[team].id,
            date=day,
            name=name,
            courier_id=self.id(courier),
        )
        db.session.add(route)
        db.session.flush()
        return route

    def stop(self, route, n, state, *, on_time=None, promised_at=None) -> Stop:
        stop = Stop(
            org_id=self.org.id,
            route_id=route.id,
            sequence=n,
            customer_name=f"店{n}",
            customer_code=f"C{n:03d}",
            state=state,
            on_time=on_time,
            promised_at=promised_at,
        )
        db.session.add(stop)
        db.session.flush()
        return stop

    def proof(self, stop, courier, *, condition="ok", corrects=None) -> ProofOfDelivery:
        proof = ProofOfDelivery(
            id=uid(),
            org_id=self.org.id,
            user_id=self.id(courier),
            device_time=datetime(2026, 10, 10, 3, 0, tzinfo=UTC),
            stop_id=stop.id,
            checked_codes=[],
            scanned_codes=[],
            signature="ab" * 32,
            condition=condition,
            damage_quantity=1 if condition == "damage" else None,
            corrects_id=corrects.id if corrects else None,
            correction_reason="数量填错" if corrects else "",
        )
        db.session.add(proof)
        db.session.flush()
        return proof

    # ----- guard duty -----
    def guard_site(self, key):
        site = self.sites[key]
        post = Post(org_id=self.org.id, site_id=site.id, name="大门", kind="gate")
        checkpoint = Checkpoint(org_id=self.org.id, site_id=site.id, code="CP1", name="东门")
        db.session.add_all([post, checkpoint])
        db.session.add(
            PatrolPlan(
                org_id=self.org.id,
                site_id=site.id,
                checkpoint_codes=["CP1"],
                every_minutes=120,
                window_minutes=60,
            )
        )
        db.session.flush()
        return post, checkpoint

    def shift(self, post, guard, start, end) -> Shift:
        shift = Shift(
            org_id=self.org.id,
            site_id=post.site_id,
            post_id=post.id,
            guard_id=self.id(guard),
            starts_at=start,
            ends_at=end,
        )
        db.session.add(shift)
        db.session.flush()
        return shift

    def scan(self, shift, checkpoint, at):
        db.session.add(
            CheckpointScan(
                id=uid(),
                org_id=self.org.id,
                shift_id=shift.id,
                checkpoint_id=checkpoint.id,
                guard_id=shift.guard_id,
                scanned_at=at,
                received_at=at,
            )
        )

    def incident(self, key, guard, at, closed=False):
        db.session.add(
            Incident(
                id=uid(),
                org_id=self.org.id,
                site_id=self.sites[key].id,
                reported_by_id=self.id(guard),
                incident_type="theft",
                severity="minor",
                reported_at=at,
                received_at=at,
                closed_at=at + timedelta(hours=1) if closed else None,
            )
        )

    # ----- visits and complaints -----
    def visit(self, team, rep, site, day, state):
        db.session.add(
            Visit(
                org_id=self.org.id,
                team_id=self.teams[team].id,
                rep_id=self.id(rep),
                site_id=self.sites[site].id,
                planned_date=day,
                state=state,
            )
        )

    def complaint(self, team, owner, n, logged_at, state="received", events=()):
        """A complaint logged at ``logged_at``: investigate within 1 day, reply within 2
        (calendar days here: the deadlines are given, not computed), with timed steps."""
        complaint = Complaint(
            id=uid(),
            org_id=self.org.id,
            team_id=self.teams[team].id,
            slip_number=f"DASH-{n:04d}",
            client_name=f"客户{n}",
            complainant="陈先生",
            channel="phone",
            subject=f"投诉{n}",
            category="attitude",
            cause_class="human",
            severity="minor",
            first_known_at=logged_at,
            logged_at=logged_at,
            logged_by_id=self.id(owner),
            owner_id=self.id(owner),
            state=state,
            investigate_by=logged_at + timedelta(days=1),
            reply_by=logged_at + timedelta(days=2),
        )
        db.session.add(complaint)
        db.session.flush()
        previous = "received"
        for version, (to_state, at) in enumerate([("received", logged_at), *events], start=1):
            db.session.add(
                ComplaintEvent(
                    org_id=self.org.id,
                    complaint_id=complaint.id,
                    version=version,
                    step=to_state,
                    from_state="" if version == 1 else previous,
                    to_state=to_state,
                    by_id=self.id(owner),
                    at=at,
                    data={},
                )
            )
            previous = to_state
        return complaint

    def device(self, worker, pending, oldest, revoked=False):
        db.session.add(
            Device(
                id=uid(),
                user_id=self.id(worker),
                pending_count=pending,
                oldest_pending_at=oldest,
                last_sync_at=oldest,
                revoked_at=oldest if revoked else None,
            )
        )


@pytest.fixture
def world(app):
    w = World()
    db.session.commit()
    return w


@pytest.fixture
def log_in(world, app):
    def _log_in(username) -> Client:
        client = Client(app.test_client())
        response = client.login(username, PASSWORD)
        assert response.status_code == 302, response.get_data(as_text=True)
        client.post("/language", {"lang": "en", "next": "/"})  # assertions read English
        return client

    return _log_in


def row(html: str, attr: str, value) -> str:
    """The HTML of the table row or list item with ``data-<attr>="<value>"``."""
    match = re.search(rf'<(tr|li) data-{attr}="{value}".*?</\1>', html, re.S)
    assert match, f"no row with data-{attr}={value}"
    return match.group(0)


def counts(html: str) -> dict[str, int]:
    return {k: int(v) for k, v in re.findall(r'data-count="(\w+)"[^>]*>(\d+)<', html)}


# ----- today ----------------------------------------------------------------------------------


@pytest.fixture
def today(world):
    """Today's work of both teams, relative to now."""
    w = world
    now = datetime.now(UTC)
    day = now.astimezone(SHANGHAI).date()

    route_a = w.route("da", "couriera", day, "甲线")
    w.stop(route_a, 1, StopState.DELIVERED, on_time=True, promised_at=now - timedelta(hours=2))
    w.stop(route_a, 2, StopState.DELIVERED, on_time=False, promised_at=now - timedelta(hours=2))
    w.stop(route_a, 3, StopState.PENDING, promised_at=now - timedelta(hours=1))  # late
    w.stop(route_a, 4, StopState.ARRIVED, promised_at=now + timedelta(hours=2))
    w.stop(route_a, 5, StopState.REFUSED)
    w.stop(route_a, 6, StopState.RETURNED)
    w.route("da", "couriera", day - timedelta(days=1), "甲线昨天")  # not today
    route_b = w.route("db", "courierb", day, "乙线")
    w.stop(route_b, 1, StopState.PENDING, promised_at=now - timedelta(hours=1))

    # Site A, plan: a round every 2 h, 1 h window. Current shift began 5 h 30 min ago: round 1
    # walked (done), rounds 2 and 3 windows over and unwalked while the shift runs (late).
    # Last night's shift (ended 6 h ago) walked nothing: its 2 rounds are missed.
    post_a, cp_a = w.guard_site("posta")
    current = w.shift(post_a, "guarda", now - timedelta(minutes=330), now + timedelta(minutes=30))
    w.scan(current, cp_a, now - timedelta(minutes=300))
    w.shift(post_a, "guarda", now - timedelta(hours=10), now - timedelta(hours=6))
    w.incident("posta", "guarda", now - timedelta(hours=2))
    w.incident("posta", "guarda", now - timedelta(hours=3), closed=True)
    post_b, _ = w.guard_site("postb")
    w.shift(post_b, "guardb", now - timedelta(hours=10), now - timedelta(hours=6))
    w.incident("postb", "guardb", now - timedelta(hours=1))

    for state in (
        VisitState.PLANNED,
        VisitState.PLANNED,
        VisitState.ON_SITE,
        VisitState.DONE,
        VisitState.CANCELLED,
    ):
        w.visit("va", "repa", "officea", day, state)
    w.visit("va", "repa", "officea", day + timedelta(days=1), VisitState.PLANNED)  # tomorrow
    w.visit("vb", "repb", "officeb", day, VisitState.PLANNED)

    w.complaint("va", "repa", 1, now - timedelta(hours=30))  # investigation overdue
    w.complaint("va", "repa", 2, now - timedelta(hours=2), "answered", [("answered", now)])
    w.complaint("va", "repa", 3, now - timedelta(hours=5), "closed", [("closed", now)])
    w.complaint("vb", "repb", 4, now - timedelta(hours=1))

    ten_forty = datetime(2026, 11, 23, 2, 40, tzinfo=UTC)  # 10:40 in Shanghai
    w.device("couriera", 12, ten_forty)
    w.device("couriera", 3, ten_forty + timedelta(minutes=30))
    w.device("couriera", 5, ten_forty - timedelta(hours=1), revoked=True)  # not counted
    w.device("guarda", 0, None)  # nothing waiting: not listed
    w.device("courierb", 7, ten_forty)
    db.session.commit()
    return w


def test_the_board_counts_today_for_the_supervisors_teams_only(today, log_in):
    client = log_in("supa")
    response = client.get("/dashboard/")
    assert response.status_code == 200
    html = response.get_data(as_text=True)

    route_a = db.session.scalar(db.select(Route.id).where(Route.name == "甲线"))
    assert counts(row(html, "route", route_a)) == {"done": 2, "due": 2, "late": 2, "refused": 2}
    assert "甲线昨天" not in html

    site_a = today.sites["posta"].id
    assert counts(row(html, "site", site_a)) == {
        "done": 1,
        "late": 2,
        "missed": 2,
        "incidents": 1,
    }

    assert counts(row(html, "rep", "孙经理")) == {"planned": 2, "on_site": 1, "done": 1}

    assert "DASH-0001" in html and "DASH-0002" in html
    assert "DASH-0003" not in html  # closed
    assert 'class="alert"' in row(html, "complaint", _complaint_id("DASH-0001"))

    waiting = row(html, "worker", "李师傅")
    assert "李师傅: 15 records not yet received since 10:40" in waiting
    assert "赵保安" not in html.split("dashboard-waiting")[1]

    # Nothing of team B.
    for text in ("乙线", "乙大门岗", "周经理", "DASH-0004", "王师傅"):
        assert text not in html, text


def _complaint_id(slip: str) -> str:
    return db.session.scalar(db.select(Complaint.id).where(Complaint.slip_number == slip))


def test_the_board_refreshes_itself_as_a_fragment(today, log_in):
    client = log_in("supa")
    page = client.get("/dashboard/").get_data(as_text=True)
    assert 'hx-get="/dashboard/"' in page and 'hx-trigger="every 30s"' in page
    fragment = client.get("/dashboard/", headers={"HX-Request": "true"})
    text = fragment.get_data(as_text=True)
    assert fragment.status_code == 200 and "HX-Request" in fragment.headers["Vary"]
    assert "<html" not in text and "hx-trigger" not in text
    assert "甲线" in text and "李师傅: 15 records" in text


def test_an_admin_sees_every_team_and_a_worker_is_refused(today, log_in):
    html = log_in("admin").get("/dashboard/").get_data(as_text=True)
    for text in ("甲线", "乙线", "甲大门岗", "乙大门岗", "DASH-0004", "王师傅: 7 records"):
        assert text in html, text
    supb = log_in("supb").get("/dashboard/").get_data(as_text=True)
    assert "乙线" in supb and "甲线" not in supb and "李师傅" not in supb
    for worker in ("couriera", "guarda", "repa"):
        client = log_in(worker)
        assert client.get("/dashboard/").status_code == 403
        assert client.get("/dashboard/kpi").status_code == 403


def test_the_home_screen_offers_the_board_to_managers_only(today, log_in):
    assert 'href="/dashboard/"' in log_in("supa").get("/").get_data(as_text=True)
    assert 'href="/dashboard/"' not in log_in("couriera").get("/").get_data(as_text=True)


# ----- KPIs for October 2026 --------------------------------------------------------------


@pytest.fixture
def october(world):
    w = world
    route = w.route("da", "couriera", date(2026, 10, 10), "十月甲线")
    d1 = w.stop(route, 1, StopState.DELIVERED, on_time=True)
    d2 = w.stop(route, 2, StopState.DELIVERED, on_time=True)
    d3 = w.stop(route, 3, StopState.DELIVERED, on_time=False)
    d4 = w.stop(route, 4, StopState.DELIVERED, on_time=None)  # no promised time
    w.stop(route, 5, StopState.REFUSED)
    w.proof(d1, "couriera")
    w.proof(d2, "couriera", condition="damage")  # quantity short: a discrepancy
    w.proof(d3, "couriera", corrects=w.proof(d3, "couriera"))  # the slip record was corrected
    w.proof(d4, "couriera")
    # Outside the month (Shanghai dates): not counted.
    for day in (date(2026, 9, 30), date(2026, 11, 1)):
        w.stop(w.route("da", "couriera", day, f"甲线{day}"), 1, StopState.DELIVERED, on_time=False)
    route_b = w.route("db", "courierb", date(2026, 10, 12), "十月乙线")
    w.stop(route_b, 1, StopState.DELIVERED, on_time=True)

    # Guard A: a round every 2 h on 4-hour shifts. 5 Oct: round 1 walked in its window, round 2
    # walked after it (done late); 6 Oct: nothing walked (2 missed).
    post, cp = w.guard_site("posta")
    start = datetime(2026, 10, 5, 0, 0, tzinfo=UTC)  # 08:00 in Shanghai
    first = w.shift(post, "guarda", start, start + timedelta(hours=4))
    w.scan(first, cp, start + timedelta(minutes=30))
    w.scan(first, cp, start + timedelta(minutes=210))
    w.shift(post, "guarda", start + timedelta(days=1), start + timedelta(days=1, hours=4))

    # Rep A took four complaints in October (deadlines: 1 and 2 days after logging).
    t = datetime(2026, 10, 5, 2, 0, tzinfo=UTC)
    w.complaint(
        "va",
        "repa",
        11,
        t,
        "answered",
        [
            ("triaged", t + timedelta(hours=1)),
            ("routed", t + timedelta(hours=20)),
            ("answered", t + timedelta(hours=40)),
        ],
    )  # started and answered in time
    w.complaint(
        "va",
        "repa",
        12,
        t,
        "answered",
        [("routed", t + timedelta(hours=30)), ("answered", t + timedelta(hours=50))],
    )  # both late
    w.complaint("va", "repa", 13, t)  # nothing done, both deadlines passed
    w.complaint("va", "repa", 14, t, "invalid_closed", [("invalid_closed", t)])  # left out
    october_starts = datetime(2026, 9, 30, 16, 0, tzinfo=UTC)  # 1 Oct 00:00 in Shanghai
    w.complaint("va", "repa", 15, october_starts)  # counted
    w.complaint("va", "repa", 16, october_starts - timedelta(seconds=1))  # September
    w.complaint("vb", "repb", 17, t)
    db.session.commit()
    return w


def kpi_cell(html: str, worker: str, name: str) -> tuple[int, int, str]:
    tr = row(html, "worker", worker)
    match = re.search(rf'data-kpi="{name}" data-num="(\d+)" data-den="(\d+)"\s+title="([^"]*)"', tr)
    assert match, (worker, name, tr)
    return int(match.group(1)), int(match.group(2)), match.group(3)


def test_the_kpis_of_october_equal_the_hand_computed_figures(october, log_in):
    response = log_in("supa").get("/dashboard/kpi?month=2026-10")
    assert response.status_code == 200
    html = response.get_data(as_text=True)

    assert kpi_cell(html, "李师傅", "slip_accuracy")[:2] == (2, 4)  # d1, d4 of 4 delivered
    num, den, title = kpi_cell(html, "李师傅", "on_time")
    assert (num, den) == (2, 3)  # d4 had no promised time
    assert "100 %" in title and "÷" in title
    assert "66.7 %" in row(html, "worker", "李师傅")

    assert kpi_cell(html, "赵保安", "patrol_completion")[:2] == (2, 4)
    assert kpi_cell(html, "赵保安", "patrol_lateness")[:2] == (1, 2)

    # Complaints 11, 12, 13 and 15 (midnight 1 Oct, local); 15 is past its deadlines too.
    assert kpi_cell(html, "孙经理", "complaints_started")[:2] == (1, 4)
    assert kpi_cell(html, "孙经理", "complaints_answered")[:2] == (1, 4)
    # A courier has no complaints: nothing measured, shown as a dash, not 0 %.
    assert kpi_cell(html, "李师傅", "complaints_started")[:2] == (0, 0)

    for text in ("王师傅", "钱保安", "周经理"):
        assert text not in html, text


def test_the_kpi_month_is_chosen_and_checked(october, log_in):
    client = log_in("supa")
    november = client.get("/dashboard/kpi?month=2026-11").get_data(as_text=True)
    assert kpi_cell(november, "李师傅", "slip_accuracy")[:2] == (1, 1)  # the 1 Nov route
    assert kpi_cell(november, "李师傅", "on_time")[:2] == (0, 1)
    assert client.get("/dashboard/kpi?month=2026-13").status_code == 400
    assert client.get("/dashboard/kpi?month=last").status_code == 400
    admin = log_in("admin").get("/dashboard/kpi?month=2026-10").get_data(as_text=True)
    assert kpi_cell(admin, "王师傅", "slip_accuracy")[:2] == (1, 1)
    assert kpi_cell(admin, "李师傅", "slip_accuracy")[:2] == (2, 4)
