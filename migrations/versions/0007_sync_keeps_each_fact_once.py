"""Sync keeps each fact once: enrolments are who is expected where, the roster is a
table, and a user's refresh keeps only its bookkeeping.

Carried over: every `checkin_sessions` row becomes a `user_refreshes` row (refreshed_at,
ok, error, reported_state); every session in its JSON list that had no enrolment gets one
(source `checkout`); the `autoCheckinUsers` list in the state store becomes
`checkout_roster`, in its order, for the users that are students. The JSON copies are
then dropped. A downgrade rebuilds them (the session lists empty until the next refresh).

Revision ID: 0007_sync_keeps_each_fact_once
Revises: 0006_job_health
Create Date: 2026-12-02 03:00:00

"""
import json
from datetime import datetime, timezone

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0007_sync_keeps_each_fact_once'
down_revision = '0006_job_health'
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')
UTC_TIME = sa.DateTime(timezone=True)


def _load(value):
    """A JSON column's value: decoded by PostgreSQL's driver, a string from SQLite's."""
    return json.loads(value) if isinstance(value, (str, bytes)) else value


def upgrade():
    op.create_table('checkout_roster',
    sa.Column('student_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('listed_at', UTC_TIME, nullable=False),
    sa.ForeignKeyConstraint(['student_id'], ['students.id'], name=op.f('fk_checkout_roster_student_id_students'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('student_id', name=op.f('pk_checkout_roster'))
    )
    with op.batch_alter_table('checkout_roster', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_checkout_roster_position'), ['position'], unique=False)
    op.create_table('user_refreshes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('student_id', sa.Integer(), nullable=False),
    sa.Column('refreshed_at', UTC_TIME, nullable=True),
    sa.Column('ok', sa.Boolean(), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('reported_state', sa.String(length=50), nullable=True),
    sa.ForeignKeyConstraint(['student_id'], ['students.id'], name=op.f('fk_user_refreshes_student_id_students'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_user_refreshes')),
    sa.UniqueConstraint('student_id', name=op.f('uq_user_refreshes_student_id'))
    )

    connection = op.get_bind()
    now = datetime.now(timezone.utc)
    connection.execute(sa.text(
        "INSERT INTO user_refreshes (student_id, refreshed_at, ok, error, reported_state) "
        "SELECT student_id, refreshed_at, ok, error, reported_state FROM checkin_sessions"
    ))
    enrolled = set(connection.execute(sa.text("SELECT student_id, event_id FROM enrolments")))
    events = {row[0] for row in connection.execute(sa.text("SELECT id FROM events"))}
    missing = []
    for student_id, sessions in connection.execute(
        sa.text("SELECT student_id, sessions FROM checkin_sessions")
    ):
        for entry in _load(sessions) or []:
            pair = (student_id, entry.get("event_id"))
            if pair[1] in events and pair not in enrolled:
                enrolled.add(pair)
                missing.append({"s": pair[0], "e": pair[1], "now": now})
    if missing:
        connection.execute(
            sa.text(
                "INSERT INTO enrolments (student_id, event_id, source, created_at) "
                "VALUES (:s, :e, 'checkout', :now)"
            ).bindparams(sa.bindparam("now", type_=UTC_TIME)),
            missing,
        )

    listed = connection.execute(
        sa.text("SELECT value FROM state_entries WHERE key = 'autoCheckinUsers'")
    ).scalar()
    students = dict(connection.execute(
        sa.text("SELECT email_key, id FROM students WHERE email_key IS NOT NULL")
    ).all())
    roster = {}
    for user in _load(listed) or []:
        email = user.get("email") if isinstance(user, dict) else None
        student_id = students.get(email.strip().lower()) if isinstance(email, str) else None
        if student_id is not None and student_id not in roster:
            roster[student_id] = len(roster)
    if roster:
        connection.execute(
            sa.text(
                "INSERT INTO checkout_roster (student_id, position, listed_at) "
                "VALUES (:s, :p, :now)"
            ).bindparams(sa.bindparam("now", type_=UTC_TIME)),
            [{"s": s, "p": p, "now": now} for s, p in roster.items()],
        )
    connection.execute(sa.text("DELETE FROM state_entries WHERE key = 'autoCheckinUsers'"))
    op.drop_table('checkin_sessions')


def downgrade():
    op.create_table('checkin_sessions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('student_id', sa.Integer(), nullable=False),
    sa.Column('refreshed_at', UTC_TIME, nullable=True),
    sa.Column('ok', sa.Boolean(), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('sessions', JSON, nullable=False),
    sa.Column('reported_state', sa.String(length=50), nullable=True),
    sa.ForeignKeyConstraint(['student_id'], ['students.id'], name=op.f('fk_checkin_sessions_student_id_students'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_checkin_sessions')),
    sa.UniqueConstraint('student_id', name=op.f('uq_checkin_sessions_student_id'))
    )
    connection = op.get_bind()
    connection.execute(sa.text(
        "INSERT INTO checkin_sessions (student_id, refreshed_at, ok, error, sessions, "
        "reported_state) SELECT student_id, refreshed_at, ok, error, '[]', reported_state "
        "FROM user_refreshes"
    ))
    users = [
        {k: v for k, v in (("email", email), ("student_identifier", identifier),
                           ("first_name", first), ("last_name", last)) if v}
        for email, identifier, first, last in connection.execute(sa.text(
            "SELECT s.email, s.identifier, s.first_name, s.last_name FROM checkout_roster r "
            "JOIN students s ON s.id = r.student_id ORDER BY r.position"
        ))
    ]
    connection.execute(
        sa.text(
            "INSERT INTO state_entries (key, value, updated_at) VALUES ('autoCheckinUsers', :v, :now)"
        ).bindparams(sa.bindparam("v", type_=JSON), sa.bindparam("now", type_=UTC_TIME)),
        {"v": users, "now": datetime.now(timezone.utc)},
    )
    op.drop_table('user_refreshes')
    with op.batch_alter_table('checkout_roster', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_checkout_roster_position'))
    op.drop_table('checkout_roster')
