"""Absence alerts: each alert raised, and whether each rule holds for each person.

`alert_rule_states` is unique per (student_id, rule): the evaluation raises an alert only
with the statement that turns a row from not holding to holding, so two processes (or a
restart) never raise the same one twice.

Revision ID: 0018_absence_alerts
Revises: 0017_findings
Create Date: 2026-12-04 18:50:52

"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0018_absence_alerts'
down_revision = '0017_findings'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('alerts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('student_id', sa.Integer(), nullable=False),
    sa.Column('rule', sa.String(length=32), nullable=False),
    sa.Column('figures', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('event_ids', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('acknowledged_by', sa.String(length=200), nullable=True),
    sa.Column('acknowledged_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('acknowledgement_note', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['student_id'], ['students.id'], name=op.f('fk_alerts_student_id_students'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_alerts'))
    )
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.create_index('ix_alerts_acknowledged_at_created_at', ['acknowledged_at', 'created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_alerts_student_id'), ['student_id'], unique=False)

    op.create_table('alert_rule_states',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('student_id', sa.Integer(), nullable=False),
    sa.Column('rule', sa.String(length=32), nullable=False),
    sa.Column('holds', sa.Boolean(), nullable=False),
    sa.Column('alert_id', sa.Integer(), nullable=True),
    sa.Column('changed_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['alert_id'], ['alerts.id'], name=op.f('fk_alert_rule_states_alert_id_alerts'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['student_id'], ['students.id'], name=op.f('fk_alert_rule_states_student_id_students'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_alert_rule_states')),
    sa.UniqueConstraint('student_id', 'rule', name=op.f('uq_alert_rule_states_student_id_rule'))
    )


def downgrade():
    op.drop_table('alert_rule_states')
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_alerts_student_id'))
        batch_op.drop_index('ix_alerts_acknowledged_at_created_at')

    op.drop_table('alerts')
