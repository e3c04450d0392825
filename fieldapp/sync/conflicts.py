"""The supervisor's side of conflicts: list them, keep one side."""

from flask import abort

from fieldapp.access import supervised_team_ids
from fieldapp.extensions import db
from fieldapp.models import Role, User, utcnow
from fieldapp.sync import registry
from fieldapp.sync.models import Conflict, Mutation
from fieldapp.sync.registry import ApplyContext


def _visible_to(user: User):
    """Conflicts of the user's organisation; a supervisor's only those of their teams' phones."""
    query = db.select(Conflict).where(Conflict.org_id == user.org_id)
    if user.role != Role.ADMIN:
        query = (
            query.join(Mutation, Mutation.id == Conflict.mutation_id)
            .join(User, User.id == Mutation.user_id)
            .where(User.team_id.in_(supervised_team_ids(user)))
        )
    return query


def open_conflicts(user: User) -> list[Conflict]:
    return db.session.scalars(
        _visible_to(user).where(Conflict.resolved_at.is_(None)).order_by(Conflict.created_at)
    ).all()


def resolve(user: User, conflict_id: int, keep: str) -> None:
    """``keep="phone"`` applies the phone's values through the record type's service."""
    conflict = db.session.scalar(_visible_to(user).where(Conflict.id == conflict_id))
    if conflict is None or conflict.resolved_at:
        abort(404)
    if keep == "phone":
        record_type = registry.get(conflict.record_type)
        mutation = db.session.get(Mutation, conflict.mutation_id)
        values = dict(conflict.phone_fields)
        partial = record_type.schema.model_validate(
            {**mutation.payload, **values, "id": conflict.record_id}
        )
        partial = record_type.schema.model_construct(
            _fields_set={"id", *values},
            id=partial.id,
            **{k: getattr(partial, k) for k in values},
        )
        ctx = ApplyContext(
            user=user,
            device=None,
            mutation_id=conflict.mutation_id,
            device_time=utcnow(),
            received_at=utcnow(),
        )
        record_type.apply(ctx, partial)
    conflict.resolution = keep
    conflict.resolved_at = utcnow()
    conflict.resolved_by_id = user.id
    db.session.commit()
