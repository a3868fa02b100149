"""stamp cards: member cards, stamp events, and vouchers granted without points

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23 16:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')

_PAID_OR_GRANTED = ("points_spent > 0 AND spend_entry_id IS NOT NULL "
                    "OR points_spent = 0 AND spend_entry_id IS NULL")
_REFUNDED = ("status = 'cancelled' AND cancelled_at IS NOT NULL AND refund_entry_id IS NOT NULL "
             "OR status <> 'cancelled' AND cancelled_at IS NULL AND refund_entry_id IS NULL")
_REFUNDED_OR_GRANTED = ("status = 'cancelled' AND cancelled_at IS NOT NULL "
                        "AND (refund_entry_id IS NOT NULL OR points_spent = 0) "
                        "OR status <> 'cancelled' AND cancelled_at IS NULL AND refund_entry_id IS NULL")


def _sqlite_children_aside() -> list[tuple[str, str]]:
    """SQLite rebuilds `vouchers` to change its CHECKs; with foreign keys on (they are, inside the
    migration's transaction) dropping the old table fails while rows refer to it. The referring
    rows are copied aside and deleted first, and put back after (the ids do not change)."""
    bind = op.get_bind()
    tables = [name for (name,) in bind.exec_driver_sql(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")]
    children = []
    for table in tables:
        refs = bind.exec_driver_sql(f'PRAGMA foreign_key_list("{table}")').all()
        if table != 'vouchers' and any(row[2] == 'vouchers' for row in refs):
            aside = f'_stamps_aside_{table}'
            bind.exec_driver_sql(f'CREATE TEMP TABLE "{aside}" AS SELECT * FROM "{table}"')
            bind.exec_driver_sql(f'DELETE FROM "{table}"')
            children.append((table, aside))
    return children


def _sqlite_children_back(children: list[tuple[str, str]]) -> None:
    bind = op.get_bind()
    for table, aside in children:
        bind.exec_driver_sql(f'INSERT INTO "{table}" SELECT * FROM "{aside}"')
        bind.exec_driver_sql(f'DROP TABLE "{aside}"')


def _alter_vouchers(new_refunded: str, *, granted: bool) -> None:
    sqlite = op.get_bind().dialect.name == 'sqlite'
    children = _sqlite_children_aside() if sqlite else []
    with op.batch_alter_table('vouchers') as batch:
        if granted:
            batch.drop_constraint(op.f('ck_vouchers_points_spent_positive'), type_='check')
            batch.create_check_constraint(op.f('ck_vouchers_paid_or_granted'), sa.text(_PAID_OR_GRANTED))
        else:
            batch.drop_constraint(op.f('ck_vouchers_paid_or_granted'), type_='check')
            batch.create_check_constraint(op.f('ck_vouchers_points_spent_positive'), sa.text('points_spent > 0'))
        batch.drop_constraint(op.f('ck_vouchers_refunded_when_cancelled'), type_='check')
        batch.create_check_constraint(op.f('ck_vouchers_refunded_when_cancelled'), sa.text(new_refunded))
        batch.alter_column('spend_entry_id', existing_type=ID, nullable=granted)
    if sqlite:
        _sqlite_children_back(children)


def upgrade() -> None:
    # A stamp card's reward is a voucher granted free of points: no spend entry, points_spent 0,
    # and cancelling it refunds nothing.
    _alter_vouchers(_REFUNDED_OR_GRANTED, granted=True)
    op.create_table(
        'member_stamp_cards',
        sa.Column('id', ID, autoincrement=True, nullable=False),
        sa.Column('customer_id', ID, nullable=False),
        sa.Column('card_id', sa.String(length=40), nullable=False),
        sa.Column('card_no', sa.Integer(), nullable=False),
        sa.Column('program_version', sa.Integer(), nullable=False),
        sa.Column('stamps', sa.Integer(), nullable=False),
        sa.Column('target', sa.Integer(), nullable=False),
        sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('completed_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('voucher_id', ID, nullable=True),
        sa.CheckConstraint('stamps >= 0', name=op.f('ck_member_stamp_cards_stamps_not_negative')),
        sa.CheckConstraint('target > 0', name=op.f('ck_member_stamp_cards_target_positive')),
        sa.CheckConstraint('completed_at IS NULL OR stamps = target', name=op.f('ck_member_stamp_cards_completed_full')),
        sa.ForeignKeyConstraint(['customer_id'], ['customers.id'],
                                name=op.f('fk_member_stamp_cards_customer_id_customers')),
        sa.ForeignKeyConstraint(['voucher_id'], ['vouchers.id'], name=op.f('fk_member_stamp_cards_voucher_id_vouchers')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_member_stamp_cards')),
        sa.UniqueConstraint('customer_id', 'card_id', 'card_no', name='member_stamp_card_no'),
    )
    op.create_index('uq_member_stamp_cards_open', 'member_stamp_cards', ['customer_id', 'card_id'], unique=True,
                    sqlite_where=sa.text('completed_at IS NULL'), postgresql_where=sa.text('completed_at IS NULL'))
    op.create_table(
        'stamp_events',
        sa.Column('id', ID, autoincrement=True, nullable=False),
        sa.Column('transaction_id', ID, nullable=False),
        sa.Column('purchase_id', ID, nullable=False),
        sa.Column('customer_id', ID, nullable=False),
        sa.Column('card_id', sa.String(length=40), nullable=False),
        sa.Column('kind', sa.String(length=10), nullable=False),
        sa.Column('stamps', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("kind IN ('purchase', 'return')", name=op.f('ck_stamp_events_kind')),
        sa.CheckConstraint("kind = 'purchase' AND stamps > 0 OR kind = 'return' AND stamps <= 0",
                           name=op.f('ck_stamp_events_sign')),
        sa.ForeignKeyConstraint(['transaction_id'], ['transactions.id'],
                                name=op.f('fk_stamp_events_transaction_id_transactions')),
        sa.ForeignKeyConstraint(['purchase_id'], ['transactions.id'],
                                name=op.f('fk_stamp_events_purchase_id_transactions')),
        sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_stamp_events_customer_id_customers')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_stamp_events')),
        sa.UniqueConstraint('transaction_id', 'card_id', name='stamp_event_transaction_card'),
    )
    op.create_index('ix_stamp_events_purchase', 'stamp_events', ['purchase_id', 'card_id'])
    op.create_index('ix_stamp_events_customer', 'stamp_events', ['customer_id', 'card_id'])


def downgrade() -> None:
    op.drop_index('ix_stamp_events_customer', table_name='stamp_events')
    op.drop_index('ix_stamp_events_purchase', table_name='stamp_events')
    op.drop_table('stamp_events')
    op.drop_index('uq_member_stamp_cards_open', table_name='member_stamp_cards')
    op.drop_table('member_stamp_cards')
    # Granted vouchers cannot exist under the old constraints: downgrading with any fails loudly.
    _alter_vouchers(_REFUNDED, granted=False)
