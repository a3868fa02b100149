"""Stores, customers and the identities that resolve to them."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Boolean, CheckConstraint, Date, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from loyalty.models.base import Base, BigIntPK, UTCDateTime

STORE_KINDS = ("retail", "online", "outlet", "call_centre", "partner")
IDENTITY_KINDS = ("phone", "email", "card", "external")
GENDERS = ("female", "male", "other")
CONTACT_CHANNELS = ("email", "sms", "zalo", "phone")


class Store(Base):
    __tablename__ = "stores"
    __table_args__ = (CheckConstraint(f"kind IN {STORE_KINDS!r}", name="kind"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20))
    city: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Customer(Base):
    __tablename__ = "customers"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    name: Mapped[str | None] = mapped_column(String(200))
    birthday: Mapped[date | None] = mapped_column(Date)
    gender: Mapped[str | None] = mapped_column(String(10))
    city: Mapped[str | None] = mapped_column(String(100))
    preferred_channel: Mapped[str | None] = mapped_column(String(10))
    consent_email: Mapped[bool] = mapped_column(Boolean, default=False)
    consent_sms: Mapped[bool] = mapped_column(Boolean, default=False)
    consent_zalo: Mapped[bool] = mapped_column(Boolean, default=False)
    consent_phone: Mapped[bool] = mapped_column(Boolean, default=False)
    enrolled_store_id: Mapped[str | None] = mapped_column(ForeignKey("stores.id"))
    enrolled_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class CustomerIdentity(Base):
    """A phone, e-mail, card or external id; each belongs to exactly one customer."""

    __tablename__ = "customer_identities"
    __table_args__ = (
        UniqueConstraint("kind", "namespace", "value", name="identity"),
        CheckConstraint(f"kind IN {IDENTITY_KINDS!r}", name="kind"),
        Index("ix_customer_identities_customer", "customer_id"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    kind: Mapped[str] = mapped_column(String(10))
    # External ids are namespaced by the store or partner that issued them; '' for global kinds.
    namespace: Mapped[str] = mapped_column(String(32), default="")
    value: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
