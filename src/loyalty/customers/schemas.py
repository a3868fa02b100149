"""API shapes for customers; unknown fields are refused so clients cannot set points or ids."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

Gender = Literal["female", "male", "other"]
Channel = Literal["email", "sms", "zalo", "phone"]


class Consents(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: bool = False
    sms: bool = False
    zalo: bool = False
    phone: bool = False


class ExternalId(BaseModel):
    model_config = ConfigDict(extra="forbid")
    namespace: str = Field(min_length=1, max_length=32, description="the store or partner that issued the id")
    value: str = Field(min_length=1, max_length=200)


class CustomerProfile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, max_length=200)
    birthday: date | None = None
    gender: Gender | None = None
    city: str | None = Field(default=None, max_length=100)
    preferred_channel: Channel | None = None


class CustomerCreate(CustomerProfile):
    phone: str | None = Field(default=None, max_length=30, examples=["0912 345 678"])
    email: str | None = Field(default=None, max_length=200)
    card: str | None = Field(default=None, max_length=40)
    external_ids: list[ExternalId] = Field(default_factory=list, max_length=20)
    consents: Consents = Consents()
    enrolled_store_id: str | None = Field(default=None, max_length=32)
    enrolled_at: AwareDatetime | None = Field(default=None, description="with its UTC offset; default now")
    referral_code: str | None = Field(default=None, min_length=1, max_length=20,
                                      description="the referral code of the member who brought this one (L13)")

    @model_validator(mode="after")
    def _has_identity(self) -> CustomerCreate:
        if not (self.phone or self.email or self.card or self.external_ids):
            raise ValueError("a customer needs at least one identity: phone, email, card or external_ids")
        return self


class CustomerUpdate(CustomerProfile):
    """Only the fields present are changed; identities given here are added or replace that kind."""

    phone: str | None = Field(default=None, max_length=30)
    email: str | None = Field(default=None, max_length=200)
    card: str | None = Field(default=None, max_length=40)
    external_ids: list[ExternalId] | None = Field(default=None, max_length=20)
    consents: Consents | None = None


class Identities(BaseModel):
    phone: str | None
    email: str | None
    cards: list[str]
    external_ids: list[ExternalId]


class CustomerOut(CustomerProfile):
    model_config = ConfigDict(extra="ignore")
    id: int
    identities: Identities
    consents: Consents
    enrolled_store_id: str | None
    enrolled_at: datetime
    created_at: datetime
    updated_at: datetime
