"""Bonuses given once per member and key (L6), referral codes and referrals (L13)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from loyalty.models.base import Base, BigIntPK, UTCDateTime

BONUS_KINDS = ("signup", "first_purchase", "birthday", "instant", "referral_welcome", "referrer")
REFERRAL_STATUSES = ("pending", "rewarded", "capped")


class MemberBonus(Base):
    """One bonus given to one member; (customer, once_key) is unique, so no retry, replay or race gives
    it twice: 'signup', 'first_purchase', 'birthday:2026', 'instant:<id>:<transaction>', 'referrer:<referral>'."""

    __tablename__ = "member_bonuses"
    __table_args__ = (
        UniqueConstraint("customer_id", "once_key", name="bonus_once"),
        CheckConstraint(f"kind IN {BONUS_KINDS!r}", name="kind"),
        CheckConstraint("points >= 0", name="points_not_negative"),
        Index("ix_member_bonuses_transaction", "transaction_id"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    kind: Mapped[str] = mapped_column(String(20))
    once_key: Mapped[str] = mapped_column(String(80))
    name: Mapped[str] = mapped_column(String(200))
    points: Mapped[int] = mapped_column(BigInteger)
    voucher_id: Mapped[int | None] = mapped_column(ForeignKey("vouchers.id"))
    transaction_id: Mapped[int | None] = mapped_column(ForeignKey("transactions.id"))
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ReferralCode(Base):
    """A member's own referral code; `advocate_since` is set when a referral of theirs first qualifies."""

    __tablename__ = "referral_codes"

    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), primary_key=True)
    code: Mapped[str] = mapped_column(String(16), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    advocate_since: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Referral(Base):
    """Who brought whom: one referrer per referred member; rewarded (or capped) once, on the referred
    member's first qualifying purchase."""

    __tablename__ = "referrals"
    __table_args__ = (
        CheckConstraint(f"status IN {REFERRAL_STATUSES!r}", name="status"),
        CheckConstraint("referrer_id <> referred_id", name="not_self"),
        Index("ix_referrals_referrer_month", "referrer_id", "reward_month"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    referrer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    referred_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), unique=True)
    status: Mapped[str] = mapped_column(String(10))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    qualified_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The business month ('2026-11') of the qualifying purchase: the monthly cap counts these.
    reward_month: Mapped[str | None] = mapped_column(String(7))
    transaction_id: Mapped[int | None] = mapped_column(ForeignKey("transactions.id"))
