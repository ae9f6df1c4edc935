"""Guarded rate limits counted in the database when REDIS_URL is unset, so every worker and
replica counts the same failed logins, wrong keys and wrong admin passwords.

Revision ID: 0013_rate_limit_hits
Revises: 0012_account_sessions
Create Date: 2026-12-03 16:10:00

"""
from alembic import op
import sqlalchemy as sa

revision = '0013_rate_limit_hits'
down_revision = '0012_account_sessions'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('rate_limit_hits',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=255), nullable=False),
    sa.Column('hit_at', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_rate_limit_hits'))
    )
    with op.batch_alter_table('rate_limit_hits', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_rate_limit_hits_hit_at'), ['hit_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_rate_limit_hits_key'), ['key'], unique=False)


def downgrade():
    op.drop_table('rate_limit_hits')
