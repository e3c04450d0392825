"""performance: indexes so cost does not grow with history

Revision ID: 6b13cfb6abb0
Revises: 3482cfab13de
Create Date: 2026-11-23 22:25:00.000000

Found with bench/history_cost.py (EXPLAIN ANALYZE at 1,000,000 records); plans in
docs/performance.md.
- delivery_proof: the KPI page's "discrepant proofs" (a correction or goods not ok) read every
  proof ever made; a partial index holds only those.
- complaint (org, logged_at): the KPI page's complaints of the month.
- complaint (org, reply_by) of open complaints only: the today board's open complaints,
  soonest deadline first.
- patrol_incident (site, closed_at): the today board's open incidents of a site.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '6b13cfb6abb0'
down_revision = "3482cfab13de"
branch_labels = None
depends_on = None

DISCREPANT = sa.text("corrects_id IS NOT NULL OR condition <> 'ok'")
OPEN = sa.text("state NOT IN ('closed', 'invalid_closed')")


def upgrade():
    with op.batch_alter_table('delivery_proof', schema=None) as batch_op:
        batch_op.create_index(
            'ix_delivery_proof_discrepant', ['stop_id'], unique=False,
            postgresql_where=DISCREPANT, sqlite_where=DISCREPANT,
        )
    with op.batch_alter_table('complaint', schema=None) as batch_op:
        batch_op.create_index('ix_complaint_org_logged', ['org_id', 'logged_at'], unique=False)
        batch_op.create_index(
            'ix_complaint_open_reply_by', ['org_id', 'reply_by'], unique=False,
            postgresql_where=OPEN, sqlite_where=OPEN,
        )
    with op.batch_alter_table('patrol_incident', schema=None) as batch_op:
        batch_op.create_index(
            'ix_patrol_incident_site_closed', ['site_id', 'closed_at'], unique=False
        )


def downgrade():
    with op.batch_alter_table('patrol_incident', schema=None) as batch_op:
        batch_op.drop_index('ix_patrol_incident_site_closed')
    with op.batch_alter_table('complaint', schema=None) as batch_op:
        batch_op.drop_index('ix_complaint_open_reply_by')
        batch_op.drop_index('ix_complaint_org_logged')
    with op.batch_alter_table('delivery_proof', schema=None) as batch_op:
        batch_op.drop_index('ix_delivery_proof_discrepant')
