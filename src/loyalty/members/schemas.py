"""API shapes of the member summary."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from loyalty.goals.schemas import BadgeOut, GoalProgressOut
from loyalty.rewards.schemas import RewardKind
from loyalty.stamps.schemas import StampCardOut
from loyalty.tiers.schemas import MemberTierOut


class SummaryBalance(BaseModel):
    available: int = Field(description="spendable now")
    pending: int = Field(description="earned, spendable after the pending period")
    held: int = Field(description="reserved by open holds")
    owed: int = Field(description="points the member owes after a return of spent points")


class SummaryExpiring(BaseModel):
    within_30_days: int
    within_60_days: int
    within_90_days: int


class SummaryVoucher(BaseModel):
    code: str
    reward_name: str
    kind: RewardKind
    value: int | str | None = Field(description="amount off (voucher_amount), percent off (voucher_percent), the "
                                                "product's SKU (free_product); null for other kinds")
    expires_at: datetime


class NextReward(BaseModel):
    code: str
    name: str
    points_cost: int
    affordable: bool
    points_missing: int = Field(description="points still needed; 0 when affordable")


class MemberSummary(BaseModel):
    customer_id: int
    balance: SummaryBalance
    expiring: SummaryExpiring = Field(description="available points whose lots expire within 30, 60, 90 days")
    tier: MemberTierOut | None = Field(description="tier and progress to the next one; null: the program has no tiers")
    vouchers: list[SummaryVoucher] = Field(description="issued and not expired, soonest expiry first")
    best_next_reward: NextReward | None = Field(
        description="the dearest reward the member can afford now, else the cheapest one and the points missing; "
                    "only active, in-stock, currently valid rewards their tier may redeem. Null: none")
    stamp_cards: list[StampCardOut] = Field(default_factory=list,
                                            description="progress on each stamp card, as GET .../stamp-cards")
    badges: list[BadgeOut] = Field(default_factory=list, description="badges earned, oldest first")
    next_goal: GoalProgressOut | None = Field(
        default=None, description="the goal not earned yet closest to completion, with what is missing; null: none")
    advocate: bool = Field(default=False, description="the member referred someone who went on to buy (L13)")
