"""Web and Discord users: passwords, Discord ids, active flags; event creators and channels.

Revision ID: 0004_web_and_discord_users
Revises: 0003_sync_and_jobs
Create Date: 2026-11-22 22:40:00

"""
from alembic import op
import sqlalchemy as sa

revision = '0004_web_and_discord_users'
down_revision = '0003_sync_and_jobs'
branch_labels = None
depends_on = None

OLD_IDENTITY = 'identifier_key IS NOT NULL OR email_key IS NOT NULL'
NEW_IDENTITY = (
    'identifier_key IS NOT NULL OR email_key IS NOT NULL OR discord_user_id IS NOT NULL'
)


def upgrade():
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('discord_channel_id', sa.String(length=32), nullable=True))
        batch_op.add_column(
            sa.Column('is_active', sa.Boolean(), nullable=False, server_default=sa.true())
        )
        batch_op.add_column(sa.Column('created_by_id', sa.Integer(), nullable=True))
        batch_op.create_index(
            batch_op.f('ix_events_discord_channel_id'), ['discord_channel_id'], unique=False
        )
        batch_op.create_foreign_key(
            batch_op.f('fk_events_created_by_id_students'),
            'students',
            ['created_by_id'],
            ['id'],
            ondelete='SET NULL',
        )

    with op.batch_alter_table('students', schema=None) as batch_op:
        batch_op.add_column(sa.Column('password_hash', sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column('discord_user_id', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('discord_username', sa.String(length=100), nullable=True))
        batch_op.add_column(
            sa.Column('is_active', sa.Boolean(), nullable=False, server_default=sa.true())
        )
        batch_op.create_unique_constraint(
            batch_op.f('uq_students_discord_user_id'), ['discord_user_id']
        )
        batch_op.drop_constraint(op.f('ck_students_identifier_or_email'), type_='check')
        batch_op.create_check_constraint('has_identity', NEW_IDENTITY)

    # The defaults only filled existing rows; new rows get theirs from the application.
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.alter_column('is_active', server_default=None)
    with op.batch_alter_table('students', schema=None) as batch_op:
        batch_op.alter_column('is_active', server_default=None)


def downgrade():
    with op.batch_alter_table('students', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_students_has_identity'), type_='check')
        batch_op.create_check_constraint('identifier_or_email', OLD_IDENTITY)
        batch_op.drop_constraint(batch_op.f('uq_students_discord_user_id'), type_='unique')
        batch_op.drop_column('is_active')
        batch_op.drop_column('discord_username')
        batch_op.drop_column('discord_user_id')
        batch_op.drop_column('password_hash')

    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_events_created_by_id_students'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_events_discord_channel_id'))
        batch_op.drop_column('created_by_id')
        batch_op.drop_column('is_active')
        batch_op.drop_column('discord_channel_id')
