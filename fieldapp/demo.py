"""The demo organisation: enough people and places to try every role on a laptop."""

from dataclasses import dataclass

from werkzeug.security import generate_password_hash

from fieldapp.extensions import db
from fieldapp.models import Organisation, Role, Site, SiteKind, Team, TeamKind, User

DEMO_PASSWORD = "demo-2026"


@dataclass(frozen=True)
class DemoUser:
    username: str
    name: str
    role: Role
    team: str | None


TEAMS = (
    ("配送一组", TeamKind.DELIVERY),
    ("保安一队", TeamKind.SECURITY),
    ("客服外勤组", TeamKind.VISITS),
)

USERS = (
    DemoUser("admin", "系统管理员", Role.ADMIN, None),
    DemoUser("supervisor", "张主管", Role.SUPERVISOR, None),
    DemoUser("courier1", "李师傅", Role.COURIER, "配送一组"),
    DemoUser("courier2", "王师傅", Role.COURIER, "配送一组"),
    DemoUser("guard1", "赵保安", Role.GUARD, "保安一队"),
    DemoUser("guard2", "钱保安", Role.GUARD, "保安一队"),
    DemoUser("rep1", "孙经理", Role.REP, "客服外勤组"),
    DemoUser("rep2", "周经理", Role.REP, "客服外勤组"),
)

# (kind, team, name, address, latitude, longitude)
SITES = (
    (SiteKind.SHOP, "配送一组", "福民便利店", "上海市黄浦区福州路 318 号", 31.2335, 121.4797),
    (SiteKind.SHOP, "配送一组", "好邻居超市", "上海市黄浦区南京东路 99 号", 31.2400, 121.4850),
    (SiteKind.SHOP, "配送一组", "老城烟酒店", "上海市黄浦区河南中路 521 号", 31.2361, 121.4822),
    (SiteKind.SHOP, "配送一组", "万家乐商行", "上海市黄浦区九江路 200 号", 31.2350, 121.4760),
    (
        SiteKind.GUARDED_POST,
        "保安一队",
        "外滩中心大门岗",
        "上海市黄浦区中山东一路 1 号",
        31.2405,
        121.4903,
    ),
    (
        SiteKind.CLIENT_OFFICE,
        "客服外勤组",
        "东方物业办公室",
        "上海市浦东新区世纪大道 100 号",
        31.2352,
        121.5055,
    ),
    (
        SiteKind.CLIENT_OFFICE,
        "客服外勤组",
        "华联商厦客服部",
        "上海市黄浦区南京东路 800 号",
        31.2376,
        121.4727,
    ),
)


# Domains add their demo data (today's route, patrol plan, visits) here:
# fn(org: Organisation, users: dict[username, User], teams: dict[name, Team],
#    sites: dict[name, Site]) -> None, idempotent, without committing.
DEMO_SEEDERS = []


def seed_demo() -> list[DemoUser]:
    """Create what is missing of the demo organisation; running it twice changes nothing."""
    org = db.session.scalar(db.select(Organisation).where(Organisation.code == "DEMO"))
    if org is None:
        org = Organisation(code="DEMO", name="演示服务有限公司", timezone="Asia/Shanghai")
        db.session.add(org)
        db.session.flush()

    users = {u.username: u for u in db.session.scalars(db.select(User))}
    password_hash = generate_password_hash(DEMO_PASSWORD)  # one slow hash for every demo user
    for spec in USERS:
        if spec.username not in users:
            user = User(
                org_id=org.id,
                username=spec.username,
                display_name=spec.name,
                role=spec.role,
                password_hash=password_hash,
            )
            db.session.add(user)
            users[spec.username] = user
    db.session.flush()

    teams = {t.name: t for t in db.session.scalars(db.select(Team).where(Team.org_id == org.id))}
    for name, kind in TEAMS:
        if name not in teams:
            teams[name] = Team(
                org_id=org.id, name=name, kind=kind, supervisor_id=users["supervisor"].id
            )
            db.session.add(teams[name])
    db.session.flush()

    for spec in USERS:
        if spec.team and users[spec.username].team_id is None:
            users[spec.username].team_id = teams[spec.team].id

    sites = {s.name: s for s in db.session.scalars(db.select(Site).where(Site.org_id == org.id))}
    for kind, team, name, address, lat, lon in SITES:
        if name not in sites:
            sites[name] = Site(
                org_id=org.id,
                team_id=teams[team].id,
                kind=kind,
                name=name,
                address=address,
                latitude=lat,
                longitude=lon,
                timezone="Asia/Shanghai",
                contact_phone="021-6300 0000",
            )
            db.session.add(sites[name])
    db.session.flush()
    for seed in DEMO_SEEDERS:
        seed(org, users, teams, sites)
    db.session.commit()
    return list(USERS)
