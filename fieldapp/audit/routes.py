"""The admin's view of the audit trail: who changed what, filtered and paginated."""

from datetime import UTC, datetime, time, timedelta

from flask import Blueprint, render_template, request
from flask_login import current_user

from fieldapp.access import roles_required
from fieldapp.audit.models import AuditEntry
from fieldapp.extensions import db
from fieldapp.models import Role, User

bp = Blueprint("audit", __name__)
PER_PAGE = 50


def _day(value: str | None):
    try:
        return datetime.strptime(value or "", "%Y-%m-%d").date()
    except ValueError:
        return None


@bp.get("/audit")
@roles_required(Role.ADMIN)
def trail():
    """The organisation's audit trail, newest first; filter by table, person and dates."""
    table = request.args.get("table", "").strip()
    user_id = request.args.get("user", type=int)
    start, end = _day(request.args.get("from")), _day(request.args.get("to"))
    page = max(1, request.args.get("page", 1, type=int))
    query = db.select(AuditEntry).where(AuditEntry.org_id == current_user.org_id)
    if table:
        query = query.where(AuditEntry.table_name == table)
    if user_id:
        query = query.where(AuditEntry.actor_user_id == user_id)
    if start:
        query = query.where(AuditEntry.at >= datetime.combine(start, time(), UTC))
    if end:
        query = query.where(AuditEntry.at < datetime.combine(end + timedelta(days=1), time(), UTC))
    rows = db.session.scalars(
        query.order_by(AuditEntry.id.desc()).offset((page - 1) * PER_PAGE).limit(PER_PAGE + 1)
    ).all()
    tables = db.session.scalars(
        db.select(AuditEntry.table_name)
        .where(AuditEntry.org_id == current_user.org_id)
        .distinct()
        .order_by(AuditEntry.table_name)
    ).all()
    people = db.session.scalars(
        db.select(User).where(User.org_id == current_user.org_id).order_by(User.username)
    ).all()
    return render_template(
        "audit/trail.html",
        entries=rows[:PER_PAGE],
        has_next=len(rows) > PER_PAGE,
        page=page,
        tables=tables,
        people=people,
        filters={
            "table": table,
            "user": user_id,
            "from": start.isoformat() if start else "",
            "to": end.isoformat() if end else "",
        },
    )
