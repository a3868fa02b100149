"""Member tiers (L4): each member's current tier and override, and the append-only history of changes."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from loyalty.models.base import Base, BigIntPK, UTCDateTime

TIER_CHANGE_REASONS = ("upgrade", "review_downgrade", "override", "override_end")


class MemberTier(Base):
    """A member's earned tier; members without a row are in the program's base tier."""

    __tablename__ = "member_tiers"
    __table_args__ = (
        CheckConstraint("qualified_value >= 0", name="qualified_value_not_negative"),
        CheckConstraint("(override_tier IS NULL) = (override_until IS NULL)", name="override_complete"),
        Index("ix_member_tiers_tier", "tier"),
        Index("ix_member_tiers_override_until", "override_until"),
    )

    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), primary_key=True)
    tier: Mapped[str] = mapped_column(String(40))
    since: Mapped[datetime] = mapped_column(UTCDateTime())
    # The qualifying metric (spend, points or purchases) when the tier was last evaluated.
    qualified_value: Mapped[int] = mapped_column(BigInteger, default=0)
    override_tier: Mapped[str | None] = mapped_column(String(40))
    override_reason: Mapped[str | None] = mapped_column(Text)
    override_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The review (period start) this member was last reviewed for: a review runs once per member.
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class TierHistory(Base):
    """Every tier change, never updated or deleted."""

    __tablename__ = "tier_history"
    __table_args__ = (
        CheckConstraint(f"reason IN {TIER_CHANGE_REASONS!r}", name="reason"),
        Index("ix_tier_history_customer", "customer_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    from_tier: Mapped[str | None] = mapped_column(String(40))
    to_tier: Mapped[str] = mapped_column(String(40))
    reason: Mapped[str] = mapped_column(String(20))
    note: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    actor: Mapped[str] = mapped_column(String(100))
