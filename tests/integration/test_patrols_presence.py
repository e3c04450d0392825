"""PAT-09 supervisor presence through the sync API and the pages, on SQLite and PostgreSQL.

The demo supervisor (张主管) leads 保安一队, whose guarded site is 外滩中心大门岗 (Asia/Shanghai).
The demo gives them taps yesterday; the tests use the days before that.
"""

import uuid
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from fieldapp.extensions import db
from fieldapp.models import Role, Site, SiteKind, Team, User
from fieldapp.patrols import service
from fieldapp.patrols.models import SupervisorPresence

PHONE = "6d1f0c2e-8a4b-4c7d-9e1f-3a5b7c9d1e2f"
SITE = "外滩中心大门岗"
SHANGHAI = ZoneInfo("Asia/Shanghai")


def uid() -> str:
    return str(uuid.uuid4())


class Phone:
    """A logged-in phone speaking the sync protocol, numbering its own mutations."""

    def __init__(self, client, device_id):
        self.client, self.device_id, self.seq = client, device_id, 0

    def mutation(self, type_, payload, at):
        self.seq += 1
        return {
            "id": uid(),
            "seq": self.seq,
            "type": type_,
            "payload": {"id": uid(), **payload},
            "device_time": at.isoformat(),
        }

    def push(self, *mutations):
        response = self.client.raw.post(
            "/api/sync/push",
            json={"device_id": self.device_id, "mutations": list(mutations)},
            headers={"X-CSRFToken": self.client.token, "Accept-Language": "en"},
        )
        assert response.status_code == 200, response.get_data(as_text=True)
        return response.json["results"]

    def send(self, type_, payload, at):
        return self.push(self.mutation(type_, payload, at))[0]


def site(name=SITE) -> Site:
    return db.session.scalar(select(Site).where(Site.name == name))


def user(username) -> User:
    return db.session.scalar(select(User).where(User.username == username))


def local(day: date, hour: int, minute: int = 0) -> datetime:
    """A Shanghai wall-clock time, as the phone sends it (with its offset)."""
    return datetime.combine(day, time(hour, minute), SHANGHAI)


def tap(where: Site, action: str, **position) -> dict:
    fix = {"latitude": where.latitude, "longitude": where.longitude, "accuracy": 12}
    return {"site_id": where.id, "action": action, **fix, **position}


def english(client, url):
    """A page as an English-speaking browser gets it (the default language is Chinese)."""
    return client.get(url, headers={"Accept-Language": "en"})


def today() -> date:
    return datetime.now(SHANGHAI).date()


def working_days_back(n: int) -> list[date]:
    """The ``n`` most recent working days of the organisation's calendar, 2 to 7 days ago
    (yesterday has demo taps; the presence page shows the past 7 days)."""
    from fieldapp.complaints.service import working_calendar

    calendar = working_calendar(user("supervisor").org_id)
    days = [today() - timedelta(days=back) for back in range(2, 8)]  # the page shows 7 days
    working = [d for d in days if calendar.is_working_day(d)][:n]
    if len(working) < n:
        pytest.skip("fewer working days than needed in the past week (a holiday week)")
    return working


@pytest.fixture
def phone(login):
    return Phone(login("supervisor", device_id=PHONE), PHONE)


def test_arrive_and_leave_taps_make_the_hours_and_short_days_are_flagged(phone):
    gate = site()
    # A second guarded site of the same team, next door: overlapping presence counts once.
    annex = Site(
        org_id=gate.org_id,
        team_id=gate.team_id,
        kind=SiteKind.GUARDED_POST,
        name="外滩中心副楼",
        latitude=gate.latitude + 0.0005,
        longitude=gate.longitude,
        timezone="Asia/Shanghai",
    )
    db.session.add(annex)
    db.session.commit()
    four_hours, six_hours = working_days_back(2)

    batch = [
        phone.mutation("patrol.presence", tap(gate, "arrive"), local(four_hours, 8)),
        phone.mutation("patrol.presence", tap(gate, "leave"), local(four_hours, 12)),
        # 8:00-12:00 and 13:00-15:00 at the gate, 10:00-11:30 at the annex (inside the first).
        phone.mutation("patrol.presence", tap(gate, "arrive"), local(six_hours, 8)),
        phone.mutation("patrol.presence", tap(annex, "arrive"), local(six_hours, 10)),
        phone.mutation("patrol.presence", tap(annex, "leave"), local(six_hours, 11, 30)),
        phone.mutation("patrol.presence", tap(gate, "leave"), local(six_hours, 12)),
        phone.mutation("patrol.presence", tap(gate, "arrive"), local(six_hours, 13)),
        phone.mutation("patrol.presence", tap(gate, "leave"), local(six_hours, 15)),
        # A spot check is an instant, not time on site: it adds nothing (it used to add 30 min).
        phone.mutation("patrol.spot_check", {"site_id": gate.id}, local(four_hours, 14)),
    ]
    assert [r["status"] for r in phone.push(*batch)] == ["applied"] * len(batch)
    stored = db.session.scalars(select(SupervisorPresence).order_by(SupervisorPresence.at)).all()
    first = next(r for r in stored if r.id == batch[0]["payload"]["id"])
    assert first.at == local(four_hours, 8).astimezone(UTC)  # UTC in the database
    assert first.supervisor_id == user("supervisor").id
    assert not first.outside_geofence and first.distance_m == 0

    page = english(phone.client, "/patrols/presence")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert f'data-day="{four_hours.isoformat()}" data-hours="4.00" data-short>' in html
    assert f'data-day="{six_hours.isoformat()}" data-hours="6.00">' in html
    # The same figure is what the spot-check page shows for a day (from presence, not checks).
    supervisor = user("supervisor")
    assert service.onsite_hours(supervisor, four_hours, "Asia/Shanghai") == 4.0

    # Today: arrived two hours ago, not left yet: counts until now, shown in the site's time.
    arrived = datetime.now(UTC) - timedelta(hours=2)
    if arrived.astimezone(SHANGHAI).date() != today():  # just after midnight: keep it today
        arrived = local(today(), 0)
    assert phone.send("patrol.presence", tap(gate, "arrive"), arrived)["status"] == "applied"
    page = english(phone.client, "/patrols/presence").get_data(as_text=True)
    since = arrived.astimezone(SHANGHAI).strftime("%H:%M")
    assert f"On site since {since}" in page
    expected = (datetime.now(UTC) - arrived).total_seconds() / 3600
    shown = float(page.split('id="presence-today" data-hours="')[1].split('"')[0])
    assert abs(shown - expected) < 0.05
    spot_page = english(phone.client, "/patrols/spot-check")
    spot_page = spot_page.get_data(as_text=True)
    on_spot_page = float(spot_page.split("Your time on site today: ")[1].split(" h")[0])
    assert abs(on_spot_page - expected) <= 0.1


def test_an_arrival_without_departure_counts_until_the_end_of_that_day(phone):
    gate = site()
    day = today() - timedelta(days=10)
    assert phone.send("patrol.presence", tap(gate, "arrive"), local(day, 20))["status"] == (
        "applied"
    )
    supervisor = user("supervisor")
    following = day + timedelta(days=1)
    assert service.onsite_hours(supervisor, day, "Asia/Shanghai") == 4.0  # 20:00 to midnight
    assert service.onsite_hours(supervisor, following, "Asia/Shanghai") == 0.0
    # The next morning's departure, 13 h later (within the 16 h span), is accepted and ends
    # the stay: 20:00 to 09:00, 4 h on the first day and 9 h on the second.
    late = phone.send("patrol.presence", tap(gate, "leave"), local(following, 9))
    assert late["status"] == "applied"
    assert service.onsite_hours(supervisor, day, "Asia/Shanghai") == 4.0
    assert service.onsite_hours(supervisor, following, "Asia/Shanghai") == 9.0
    # An arrival whose departure comes beyond the span still counts only until its midnight.
    other = day - timedelta(days=2)
    assert phone.send("patrol.presence", tap(gate, "arrive"), local(other, 7))["status"] == (
        "applied"
    )
    beyond = phone.send("patrol.presence", tap(gate, "leave"), local(other + timedelta(1), 0, 1))
    assert beyond["status"] == "applied"
    assert service.onsite_hours(supervisor, other, "Asia/Shanghai") == 17.0  # 07:00 to midnight
    assert service.onsite_hours(supervisor, other + timedelta(1), "Asia/Shanghai") == 0.0


def test_a_night_shift_leave_after_midnight_is_applied_and_counts_on_both_days(phone):
    """Arrive 20:00, leave 04:00 the next morning: one stay, 4 h on each local day, on the
    presence page and in the KPI's month figures alike."""
    from fieldapp.patrols import presence

    gate = site()
    night, morning = today() - timedelta(days=3), today() - timedelta(days=2)
    arrive = phone.mutation("patrol.presence", tap(gate, "arrive"), local(night, 20))
    leave = phone.mutation("patrol.presence", tap(gate, "leave"), local(morning, 4))
    assert [r["status"] for r in phone.push(arrive, leave)] == ["applied", "applied"]
    supervisor = user("supervisor")
    assert service.onsite_hours(supervisor, night, "Asia/Shanghai") == 4.0
    assert service.onsite_hours(supervisor, morning, "Asia/Shanghai") == 4.0
    hours = presence.hours_by_day(supervisor, [night, morning], "Asia/Shanghai")
    assert hours == {night: 4.0, morning: 4.0}
    html = english(phone.client, "/patrols/presence").get_data(as_text=True)
    assert f'data-day="{night.isoformat()}" data-hours="4.00"' in html
    assert f'data-day="{morning.isoformat()}" data-hours="4.00"' in html
    # The month's figures of the KPI page (one read of the taps) agree day by day.
    first = night.replace(day=1)
    following = (first + timedelta(days=32)).replace(day=1)
    days = {
        d.day: d.hours
        for d in presence.month_days(supervisor, first, following, today(), "Asia/Shanghai")
    }
    if night in days:
        assert days[night] == 4.0
    if morning in days:
        assert days[morning] == 4.0
    stored = {r.id: r for r in db.session.scalars(select(SupervisorPresence))}
    assert stored[leave["payload"]["id"]].at == local(morning, 4).astimezone(UTC)


def test_a_leave_from_one_phone_before_the_arrive_from_another_gives_the_right_hours(phone, login):
    """Phone B (or the same phone after a reinstall) delivers the departure first; phone A,
    offline for hours, delivers the arrival later. Both are kept and they pair."""
    gate = site()
    day = today() - timedelta(days=12)
    other_device = "9c2e4b6d-1f3a-4e5c-8b7d-0a2c4e6f8a1b"
    phone_b = Phone(login("supervisor", device_id=other_device), other_device)
    supervisor = user("supervisor")

    leave = phone_b.mutation("patrol.presence", tap(gate, "leave"), local(day, 15))
    assert phone_b.push(leave)[0]["status"] == "applied"
    assert service.onsite_hours(supervisor, day, "Asia/Shanghai") == 0.0  # no arrival known
    today_leave = phone_b.mutation("patrol.presence", tap(gate, "leave"), datetime.now(UTC))
    assert phone_b.push(today_leave)[0]["status"] == "applied"
    page = english(phone.client, "/patrols/presence").get_data(as_text=True)
    section = page.split(f'id="presence-site-{gate.id}"')[1].split("</section>")[0]
    assert 'data-presence-tap="leave"' in section and "data-unpaired" in section
    assert "not counted until the arrival is synced" in section

    arrive = phone.mutation("patrol.presence", tap(gate, "arrive"), local(day, 7, 30))
    assert phone.push(arrive)[0]["status"] == "applied"
    assert service.onsite_hours(supervisor, day, "Asia/Shanghai") == 7.5
    # Overnight too: phone B's 04:00 departure first, phone A's 20:00 arrival the day after.
    night = day + timedelta(days=1)
    early = phone_b.mutation("patrol.presence", tap(gate, "leave"), local(night + timedelta(1), 4))
    assert phone_b.push(early)[0]["status"] == "applied"
    late = phone.mutation("patrol.presence", tap(gate, "arrive"), local(night, 20))
    assert phone.push(late)[0]["status"] == "applied"
    assert service.onsite_hours(supervisor, night, "Asia/Shanghai") == 4.0
    assert service.onsite_hours(supervisor, night + timedelta(1), "Asia/Shanghai") == 4.0

    # Nothing saved is lost: every tap is stored as sent.
    kept = {r.id for r in db.session.scalars(select(SupervisorPresence))}
    sent = {m["payload"]["id"] for m in (leave, today_leave, arrive, early, late)}
    assert sent <= kept


def test_bad_taps_are_refused_with_a_reason_and_nothing_saved_is_lost(phone, login):
    gate = site()
    day = today() - timedelta(days=9)
    shop = site("福民便利店")  # a delivery shop, not a guarded site
    boss = User(
        org_id=gate.org_id,
        username="supervisor2",
        display_name="吴主管",
        role=Role.SUPERVISOR,
        password_hash=user("supervisor").password_hash,
    )
    db.session.add(boss)
    db.session.flush()
    team2 = Team(org_id=gate.org_id, name="保安二队", kind="security", supervisor_id=boss.id)
    db.session.add(team2)
    db.session.flush()
    other = Site(
        org_id=gate.org_id,
        team_id=team2.id,
        kind=SiteKind.GUARDED_POST,
        name="人民广场岗",
        latitude=31.2304,
        longitude=121.4737,
        timezone="Asia/Shanghai",
    )
    db.session.add(other)
    db.session.commit()

    no_fix = tap(gate, "arrive", latitude=None, longitude=None, accuracy=None)
    batch = [
        phone.mutation("patrol.presence", tap(gate, "arrive"), local(day, 8)),
        phone.mutation("patrol.presence", no_fix, local(day, 8, 1)),
        phone.mutation(
            "patrol.presence", {**tap(gate, "arrive"), "site_id": 999999}, local(day, 8, 2)
        ),
        phone.mutation(
            "patrol.presence", {**tap(gate, "arrive"), "site_id": shop.id}, local(day, 8, 3)
        ),
        phone.mutation("patrol.presence", tap(other, "arrive"), local(day, 8, 4)),
        phone.mutation("patrol.presence", tap(other, "leave"), local(day, 9)),
        phone.mutation("patrol.presence", tap(gate, "leave"), local(day, 15)),
    ]
    results = phone.push(*batch)
    assert [(r["status"], r.get("reason")) for r in results] == [
        ("applied", None),
        ("rejected", "patrol.presence_no_position"),
        ("rejected", "patrol.presence_unknown_site"),
        ("rejected", "patrol.presence_unknown_site"),
        ("rejected", "patrol.presence_not_your_site"),
        ("rejected", "patrol.presence_not_your_site"),
        ("applied", None),
    ]
    assert results[1]["message"].startswith("Your phone has no GPS position yet.")
    assert "team you do not supervise" in results[4]["message"]
    kept = {r.id for r in db.session.scalars(select(SupervisorPresence))}
    assert {batch[0]["payload"]["id"], batch[6]["payload"]["id"]} <= kept
    assert service.onsite_hours(user("supervisor"), day, "Asia/Shanghai") == 7.0

    # Leaving twice: the second departure is kept (a fact), pairs with nothing, adds nothing.
    again = phone.send("patrol.presence", tap(gate, "leave"), local(day, 16))
    assert again["status"] == "applied"
    assert service.onsite_hours(user("supervisor"), day, "Asia/Shanghai") == 7.0
    # Sent again, a rejected tap is answered the same way and stores nothing.
    before = db.session.scalar(select(func.count()).select_from(SupervisorPresence))
    assert phone.push(batch[1])[0]["reason"] == "patrol.presence_no_position"
    assert db.session.scalar(select(func.count()).select_from(SupervisorPresence)) == before

    # Outside the geofence (about 1.1 km away): kept and flagged, but no time on site; the
    # departure after it is accepted (the arrival exists).
    away = tap(gate, "arrive", latitude=gate.latitude + 0.01)
    day2 = day - timedelta(days=1)
    assert phone.send("patrol.presence", away, local(day2, 8))["status"] == "applied"
    assert phone.send("patrol.presence", tap(gate, "leave"), local(day2, 12))["status"] == (
        "applied"
    )
    flagged = db.session.scalar(
        select(SupervisorPresence).where(SupervisorPresence.at == local(day2, 8).astimezone(UTC))
    )
    assert flagged.outside_geofence and 1000 < flagged.distance_m < 1200
    assert service.onsite_hours(user("supervisor"), day2, "Asia/Shanghai") == 0.0

    # Only supervisors tap presence, and only they reach the page.
    for username in ("guard1", "admin"):
        device = str(uuid.uuid4())
        other_phone = Phone(login(username, device_id=device), device)
        refused = other_phone.send("patrol.presence", tap(gate, "arrive"), local(day, 10))
        assert refused["reason"] == "forbidden"
        assert english(other_phone.client, "/patrols/presence").status_code == 403


def test_the_page_is_on_the_home_screen_and_offline(phone, login):
    home = english(phone.client, "/").get_data(as_text=True)
    assert 'href="/patrols/presence"' in home
    assert 'href="/patrols/presence"' not in english(login("admin"), "/").get_data(as_text=True)
    pack = phone.client.get("/api/sync/daypack").json
    assert "/patrols/presence" in pack["pages"]
    page = english(phone.client, "/patrols/presence").get_data(as_text=True)
    assert 'data-record-type="patrol.presence"' in page
    assert f'"site_id": {site().id}, "action": "arrive"' in page
    # The demo supervisor was on site 5 h yesterday (demo data): flagged.
    yesterday = today() - timedelta(days=1)
    if yesterday.weekday() < 5:
        assert f'data-day="{yesterday.isoformat()}" data-hours="5.00" data-short>' in page


def test_the_kpi_page_counts_the_supervisors_days_with_six_hours_on_site(phone, login):
    """PAT-09 on the dashboard: working days of the month with ≥ 6 h ÷ working days so far."""
    from fieldapp.complaints.service import working_calendar

    gate = site()
    four_hours, six_hours = working_days_back(2)
    batch = [
        phone.mutation("patrol.presence", tap(gate, "arrive"), local(four_hours, 8)),
        phone.mutation("patrol.presence", tap(gate, "leave"), local(four_hours, 12)),
        phone.mutation("patrol.presence", tap(gate, "arrive"), local(six_hours, 8)),
        phone.mutation("patrol.presence", tap(gate, "leave"), local(six_hours, 14)),
    ]
    assert [r["status"] for r in phone.push(*batch)] == ["applied"] * len(batch)
    month = six_hours.replace(day=1)
    calendar = working_calendar(user("supervisor").org_id)
    working = [
        month + timedelta(days=n)
        for n in range(31)
        if (month + timedelta(days=n)).month == month.month
        and month + timedelta(days=n) < today()
        and calendar.is_working_day(month + timedelta(days=n))
    ]

    for viewer in (phone.client, login("admin")):
        html = english(viewer, f"/dashboard/kpi?month={month:%Y-%m}").get_data(as_text=True)
        row = html.split('data-supervisor="张主管"')[1].split("</tr>")[0]
        assert f'data-num="1" data-den="{len(working)}"' in row  # only the 6-hour day meets it
        short = row.split("data-short-days>")[1]
        if four_hours.month == month.month:
            assert f"{four_hours:%m-%d} · 4.0 h" in short
        assert f"{six_hours:%m-%d}" not in short


def test_a_months_hours_come_from_one_read_of_the_taps_and_match_each_day(phone):
    """The KPI page lists every supervisor's month: one query of taps each, not one per day,
    and the same hours as the day-by-day figure (an evening arrival left open included)."""
    from sqlalchemy import event

    from fieldapp.patrols import presence

    gate = site()
    first = (today() - timedelta(days=40)).replace(day=1)
    following = (first + timedelta(days=32)).replace(day=1)
    batch = [
        phone.mutation("patrol.presence", tap(gate, "arrive"), local(first, 8)),
        phone.mutation("patrol.presence", tap(gate, "leave"), local(first, 15, 30)),
        phone.mutation("patrol.presence", tap(gate, "arrive"), local(first, 20)),
        phone.mutation("patrol.presence", tap(gate, "arrive"), local(first + timedelta(3), 9)),
        phone.mutation("patrol.presence", tap(gate, "leave"), local(first + timedelta(3), 11)),
    ]
    assert [r["status"] for r in phone.push(*batch)] == ["applied"] * len(batch)
    supervisor = user("supervisor")

    reads = []

    def count(conn, cursor, statement, *args):
        if "FROM patrol_presence" in statement:
            reads.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        days = presence.month_days(supervisor, first, following, today(), "Asia/Shanghai")
    finally:
        event.remove(db.engine, "before_cursor_execute", count)

    assert len(reads) == 1
    assert [d.day for d in days] == [first + timedelta(n) for n in range(len(days))]
    assert days[-1].day == following - timedelta(days=1)
    hours = {d.day: d.hours for d in days}
    assert hours[first] == 7.5 + 4.0  # 08:00–15:30, then 20:00 to midnight
    assert hours[first + timedelta(1)] == 0.0 and hours[first + timedelta(3)] == 2.0
    for day in (first, first + timedelta(1), first + timedelta(3), first + timedelta(4)):
        assert hours[day] == service.onsite_hours(supervisor, day, "Asia/Shanghai")
