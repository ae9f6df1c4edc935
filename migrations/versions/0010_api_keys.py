"""Integration API keys, stored as SHA-256 hashes.

Revision ID: 0010_api_keys
Revises: 0009_outbound_webhooks
Create Date: 2026-12-02 03:30:00

"""
from alembic import op
import sqlalchemy as sa

revision = '0010_api_keys'
down_revision = '0009_outbound_webhooks'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('api_keys',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('key_sha256', sa.String(length=64), nullable=False),
    sa.Column('hint', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_keys')),
    sa.UniqueConstraint('key_sha256', name=op.f('uq_api_keys_key_sha256')),
    sa.UniqueConstraint('name', name=op.f('uq_api_keys_name'))
    )


def downgrade():
    op.drop_table('api_keys')
