"""member tiers: each member's tier and override, and the append-only tier history

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 14:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import loyalty.models.base

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table(
        'member_tiers',
        sa.Column('customer_id', _ID, nullable=False),
        sa.Column('tier', sa.String(length=40), nullable=False),
        sa.Column('since', loyalty.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column('qualified_value', sa.BigInteger(), nullable=False),
        sa.Column('override_tier', sa.String(length=40), nullable=True),
        sa.Column('override_reason', sa.Text(), nullable=True),
        sa.Column('override_until', loyalty.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column('reviewed_at', loyalty.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint('qualified_value >= 0', name=op.f('ck_member_tiers_qualified_value_not_negative')),
        sa.CheckConstraint('(override_tier IS NULL) = (override_until IS NULL)',
                           name=op.f('ck_member_tiers_override_complete')),
        sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_member_tiers_customer_id_customers')),
        sa.PrimaryKeyConstraint('customer_id', name=op.f('pk_member_tiers')),
    )
    op.create_index('ix_member_tiers_tier', 'member_tiers', ['tier'])
    op.create_index('ix_member_tiers_override_until', 'member_tiers', ['override_until'])
    op.create_table(
        'tier_history',
        sa.Column('id', _ID, autoincrement=True, nullable=False),
        sa.Column('customer_id', _ID, nullable=False),
        sa.Column('from_tier', sa.String(length=40), nullable=True),
        sa.Column('to_tier', sa.String(length=40), nullable=False),
        sa.Column('reason', sa.String(length=20), nullable=False),
        sa.Column('note', sa.Text(), nullable=True),
        sa.Column('at', loyalty.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column('actor', sa.String(length=100), nullable=False),
        sa.CheckConstraint("reason IN ('upgrade', 'review_downgrade', 'override', 'override_end')",
                           name=op.f('ck_tier_history_reason')),
        sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_tier_history_customer_id_customers')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_tier_history')),
    )
    op.create_index('ix_tier_history_customer', 'tier_history', ['customer_id', 'id'])


def downgrade() -> None:
    op.drop_index('ix_tier_history_customer', table_name='tier_history')
    op.drop_table('tier_history')
    op.drop_index('ix_member_tiers_override_until', table_name='member_tiers')
    op.drop_index('ix_member_tiers_tier', table_name='member_tiers')
    op.drop_table('member_tiers')
