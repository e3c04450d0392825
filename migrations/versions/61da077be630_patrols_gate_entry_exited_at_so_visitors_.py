"""patrols: gate entries keep the time of their exit, so "visitors inside" reads open ones only

Revision ID: 61da077be630
Revises: 3b6dcc241049
Create Date: 2026-11-24 07:00:00.000000

The today board's and the gate page's "visitors still inside" joined every entry the site ever
had to every exit (docs/performance.md, "Still growing with history"). ``exited_at`` is set
with the exit, and a partial index holds only the entries without one. Existing exits are
copied into it. Two indexes for the KPI month page: a guard's shifts by guard and start (in
place of the guard alone), and complaints by the time they were first known.
"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "61da077be630"
down_revision = "3b6dcc241049"
branch_labels = None
depends_on = None

STILL_INSIDE = sa.text("exited_at IS NULL")


def upgrade():
    with op.batch_alter_table("patrol_gate_entry", schema=None) as batch_op:
        batch_op.add_column(sa.Column("exited_at", sa.DateTime(timezone=True), nullable=True))
    op.execute(
        "UPDATE patrol_gate_entry SET exited_at = ("
        " SELECT patrol_gate_exit.at FROM patrol_gate_exit"
        " WHERE patrol_gate_exit.entry_id = patrol_gate_entry.id)"
        " WHERE EXISTS ("
        " SELECT 1 FROM patrol_gate_exit WHERE patrol_gate_exit.entry_id = patrol_gate_entry.id)"
    )
    with op.batch_alter_table("patrol_gate_entry", schema=None) as batch_op:
        batch_op.create_index(
            "ix_patrol_gate_entry_inside",
            ["site_id", "entry_kind"],
            unique=False,
            postgresql_where=STILL_INSIDE,
            sqlite_where=STILL_INSIDE,
        )

    # A guard's shifts of a month (the KPI page) were found among all the guard's shifts ever.
    with op.batch_alter_table("patrol_shift", schema=None) as batch_op:
        batch_op.drop_index("ix_patrol_shift_guard_id")
        batch_op.create_index("ix_patrol_shift_guard_time", ["guard_id", "starts_at"], unique=False)
    # The complaints first known in a month (the KPI page's rate by unit) read them all.
    with op.batch_alter_table("complaint", schema=None) as batch_op:
        batch_op.create_index("ix_complaint_org_known", ["org_id", "first_known_at"], unique=False)


def downgrade():
    with op.batch_alter_table("complaint", schema=None) as batch_op:
        batch_op.drop_index("ix_complaint_org_known")
    with op.batch_alter_table("patrol_shift", schema=None) as batch_op:
        batch_op.drop_index("ix_patrol_shift_guard_time")
        batch_op.create_index("ix_patrol_shift_guard_id", ["guard_id"], unique=False)
    with op.batch_alter_table("patrol_gate_entry", schema=None) as batch_op:
        batch_op.drop_index("ix_patrol_gate_entry_inside")
        batch_op.drop_column("exited_at")
