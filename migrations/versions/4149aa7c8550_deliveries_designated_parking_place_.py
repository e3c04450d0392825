"""deliveries: designated parking place, parking distance at day close, customer ratings

Revision ID: 4149aa7c8550
Revises: 29371175b964
Create Date: 2026-11-23 22:20:52.797855

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "4149aa7c8550"
down_revision = "29371175b964"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "delivery_rating",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("stop_id", sa.String(length=36), nullable=False),
        sa.Column("stars", sa.Integer(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["org_id"], ["organisation.id"]),
        sa.ForeignKeyConstraint(["stop_id"], ["delivery_stop.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("stop_id"),
    )
    with op.batch_alter_table("delivery_rating", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_delivery_rating_org_id"), ["org_id"], unique=False)

    with op.batch_alter_table("delivery_day_close", schema=None) as batch_op:
        batch_op.add_column(sa.Column("parking_distance_m", sa.Integer(), nullable=True))

    with op.batch_alter_table("delivery_route", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("parking_name", sa.String(length=80), nullable=False, server_default="")
        )
        batch_op.add_column(sa.Column("parking_latitude", sa.Double(), nullable=True))
        batch_op.add_column(sa.Column("parking_longitude", sa.Double(), nullable=True))
        batch_op.add_column(
            sa.Column("parking_radius_m", sa.Integer(), nullable=False, server_default="150")
        )


def downgrade():
    with op.batch_alter_table("delivery_rating", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_delivery_rating_org_id"))
    op.drop_table("delivery_rating")
    with op.batch_alter_table("delivery_route", schema=None) as batch_op:
        batch_op.drop_column("parking_radius_m")
        batch_op.drop_column("parking_longitude")
        batch_op.drop_column("parking_latitude")
        batch_op.drop_column("parking_name")

    with op.batch_alter_table("delivery_day_close", schema=None) as batch_op:
        batch_op.drop_column("parking_distance_m")
