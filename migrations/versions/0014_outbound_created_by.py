"""Who created each outbound subscription: an integration key sees the full receiver URL
only of its own, and changes only its own.

Revision ID: 0014_outbound_created_by
Revises: 0013_rate_limit_hits
Create Date: 2026-12-03 17:00:00

"""
from alembic import op
import sqlalchemy as sa

revision = '0014_outbound_created_by'
down_revision = '0013_rate_limit_hits'
branch_labels = None
depends_on = None


def upgrade():
    # Rows from before are nobody's: only the CHECKOUT_API_KEY holder and web admins see
    # their full URL and may change them.
    with op.batch_alter_table('outbound_subscriptions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('created_by', sa.String(length=64), nullable=True))


def downgrade():
    with op.batch_alter_table('outbound_subscriptions', schema=None) as batch_op:
        batch_op.drop_column('created_by')
