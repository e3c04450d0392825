"""What keeps the board's "visitors inside" flat in history holds for data stored before it."""

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from flask_migrate import downgrade, upgrade

from fieldapp.extensions import db
from fieldapp.models import Site, User
from fieldapp.models.types import UTCDateTime
from fieldapp.patrols import service
from fieldapp.patrols.models import GateEntry

BEFORE_EXITED_AT = "3b6dcc241049"  # the revision before patrol_gate_entry.exited_at
T = datetime(2026, 10, 9, 1, 0, tzinfo=UTC)

# The tables as they were at BEFORE_EXITED_AT (the models already have the new column).
BLANK = dict.fromkeys(
    ("id_type", "id_number", "organisation", "host", "purpose", "plate", "driver", "goods"), ""
)
COLUMNS = ["id", "org_id", "site_id", "guard_id", "entry_kind", "direction", "name"]
entry_table = sa.table(
    "patrol_gate_entry",
    *map(sa.column, [*COLUMNS, *BLANK, "host_notified", "pass_number"]),
    sa.column("at", UTCDateTime),
    sa.column("received_at", UTCDateTime),
)
exit_table = sa.table(
    "patrol_gate_exit",
    *map(sa.column, ("id", "org_id", "entry_id", "guard_id")),
    sa.column("at", UTCDateTime),
)


def test_the_migration_gives_entries_let_out_before_it_their_exit_time(demo):
    site = db.session.scalar(sa.select(Site).where(Site.name == "外滩中心大门岗"))
    guard = db.session.scalar(sa.select(User).where(User.username == "guard1"))
    ids = dict(org_id=site.org_id, site_id=site.id, guard_id=guard.id)
    db.session.commit()
    downgrade(revision=BEFORE_EXITED_AT)
    try:
        with db.engine.begin() as conn:
            for key, kind, name in (
                ("left", "visitor", "已走"),
                ("inside", "visitor", "还在"),
                ("van", "vehicle", ""),
            ):
                conn.execute(
                    sa.insert(entry_table).values(
                        id=key,
                        entry_kind=kind,
                        direction="in",
                        name=name,
                        at=T,
                        received_at=T,
                        host_notified=False,
                        pass_number="",
                        **ids,
                        **BLANK,
                    )
                )
            conn.execute(
                sa.insert(exit_table).values(
                    id="out",
                    org_id=ids["org_id"],
                    entry_id="left",
                    guard_id=ids["guard_id"],
                    at=T + timedelta(hours=2),
                )
            )
    finally:
        upgrade(revision="heads")
    exited = {e.id: e.exited_at for e in db.session.scalars(sa.select(GateEntry))}
    assert exited == {"left": T + timedelta(hours=2), "inside": None, "van": None}
    assert [e.name for e in service.visitors_inside(site.id)] == ["还在"]
