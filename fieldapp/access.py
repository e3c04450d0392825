"""Who may see what: the one place views ask for a record or a role.

Every lookup is scoped to the current user's organisation, so changing an ID in a URL never
reaches another organisation's data: it is simply not found.
"""

from collections.abc import Iterable
from functools import wraps

from flask import abort
from flask_login import current_user, login_required

from fieldapp.extensions import db
from fieldapp.models import Role, Team, User


def roles_required(*roles: Role):
    """View decorator: logged in, and one of ``roles``."""

    def decorator(view):
        @wraps(view)
        @login_required
        def wrapped(*args, **kwargs):
            if current_user.role not in roles:
                abort(403)
            return view(*args, **kwargs)

        return wrapped

    return decorator


def get_in_org_or_404(model, record_id):
    """Fetch a record of the current user's organisation or answer 404."""
    record = db.session.get(model, record_id) if record_id is not None else None
    if record is None or record.org_id != current_user.org_id:
        abort(404)
    return record


def supervised_team_ids(user: User) -> list[int]:
    """The teams a user manages: every team of the organisation for an admin."""
    query = db.select(Team.id).where(Team.org_id == user.org_id)
    if user.role != Role.ADMIN:
        query = query.where(Team.supervisor_id == user.id)
    return list(db.session.scalars(query))


def can_manage_user(manager: User, user: User) -> bool:
    if manager.org_id != user.org_id:
        return False
    if manager.role == Role.ADMIN:
        return True
    return (
        manager.role == Role.SUPERVISOR
        and user.role in (Role.COURIER, Role.GUARD, Role.REP)
        and user.team_id in supervised_team_ids(manager)
    )


def manageable_roles(manager: User) -> Iterable[Role]:
    if manager.role == Role.ADMIN:
        return list(Role)
    return [Role.COURIER, Role.GUARD, Role.REP]
