"""Demo guard duty at 外滩中心大门岗: posts, checkpoints, a plan, licences, today's shifts."""

from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from fieldapp.extensions import db
from fieldapp.patrols.models import Checkpoint, GuardProfile, PatrolPlan, Post, PostKind, Shift
from fieldapp.rules.patrols import shift_bounds

DEMO_SITE = "外滩中心大门岗"
CHECKPOINTS = (
    ("CP1", "东门岗亭", 1),
    ("CP2", "地下车库入口", 2),
    ("CP3", "北侧消防通道", 3),
    ("CP4", "楼顶设备间", 4),
)
# guard, post, local start, local end: day and night shifts, 24-hour coverage (PAT-02).
SHIFTS = (("guard1", "大门岗", time(8), time(20)), ("guard2", "大门岗", time(20), time(8)))


def seed_patrols(org, users, teams, sites) -> None:
    site = sites.get(DEMO_SITE)
    if site is None:
        return
    posts = {p.name: p for p in db.session.scalars(db.select(Post).where(Post.site_id == site.id))}
    for name, kind in (("大门岗", PostKind.GATE), ("巡逻岗", PostKind.PATROL)):
        if name not in posts:
            posts[name] = Post(org_id=org.id, site_id=site.id, name=name, kind=kind)
            db.session.add(posts[name])
    known = set(db.session.scalars(db.select(Checkpoint.code).where(Checkpoint.site_id == site.id)))
    for code, name, position in CHECKPOINTS:
        if code not in known:
            db.session.add(
                Checkpoint(org_id=org.id, site_id=site.id, code=code, name=name, position=position)
            )
    if db.session.scalar(db.select(PatrolPlan.id).where(PatrolPlan.site_id == site.id)) is None:
        db.session.add(
            PatrolPlan(
                org_id=org.id,
                site_id=site.id,
                checkpoint_codes=[c for c, _n, _p in CHECKPOINTS],
                ordered=False,
                every_minutes=120,
                window_minutes=60,
            )
        )
    today = datetime.now(ZoneInfo(site.timezone)).date()
    for username in ("guard1", "guard2"):
        guard = users.get(username)
        if guard is not None and db.session.get(GuardProfile, guard.id) is None:
            db.session.add(
                GuardProfile(
                    user_id=guard.id,
                    org_id=org.id,
                    licence_number=f"沪保{guard.id:06d}",
                    licence_expires=date(today.year + 2, 12, 31),
                )
            )
    db.session.flush()
    for username, post_name, start, end in SHIFTS:
        guard = users.get(username)
        if guard is None:
            continue
        starts_at, ends_at = shift_bounds(today, start, end, site.timezone)
        exists = db.session.scalar(
            db.select(Shift.id).where(
                Shift.guard_id == guard.id,
                Shift.starts_at < ends_at,
                Shift.ends_at > starts_at,
            )
        )
        if not exists:
            db.session.add(
                Shift(
                    org_id=org.id,
                    site_id=site.id,
                    post_id=posts[post_name].id,
                    guard_id=guard.id,
                    starts_at=starts_at,
                    ends_at=ends_at,
                )
            )
    db.session.flush()
