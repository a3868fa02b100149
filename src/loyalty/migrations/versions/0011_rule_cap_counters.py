"""rule cap counters: earn rules' caps per member per day and total budgets

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-23 16:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table(
        'rule_cap_counters',
        sa.Column('id', ID, autoincrement=True, nullable=False),
        sa.Column('rule_id', sa.String(length=40), nullable=False),
        sa.Column('customer_id', sa.BigInteger(), nullable=False),
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('used', sa.BigInteger(), nullable=False),
        sa.Column('granted', sa.BigInteger(), nullable=False),
        sa.CheckConstraint('used >= 0 AND granted >= 0', name=op.f('ck_rule_cap_counters_not_negative')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_rule_cap_counters')),
        sa.UniqueConstraint('rule_id', 'customer_id', 'day', name='rule_cap_counter'),
    )


def downgrade() -> None:
    op.drop_table('rule_cap_counters')
