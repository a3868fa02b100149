"""The program file's shape, validated with error paths such as `earn[1].per_amount`."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

from loyalty.bonuses.schemas import BonusProgram, check_rewards
from loyalty.errors import ConfigError
from loyalty.goals.schemas import Goals
from loyalty.models.customers import STORE_KINDS
from loyalty.referrals.schemas import ReferralProgram
from loyalty.rewards.schemas import RewardDefinition
from loyalty.stamps.schemas import StampCardDefinition, StampGive, stamp_card_problems


def _refuse_paths(problems: list[str]) -> None:
    """Cross-field problems, each with its path in the file; parse_program lists them one by one."""
    if problems:
        raise PydanticCustomError("program_paths", "{summary}", {"summary": "; ".join(problems), "paths": problems})


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EarnRate(_Strict):
    """`points` for every whole `per_amount` spent at stores of these kinds."""

    store_kinds: list[str] = Field(min_length=1)
    points: int = Field(ge=0)
    per_amount: int = Field(gt=0)

    @field_validator("store_kinds")
    @classmethod
    def _known_kinds(cls, kinds: list[str]) -> list[str]:
        unknown = sorted(set(kinds) - set(STORE_KINDS))
        if unknown:
            raise ValueError(f"unknown store kind {', '.join(unknown)}; use one of {', '.join(STORE_KINDS)}")
        return kinds


# --- earn rules (L1) --------------------------------------------------------------------------

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
_HOURS = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]|24):([0-5]\d)$")


def parse_hours(text: str) -> tuple[int, int]:
    """'07:00-10:00' -> minutes of the business day (420, 600); the end is excluded."""
    match = _HOURS.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not a range like '07:00-10:00'")
    start = int(match[1]) * 60 + int(match[2])
    end = int(match[3]) * 60 + int(match[4])
    if end > 24 * 60:
        raise ValueError(f"{text!r} ends after 24:00")
    if start == end:
        raise ValueError(f"{text!r} is empty: start and end are the same time")
    return start, end  # end < start crosses midnight: '22:00-02:00'


class RuleWhen(_Strict):
    """Conditions of a rule; all optional, all must hold."""

    store_ids: list[str] | None = Field(default=None, min_length=1)
    store_kinds: list[str] | None = Field(default=None, min_length=1)
    skus: list[str] | None = Field(default=None, min_length=1)
    categories: list[str] | None = Field(default=None, min_length=1)
    min_spend: int | None = Field(default=None, ge=0)
    date_from: date | None = None
    date_to: date | None = None
    weekdays: list[Weekday] | None = Field(default=None, min_length=1)
    hours: list[str] | None = Field(default=None, min_length=1)
    birthday_month: Literal[True] | None = None
    first_purchase: Literal[True] | None = None
    segments: list[str] | None = Field(default=None, min_length=1)
    # Codes of the file's tiers.levels (checked by ProgramDefinition); the member's tier at the sale.
    tiers: list[str] | None = Field(default=None, min_length=1)

    @field_validator("store_kinds")
    @classmethod
    def _known_kinds(cls, kinds: list[str] | None) -> list[str] | None:
        unknown = sorted(set(kinds or ()) - set(STORE_KINDS))
        if unknown:
            raise ValueError(f"unknown store kind {', '.join(unknown)}; use one of {', '.join(STORE_KINDS)}")
        return kinds

    @field_validator("hours", mode="before")
    @classmethod
    def _one_range_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("hours")
    @classmethod
    def _ranges(cls, value: list[str] | None) -> list[str] | None:
        problems = []
        for text in value or ():
            try:
                parse_hours(text)
            except ValueError as exc:
                problems.append(str(exc))
        if problems:
            raise ValueError("; ".join(problems))
        return value

    @model_validator(mode="after")
    def _date_order(self) -> RuleWhen:
        if self.date_from and self.date_to and self.date_from > self.date_to:
            raise ValueError(f"date_from {self.date_from} is after date_to {self.date_to}")
        return self


class PointsPer(_Strict):
    """`points` for every whole `per_amount` of the rule's amount."""

    points: int = Field(ge=0)
    per_amount: int = Field(gt=0)


class RuleGive(_Strict):
    """Exactly one effect."""

    points_per: PointsPer | None = None
    multiplier: Decimal | None = Field(default=None, description="'1.5': +50% on per-amount points; 2 decimals")
    bonus: int | None = Field(default=None, ge=1)
    stamp: StampGive | None = Field(default=None, description="stamps on a card (L5); gives no points")

    @field_validator("multiplier", mode="before")
    @classmethod
    def _exact_decimal(cls, value: Any) -> Any:
        # YAML reads 1.5 as a float; its shortest repr is the decimal the author wrote.
        if isinstance(value, float):
            return str(value)
        return value

    @field_validator("multiplier")
    @classmethod
    def _two_places(cls, value: Decimal | None) -> Decimal | None:
        if value is None:
            return None
        try:
            percent = value * 100
            if percent != percent.to_integral_value():
                raise ValueError(f"{value} has more than 2 decimal places")
        except InvalidOperation as exc:
            raise ValueError(f"{value} is not a number") from exc
        if not Decimal("1.01") <= value <= Decimal("100"):
            raise ValueError(f"{value} must be between 1.01 and 100")
        return value

    @model_validator(mode="after")
    def _exactly_one(self) -> RuleGive:
        given = [name for name in ("points_per", "multiplier", "bonus", "stamp") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one effect of points_per, multiplier, bonus, stamp (got {len(given)}: "
                             f"{', '.join(given) or 'none'})")
        return self

    @property
    def multiplier_percent(self) -> int:
        assert self.multiplier is not None
        return int(self.multiplier * 100)


class RuleCap(_Strict):
    """What one rule may give: to one purchase, to one member per business day, and in total (a
    budget). Day and total caps are counted in the database (programs/caps.py), so concurrent
    sales never exceed them; the sale that reaches a cap gets what is left of it."""

    per_transaction: int | None = Field(default=None, ge=1, le=10**12)
    per_member_per_day: int | None = Field(default=None, ge=1, le=10**12)
    total: int | None = Field(default=None, ge=1, le=10**15)


class EarnRule(_Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$", description="a unique slug, shown on receipts")
    name: str = Field(min_length=1, max_length=200)
    priority: int = Field(default=0, ge=-1000, le=1000, description="higher first; earn: rates are 0")
    exclusive: bool = Field(default=False, description="a match stops rules of lower priority")
    when: RuleWhen = RuleWhen()
    give: RuleGive
    cap: RuleCap | None = None


class Redemption(_Strict):
    point_value: int = Field(default=1000, gt=0, description="currency units one point pays")
    min_points: int = Field(default=1, ge=1)
    max_points_per_purchase: int | None = Field(default=None, ge=1)
    max_share_percent: int = Field(default=100, ge=1, le=100)


class Expiry(_Strict):
    months_after_earning: int | None = Field(default=12, ge=1, le=120)
    end_of_next_calendar_year: bool = False

    @model_validator(mode="after")
    def _one_rule(self) -> Expiry:
        if self.end_of_next_calendar_year and self.months_after_earning is not None:
            raise ValueError("choose months_after_earning or end_of_next_calendar_year, not both")
        return self


# --- tiers (L4): see tiers/service.py for qualification, review and progress ------------------

TIER_CODE = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$"


class TierWindow(_Strict):
    """`calendar_year` (Jan 1 to Dec 31 in business time) or `{rolling_months: N}`."""

    rolling_months: int | None = Field(default=None, ge=1, le=60)
    calendar_year: bool = False

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        if value == "calendar_year":
            return {"calendar_year": True}
        if isinstance(value, str):
            raise ValueError(f"{value!r} is not a window; use calendar_year or {{rolling_months: 12}}")
        return value

    @model_validator(mode="after")
    def _exactly_one(self) -> TierWindow:
        if self.calendar_year == (self.rolling_months is not None):
            raise ValueError("choose calendar_year or rolling_months, exactly one")
        return self


class TierReview(_Strict):
    every: Literal["month", "quarter", "year"] = "year"
    grace_days: int = Field(default=30, ge=0, le=366)


class TierQualification(_Strict):
    # Never the spendable balance: spending points must not cost a member their tier.
    metric: Literal["spend", "points_earned", "purchases"]
    window: TierWindow
    review: TierReview = TierReview()


class TierPerks(_Strict):
    earn_multiplier: Decimal = Field(default=Decimal(1), description="'1.5': 150% of earned points; 2 decimals")
    discount_percent: int = Field(default=0, ge=0, le=100)
    free_shipping: bool = False
    reward_access: list[str] = Field(default_factory=list, description="reward codes only this tier and up see")

    @field_validator("earn_multiplier", mode="before")
    @classmethod
    def _exact_decimal(cls, value: Any) -> Any:
        return str(value) if isinstance(value, float) else value  # YAML's 1.5 is the author's "1.5"

    @field_validator("earn_multiplier")
    @classmethod
    def _two_places(cls, value: Decimal) -> Decimal:
        if not value.is_finite() or value * 100 != (value * 100).to_integral_value():
            raise ValueError(f"{value} must be a number with at most 2 decimal places")
        if not Decimal(1) <= value <= Decimal(100):
            raise ValueError(f"{value} must be between 1 and 100")
        return value

    @property
    def earn_multiplier_percent(self) -> int:
        return int(self.earn_multiplier * 100)


class TierLevel(_Strict):
    code: str = Field(pattern=TIER_CODE)
    name: str = Field(min_length=1, max_length=200)
    threshold: int = Field(ge=0, le=10**15, description="in the metric's unit: currency, points or purchases")
    perks: TierPerks = TierPerks()


class TierProgram(_Strict):
    qualification: TierQualification
    levels: list[TierLevel] = Field(min_length=1)

    @model_validator(mode="after")
    def _ordered(self) -> TierProgram:
        problems: list[str] = []
        if self.levels[0].threshold != 0:
            problems.append("tiers.levels[0].threshold: the first level is the base tier and must have threshold 0")
        first: dict[str, int] = {}
        for index, level in enumerate(self.levels):
            if level.code in first:
                problems.append(f"tiers.levels[{index}].code: {level.code!r} is also the code of "
                                f"tiers.levels[{first[level.code]}]")
            first.setdefault(level.code, index)
            if index and level.threshold <= self.levels[index - 1].threshold:
                problems.append(f"tiers.levels[{index}].threshold: must be greater than "
                                f"tiers.levels[{index - 1}].threshold ({self.levels[index - 1].threshold})")
        _refuse_paths(problems)
        return self

    def level(self, code: str) -> TierLevel | None:
        return next((level for level in self.levels if level.code == code), None)

    def rank(self, code: str | None) -> int:
        """0 for the base tier, higher is better; -1 for a code this program does not know."""
        return next((index for index, level in enumerate(self.levels) if level.code == code), -1)

    def qualifying(self, value: int) -> TierLevel:
        reached = [level for level in self.levels if level.threshold <= value]
        return reached[-1] if reached else self.levels[0]

# --- end of tiers (L4) ------------------------------------------------------------------------


class LifecycleThresholds(_Strict):
    """Where the lifecycle report (C5) puts its stage boundaries; unset ones are derived from the
    business's own purchase cycle (see analytics/lifecycle.py)."""

    lapsed_after_days: int | None = Field(default=None, ge=1, le=3650, description="days without a purchase")
    lost_after_days: int | None = Field(default=None, ge=2, le=3650, description="days without a purchase")
    loyal_min_purchases: int | None = Field(default=None, ge=2, le=1000, description="purchase days to be loyal")

    @model_validator(mode="after")
    def _ordered(self) -> LifecycleThresholds:
        if (self.lapsed_after_days is not None and self.lost_after_days is not None
                and self.lost_after_days <= self.lapsed_after_days):
            raise ValueError(f"lost_after_days ({self.lost_after_days}) must be greater than lapsed_after_days "
                             f"({self.lapsed_after_days})")
        return self


class ProgramDefinition(_Strict):
    name: str = Field(min_length=1, max_length=200)
    currency: str = Field(default="VND", pattern=r"^[A-Z]{3}$")
    timezone: str = "Asia/Ho_Chi_Minh"
    earn: list[EarnRate] = Field(default_factory=list)
    # --- earn rules (L1): see programs/rules.py for the order of evaluation
    rules: list[EarnRule] = Field(default_factory=list)
    segments: dict[str, list[int]] = Field(default_factory=dict, description="named lists of customer ids")
    redemption: Redemption = Redemption()
    expiry: Expiry = Expiry()
    pending_days: int = Field(default=0, ge=0, le=365)
    hold_timeout_minutes: int = Field(default=15, ge=1, le=7 * 24 * 60)
    # --- rewards catalogue (L7): omitted leaves the catalogue to the API; see rewards/catalogue.py
    rewards: list[RewardDefinition] | None = None
    # --- tiers (L4): omitted means no tiers; see tiers/service.py
    tiers: TierProgram | None = None
    # --- stamp cards (L5): see stamps/schemas.py and stamps/service.py
    stamp_cards: list[StampCardDefinition] = Field(default_factory=list)
    # --- lifecycle stages (C5) for analytics
    lifecycle: LifecycleThresholds = LifecycleThresholds()
    # --- goals and badges (L10): see goals/service.py
    goals: Goals = Field(default_factory=list)
    # --- bonuses (L6) and referrals (L13): omitted means none; see bonuses/ and referrals/service.py
    bonuses: BonusProgram | None = None
    referrals: ReferralProgram | None = None

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("rewards")
    @classmethod
    def _unique_reward_codes(cls, rewards: list[RewardDefinition] | None) -> list[RewardDefinition] | None:
        first: dict[str, int] = {}
        for index, reward in enumerate(rewards or []):
            if reward.code in first:
                raise ValueError(f"{reward.code!r} is listed twice: rewards[{first[reward.code]}] and rewards[{index}]")
            first[reward.code] = index
        return rewards

    @model_validator(mode="after")
    def _one_rate_per_kind(self) -> ProgramDefinition:
        seen: dict[str, int] = {}
        for index, rate in enumerate(self.earn):
            for kind in rate.store_kinds:
                if kind in seen:
                    raise ValueError(
                        f"earn[{index}].store_kinds: {kind!r} already has a rate in earn[{seen[kind]}]"
                    )
                seen[kind] = index
        return self

    @model_validator(mode="after")
    def _rules_consistent(self) -> ProgramDefinition:
        problems: list[str] = []
        first: dict[str, int] = {}
        for index, rule in enumerate(self.rules):
            if rule.id in first:
                problems.append(f"rules[{index}].id: {rule.id!r} is also the id of rules[{first[rule.id]}]")
            first.setdefault(rule.id, index)
            unknown = [name for name in rule.when.segments or () if name not in self.segments]
            if unknown:
                problems.append(f"rules[{index}].when.segments: unknown segment {', '.join(map(repr, unknown))}; "
                                f"define it under segments:")
        _refuse_paths(problems)
        return self


    @model_validator(mode="after")
    def _stamp_cards_consistent(self) -> ProgramDefinition:
        codes = {reward.code for reward in self.rewards} if self.rewards is not None else None
        problems = stamp_card_problems(self.stamp_cards, self.rules, codes)
        _refuse_paths(problems)
        return self

    @model_validator(mode="after")
    def _bonus_rewards_known(self) -> ProgramDefinition:
        gifts = (self.bonuses.gifts() if self.bonuses else []) + (self.referrals.gifts() if self.referrals else [])
        problems = check_rewards(gifts, [r.code for r in self.rewards] if self.rewards is not None else None)
        _refuse_paths(problems)
        return self

    @model_validator(mode="after")
    def _tier_and_reward_codes(self) -> ProgramDefinition:
        """Rules' `when.tiers` and rewards' `min_tier` name this file's tier levels; tier perks'
        `reward_access` names this file's rewards (when the file lists them)."""
        problems: list[str] = []
        codes = [level.code for level in self.tiers.levels] if self.tiers is not None else []

        def check_tiers(path: str, wanted: list[str]) -> None:
            if self.tiers is None:
                problems.append(f"{path}: the program has no tiers; add a tiers: section or remove this")
                return
            unknown = [code for code in wanted if code not in codes]
            if unknown:
                problems.append(f"{path}: unknown tier {', '.join(map(repr, unknown))}; use one of {', '.join(codes)}")

        for index, rule in enumerate(self.rules):
            if rule.when.tiers:
                check_tiers(f"rules[{index}].when.tiers", rule.when.tiers)
        for index, reward in enumerate(self.rewards or ()):
            if reward.min_tier is not None:
                check_tiers(f"rewards[{index}].min_tier", [reward.min_tier])
        if self.tiers is not None and self.rewards is not None:
            known = {reward.code for reward in self.rewards}
            for index, level in enumerate(self.tiers.levels):
                unknown = [code for code in level.perks.reward_access if code not in known]
                if unknown:
                    problems.append(f"tiers.levels[{index}].perks.reward_access: unknown reward "
                                    f"{', '.join(map(repr, unknown))}; list it under rewards:")
        _refuse_paths(problems)
        return self


def _path(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(file)"


def parse_program(data: Any) -> ProgramDefinition:
    """Validates a parsed program file; every problem is reported with its path in the file."""
    if not isinstance(data, dict):
        raise ConfigError("(file): the program must be a mapping of settings", errors=["(file): not a mapping"])
    try:
        return ProgramDefinition.model_validate(data)
    except ValidationError as exc:
        errors = []
        for error in exc.errors():
            if error["type"] == "program_paths":
                errors.extend(error["ctx"]["paths"])
                continue
            message = str(error["msg"]).removeprefix("Value error, ")
            errors.append(f"{_path(tuple(error['loc']))}: {message}")
        raise ConfigError("; ".join(errors), errors=errors) from None
