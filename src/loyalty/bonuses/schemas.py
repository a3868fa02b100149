"""The program file's `bonuses:` section; reward codes are checked against `rewards:` by `check_rewards`."""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

_KINDS = ("retail", "online", "outlet", "call_centre", "partner")  # models.customers.STORE_KINDS


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Gift(_Strict):
    """What a bonus gives: points, a voucher for a catalogue reward, or both."""

    name: str = Field(min_length=1, max_length=200, description="shown on the receipt and in the history")
    points: int = Field(default=0, ge=0, le=10**9)
    reward: str | None = Field(default=None, min_length=1, max_length=40,
                               description="a reward code from the catalogue; its voucher is given free of points")

    @model_validator(mode="after")
    def _gives_something(self) -> Gift:
        if not self.points and self.reward is None:
            raise ValueError("give points (at least 1), a reward, or both")
        return self


class SignupBonus(Gift):
    """Given once when a member enrols through the API or the CLI (imported customers get none)."""


class FirstPurchaseBonus(Gift):
    """Given once, on the member's first purchase (of at least `min_spend`)."""

    min_spend: int = Field(default=0, ge=0)


class BirthdayBonus(Gift):
    """Given once per calendar year, on the member's first purchase inside the birthday window.

    `window: month` is the birthday's calendar month; `window: {days: 7}` is the birthday
    plus or minus 7 days (across month and year ends). The year is the birthday's year, so a
    window around 1 January gives the bonus once for that birthday, never twice.
    """

    window: Literal["month"] | dict[str, int] = "month"
    min_spend: int = Field(default=0, ge=0)

    @field_validator("window")
    @classmethod
    def _window(cls, value: Any) -> Any:
        if isinstance(value, dict):
            if set(value) != {"days"}:
                raise ValueError("window is `month` or `{days: N}` (N days before and after the birthday)")
            if not 0 <= value["days"] <= 31:
                raise ValueError("window.days must be between 0 and 31")
        return value

    @property
    def days(self) -> int | None:
        return self.window["days"] if isinstance(self.window, dict) else None


class InstantWhen(_Strict):
    """Conditions on the sale, all optional, all must hold (like the earn rules' `when:`)."""

    store_ids: list[str] | None = Field(default=None, min_length=1)
    store_kinds: list[str] | None = Field(default=None, min_length=1)
    skus: list[str] | None = Field(default=None, min_length=1)
    categories: list[str] | None = Field(default=None, min_length=1)
    min_spend: int | None = Field(default=None, ge=0, description="the sale's amount, or the matching lines' total")
    date_from: date | None = None
    date_to: date | None = None

    @field_validator("store_kinds")
    @classmethod
    def _known_kinds(cls, kinds: list[str] | None) -> list[str] | None:
        unknown = sorted(set(kinds or ()) - set(_KINDS))
        if unknown:
            raise ValueError(f"unknown store kind {', '.join(unknown)}; use one of {', '.join(_KINDS)}")
        return kinds

    @model_validator(mode="after")
    def _date_order(self) -> InstantWhen:
        if self.date_from and self.date_to and self.date_from > self.date_to:
            raise ValueError(f"date_from {self.date_from} is after date_to {self.date_to}")
        return self


class InstantBonus(Gift):
    """Given on every sale that meets `when` (e.g. spend over X gets a voucher on the receipt)."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$", description="a unique slug")
    when: InstantWhen = InstantWhen()


class BonusProgram(_Strict):
    signup: SignupBonus | None = None
    first_purchase: FirstPurchaseBonus | None = None
    birthday: BirthdayBonus | None = None
    instant: list[InstantBonus] = Field(default_factory=list)

    @field_validator("instant")
    @classmethod
    def _unique_ids(cls, value: list[InstantBonus]) -> list[InstantBonus]:
        first: dict[str, int] = {}
        for index, bonus in enumerate(value):
            if bonus.id in first:
                raise ValueError(f"{bonus.id!r} is the id of instant[{first[bonus.id]}] and instant[{index}]")
            first[bonus.id] = index
        return value

    def gifts(self) -> list[tuple[str, Gift]]:
        """Every gift with its path in the file."""
        named: list[tuple[str, Gift | None]] = [
            ("bonuses.signup", self.signup), ("bonuses.first_purchase", self.first_purchase),
            ("bonuses.birthday", self.birthday)]
        named += [(f"bonuses.instant[{i}]", bonus) for i, bonus in enumerate(self.instant)]
        return [(path, gift) for path, gift in named if gift is not None]


def check_rewards(gifts: list[tuple[str, Gift]], reward_codes: list[str] | None) -> list[str]:
    """Problems with the reward codes gifts name, when the file lists its own catalogue (`rewards:`).

    Without `rewards:` the catalogue is kept through the API, so a code is checked when given:
    an unknown or unavailable reward then gives the points alone (see bonuses/service.py).
    """
    if reward_codes is None:
        return []
    known = set(reward_codes)
    return [f"{path}.reward: unknown reward {gift.reward!r}; list it under rewards:"
            for path, gift in gifts if gift.reward is not None and gift.reward not in known]
