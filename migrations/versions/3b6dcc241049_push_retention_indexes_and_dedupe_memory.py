"""push: retention indexes and the dedupe memory of deleted events

Revision ID: 3b6dcc241049
Revises: 0b054822a464
Create Date: 2026-11-24 04:45:00.000000

"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "3b6dcc241049"
down_revision = "0b054822a464"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "push_dedupe",
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("dedupe_key", sa.String(length=200), nullable=False),
        sa.Column("raised_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organisation.id"], name=op.f("fk_push_dedupe_org_id_organisation")
        ),
        sa.PrimaryKeyConstraint("org_id", "dedupe_key", name=op.f("pk_push_dedupe")),
    )
    with op.batch_alter_table("push_delivery", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_push_delivery_created_at"), ["created_at"], unique=False
        )
    with op.batch_alter_table("push_event", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_push_event_created_at"), ["created_at"], unique=False)
    with op.batch_alter_table("push_notification", schema=None) as batch_op:
        batch_op.create_index(
            "ix_push_notification_read_created", ["read_at", "created_at"], unique=False
        )


def downgrade():
    with op.batch_alter_table("push_notification", schema=None) as batch_op:
        batch_op.drop_index("ix_push_notification_read_created")
    with op.batch_alter_table("push_event", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_push_event_created_at"))
    with op.batch_alter_table("push_delivery", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_push_delivery_created_at"))
    op.drop_table("push_dedupe")
