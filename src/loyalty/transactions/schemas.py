"""API shapes for purchases and returns."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from loyalty.api.limits import MAX_ID

# The most one sale (or line price) can be, in minor units: the API and the CSV import refuse more.
MAX_AMOUNT = 10**13


class Line(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sku: str = Field(min_length=1, max_length=64)
    category: str | None = Field(default=None, max_length=100)
    quantity: int = Field(gt=0, le=1_000_000)
    unit_price: int = Field(ge=0, le=MAX_AMOUNT)


def _lines_total(lines: list[Line]) -> int:
    return sum(line.quantity * line.unit_price for line in lines)


class BalanceOut(BaseModel):
    available: int
    pending: int
    held: int
    owed: int = Field(description="points the member owes after a return took back points already spent")


class PurchaseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    store_id: str = Field(min_length=1, max_length=32)
    transaction_id: str = Field(min_length=1, max_length=64, description="the POS's own id, unique per store")
    customer_id: int | None = Field(default=None, ge=1, le=MAX_ID, description="omit for an anonymous sale")
    occurred_at: AwareDatetime
    amount: int = Field(ge=0, le=MAX_AMOUNT, description="total in the currency's minor unit (VND has none)")
    currency: str = Field(default="VND", pattern=r"^[A-Z]{3}$")
    lines: list[Line] = Field(default_factory=list, max_length=500)
    redeem_points: int = Field(default=0, ge=0, le=10**12, description="points paying for this purchase")
    hold_id: int | None = Field(default=None, ge=1, le=MAX_ID,
                                description="capture this hold as the points paying")

    @model_validator(mode="after")
    def _consistent(self) -> PurchaseIn:
        if self.lines and _lines_total(self.lines) != self.amount:
            raise ValueError(f"lines add up to {_lines_total(self.lines)}, but amount is {self.amount}")
        if (self.redeem_points or self.hold_id) and self.customer_id is None:
            raise ValueError("paying with points needs a customer_id")
        if self.redeem_points and self.hold_id:
            raise ValueError("give either redeem_points or hold_id, not both")
        return self


class AwardOut(BaseModel):
    rule_id: str = Field(description="the earn rule's id; `earn[0]`... are the program's earn: rates")
    name: str
    points: int


class InstantRewardOut(BaseModel):
    """Something a sale gave beyond its earn points, for the POS to print on the receipt (L5, L6, L10, L13)."""

    kind: Literal["points", "voucher", "badge"]
    source: str = Field(description="what gave it: `stamp_card:<id>`, `bonus:<kind>`, `referral`, `goal:<id>`")
    name: str
    points: int = Field(default=0, description="points credited through the ledger (kind `points`)")
    voucher_code: str | None = Field(default=None, description="the voucher issued (kind `voucher`)")


class PurchaseOut(BaseModel):
    id: int
    store_id: str
    transaction_id: str
    customer_id: int | None
    occurred_at: datetime
    amount: int
    currency: str
    points_earned: int
    points_redeemed: int
    redeemed_value: int = Field(description="the part of the amount paid with points")
    owed_settled: int = Field(description="earned points that paid back an earlier debt")
    balance: BalanceOut | None
    points_breakdown: list[AwardOut] = Field(
        default_factory=list, description="which earn rule gave what, in the order applied (for the receipt)")
    instant_rewards: list[InstantRewardOut] = Field(
        default_factory=list, description="bonuses, vouchers and badges this sale gave, in order (for the receipt)")


class ReturnIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    transaction_id: str = Field(min_length=1, max_length=64, description="the POS's own id of the return")
    store_id: str | None = Field(default=None, max_length=32, description="defaults to the purchase's store")
    occurred_at: AwareDatetime
    amount: int = Field(gt=0, le=MAX_AMOUNT, description="the returned amount")
    lines: list[Line] = Field(default_factory=list, max_length=500)

    @model_validator(mode="after")
    def _consistent(self) -> ReturnIn:
        if self.lines and _lines_total(self.lines) != self.amount:
            raise ValueError(f"lines add up to {_lines_total(self.lines)}, but amount is {self.amount}")
        return self


class ReturnOut(BaseModel):
    id: int
    purchase_id: int
    transaction_id: str
    amount: int
    points_reversed: int = Field(description="points earned on the returned share, taken back")
    points_restored: int = Field(description="points spent on the returned share, given back")
    shortfall: int = Field(description="points that could not be taken back because they were spent: now owed")
    balance: BalanceOut | None
