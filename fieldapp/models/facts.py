"""Append-only field records: once stored, a fact is never changed or deleted.

A proof of delivery, a checkpoint scan or a handover is evidence. A mistake in one is put right
by a new record that references it (who and why), so the ORM refuses updates and deletes.
"""

from sqlalchemy import event


class AppendOnlyError(RuntimeError):
    pass


def _refuse_change(mapper, connection, target):
    raise AppendOnlyError(
        f"{type(target).__name__} is an append-only record: add a correction instead"
    )


def append_only(*models) -> None:
    """Make the ORM refuse to update or delete rows of ``models``."""
    for model in models:
        event.listen(model, "before_update", _refuse_change)
        event.listen(model, "before_delete", _refuse_change)
