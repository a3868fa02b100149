"""Shapes of rewards and vouchers, shared by the API and the program file's `rewards:` list."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

RewardKind = Literal["item", "voucher_amount", "voucher_percent", "free_product", "free_shipping", "experience"]
VoucherStatus = Literal["issued", "redeemed", "expired", "cancelled"]

REWARD_CODE = r"^[A-Z0-9][A-Z0-9_-]{0,39}$"
MAX_POINTS = 10**12


class RewardDefinition(BaseModel):
    """One catalogue entry; the same fields in the program file and in POST /v1/rewards."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    code: str = Field(pattern=REWARD_CODE, examples=["COFFEE"], description="upper-case letters, digits, - and _")
    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    kind: RewardKind
    amount: int | None = Field(default=None, gt=0, le=MAX_POINTS * 1000,
                               description="voucher_amount only: currency units off")
    percent: int | None = Field(default=None, ge=1, le=100, description="voucher_percent only: percent off")
    sku: str | None = Field(default=None, min_length=1, max_length=64, description="free_product only")
    points_cost: int = Field(gt=0, le=MAX_POINTS)
    stock: int | None = Field(default=None, ge=0, le=MAX_POINTS, description="units left; null is unlimited")
    valid_from: AwareDatetime | None = Field(default=None, description="redeemable from (inclusive)")
    valid_until: AwareDatetime | None = Field(default=None, description="redeemable until (exclusive)")
    voucher_valid_days: int = Field(default=30, ge=1, le=3650,
                                    description="a voucher is usable through the Nth business day after issue")
    per_member_limit: int | None = Field(default=None, ge=1, le=10**6,
                                         description="vouchers one member may hold or have used; null is none")
    min_tier: str | None = Field(default=None, min_length=1, max_length=40)

    @model_validator(mode="after")
    def _consistent(self) -> RewardDefinition:
        check_kind_values(self.kind, self.amount, self.percent, self.sku)
        check_window(self.valid_from, self.valid_until)
        return self


def check_kind_values(kind: str, amount: int | None, percent: int | None, sku: str | None) -> None:
    needs = {"voucher_amount": "amount", "voucher_percent": "percent", "free_product": "sku"}
    given = {name for name, value in (("amount", amount), ("percent", percent), ("sku", sku)) if value is not None}
    wanted = {needs[kind]} if kind in needs else set()
    if wanted - given:
        raise ValueError(f"a {kind} reward needs {', '.join(sorted(wanted - given))}")
    if given - wanted:
        raise ValueError(f"a {kind} reward takes no {', '.join(sorted(given - wanted))}")


def check_window(valid_from: datetime | None, valid_until: datetime | None) -> None:
    if valid_from is not None and valid_until is not None and valid_until <= valid_from:
        raise ValueError("valid_until must be later than valid_from")


class RewardUpdate(BaseModel):
    """PATCH: only the fields sent change; kind and value stay (make a new reward for another value)."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    points_cost: int | None = Field(default=None, gt=0, le=MAX_POINTS)
    stock: int | None = Field(default=None, ge=0, le=MAX_POINTS, description="sets the units left; null unlimited")
    valid_from: AwareDatetime | None = None
    valid_until: AwareDatetime | None = None
    voucher_valid_days: int | None = Field(default=None, ge=1, le=3650)
    per_member_limit: int | None = Field(default=None, ge=1, le=10**6)
    min_tier: str | None = Field(default=None, min_length=1, max_length=40)
    active: bool | None = None

    @model_validator(mode="after")
    def _not_null(self) -> RewardUpdate:
        for name in ("name", "points_cost", "voucher_valid_days", "active"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self


class RewardOut(BaseModel):
    code: str
    name: str
    description: str | None
    kind: RewardKind
    amount: int | None
    percent: int | None
    sku: str | None
    points_cost: int
    stock: int | None = Field(description="units left; null is unlimited")
    valid_from: datetime | None
    valid_until: datetime | None
    voucher_valid_days: int
    per_member_limit: int | None
    min_tier: str | None
    active: bool


class VoucherIssueIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reward_code: str = Field(min_length=1, max_length=40, examples=["COFFEE"])


class VoucherRedeemIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    store_id: str | None = Field(default=None, min_length=1, max_length=32,
                                 description="the store using the voucher; a store key's own by default")
    transaction_id: str | None = Field(default=None, min_length=1, max_length=100,
                                       description="the POS's id for the sale: a retry with it gets the first answer")


class VoucherOut(BaseModel):
    code: str
    customer_id: int
    reward_code: str
    reward_name: str
    kind: RewardKind
    amount: int | None
    percent: int | None
    sku: str | None
    points_spent: int
    status: VoucherStatus = Field(description="an issued voucher past expires_at shows as expired at once")
    redeemable: bool
    issued_at: datetime
    expires_at: datetime
    redeemed_at: datetime | None
    redeemed_store_id: str | None
    redeemed_transaction_id: str | None
    cancelled_at: datetime | None


class VoucherList(BaseModel):
    items: list[VoucherOut]
