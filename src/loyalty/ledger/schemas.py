"""API shapes for balances, history, holds and adjustments."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from loyalty.api.limits import MAX_ID
from loyalty.transactions.schemas import BalanceOut


class BalanceDetail(BaseModel):
    customer_id: int
    available: int = Field(description="spendable now")
    pending: int = Field(description="earned, spendable after the pending period")
    held: int = Field(description="reserved by open holds")
    owed: int = Field(description="points the member owes after a return of spent points")
    expiring_30_days: int
    expiring_60_days: int
    expiring_90_days: int


class LedgerItem(BaseModel):
    entry_id: int
    kind: str
    reason: str
    actor: str
    created_at: datetime
    transaction_id: int | None
    changes: dict[str, int] = Field(description="change per member account: available, pending, held, owed")


class LedgerPage(BaseModel):
    items: list[LedgerItem]
    next_before: int | None = Field(description="pass as ?before= for the next (older) page")


class HoldIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    points: int = Field(gt=0, le=10**12)
    store_id: str | None = Field(default=None, max_length=32)
    reference: str | None = Field(default=None, max_length=100, description="e.g. the POS basket id")
    expires_in_seconds: int | None = Field(default=None, ge=10, le=7 * 24 * 3600)


class CaptureIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    points: int | None = Field(default=None, gt=0, le=10**12, description="omit to capture the whole hold")


class HoldOut(BaseModel):
    id: int
    customer_id: int
    store_id: str | None
    points: int
    captured_points: int
    status: str
    reference: str | None
    created_at: datetime
    expires_at: datetime
    balance: BalanceOut | None


class AdjustmentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    customer_id: int = Field(ge=1, le=MAX_ID)
    points: int = Field(ge=-(10**12), le=10**12, description="positive adds, negative removes")
    reason: str = Field(min_length=3, max_length=500)


class AdjustmentOut(BaseModel):
    entry_id: int
    customer_id: int
    points: int
    reason: str
    balance: BalanceOut | None
