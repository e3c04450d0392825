"""Demo data for visits and complaints: client files, today's visits for rep1 and rep2, and
one open complaint. Idempotent; the caller commits."""

import uuid
from types import SimpleNamespace
from zoneinfo import ZoneInfo

from fieldapp.extensions import db
from fieldapp.models import utcnow
from fieldapp.visits.models import ClientFile, ClientTier, Visit

DEMO_COMPLAINT_ID = "6f1d3c52-0b7e-4c1e-9a51-2d0c5e7a9b10"

FILES = {
    "东方物业办公室": (
        ClientTier.CORE,
        [
            {"name": "陈经理", "role": "物业经理", "phone": "021-5888 1001"},
            {"name": "刘主管", "role": "客服主管", "phone": "021-5888 1002"},
        ],
        "年度服务合同，重点客户：每月至少走访一次。",
    ),
    "华联商厦客服部": (
        ClientTier.NORMAL,
        [{"name": "吴小姐", "role": "客服部", "phone": "021-6322 8000"}],
        "",
    ),
}
VISITS = (
    ("rep1", "东方物业办公室", "季度走访：了解服务满意度，发放客户意见调查表"),
    ("rep2", "华联商厦客服部", "投诉处理后的回访，确认整改落实"),
)


def seed(org, users, teams, sites) -> None:
    for name, (tier, contacts, notes) in FILES.items():
        site = sites.get(name)
        if site is None:
            continue
        exists = db.session.scalar(
            db.select(ClientFile.id).where(
                ClientFile.org_id == org.id, ClientFile.site_id == site.id
            )
        )
        if not exists:
            db.session.add(
                ClientFile(
                    org_id=org.id,
                    site_id=site.id,
                    tier=tier,
                    contacts=contacts,
                    notes=notes,
                    account_manager_id=users["rep1"].id,
                )
            )
    today = utcnow().astimezone(ZoneInfo(org.timezone)).date()
    for username, site_name, purpose in VISITS:
        rep, site = users[username], sites[site_name]
        exists = db.session.scalar(
            db.select(Visit.id).where(
                Visit.rep_id == rep.id, Visit.site_id == site.id, Visit.planned_date == today
            )
        )
        if not exists:
            db.session.add(
                Visit(
                    org_id=org.id,
                    team_id=rep.team_id,
                    rep_id=rep.id,
                    site_id=site.id,
                    planned_date=today,
                    purpose=purpose,
                    created_by_id=users["supervisor"].id,
                )
            )
    db.session.flush()
    _open_complaint(users, sites)


def _open_complaint(users, sites) -> None:
    from fieldapp.complaints import service
    from fieldapp.complaints.models import Complaint
    from fieldapp.complaints.records import IntakePayload

    if db.session.get(Complaint, DEMO_COMPLAINT_ID) is not None:
        return
    now = utcnow()
    rep = users["rep2"]
    ctx = SimpleNamespace(
        user=rep, device=None, mutation_id=str(uuid.uuid4()), device_time=now, received_at=now
    )
    payload = IntakePayload(
        id=DEMO_COMPLAINT_ID,
        site_id=sites["华联商厦客服部"].id,
        complainant="吴小姐",
        complainant_phone="021-6322 8000",
        channel="phone",
        subject="保洁人员晚到一小时",
        content="周一早上保洁人员 9 点半才到，商场开门时大厅还没有清洁。",
        category="efficiency",
        cause_class="human",
        severity="minor",
        request="调整保洁排班，保证 9 点前完成大厅清洁",
    )
    service.take_complaint(ctx, payload)
