"""Suspicious check-ins: findings, where personal-door check-ins came from, and the
address of every webhook request.

`findings.dedupe_key` is unique, so a detector pass that sees a pattern again adds to its
finding instead of making a second one. `check_in_origins` has one row per check-in
through the web or Discord doors; `webhook_requests.client_address` is empty for requests
logged before this migration.

Revision ID: 0017_findings
Revises: 0016_event_series
Create Date: 2026-12-04 19:00:00

"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0017_findings'
down_revision = '0016_event_series'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('findings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('rule', sa.String(length=40), nullable=False),
    sa.Column('subject', sa.String(length=200), nullable=False),
    sa.Column('dedupe_key', sa.String(length=300), nullable=False),
    sa.Column('first_seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('evidence', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('attendance_ids', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('decided_by', sa.String(length=200), nullable=True),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('decision_reason', sa.Text(), nullable=True),
    sa.Column('voided_ids', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_findings')),
    sa.UniqueConstraint('dedupe_key', name=op.f('uq_findings_dedupe_key'))
    )
    with op.batch_alter_table('findings', schema=None) as batch_op:
        batch_op.create_index('ix_findings_rule_subject_last_seen_at', ['rule', 'subject', 'last_seen_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_findings_state'), ['state'], unique=False)

    op.create_table('check_in_origins',
    sa.Column('attendance_id', sa.Integer(), nullable=False),
    sa.Column('door', sa.String(length=20), nullable=False),
    sa.Column('client', sa.String(length=100), nullable=False),
    sa.Column('user_agent', sa.String(length=200), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=True),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['attendance_id'], ['attendances.id'], name=op.f('fk_check_in_origins_attendance_id_attendances'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('attendance_id', name=op.f('pk_check_in_origins'))
    )
    with op.batch_alter_table('check_in_origins', schema=None) as batch_op:
        batch_op.create_index('ix_check_in_origins_client_recorded_at', ['client', 'recorded_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_check_in_origins_recorded_at'), ['recorded_at'], unique=False)

    with op.batch_alter_table('webhook_requests', schema=None) as batch_op:
        batch_op.add_column(sa.Column('client_address', sa.String(length=100), nullable=True))



def downgrade():
    with op.batch_alter_table('webhook_requests', schema=None) as batch_op:
        batch_op.drop_column('client_address')

    with op.batch_alter_table('check_in_origins', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_check_in_origins_recorded_at'))
        batch_op.drop_index('ix_check_in_origins_client_recorded_at')

    op.drop_table('check_in_origins')
    with op.batch_alter_table('findings', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_findings_state'))
        batch_op.drop_index('ix_findings_rule_subject_last_seen_at')

    op.drop_table('findings')
