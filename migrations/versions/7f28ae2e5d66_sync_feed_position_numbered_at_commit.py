"""sync: feed position numbered at commit, so the pull cursor never skips a late commit

Revision ID: 7f28ae2e5d66
Revises: c7a3d1e9f2b4
Create Date: 2026-11-24 01:00:00.000000

``sync_change.seq`` is numbered at INSERT but becomes visible at COMMIT, so on PostgreSQL a
lower number can appear after a higher one was read. ``pos`` is numbered at COMMIT, in commit
order, and the pull cursor runs on it:

- PostgreSQL: a DEFERRABLE INITIALLY DEFERRED constraint trigger runs once per new row when
  the transaction commits. It takes a transaction-scoped advisory lock (held until the
  transaction has ended, i.e. until after its rows became visible) and only then takes the next
  number. So a transaction can only number its rows after every earlier numbered one has
  committed (or rolled back): number order == commit order == visibility order. The sequence
  has CACHE 1 (the default): a per-session cache would hand numbers out of order.
- SQLite: one writer at a time, so insert order is already commit order: ``pos = seq``.

Existing rows get ``pos = seq`` and the sequence starts above every ``seq`` ever handed out, so
the cursors phones hold (old ``seq`` values) stay valid.
"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "7f28ae2e5d66"
down_revision = "c7a3d1e9f2b4"
branch_labels = None
depends_on = None

# The advisory lock that orders publishing commits: "sync" as an integer (the audit trail
# uses 0x61756469, "audi"; fieldapp/audit/service.py).
FEED_LOCK_KEY = 0x73796E63

PG_UP = [
    # No publisher may insert while the existing rows are numbered.
    "LOCK TABLE sync_change IN EXCLUSIVE MODE",
    "UPDATE sync_change SET pos = seq",
    "CREATE SEQUENCE sync_change_pos_seq AS bigint CACHE 1 OWNED BY sync_change.pos",
    """SELECT setval('sync_change_pos_seq', 1 + greatest(
           coalesce((SELECT max(seq) FROM sync_change), 0),
           coalesce(pg_sequence_last_value(
               pg_get_serial_sequence('sync_change', 'seq')::regclass), 0)), false)""",
    f"""CREATE FUNCTION sync_change_number() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Held until this transaction has committed: the next one waits here for its numbers.
    PERFORM pg_advisory_xact_lock({FEED_LOCK_KEY});
    UPDATE sync_change SET pos = nextval('sync_change_pos_seq') WHERE seq = NEW.seq;
    RETURN NULL;
END
$$""",
    """CREATE CONSTRAINT TRIGGER sync_change_number AFTER INSERT ON sync_change
       DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION sync_change_number()""",
]
SQLITE_UP = [
    "UPDATE sync_change SET pos = seq",
    """CREATE TRIGGER sync_change_number AFTER INSERT ON sync_change FOR EACH ROW
       WHEN NEW.pos IS NULL
       BEGIN UPDATE sync_change SET pos = NEW.seq WHERE seq = NEW.seq; END""",
]


def upgrade():
    postgres = op.get_bind().dialect.name == "postgresql"
    with op.batch_alter_table("sync_change", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("pos", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True)
        )
    for statement in PG_UP if postgres else SQLITE_UP:
        op.execute(statement)
    with op.batch_alter_table("sync_change", schema=None) as batch_op:
        batch_op.drop_index("ix_sync_change_org_seq")
        batch_op.create_index("ix_sync_change_org_pos", ["org_id", "pos"], unique=True)


def downgrade():
    postgres = op.get_bind().dialect.name == "postgresql"
    op.execute("DROP TRIGGER sync_change_number" + (" ON sync_change" if postgres else ""))
    if postgres:
        op.execute("DROP FUNCTION sync_change_number()")
    with op.batch_alter_table("sync_change", schema=None) as batch_op:
        batch_op.drop_index("ix_sync_change_org_pos")
        batch_op.create_index("ix_sync_change_org_seq", ["org_id", "seq"], unique=False)
        batch_op.drop_column("pos")  # on PostgreSQL, drops sync_change_pos_seq with it
