"""member badges: goals (L10) each member reached, once per (member, goal)

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-23 16:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from loyalty.models.base import UTCDateTime

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table(
        'member_badges',
        sa.Column('customer_id', ID, nullable=False),
        sa.Column('goal_id', sa.String(length=40), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('description', sa.Text(), nullable=True),
        sa.Column('icon', sa.String(length=40), nullable=True),
        sa.Column('metric', sa.String(length=20), nullable=False),
        sa.Column('target', sa.BigInteger(), nullable=False),
        sa.Column('points', sa.BigInteger(), nullable=False),
        sa.Column('earned_at', UTCDateTime(), nullable=False),
        sa.Column('transaction_id', ID, nullable=True),
        sa.Column('actor', sa.String(length=100), nullable=False),
        sa.CheckConstraint('points >= 0', name=op.f('ck_member_badges_points_not_negative')),
        sa.ForeignKeyConstraint(['customer_id'], ['customers.id'],
                                name=op.f('fk_member_badges_customer_id_customers')),
        sa.ForeignKeyConstraint(['transaction_id'], ['transactions.id'],
                                name=op.f('fk_member_badges_transaction_id_transactions')),
        sa.PrimaryKeyConstraint('customer_id', 'goal_id', name=op.f('pk_member_badges')),
    )
    op.create_index(op.f('ix_member_badges_goal'), 'member_badges', ['goal_id'])


def downgrade() -> None:
    op.drop_index(op.f('ix_member_badges_goal'), table_name='member_badges')
    op.drop_table('member_badges')
