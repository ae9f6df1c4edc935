"""Signed-in browsers as rows the server can revoke (the dashboard's sessions).

Sessions issued before this version lived only in the signed cookie; they end with it, and
admins sign in again once.

Revision ID: 0012_account_sessions
Revises: 0011_accounts_apart_from_people
Create Date: 2026-12-03 16:00:00

"""
from alembic import op
import sqlalchemy as sa

revision = '0012_account_sessions'
down_revision = '0011_accounts_apart_from_people'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('account_sessions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('token_sha256', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_account_sessions_account_id_accounts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_account_sessions')),
    sa.UniqueConstraint('token_sha256', name=op.f('uq_account_sessions_token_sha256'))
    )
    with op.batch_alter_table('account_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_account_sessions_account_id'), ['account_id'], unique=False)


def downgrade():
    op.drop_table('account_sessions')
