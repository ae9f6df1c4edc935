"""Recurring events: series whose occurrences are events, keyed by their local start.

`events.series_id` + `events.occurrence_key` are unique together, so generating a series'
occurrences twice (two job runs, two replicas) makes each once. `is_cancelled` marks an
occurrence cancelled: out of calendars, never counted absent. `series_enrolments` are the
students expected at every occurrence, also those generated later.

Revision ID: 0016_event_series
Revises: 0015_attendance_history
Create Date: 2026-12-04 09:00:00

"""
from alembic import op
import sqlalchemy as sa

revision = '0016_event_series'
down_revision = '0015_attendance_history'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('event_series',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('event_type', sa.String(length=100), nullable=False),
    sa.Column('points', sa.Integer(), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('location', sa.String(length=200), nullable=False),
    sa.Column('timezone', sa.String(length=64), nullable=False),
    sa.Column('starts_local', sa.String(length=19), nullable=False),
    sa.Column('duration_seconds', sa.Integer(), nullable=False),
    sa.Column('rule', sa.String(length=300), nullable=False),
    sa.Column('is_capped', sa.Boolean(), nullable=False),
    sa.Column('generated_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('discord_channel_id', sa.String(length=32), nullable=True),
    sa.Column('source', sa.String(length=100), nullable=True),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('split_from_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['created_by_id'], ['accounts.id'], name=op.f('fk_event_series_created_by_id_accounts'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['split_from_id'], ['event_series.id'], name=op.f('fk_event_series_split_from_id_event_series'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_event_series'))
    )
    op.create_table('series_enrolments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('series_id', sa.Integer(), nullable=False),
    sa.Column('student_id', sa.Integer(), nullable=False),
    sa.Column('source', sa.String(length=100), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['series_id'], ['event_series.id'], name=op.f('fk_series_enrolments_series_id_event_series'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['student_id'], ['students.id'], name=op.f('fk_series_enrolments_student_id_students'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_series_enrolments')),
    sa.UniqueConstraint('series_id', 'student_id', name=op.f('uq_series_enrolments_series_id_student_id'))
    )
    with op.batch_alter_table('series_enrolments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_series_enrolments_series_id'), ['series_id'], unique=False)

    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('series_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('occurrence_key', sa.String(length=19), nullable=True))
        batch_op.add_column(sa.Column('is_cancelled', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.create_index(batch_op.f('ix_events_series_id'), ['series_id'], unique=False)
        batch_op.create_unique_constraint(batch_op.f('uq_events_series_id_occurrence_key'), ['series_id', 'occurrence_key'])
        batch_op.create_foreign_key(batch_op.f('fk_events_series_id_event_series'), 'event_series', ['series_id'], ['id'], ondelete='SET NULL')


def downgrade():
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_events_series_id_event_series'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('uq_events_series_id_occurrence_key'), type_='unique')
        batch_op.drop_index(batch_op.f('ix_events_series_id'))
        batch_op.drop_column('is_cancelled')
        batch_op.drop_column('occurrence_key')
        batch_op.drop_column('series_id')

    with op.batch_alter_table('series_enrolments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_series_enrolments_series_id'))

    op.drop_table('series_enrolments')
    op.drop_table('event_series')
