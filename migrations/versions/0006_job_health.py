"""Job health: each job's newest run of each status from an index, not a scan.

`/api/v1/state` shows per job the run in progress, the last completed run, the last
success and the failure streak; `(job, status, id)` answers those from the index, and
its leading column serves every lookup the old `(job)` index did.

Revision ID: 0006_job_health
Revises: 0005_security
Create Date: 2026-12-02 02:00:00

"""
from alembic import op

revision = '0006_job_health'
down_revision = '0005_security'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('job_runs', schema=None) as batch_op:
        batch_op.create_index(
            'ix_job_runs_job_status_id', ['job', 'status', 'id'], unique=False
        )
        batch_op.drop_index('ix_job_runs_job')


def downgrade():
    with op.batch_alter_table('job_runs', schema=None) as batch_op:
        batch_op.create_index('ix_job_runs_job', ['job'], unique=False)
        batch_op.drop_index('ix_job_runs_job_status_id')
