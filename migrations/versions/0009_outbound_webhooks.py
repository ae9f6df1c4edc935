"""Outbound webhooks: subscriptions, the transactional outbox, deliveries and attempts.

Revision ID: 0009_outbound_webhooks
Revises: 0008_calendar_feeds
Create Date: 2026-12-02 01:43:43

"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision = '0009_outbound_webhooks'
down_revision = '0008_calendar_feeds'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('outbound_outbox',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('event_type', sa.String(length=40), nullable=False),
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('items', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbound_outbox')),
    sqlite_autoincrement=True,  # a taken (deleted) row's id is never reused
    )
    op.create_table('outbound_subscriptions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('url', sa.String(length=2048), nullable=False),
    sa.Column('event_type', sa.String(length=40), nullable=False),
    sa.Column('secret', sa.String(length=255), nullable=False),
    sa.Column('headers', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('is_active', sa.Boolean(), nullable=False),
    sa.Column('retry_count', sa.Integer(), nullable=False),
    sa.Column('timeout_seconds', sa.Double(), nullable=False),
    sa.Column('consecutive_failures', sa.Integer(), nullable=False),
    sa.Column('disabled_reason', sa.String(length=300), nullable=True),
    sa.Column('disabled_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revision', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbound_subscriptions'))
    )
    with op.batch_alter_table('outbound_subscriptions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_outbound_subscriptions_event_type'), ['event_type'], unique=False)

    op.create_table('outbound_deliveries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('subscription_id', sa.Integer(), nullable=False),
    sa.Column('message_id', sa.String(length=40), nullable=False),
    sa.Column('event_type', sa.String(length=40), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('max_attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('claimed_by', sa.String(length=200), nullable=True),
    sa.Column('claimed_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_status_code', sa.Integer(), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('completed_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['subscription_id'], ['outbound_subscriptions.id'], name=op.f('fk_outbound_deliveries_subscription_id_outbound_subscriptions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbound_deliveries')),
    sa.UniqueConstraint('message_id', name=op.f('uq_outbound_deliveries_message_id'))
    )
    with op.batch_alter_table('outbound_deliveries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_outbound_deliveries_completed_at'), ['completed_at'], unique=False)
        batch_op.create_index('ix_outbound_deliveries_status_next_attempt_at', ['status', 'next_attempt_at'], unique=False)
        batch_op.create_index('ix_outbound_deliveries_subscription_id_id', ['subscription_id', 'id'], unique=False)

    op.create_table('outbound_attempts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('delivery_id', sa.Integer(), nullable=False),
    sa.Column('attempt', sa.Integer(), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('duration_ms', sa.Double(), nullable=False),
    sa.Column('status_code', sa.Integer(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('response_body', sa.Text(), nullable=True),
    sa.Column('sender', sa.String(length=200), nullable=False),
    sa.ForeignKeyConstraint(['delivery_id'], ['outbound_deliveries.id'], name=op.f('fk_outbound_attempts_delivery_id_outbound_deliveries'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbound_attempts'))
    )
    with op.batch_alter_table('outbound_attempts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_outbound_attempts_delivery_id'), ['delivery_id'], unique=False)



def downgrade():
    with op.batch_alter_table('outbound_attempts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outbound_attempts_delivery_id'))

    op.drop_table('outbound_attempts')
    with op.batch_alter_table('outbound_deliveries', schema=None) as batch_op:
        batch_op.drop_index('ix_outbound_deliveries_subscription_id_id')
        batch_op.drop_index('ix_outbound_deliveries_status_next_attempt_at')
        batch_op.drop_index(batch_op.f('ix_outbound_deliveries_completed_at'))

    op.drop_table('outbound_deliveries')
    with op.batch_alter_table('outbound_subscriptions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outbound_subscriptions_event_type'))

    op.drop_table('outbound_subscriptions')
    op.drop_table('outbound_outbox')
