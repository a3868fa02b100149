"""Goals and badges (L10): the program file's `goals:` section and the API's shapes.

A goal is a milestone on one metric (purchases, spend, categories tried, stores visited, a streak of
months with a purchase, referrals) with a target; reaching it gives its badge, and optional points,
once per member. See goals/service.py for how each metric counts.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

GOAL_METRICS = ("purchases", "spend", "categories", "stores", "streak_months", "referrals")
GoalMetric = Literal["purchases", "spend", "categories", "stores", "streak_months", "referrals"]
# What a sale can move: every metric but referrals, which move when a referred member qualifies
# (categories only when a line names one).
SALE_METRICS = frozenset({"purchases", "spend", "categories", "stores", "streak_months"})

_TARGET_LIMITS = {"purchases": 1_000_000, "spend": 10**15, "categories": 10_000, "stores": 10_000,
                  "streak_months": 120, "referrals": 100_000}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GoalBadge(_Strict):
    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=1000)
    icon: str | None = Field(default=None, pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$",
                             description="an icon key the apps know, e.g. 'star'")


class GoalWindow(_Strict):
    """`lifetime` (the default), `calendar_year` (Jan 1 to now, business time) or `{rolling_months: N}`."""

    rolling_months: int | None = Field(default=None, ge=1, le=60)
    calendar_year: bool = False

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        if value == "lifetime":
            return {}
        if value == "calendar_year":
            return {"calendar_year": True}
        if isinstance(value, str):
            raise ValueError(f"{value!r} is not a window; use lifetime, calendar_year or {{rolling_months: 12}}")
        return value

    @model_validator(mode="after")
    def _at_most_one(self) -> GoalWindow:
        if self.calendar_year and self.rolling_months is not None:
            raise ValueError("choose calendar_year or rolling_months, not both")
        return self

    @property
    def lifetime(self) -> bool:
        return not self.calendar_year and self.rolling_months is None

    @property
    def label(self) -> str:
        if self.calendar_year:
            return "calendar_year"
        return "lifetime" if self.rolling_months is None else f"rolling_{self.rolling_months}_months"


class GoalDefinition(_Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$", description="a unique slug; a member earns it once")
    name: str = Field(min_length=1, max_length=200)
    badge: GoalBadge
    metric: GoalMetric
    target: int = Field(ge=1, description="purchases, currency units, categories, stores, months or referrals")
    window: GoalWindow = GoalWindow()
    points: int = Field(default=0, ge=0, le=10_000_000, description="bonus points given once with the badge")
    reward: str | None = Field(default=None, description="not supported yet (needs vouchers free of points)")

    @field_validator("reward")
    @classmethod
    def _no_reward_yet(cls, value: str | None) -> str | None:
        # Rejected rather than accepted and ignored: a voucher free of points needs rewards.grant_voucher,
        # which the stamp-card and bonus features are adding; wiring it here is one call once merged.
        if value is not None:
            raise ValueError("not supported yet: a goal cannot issue a reward voucher until vouchers free of "
                             "points exist; give points instead")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> GoalDefinition:
        limit = _TARGET_LIMITS[self.metric]
        if self.target > limit:
            raise ValueError(f"target {self.target} is more than {limit}, the most a {self.metric} goal allows")
        if self.metric == "streak_months" and not self.window.lifetime:
            raise ValueError("a streak_months goal counts consecutive months whenever they fall: leave window out "
                             "(lifetime)")
        return self


def _unique_ids(goals: list[GoalDefinition]) -> list[GoalDefinition]:
    problems: list[str] = []
    first: dict[str, int] = {}
    for index, goal in enumerate(goals):
        if goal.id in first:
            problems.append(f"goals[{index}].id: {goal.id!r} is also the id of goals[{first[goal.id]}]")
        first.setdefault(goal.id, index)
    if problems:
        raise PydanticCustomError("program_paths", "{summary}", {"summary": "; ".join(problems), "paths": problems})
    return goals


# The type of ProgramDefinition.goals.
Goals = Annotated[list[GoalDefinition], AfterValidator(_unique_ids)]


# --- API ---------------------------------------------------------------------------------------

class BadgeOut(BaseModel):
    goal_id: str
    name: str
    description: str | None
    icon: str | None
    earned_at: datetime
    points: int = Field(description="bonus points given with the badge")


class GoalProgressOut(BaseModel):
    goal_id: str
    goal_name: str
    badge_name: str
    metric: str
    window: str = Field(description="lifetime, calendar_year or rolling_N_months")
    target: int
    current: int = Field(description="net of returns; for streak_months the streak still running (this month "
                                     "or last)")
    missing: int = Field(description="how much more reaches the target (0: reached, the badge comes with the "
                                     "next evaluation)")
    points: int
    text: str = Field(description="e.g. '2 more purchases to Regular'")


class MemberBadges(BaseModel):
    customer_id: int
    badges: list[BadgeOut] = Field(description="earned, oldest first")
    progress: list[GoalProgressOut] = Field(description="each goal of the program not earned yet, closest first")
