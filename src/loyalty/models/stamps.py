"""Stamp cards (L5): each member's cards and the stamps every sale or return put on or took off."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from loyalty.models.base import Base, BigIntPK, UTCDateTime


class MemberStampCard(Base):
    """One card of one member: open (completed_at NULL) or completed with the voucher it issued.

    A member has at most one open card per card id; completing one starts the next (card_no + 1)
    with the stamps left over. Summed over a member's cards of one id, `stamps` equals the sum of
    that member's stamp events for the id.
    """

    __tablename__ = "member_stamp_cards"
    __table_args__ = (
        UniqueConstraint("customer_id", "card_id", "card_no", name="member_stamp_card_no"),
        CheckConstraint("stamps >= 0", name="stamps_not_negative"),
        CheckConstraint("target > 0", name="target_positive"),
        CheckConstraint("completed_at IS NULL OR stamps = target", name="completed_full"),
        Index("uq_member_stamp_cards_open", "customer_id", "card_id", unique=True,
              sqlite_where=text("completed_at IS NULL"), postgresql_where=text("completed_at IS NULL")),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    card_id: Mapped[str] = mapped_column(String(40))
    card_no: Mapped[int] = mapped_column(Integer)
    program_version: Mapped[int] = mapped_column(Integer)
    stamps: Mapped[int] = mapped_column(Integer)
    target: Mapped[int] = mapped_column(Integer)  # stamps to complete, copied when the card starts
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    voucher_id: Mapped[int | None] = mapped_column(ForeignKey("vouchers.id"))


class StampEvent(Base):
    """The stamps one transaction put on (sale, > 0) or took off (return, < 0) a member's card id.

    UNIQUE (transaction, card): a sale or return stamps each card exactly once, whatever retries.
    `purchase_id` is the sale itself, or the sale a return takes back from.
    """

    __tablename__ = "stamp_events"
    __table_args__ = (
        UniqueConstraint("transaction_id", "card_id", name="stamp_event_transaction_card"),
        CheckConstraint("kind IN ('purchase', 'return')", name="kind"),
        CheckConstraint("kind = 'purchase' AND stamps > 0 OR kind = 'return' AND stamps <= 0", name="sign"),
        Index("ix_stamp_events_purchase", "purchase_id", "card_id"),
        Index("ix_stamp_events_customer", "customer_id", "card_id"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    transaction_id: Mapped[int] = mapped_column(ForeignKey("transactions.id"))
    purchase_id: Mapped[int] = mapped_column(ForeignKey("transactions.id"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    card_id: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(10))
    stamps: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
