"""The member portal: one-time login codes, and the portal's redemption requests (one voucher per click)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from loyalty.models.base import Base, BigIntPK, UTCDateTime

LOGIN_CODE_STATUSES = ("open", "used", "superseded", "locked")


class PortalLoginCode(Base):
    """A 6-digit code sent to a member who asked to log in; only its scrypt hash is stored.

    `identity` is the normalised phone or e-mail the member typed ("phone:+84912345678"), which
    rate limits count on. A code is good once: the conditional UPDATE to 'used' succeeds once.
    """

    __tablename__ = "portal_login_codes"
    __table_args__ = (
        CheckConstraint(f"status IN {LOGIN_CODE_STATUSES!r}", name="status"),
        CheckConstraint("attempts >= 0", name="attempts_not_negative"),
        CheckConstraint("status = 'used' AND used_at IS NOT NULL OR status <> 'used' AND used_at IS NULL",
                        name="used_when_used"),
        Index("ix_portal_login_codes_identity_created", "identity", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    identity: Mapped[str] = mapped_column(String(210))
    salt: Mapped[str] = mapped_column(String(32))
    code_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(10))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class PortalRedemption(Base):
    """A member's redeem click, keyed by the nonce of the confirmation form it came from.

    The UNIQUE (customer, request key) makes a double click or a resubmitted form issue one
    voucher: the second request finds the first one's row and shows that voucher.
    """

    __tablename__ = "portal_redemptions"
    __table_args__ = (UniqueConstraint("customer_id", "request_key", name="request"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    request_key: Mapped[str] = mapped_column(String(64))
    voucher_id: Mapped[int] = mapped_column(ForeignKey("vouchers.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
