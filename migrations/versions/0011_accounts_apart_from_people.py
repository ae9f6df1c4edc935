"""Accounts apart from people: logins, Discord users and admins move to `accounts`.

Carried over: every `students` row with a password or a Discord id becomes an account with
the same id (so tokens and dashboard sessions issued before keep working: they name the
id and carry the token key, both kept), its role, token key, Discord id and username,
active flag and times, linked to its row as its person. A row that was only a login (no
attendance, no enrolment, no roster place, no refresh record, made by registration)
stops being a person. A login's row that stays a person but never came from the roster
(made by registration, no identifier, not on the roster) loses its email: it was never
verified, and keeping it would let a scanner's check-ins for that email land on the
login. Event creators now point at accounts.

A downgrade folds the accounts back into their people (an account with no person gets a
row of its own, under its id when that is free) and restores the old columns.

Revision ID: 0011_accounts_apart_from_people
Revises: 0010_api_keys
Create Date: 2026-12-03 15:30:00

"""
from datetime import datetime, timezone

from alembic import op
import sqlalchemy as sa

revision = '0011_accounts_apart_from_people'
down_revision = '0010_api_keys'
branch_labels = None
depends_on = None

UTC_TIME = sa.DateTime(timezone=True)
LOGIN_SOURCES = ('web', 'discord')
OLD_IDENTITY = (
    'identifier_key IS NOT NULL OR email_key IS NOT NULL OR discord_user_id IS NOT NULL'
)

students = sa.table(
    'students',
    sa.column('id', sa.Integer),
    sa.column('identifier_key', sa.String),
    sa.column('email', sa.String),
    sa.column('email_key', sa.String),
    sa.column('first_name', sa.String),
    sa.column('last_name', sa.String),
    sa.column('source', sa.String),
    sa.column('password_hash', sa.String),
    sa.column('web_role', sa.String),
    sa.column('token_key', sa.String),
    sa.column('discord_user_id', sa.String),
    sa.column('discord_username', sa.String),
    sa.column('is_active', sa.Boolean),
    sa.column('is_admin', sa.Boolean),
    sa.column('created_at', UTC_TIME),
    sa.column('updated_at', UTC_TIME),
)
accounts = sa.table(
    'accounts',
    sa.column('id', sa.Integer),
    sa.column('email', sa.String),
    sa.column('email_key', sa.String),
    sa.column('name', sa.String),
    sa.column('password_hash', sa.String),
    sa.column('role', sa.String),
    sa.column('token_key', sa.String),
    sa.column('discord_user_id', sa.String),
    sa.column('discord_username', sa.String),
    sa.column('is_active', sa.Boolean),
    sa.column('last_login_at', UTC_TIME),
    sa.column('person_id', sa.Integer),
    sa.column('created_at', UTC_TIME),
    sa.column('updated_at', UTC_TIME),
)
# Every table whose rows make a student a person on the roster, not only a login.
PERSON_TABLES = ('attendances', 'enrolments', 'checkout_roster', 'user_refreshes')


def _used_ids(connection, table):
    return set(connection.execute(sa.text(f'SELECT DISTINCT student_id FROM {table}')).scalars())


def _reset_sequence(connection, table):
    """PostgreSQL: the next id after the ones copied in (SQLite takes max + 1 by itself)."""
    if connection.dialect.name == 'postgresql':
        connection.execute(sa.text(
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
            f"COALESCE((SELECT MAX(id) FROM {table}), 0) + 1, false)"
        ))


def upgrade():
    op.create_table('accounts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=True),
    sa.Column('email_key', sa.String(length=254), nullable=True),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('password_hash', sa.String(length=255), nullable=True),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('token_key', sa.String(length=64), nullable=True),
    sa.Column('discord_user_id', sa.String(length=32), nullable=True),
    sa.Column('discord_username', sa.String(length=100), nullable=True),
    sa.Column('is_active', sa.Boolean(), nullable=False),
    sa.Column('last_login_at', UTC_TIME, nullable=True),
    sa.Column('person_id', sa.Integer(), nullable=True),
    sa.Column('created_at', UTC_TIME, nullable=False),
    sa.Column('updated_at', UTC_TIME, nullable=False),
    sa.CheckConstraint('email_key IS NOT NULL OR discord_user_id IS NOT NULL', name=op.f('ck_accounts_has_login')),
    sa.CheckConstraint("role IN ('user', 'admin')", name=op.f('ck_accounts_known_role')),
    sa.ForeignKeyConstraint(['person_id'], ['students.id'], name=op.f('fk_accounts_person_id_students'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_accounts')),
    sa.UniqueConstraint('discord_user_id', name=op.f('uq_accounts_discord_user_id')),
    sa.UniqueConstraint('email_key', name=op.f('uq_accounts_email_key'))
    )
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_accounts_person_id'), ['person_id'], unique=False)

    connection = op.get_bind()
    logins = connection.execute(
        sa.select(students).where(
            sa.or_(students.c.password_hash.isnot(None), students.c.discord_user_id.isnot(None))
        ).order_by(students.c.id)
    ).all()
    is_person = set()
    for table in PERSON_TABLES:
        is_person |= _used_ids(connection, table)
    on_roster = _used_ids(connection, 'checkout_roster')
    now = datetime.now(timezone.utc)
    login_only, unverified = [], []
    for row in logins:
        made_by_login = row.source in LOGIN_SOURCES
        keeps_person = row.id in is_person or not made_by_login
        name = f'{row.first_name or ""} {row.last_name or ""}'.strip()
        connection.execute(accounts.insert().values(
            id=row.id,
            email=row.email if row.password_hash else None,
            email_key=row.email_key if row.password_hash else None,
            name=name,
            password_hash=row.password_hash,
            role=row.web_role or 'user',
            token_key=row.token_key,
            discord_user_id=row.discord_user_id,
            discord_username=row.discord_username,
            is_active=row.is_active,
            person_id=row.id if keeps_person else None,
            created_at=row.created_at or now,
            updated_at=row.updated_at or now,
        ))
        if not keeps_person:
            login_only.append(row.id)
        elif made_by_login and row.email_key and not row.identifier_key and row.id not in on_roster:
            unverified.append(row.id)
    _reset_sequence(connection, 'accounts')

    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('fk_events_created_by_id_students'), type_='foreignkey')
    # Creators that were not logins (none should be) are forgotten, not misattributed.
    connection.execute(sa.text(
        'UPDATE events SET created_by_id = NULL WHERE created_by_id IS NOT NULL '
        'AND created_by_id NOT IN (SELECT id FROM accounts)'
    ))
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.create_foreign_key(
            batch_op.f('fk_events_created_by_id_accounts'), 'accounts', ['created_by_id'], ['id'],
            ondelete='SET NULL',
        )

    if login_only:
        connection.execute(students.delete().where(students.c.id.in_(login_only)))
    with op.batch_alter_table('students', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_students_has_identity'), type_='check')
        batch_op.drop_constraint(op.f('uq_students_discord_user_id'), type_='unique')
        batch_op.drop_column('is_active')
        batch_op.drop_column('discord_username')
        batch_op.drop_column('discord_user_id')
        batch_op.drop_column('token_key')
        batch_op.drop_column('web_role')
        batch_op.drop_column('password_hash')
    # After the identity check is gone: such a person may now have no identity keys at all.
    if unverified:
        connection.execute(
            students.update().where(students.c.id.in_(unverified)).values(email=None, email_key=None)
        )


def downgrade():
    with op.batch_alter_table('students', schema=None) as batch_op:
        batch_op.add_column(sa.Column('password_hash', sa.String(length=255), nullable=True))
        batch_op.add_column(
            sa.Column('web_role', sa.String(length=16), nullable=False, server_default='user')
        )
        batch_op.add_column(sa.Column('token_key', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('discord_user_id', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('discord_username', sa.String(length=100), nullable=True))
        batch_op.add_column(
            sa.Column('is_active', sa.Boolean(), nullable=False, server_default=sa.true())
        )
        batch_op.create_unique_constraint(op.f('uq_students_discord_user_id'), ['discord_user_id'])

    connection = op.get_bind()
    taken_ids = set(connection.execute(sa.select(students.c.id)).scalars())
    taken_emails = set(
        connection.execute(sa.select(students.c.email_key).where(students.c.email_key.isnot(None))).scalars()
    )
    person_of = {}
    for account in connection.execute(sa.select(accounts).order_by(accounts.c.id)).all():
        values = dict(
            password_hash=account.password_hash,
            web_role=account.role,
            token_key=account.token_key,
            discord_user_id=account.discord_user_id,
            discord_username=account.discord_username,
            is_active=account.is_active,
        )
        if account.person_id is not None:
            person = connection.execute(
                sa.select(students.c.email_key).where(students.c.id == account.person_id)
            ).one()
            if person.email_key is None and account.email_key and account.email_key not in taken_emails:
                values.update(email=account.email, email_key=account.email_key)
                taken_emails.add(account.email_key)
            connection.execute(
                students.update().where(students.c.id == account.person_id).values(**values)
            )
            person_of[account.id] = account.person_id
            continue
        first, _, last = (account.name or '').partition(' ')
        has_email = account.email_key and account.email_key not in taken_emails
        row = dict(
            values,
            email=account.email if has_email else None,
            email_key=account.email_key if has_email else None,
            first_name=first,
            last_name=last.strip(),
            is_admin=False,
            source='discord' if account.discord_user_id and not account.email else 'web',
            created_at=account.created_at,
            updated_at=account.updated_at,
        )
        if account.id not in taken_ids:
            row['id'] = account.id
        new_id = connection.execute(students.insert().values(**row).returning(students.c.id)).scalar_one()
        taken_ids.add(new_id)
        if has_email:
            taken_emails.add(account.email_key)
        person_of[account.id] = new_id
    _reset_sequence(connection, 'students')
    # The old table needs an identity on every row: a person an account made for itself with
    # no email free gets one from its id.
    connection.execute(sa.text(
        "UPDATE students SET identifier = 'person-' || CAST(id AS VARCHAR(20)), "
        "identifier_key = 'person-' || CAST(id AS VARCHAR(20)) "
        "WHERE identifier_key IS NULL AND email_key IS NULL AND discord_user_id IS NULL"
    ))

    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('fk_events_created_by_id_accounts'), type_='foreignkey')
    for account_id, person_id in person_of.items():
        if account_id != person_id:
            connection.execute(
                sa.text('UPDATE events SET created_by_id = :person WHERE created_by_id = :account'),
                {'person': -person_id, 'account': account_id},
            )
    # Negated first, so that one account's new id cannot be mistaken for another's old one.
    connection.execute(sa.text(
        'UPDATE events SET created_by_id = -created_by_id WHERE created_by_id < 0'
    ))
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.create_foreign_key(
            op.f('fk_events_created_by_id_students'), 'students', ['created_by_id'], ['id'],
            ondelete='SET NULL',
        )
    with op.batch_alter_table('students', schema=None) as batch_op:
        batch_op.create_check_constraint('has_identity', OLD_IDENTITY)
    with op.batch_alter_table('students', schema=None) as batch_op:
        batch_op.alter_column('is_active', server_default=None)

    op.drop_table('accounts')
