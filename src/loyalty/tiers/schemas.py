"""Tiers over the API: levels with perks and member counts, a member's tier and progress, overrides."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from loyalty.programs.schemas import TIER_CODE


class PerksOut(BaseModel):
    earn_multiplier: str = Field(description="decimal string, '1.5' is 150% of the points")
    earn_multiplier_percent: int
    discount_percent: int
    free_shipping: bool
    reward_access: list[str]


class LevelOut(BaseModel):
    code: str
    name: str
    threshold: int
    perks: PerksOut
    members: int = Field(description="members in this tier now, overrides included")


class TiersOut(BaseModel):
    metric: Literal["spend", "points_earned", "purchases"]
    window: str = Field(description="calendar_year or rolling_N_months")
    review_every: Literal["month", "quarter", "year"]
    grace_days: int
    levels: list[LevelOut]


class NextTierOut(BaseModel):
    code: str
    name: str
    threshold: int
    missing: int = Field(description="how much more of the metric reaches this tier now")
    deadline: date | None = Field(description="the last business day on which `missing` more is enough; null: "
                                              "nothing counts yet, the whole threshold is needed within one window")


class OverrideOut(BaseModel):
    tier: str
    reason: str
    until: datetime


class MemberTierOut(BaseModel):
    customer_id: int
    tier: str = Field(description="the tier in force: an active override first")
    earned_tier: str
    since: datetime | None = Field(description="when the earned tier was reached")
    metric: str
    value: int = Field(description="the qualifying metric in the current window, net of returns")
    window_start: date
    keeps_tier: bool = Field(description="the value already reaches the earned tier's threshold")
    next_review: date
    next: NextTierOut | None = Field(description="null at the top tier")
    override: OverrideOut | None


class OverrideIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tier: str = Field(pattern=TIER_CODE)
    reason: str = Field(min_length=1, max_length=2000)
    until: AwareDatetime = Field(description="when the override ends; must be in the future")


class HistoryItem(BaseModel):
    from_tier: str | None
    to_tier: str
    reason: Literal["upgrade", "review_downgrade", "override", "override_end"]
    note: str | None
    at: datetime
    actor: str
