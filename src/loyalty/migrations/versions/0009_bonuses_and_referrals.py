"""bonuses and referrals: member_bonuses (once per member and key), referral codes, referrals

Vouchers granted free of points (points_spent 0, no spend entry) came with 0008 (stamp cards).

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-23 16:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import loyalty.models.base

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
UTC = loyalty.models.base.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        'member_bonuses',
        sa.Column('id', ID, autoincrement=True, nullable=False),
        sa.Column('customer_id', ID, nullable=False),
        sa.Column('kind', sa.String(length=20), nullable=False),
        sa.Column('once_key', sa.String(length=80), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('points', sa.BigInteger(), nullable=False),
        sa.Column('voucher_id', ID, nullable=True),
        sa.Column('transaction_id', ID, nullable=True),
        sa.Column('granted_at', UTC, nullable=False),
        sa.CheckConstraint("kind IN ('signup', 'first_purchase', 'birthday', 'instant', 'referral_welcome', "
                           "'referrer')", name=op.f('ck_member_bonuses_kind')),
        sa.CheckConstraint('points >= 0', name=op.f('ck_member_bonuses_points_not_negative')),
        sa.ForeignKeyConstraint(['customer_id'], ['customers.id'],
                                name=op.f('fk_member_bonuses_customer_id_customers')),
        sa.ForeignKeyConstraint(['voucher_id'], ['vouchers.id'], name=op.f('fk_member_bonuses_voucher_id_vouchers')),
        sa.ForeignKeyConstraint(['transaction_id'], ['transactions.id'],
                                name=op.f('fk_member_bonuses_transaction_id_transactions')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_member_bonuses')),
        sa.UniqueConstraint('customer_id', 'once_key', name='bonus_once'),
    )
    op.create_index('ix_member_bonuses_transaction', 'member_bonuses', ['transaction_id'])
    op.create_table(
        'referral_codes',
        sa.Column('customer_id', ID, nullable=False),
        sa.Column('code', sa.String(length=16), nullable=False),
        sa.Column('created_at', UTC, nullable=False),
        sa.Column('advocate_since', UTC, nullable=True),
        sa.ForeignKeyConstraint(['customer_id'], ['customers.id'],
                                name=op.f('fk_referral_codes_customer_id_customers')),
        sa.PrimaryKeyConstraint('customer_id', name=op.f('pk_referral_codes')),
        sa.UniqueConstraint('code', name=op.f('uq_referral_codes_code')),
    )
    op.create_table(
        'referrals',
        sa.Column('id', ID, autoincrement=True, nullable=False),
        sa.Column('referrer_id', ID, nullable=False),
        sa.Column('referred_id', ID, nullable=False),
        sa.Column('status', sa.String(length=10), nullable=False),
        sa.Column('created_at', UTC, nullable=False),
        sa.Column('qualified_at', UTC, nullable=True),
        sa.Column('reward_month', sa.String(length=7), nullable=True),
        sa.Column('transaction_id', ID, nullable=True),
        sa.CheckConstraint("status IN ('pending', 'rewarded', 'capped')", name=op.f('ck_referrals_status')),
        sa.CheckConstraint('referrer_id <> referred_id', name=op.f('ck_referrals_not_self')),
        sa.ForeignKeyConstraint(['referrer_id'], ['customers.id'], name=op.f('fk_referrals_referrer_id_customers')),
        sa.ForeignKeyConstraint(['referred_id'], ['customers.id'], name=op.f('fk_referrals_referred_id_customers')),
        sa.ForeignKeyConstraint(['transaction_id'], ['transactions.id'],
                                name=op.f('fk_referrals_transaction_id_transactions')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_referrals')),
        sa.UniqueConstraint('referred_id', name=op.f('uq_referrals_referred_id')),
    )
    op.create_index('ix_referrals_referrer_month', 'referrals', ['referrer_id', 'reward_month'])


def downgrade() -> None:
    op.drop_index('ix_referrals_referrer_month', table_name='referrals')
    op.drop_table('referrals')
    op.drop_table('referral_codes')
    op.drop_index('ix_member_bonuses_transaction', table_name='member_bonuses')
    op.drop_table('member_bonuses')
