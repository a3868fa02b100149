"""transaction instant rewards: what a sale gave beyond its earn points, for the receipt

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23 16:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table(
        'transaction_instant_rewards',
        sa.Column('id', ID, autoincrement=True, nullable=False),
        sa.Column('transaction_id', ID, nullable=False),
        sa.Column('reward_no', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=10), nullable=False),
        sa.Column('source', sa.String(length=80), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('points', sa.BigInteger(), nullable=False),
        sa.Column('voucher_id', ID, nullable=True),
        sa.CheckConstraint('points >= 0', name=op.f('ck_transaction_instant_rewards_points_not_negative')),
        sa.CheckConstraint("kind IN ('points', 'voucher', 'badge')",
                           name=op.f('ck_transaction_instant_rewards_known_kind')),
        sa.ForeignKeyConstraint(['transaction_id'], ['transactions.id'],
                                name=op.f('fk_transaction_instant_rewards_transaction_id_transactions')),
        sa.ForeignKeyConstraint(['voucher_id'], ['vouchers.id'],
                                name=op.f('fk_transaction_instant_rewards_voucher_id_vouchers')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_transaction_instant_rewards')),
        sa.UniqueConstraint('transaction_id', 'reward_no', name='instant_reward'),
    )


def downgrade() -> None:
    op.drop_table('transaction_instant_rewards')
