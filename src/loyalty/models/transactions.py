"""Purchases and returns as the POS or web shop reported them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, Integer, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from loyalty.models.base import Base, BigIntPK, UTCDateTime

TRANSACTION_KINDS = ("purchase", "return")


class Transaction(Base):
    __tablename__ = "transactions"
    __table_args__ = (
        # The POS's own id is unique per store: a retried upload can never record a sale twice.
        UniqueConstraint("store_id", "pos_transaction_id", name="pos_id"),
        CheckConstraint(f"kind IN {TRANSACTION_KINDS!r}", name="kind"),
        CheckConstraint("amount >= 0", name="amount_not_negative"),
        CheckConstraint("returned_amount >= 0 AND returned_amount <= amount", name="returned_within_amount"),
        CheckConstraint("points_earned >= 0 AND points_redeemed >= 0", name="points_not_negative"),
        Index("ix_transactions_customer_time", "customer_id", "occurred_at"),
        Index("ix_transactions_original", "original_id", sqlite_where=text("original_id IS NOT NULL"),
              postgresql_where=text("original_id IS NOT NULL")),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    store_id: Mapped[str] = mapped_column(ForeignKey("stores.id"))
    pos_transaction_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(10))
    original_id: Mapped[int | None] = mapped_column(ForeignKey("transactions.id"))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    points_earned: Mapped[int] = mapped_column(BigInteger, default=0)
    points_redeemed: Mapped[int] = mapped_column(BigInteger, default=0)
    # Running totals on a purchase, so partial returns reverse exactly what is left and never more.
    returned_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    points_reversed: Mapped[int] = mapped_column(BigInteger, default=0)
    points_restored: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class TransactionLine(Base):
    __tablename__ = "transaction_lines"
    __table_args__ = (
        UniqueConstraint("transaction_id", "line_no", name="line"),
        CheckConstraint("quantity > 0 AND unit_price >= 0", name="positive"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    transaction_id: Mapped[int] = mapped_column(ForeignKey("transactions.id"))
    line_no: Mapped[int] = mapped_column(Integer)
    sku: Mapped[str] = mapped_column(String(64))
    category: Mapped[str | None] = mapped_column(String(100))
    quantity: Mapped[int] = mapped_column(Integer)
    unit_price: Mapped[int] = mapped_column(BigInteger)


class TransactionAward(Base):
    """Which earn rule gave how many of a purchase's points, as the receipt printed it (L1)."""

    __tablename__ = "transaction_awards"
    __table_args__ = (
        UniqueConstraint("transaction_id", "award_no", name="award"),
        CheckConstraint("points > 0", name="points_positive"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    transaction_id: Mapped[int] = mapped_column(ForeignKey("transactions.id"))
    award_no: Mapped[int] = mapped_column(Integer)
    rule_id: Mapped[str] = mapped_column(String(40))
    # The rule's name when it was applied: a later program version may rename the rule.
    name: Mapped[str] = mapped_column(String(200))
    points: Mapped[int] = mapped_column(BigInteger)


class TransactionInstantReward(Base):
    """What a sale gave beyond its earn points (a bonus, a stamp card's voucher, a badge), stored so a
    replayed sale prints the same receipt."""

    __tablename__ = "transaction_instant_rewards"
    __table_args__ = (
        UniqueConstraint("transaction_id", "reward_no", name="instant_reward"),
        CheckConstraint("points >= 0", name="points_not_negative"),
        CheckConstraint("kind IN ('points', 'voucher', 'badge')", name="known_kind"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    transaction_id: Mapped[int] = mapped_column(ForeignKey("transactions.id"))
    reward_no: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(10))
    source: Mapped[str] = mapped_column(String(80))
    name: Mapped[str] = mapped_column(String(200))
    points: Mapped[int] = mapped_column(BigInteger, default=0)
    voucher_id: Mapped[int | None] = mapped_column(ForeignKey("vouchers.id"), nullable=True)
