"""member portal: one-time login codes (hashed) and redemption requests (one voucher per confirmation form)

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-23 16:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0013'
down_revision = '0012'  # chained after the web foundation's 0012, merged into this branch (was '0007')
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table(
        'portal_login_codes',
        sa.Column('id', ID, autoincrement=True, nullable=False),
        sa.Column('customer_id', ID, nullable=False),
        sa.Column('identity', sa.String(length=210), nullable=False),
        sa.Column('salt', sa.String(length=32), nullable=False),
        sa.Column('code_hash', sa.String(length=64), nullable=False),
        sa.Column('status', sa.String(length=10), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("status IN ('open', 'used', 'superseded', 'locked')",
                           name=op.f('ck_portal_login_codes_status')),
        sa.CheckConstraint('attempts >= 0', name=op.f('ck_portal_login_codes_attempts_not_negative')),
        sa.CheckConstraint("status = 'used' AND used_at IS NOT NULL OR status <> 'used' AND used_at IS NULL",
                           name=op.f('ck_portal_login_codes_used_when_used')),
        sa.ForeignKeyConstraint(['customer_id'], ['customers.id'],
                                name=op.f('fk_portal_login_codes_customer_id_customers')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_portal_login_codes')),
    )
    op.create_index('ix_portal_login_codes_identity_created', 'portal_login_codes', ['identity', 'created_at'])
    op.create_table(
        'portal_redemptions',
        sa.Column('id', ID, autoincrement=True, nullable=False),
        sa.Column('customer_id', ID, nullable=False),
        sa.Column('request_key', sa.String(length=64), nullable=False),
        sa.Column('voucher_id', ID, nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['customer_id'], ['customers.id'],
                                name=op.f('fk_portal_redemptions_customer_id_customers')),
        sa.ForeignKeyConstraint(['voucher_id'], ['vouchers.id'],
                                name=op.f('fk_portal_redemptions_voucher_id_vouchers')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_portal_redemptions')),
        sa.UniqueConstraint('customer_id', 'request_key', name='request'),
    )


def downgrade() -> None:
    op.drop_table('portal_redemptions')
    op.drop_index('ix_portal_login_codes_identity_created', table_name='portal_login_codes')
    op.drop_table('portal_login_codes')
