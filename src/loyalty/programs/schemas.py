"""The program file's shape, validated with error paths such as `earn[1].per_amount`."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from loyalty.errors import ConfigError
from loyalty.models.customers import STORE_KINDS
from loyalty.rewards.schemas import RewardDefinition


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


class ProgramDefinition(_Strict):
    name: str = Field(min_length=1, max_length=200)
    currency: str = Field(default="VND", pattern=r"^[A-Z]{3}$")
    timezone: str = "Asia/Ho_Chi_Minh"
    earn: list[EarnRate] = Field(default_factory=list)
    redemption: Redemption = Redemption()
    expiry: Expiry = Expiry()
    pending_days: int = Field(default=0, ge=0, le=365)
    hold_timeout_minutes: int = Field(default=15, ge=1, le=7 * 24 * 60)
    # --- rewards catalogue (L7): omitted leaves the catalogue to the API; see rewards/catalogue.py
    rewards: list[RewardDefinition] | None = None

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
            message = str(error["msg"]).removeprefix("Value error, ")
            errors.append(f"{_path(tuple(error['loc']))}: {message}")
        raise ConfigError("; ".join(errors), errors=errors) from None
