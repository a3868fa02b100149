"""transaction awards: which earn rule gave how many points of a purchase

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 14:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'transaction_awards',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
        sa.Column('transaction_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('award_no', sa.Integer(), nullable=False),
        sa.Column('rule_id', sa.String(length=40), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('points', sa.BigInteger(), nullable=False),
        sa.CheckConstraint('points > 0', name=op.f('ck_transaction_awards_points_positive')),
        sa.ForeignKeyConstraint(['transaction_id'], ['transactions.id'],
                                name=op.f('fk_transaction_awards_transaction_id_transactions')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_transaction_awards')),
        sa.UniqueConstraint('transaction_id', 'award_no', name='award'),
    )


def downgrade() -> None:
    op.drop_table('transaction_awards')
