"""Corrections and a tamper-evident history: attendance versions, voids, explicit statuses,
marks without a check-in, the hash-chained `attendance_history`, excuses, and people who
are deactivated instead of deleted (attendances no longer cascade away with a person or an
event).

Every attendance stored before gets its first history entry (action `marked`, actor
`migration`), hashed exactly as the service hashes one (`attendance.history`, format 1; the
rule is copied here because a migration must not change when the code does).

Revision ID: 0015_attendance_history
Revises: 0014_outbound_created_by
Create Date: 2026-12-04 02:00:00

"""
import hashlib
import json
from datetime import datetime, timezone

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0015_attendance_history'
down_revision = '0014_outbound_created_by'
branch_labels = None
depends_on = None

UTC_TIME = sa.DateTime(timezone=True)
JSON_VALUE = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')
GENESIS = '0' * 64
BATCH = 5000


def _stamp(moment):
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).strftime('%Y-%m-%dT%H:%M:%S.%fZ')


def _first_entry(row, recorded_at):
    after = {
        'student_id': row.student_id,
        'status': row.status,
        'checked_in_at': _stamp(row.checked_in_at),
        'voided': False,
        'status_explicit': False,
    }
    content = {
        'format': 1,
        'attendance_id': row.id,
        'seq': 1,
        'event_id': row.event_id,
        'recorded_at': _stamp(recorded_at),
        'action': 'marked',
        'before': None,
        'after': after,
        'actor': 'migration',
        'reason': 'recorded before the history was kept',
    }
    canonical = json.dumps(content, sort_keys=True, separators=(',', ':'), ensure_ascii=False)
    digest = hashlib.sha256(GENESIS.encode() + b'\n' + canonical.encode()).hexdigest()
    return {
        'attendance_id': row.id,
        'seq': 1,
        'event_id': row.event_id,
        'recorded_at': recorded_at,
        'action': 'marked',
        'before': None,
        'after': after,
        'actor': 'migration',
        'reason': content['reason'],
        'previous_hash': GENESIS,
        'entry_hash': digest,
    }


def upgrade():
    with op.batch_alter_table('students', schema=None) as batch_op:
        batch_op.add_column(sa.Column('deactivated_at', UTC_TIME, nullable=True))

    with op.batch_alter_table('attendances', schema=None) as batch_op:
        batch_op.alter_column('checked_in_at', existing_type=UTC_TIME, nullable=True)
        batch_op.add_column(
            sa.Column('version', sa.Integer(), server_default=sa.text('1'), nullable=False)
        )
        batch_op.add_column(sa.Column('voided_at', UTC_TIME, nullable=True))
        batch_op.add_column(
            sa.Column('status_explicit', sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.add_column(sa.Column('updated_at', UTC_TIME, nullable=True))
        batch_op.drop_constraint('fk_attendances_student_id_students', type_='foreignkey')
        batch_op.drop_constraint('fk_attendances_event_id_events', type_='foreignkey')
        batch_op.create_foreign_key(
            'fk_attendances_student_id_students', 'students', ['student_id'], ['id'],
            ondelete='RESTRICT',
        )
        batch_op.create_foreign_key(
            'fk_attendances_event_id_events', 'events', ['event_id'], ['id'],
            ondelete='RESTRICT',
        )

    history = op.create_table(
        'attendance_history',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('attendance_id', sa.Integer(), nullable=False),
        sa.Column('seq', sa.Integer(), nullable=False),
        sa.Column('event_id', sa.Integer(), nullable=False),
        sa.Column('recorded_at', UTC_TIME, nullable=False),
        sa.Column('action', sa.String(length=32), nullable=False),
        sa.Column('before', JSON_VALUE, nullable=True),
        sa.Column('after', JSON_VALUE, nullable=False),
        sa.Column('actor', sa.String(length=200), nullable=False),
        sa.Column('reason', sa.Text(), nullable=True),
        sa.Column('previous_hash', sa.String(length=64), nullable=False),
        sa.Column('entry_hash', sa.String(length=64), nullable=False),
        # No foreign key to attendances: PostgreSQL would check one per entry, with a row
        # lock, on the check-in path; `flask audit verify` checks the link instead.
        sa.PrimaryKeyConstraint('id', name=op.f('pk_attendance_history')),
        sa.UniqueConstraint(
            'attendance_id', 'seq', name=op.f('uq_attendance_history_attendance_id_seq')
        ),
    )
    op.create_index(
        op.f('ix_attendance_history_event_id'), 'attendance_history', ['event_id'], unique=False
    )

    op.create_table(
        'excuses',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('student_id', sa.Integer(), nullable=False),
        sa.Column('event_id', sa.Integer(), nullable=False),
        sa.Column('reason', sa.Text(), nullable=False),
        sa.Column('state', sa.String(length=16), nullable=False),
        sa.Column('submitted_by', sa.String(length=200), nullable=False),
        sa.Column('submitted_at', UTC_TIME, nullable=False),
        sa.Column('decided_by', sa.String(length=200), nullable=True),
        sa.Column('decided_at', UTC_TIME, nullable=True),
        sa.Column('decision_reason', sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ['event_id'], ['events.id'], name=op.f('fk_excuses_event_id_events'),
            ondelete='RESTRICT',
        ),
        sa.ForeignKeyConstraint(
            ['student_id'], ['students.id'], name=op.f('fk_excuses_student_id_students'),
            ondelete='RESTRICT',
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_excuses')),
        sa.UniqueConstraint('student_id', 'event_id', name=op.f('uq_excuses_student_id_event_id')),
    )
    op.create_index(op.f('ix_excuses_event_id'), 'excuses', ['event_id'], unique=False)
    op.create_index(op.f('ix_excuses_state'), 'excuses', ['state'], unique=False)

    attendances = sa.table(
        'attendances',
        sa.column('id', sa.Integer),
        sa.column('student_id', sa.Integer),
        sa.column('event_id', sa.Integer),
        sa.column('status', sa.String),
        sa.column('checked_in_at', UTC_TIME),
    )
    connection = op.get_bind()
    recorded_at = datetime.now(timezone.utc)
    last_id = 0
    while True:
        rows = connection.execute(
            sa.select(attendances)
            .where(attendances.c.id > last_id)
            .order_by(attendances.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            break
        connection.execute(history.insert(), [_first_entry(row, recorded_at) for row in rows])
        last_id = rows[-1].id


def downgrade():
    # The history and the excuses go; a voided check-in or a mark without one cannot be said
    # in the old schema, so those rows go too (the history that explained them is gone).
    op.drop_index(op.f('ix_excuses_state'), table_name='excuses')
    op.drop_index(op.f('ix_excuses_event_id'), table_name='excuses')
    op.drop_table('excuses')
    op.drop_index(op.f('ix_attendance_history_event_id'), table_name='attendance_history')
    op.drop_table('attendance_history')
    op.execute(
        "DELETE FROM attendances WHERE voided_at IS NOT NULL OR checked_in_at IS NULL "
        "OR status NOT IN ('present', 'late')"
    )
    with op.batch_alter_table('attendances', schema=None) as batch_op:
        batch_op.drop_constraint('fk_attendances_student_id_students', type_='foreignkey')
        batch_op.drop_constraint('fk_attendances_event_id_events', type_='foreignkey')
        batch_op.create_foreign_key(
            'fk_attendances_student_id_students', 'students', ['student_id'], ['id'],
            ondelete='CASCADE',
        )
        batch_op.create_foreign_key(
            'fk_attendances_event_id_events', 'events', ['event_id'], ['id'],
            ondelete='CASCADE',
        )
        batch_op.drop_column('updated_at')
        batch_op.drop_column('status_explicit')
        batch_op.drop_column('voided_at')
        batch_op.drop_column('version')
        batch_op.alter_column('checked_in_at', existing_type=UTC_TIME, nullable=False)
    with op.batch_alter_table('students', schema=None) as batch_op:
        batch_op.drop_column('deactivated_at')
