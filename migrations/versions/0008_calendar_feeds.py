"""Calendar feeds: secret URLs that calendar apps poll (only the token's hash is kept).

Revision ID: 0008_calendar_feeds
Revises: 0007_sync_keeps_each_fact_once
Create Date: 2026-12-02 03:30:00

"""
from alembic import op
import sqlalchemy as sa

revision = '0008_calendar_feeds'
down_revision = '0007_sync_keeps_each_fact_once'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('calendar_feeds',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('token_sha256', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_calendar_feeds')),
    sa.UniqueConstraint('token_sha256', name=op.f('uq_calendar_feeds_token_sha256'))
    )


def downgrade():
    op.drop_table('calendar_feeds')
