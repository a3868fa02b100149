"""The rewards catalogue and the vouchers members get for their points."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, CheckConstraint, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from loyalty.models.base import Base, BigIntPK, UTCDateTime

REWARD_KINDS = ("item", "voucher_amount", "voucher_percent", "free_product", "free_shipping", "experience")
VOUCHER_STATUSES = ("issued", "redeemed", "expired", "cancelled")

# Each kind carries exactly the value it needs: an amount off, a percentage off, or a product.
_KIND_VALUES = (
    "(kind = 'voucher_amount' AND amount > 0 OR kind <> 'voucher_amount' AND amount IS NULL) "
    "AND (kind = 'voucher_percent' AND percent BETWEEN 1 AND 100 OR kind <> 'voucher_percent' AND percent IS NULL) "
    "AND (kind = 'free_product' AND sku IS NOT NULL OR kind <> 'free_product' AND sku IS NULL)"
)


class Reward(Base):
    """Something members can get for points; `stock` NULL means unlimited."""

    __tablename__ = "rewards"
    __table_args__ = (
        CheckConstraint(f"kind IN {REWARD_KINDS!r}", name="kind"),
        CheckConstraint(_KIND_VALUES, name="kind_value"),
        CheckConstraint("points_cost > 0", name="points_cost_positive"),
        CheckConstraint("stock IS NULL OR stock >= 0", name="stock_not_negative"),
        CheckConstraint("voucher_valid_days > 0", name="voucher_valid_days_positive"),
        CheckConstraint("per_member_limit IS NULL OR per_member_limit > 0", name="per_member_limit_positive"),
        CheckConstraint("valid_from IS NULL OR valid_until IS NULL OR valid_until > valid_from",
                        name="validity_window"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(20))
    amount: Mapped[int | None] = mapped_column(BigInteger)  # voucher_amount: currency units off
    percent: Mapped[int | None] = mapped_column(Integer)  # voucher_percent: 1..100
    sku: Mapped[str | None] = mapped_column(String(64))  # free_product
    points_cost: Mapped[int] = mapped_column(BigInteger)
    stock: Mapped[int | None] = mapped_column(BigInteger)
    valid_from: Mapped[datetime | None] = mapped_column(UTCDateTime())
    valid_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    voucher_valid_days: Mapped[int] = mapped_column(Integer, default=30)
    per_member_limit: Mapped[int | None] = mapped_column(Integer)
    min_tier: Mapped[str | None] = mapped_column(String(40))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Voucher(Base):
    """A reward a member got for points: issued, then redeemed, expired or cancelled (refunded).

    The reward's kind and value are copied at issue, so changing the catalogue later never
    changes what a member already holds.
    """

    __tablename__ = "vouchers"
    __table_args__ = (
        CheckConstraint(f"status IN {VOUCHER_STATUSES!r}", name="status"),
        # 0 for a voucher granted free of points (a bonus, a stamp card): no spend entry, no refund.
        CheckConstraint("points_spent >= 0", name="points_spent_not_negative"),
        CheckConstraint("status = 'redeemed' AND redeemed_at IS NOT NULL AND redeemed_store_id IS NOT NULL "
                        "OR status <> 'redeemed' AND redeemed_at IS NULL", name="redeemed_when_used"),
        CheckConstraint("status = 'cancelled' AND cancelled_at IS NOT NULL "
                        "AND (refund_entry_id IS NOT NULL OR points_spent = 0) "
                        "OR status <> 'cancelled' AND cancelled_at IS NULL AND refund_entry_id IS NULL",
                        name="refunded_when_cancelled"),
        Index("ix_vouchers_customer_reward", "customer_id", "reward_id"),
        Index("ix_vouchers_status_expiry", "status", "expires_at"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    # 12 characters from a 32-letter alphabet (60 random bits), stored grouped: "ABCD-EFGH-JKMN".
    code: Mapped[str] = mapped_column(String(20), unique=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    reward_id: Mapped[int] = mapped_column(ForeignKey("rewards.id"))
    kind: Mapped[str] = mapped_column(String(20))
    amount: Mapped[int | None] = mapped_column(BigInteger)
    percent: Mapped[int | None] = mapped_column(Integer)
    sku: Mapped[str | None] = mapped_column(String(64))
    points_spent: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(10))
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime())
    issued_by: Mapped[str] = mapped_column(String(100))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    redeemed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    redeemed_store_id: Mapped[str | None] = mapped_column(ForeignKey("stores.id"))
    # The POS's own transaction id: a retried burn with the same one gets the first answer.
    redeemed_reference: Mapped[str | None] = mapped_column(String(100))
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    spend_entry_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_entries.id"))
    refund_entry_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_entries.id"))
