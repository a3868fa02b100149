"""import history: import_runs (one per CSV import, web or CLI) and import_rejections (line, reason, fields)

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05 07:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table(
        'import_runs',
        sa.Column('id', ID, autoincrement=True, nullable=False),
        sa.Column('kind', sa.String(length=20), nullable=False),
        sa.Column('file_name', sa.String(length=255), nullable=False),
        sa.Column('size_bytes', sa.BigInteger(), nullable=False),
        sa.Column('create_customers', sa.Boolean(), nullable=False),
        sa.Column('started_by', sa.String(length=100), nullable=False),
        sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('status', sa.String(length=10), nullable=False),
        sa.Column('error', sa.Text(), nullable=True),
        sa.Column('columns', sa.Text(), nullable=True),
        sa.Column('rows_total', sa.BigInteger(), nullable=False),
        sa.Column('rows_done', sa.BigInteger(), nullable=False),
        sa.Column('imported', sa.BigInteger(), nullable=False),
        sa.Column('skipped', sa.BigInteger(), nullable=False),
        sa.Column('rejected', sa.BigInteger(), nullable=False),
        sa.Column('created_customers', sa.BigInteger(), nullable=False),
        sa.Column('points', sa.BigInteger(), nullable=False),
        sa.CheckConstraint("kind IN ('customers', 'transactions')", name=op.f('ck_import_runs_kind')),
        sa.CheckConstraint("status IN ('running', 'done', 'failed')", name=op.f('ck_import_runs_status')),
        sa.CheckConstraint("status = 'running' AND finished_at IS NULL OR status <> 'running' AND finished_at IS NOT NULL",
                           name=op.f('ck_import_runs_finished_when_not_running')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_import_runs')),
    )
    op.create_index('ix_import_runs_started_at', 'import_runs', ['started_at'])
    op.create_table(
        'import_rejections',
        sa.Column('id', ID, autoincrement=True, nullable=False),
        sa.Column('run_id', ID, nullable=False),
        sa.Column('line', sa.Integer(), nullable=False),
        sa.Column('reason', sa.Text(), nullable=False),
        sa.Column('fields', sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(['run_id'], ['import_runs.id'], name=op.f('fk_import_rejections_run_id_import_runs')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_import_rejections')),
    )
    op.create_index(op.f('ix_import_rejections_run_id'), 'import_rejections', ['run_id'])


def downgrade() -> None:
    op.drop_index(op.f('ix_import_rejections_run_id'), table_name='import_rejections')
    op.drop_table('import_rejections')
    op.drop_index('ix_import_runs_started_at', table_name='import_runs')
    op.drop_table('import_runs')
