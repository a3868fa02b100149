"""The points ledger: journal entries, their postings, member balances, earn lots and holds.

Every movement is one entry whose postings sum to zero. Member accounts (available, pending,
held, owed) carry a cached balance in member_balances; program accounts (issued, redeemed,
expired, adjusted) are never cached, so no single hot row serialises concurrent earnings.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from loyalty.models.base import Base, BigIntPK, UTCDateTime

MEMBER_ACCOUNTS = ("available", "pending", "held", "owed")
PROGRAM_ACCOUNTS = ("issued", "redeemed", "expired", "adjusted")
ACCOUNTS = MEMBER_ACCOUNTS + PROGRAM_ACCOUNTS
HOLD_STATUSES = ("held", "captured", "voided", "expired")


class LedgerEntry(Base):
    __tablename__ = "ledger_entries"
    __table_args__ = (
        # One source event can post at most once, whatever retries or races happen.
        UniqueConstraint("source_type", "source_id", "event", name="source_event"),
        Index("ix_ledger_entries_customer", "customer_id", "id"),
        Index("ix_ledger_entries_transaction", "transaction_id"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(20))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"))
    source_type: Mapped[str] = mapped_column(String(20))
    source_id: Mapped[str] = mapped_column(String(64))
    event: Mapped[str] = mapped_column(String(40))
    reason: Mapped[str] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(100))
    corrects_entry_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_entries.id"))
    transaction_id: Mapped[int | None] = mapped_column(ForeignKey("transactions.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class LedgerPosting(Base):
    __tablename__ = "ledger_postings"
    __table_args__ = (
        CheckConstraint("amount <> 0", name="not_zero"),
        CheckConstraint(f"account IN {ACCOUNTS!r}", name="account"),
        Index("ix_ledger_postings_entry", "entry_id"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    entry_id: Mapped[int] = mapped_column(ForeignKey("ledger_entries.id"))
    account: Mapped[str] = mapped_column(String(10))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"))
    amount: Mapped[int] = mapped_column(BigInteger)


class MemberBalance(Base):
    """Cached sums of a member's postings; `loyalty ledger verify` recomputes them.

    `owed` is a receivable: its balance is the sum of its postings and so is zero or negative;
    the API shows its magnitude as the points a member owes.
    """

    __tablename__ = "member_balances"
    __table_args__ = (
        CheckConstraint("available >= 0", name="available_not_negative"),
        CheckConstraint("pending >= 0", name="pending_not_negative"),
        CheckConstraint("held >= 0", name="held_not_negative"),
        CheckConstraint("owed <= 0", name="owed_not_positive"),
    )

    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), primary_key=True)
    available: Mapped[int] = mapped_column(BigInteger, default=0)
    pending: Mapped[int] = mapped_column(BigInteger, default=0)
    held: Mapped[int] = mapped_column(BigInteger, default=0)
    owed: Mapped[int] = mapped_column(BigInteger, default=0)
    # Points earned net of reversals; tiers will qualify on this, never on `available`.
    earned_total: Mapped[int] = mapped_column(BigInteger, default=0)


class PointLot(Base):
    """Points from one earning; spending takes from the lots that expire soonest."""

    __tablename__ = "point_lots"
    __table_args__ = (
        CheckConstraint("remaining >= 0 AND remaining <= points", name="remaining_in_range"),
        CheckConstraint("points > 0", name="positive"),
        Index("ix_point_lots_customer_expiry", "customer_id", "expires_at"),
        Index("ix_point_lots_expiry", "expires_at"),
        # Partial: only pending lots are looked up by release time, and most lots never are.
        Index("ix_point_lots_release", "available_at", sqlite_where=text("pending"),
              postgresql_where=text("pending")),
        Index("ix_point_lots_transaction", "transaction_id"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    entry_id: Mapped[int] = mapped_column(ForeignKey("ledger_entries.id"))
    transaction_id: Mapped[int | None] = mapped_column(ForeignKey("transactions.id"))
    points: Mapped[int] = mapped_column(BigInteger)
    remaining: Mapped[int] = mapped_column(BigInteger)
    # While pending, `remaining` sits in the member's pending account, not in available.
    pending: Mapped[bool] = mapped_column(Boolean, default=False)
    earned_at: Mapped[datetime] = mapped_column(UTCDateTime())
    available_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class LotAllocation(Base):
    """Which lot a spend took points from (positive) or a refund gave them back to (negative)."""

    __tablename__ = "lot_allocations"
    __table_args__ = (
        CheckConstraint("points <> 0", name="not_zero"),
        Index("ix_lot_allocations_entry", "entry_id"),
        Index("ix_lot_allocations_lot", "lot_id"),
        Index("ix_lot_allocations_spend", "spend_type", "spend_id"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    lot_id: Mapped[int] = mapped_column(ForeignKey("point_lots.id"))
    entry_id: Mapped[int] = mapped_column(ForeignKey("ledger_entries.id"))
    points: Mapped[int] = mapped_column(BigInteger)
    # What the points were spent on ("hold" or "transaction"), so a void or a return can put
    # them back into the very lots they came from.
    spend_type: Mapped[str] = mapped_column(String(20))
    spend_id: Mapped[int] = mapped_column(BigInteger)


class Hold(Base):
    """A two-phase redemption: points reserved at the POS, then captured or voided."""

    __tablename__ = "holds"
    __table_args__ = (
        CheckConstraint("points > 0", name="positive"),
        CheckConstraint("captured_points >= 0 AND captured_points <= points", name="captured_in_range"),
        CheckConstraint(f"status IN {HOLD_STATUSES!r}", name="status"),
        Index("ix_holds_status_expiry", "status", "expires_at"),
        Index("ix_holds_customer", "customer_id"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    store_id: Mapped[str | None] = mapped_column(ForeignKey("stores.id"))
    points: Mapped[int] = mapped_column(BigInteger)
    captured_points: Mapped[int] = mapped_column(BigInteger, default=0)
    status: Mapped[str] = mapped_column(String(10))
    reference: Mapped[str | None] = mapped_column(String(100))
    transaction_id: Mapped[int | None] = mapped_column(ForeignKey("transactions.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
