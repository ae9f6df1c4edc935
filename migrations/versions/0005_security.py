"""Secure by default: web roles and token keys apart from roster data; scoped idempotency
keys, refused replays of signed requests, and the size of bodies kept only in part.

Every web user gets a token key (tokens issued before this migration stop working: they
carry no key) and the plain web role: until now `is_admin` could be set by any unsigned
webhook, so it proves nothing. The migration names the web users it had marked admin;
the operator re-grants with `flask users promote EMAIL`.

Revision ID: 0005_security
Revises: 0004_web_and_discord_users
Create Date: 2026-12-01 23:00:00

"""
import hashlib
import logging
import secrets

from alembic import op
import sqlalchemy as sa

revision = '0005_security'
down_revision = '0004_web_and_discord_users'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('students', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('web_role', sa.String(length=16), nullable=False, server_default='user')
        )
        batch_op.add_column(sa.Column('token_key', sa.String(length=64), nullable=True))

    connection = op.get_bind()
    students = sa.table(
        'students',
        sa.column('id', sa.Integer),
        sa.column('email', sa.String),
        sa.column('is_admin', sa.Boolean),
        sa.column('password_hash', sa.String),
        sa.column('web_role', sa.String),
        sa.column('token_key', sa.String),
    )
    web_users = connection.execute(
        sa.select(students.c.id, students.c.email, students.c.is_admin).where(
            students.c.password_hash.isnot(None)
        )
    ).all()
    for user_id, _email, _is_admin in web_users:
        connection.execute(
            students.update()
            .where(students.c.id == user_id)
            .values(web_role='user', token_key=secrets.token_hex(16))
        )
    were_admins = sorted(email for _id, email, is_admin in web_users if is_admin)
    if were_admins:
        logging.getLogger('alembic.runtime.migration').warning(
            'web users marked admin before 0005 are plain users now (is_admin could be set '
            'by unsigned webhooks); re-grant with `flask users promote EMAIL`: %s',
            ', '.join(were_admins),
        )

    with op.batch_alter_table('webhook_requests', schema=None) as batch_op:
        batch_op.add_column(sa.Column('body_size', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('idempotency_scope', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('signature_digest', sa.String(length=64), nullable=True))
        batch_op.drop_constraint('uq_webhook_requests_idempotency_key', type_='unique')
        batch_op.create_unique_constraint(
            batch_op.f('uq_webhook_requests_idempotency_scope'), ['idempotency_scope']
        )
    op.create_index(
        'uq_webhook_requests_accepted_signature',
        'webhook_requests',
        ['signature_digest'],
        unique=True,
        sqlite_where=sa.text('status_code < 300'),
        postgresql_where=sa.text('status_code < 300'),
    )

    # Keys recorded before this migration keep answering, scoped to their endpoint as sent
    # unsigned (the only kind that could reuse them before).
    requests = sa.table(
        'webhook_requests',
        sa.column('id', sa.Integer),
        sa.column('endpoint', sa.String),
        sa.column('idempotency_key', sa.String),
        sa.column('idempotency_scope', sa.String),
    )
    keyed = connection.execute(
        sa.select(requests.c.id, requests.c.endpoint, requests.c.idempotency_key).where(
            requests.c.idempotency_key.isnot(None)
        )
    ).all()
    for request_id, endpoint, key in keyed:
        scope = hashlib.sha256(f"{endpoint}\nopen\n{key}".encode()).hexdigest()
        connection.execute(
            requests.update().where(requests.c.id == request_id).values(idempotency_scope=scope)
        )


def downgrade():
    op.drop_index('uq_webhook_requests_accepted_signature', table_name='webhook_requests')
    # Keys are unique again: keep each on its oldest record only.
    op.execute(
        'UPDATE webhook_requests SET idempotency_key = NULL WHERE idempotency_key IS NOT NULL '
        'AND id NOT IN (SELECT min(id) FROM webhook_requests '
        'WHERE idempotency_key IS NOT NULL GROUP BY idempotency_key)'
    )
    with op.batch_alter_table('webhook_requests', schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f('uq_webhook_requests_idempotency_scope'), type_='unique'
        )
        batch_op.create_unique_constraint(
            'uq_webhook_requests_idempotency_key', ['idempotency_key']
        )
        batch_op.drop_column('signature_digest')
        batch_op.drop_column('idempotency_scope')
        batch_op.drop_column('body_size')
    with op.batch_alter_table('students', schema=None) as batch_op:
        batch_op.drop_column('token_key')
        batch_op.drop_column('web_role')
