"""Stamp cards (L5) in the program file, rules that give stamps, and the progress members see.

A card says what counts (skus and/or categories, a minimum unit price), whether a stamp is given
per unit bought (a line of quantity 3 gives 3) or once per purchase, how many stamps complete it
and the reward (a catalogue code) its voucher is for:

    stamp_cards:
      - id: ice-cream
        name: Buy 5 ice creams, the 6th is free
        counts: {categories: [ice cream]}
        per: unit
        stamps_to_complete: 5
        reward: FREE-CONE
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from loyalty.rewards.schemas import REWARD_CODE

CARD_ID = r"^[a-z0-9][a-z0-9_-]{0,39}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StampCounts(_Strict):
    """Which lines count; all conditions must hold. No skus and no categories: every line counts."""

    skus: list[str] | None = Field(default=None, min_length=1)
    categories: list[str] | None = Field(default=None, min_length=1)
    min_unit_price: int | None = Field(default=None, ge=0, description="lines cheaper than this do not count")


class StampCardDefinition(_Strict):
    id: str = Field(pattern=CARD_ID, description="a unique slug; rules name it in give.stamp.card")
    name: str = Field(min_length=1, max_length=200)
    counts: StampCounts = StampCounts()
    per: Literal["unit", "purchase"] = Field(
        default="unit", description="unit: one stamp per counting unit bought; purchase: one per purchase with any")
    stamps_to_complete: int = Field(ge=1, le=1000)
    reward: str = Field(pattern=REWARD_CODE, description="the catalogue reward whose voucher a full card issues")
    valid_from: date | None = Field(default=None, description="first business day sales stamp (inclusive)")
    valid_until: date | None = Field(default=None, description="last business day sales stamp (inclusive)")

    @model_validator(mode="after")
    def _window(self) -> StampCardDefinition:
        if self.valid_from and self.valid_until and self.valid_from > self.valid_until:
            raise ValueError(f"valid_from {self.valid_from} is after valid_until {self.valid_until}")
        return self


class StampGive(_Strict):
    """A rule's stamp effect: `extra` stamps on the card, or `times` the stamps the sale earned on it."""

    card: str = Field(pattern=CARD_ID)
    extra: int | None = Field(default=None, ge=1, le=1000, description="stamps added when the rule matches")
    times: int | None = Field(default=None, ge=2, le=10, description="2: double stamps on the card for this sale")

    @model_validator(mode="after")
    def _exactly_one(self) -> StampGive:
        if (self.extra is None) == (self.times is None):
            raise ValueError("give exactly one of extra or times")
        return self


def stamp_card_problems(cards: Sequence[StampCardDefinition], rules: Sequence[object],
                        reward_codes: set[str] | None) -> list[str]:
    """Cross-field checks, each with its path: unique ids, known rewards, rules naming known cards."""
    problems: list[str] = []
    first: dict[str, int] = {}
    for index, card in enumerate(cards):
        if card.id in first:
            problems.append(f"stamp_cards[{index}].id: {card.id!r} is also the id of stamp_cards[{first[card.id]}]")
        first.setdefault(card.id, index)
        if reward_codes is not None and card.reward not in reward_codes:
            problems.append(f"stamp_cards[{index}].reward: unknown reward {card.reward!r}; define it under rewards:")
    for index, rule in enumerate(rules):
        give = getattr(getattr(rule, "give", None), "stamp", None)
        if not isinstance(give, StampGive):
            continue
        if give.card not in first:
            problems.append(f"rules[{index}].give.stamp.card: unknown stamp card {give.card!r}; "
                            "define it under stamp_cards:")
        when = getattr(rule, "when", None)
        if getattr(when, "first_purchase", None):
            # Stamps are given after the sale is written, when it is no longer anyone's first.
            problems.append(f"rules[{index}].when.first_purchase: not supported in a rule that gives stamps")
        if getattr(rule, "cap", None) is not None:
            problems.append(f"rules[{index}].cap: not supported in a rule that gives stamps")
    return problems


# --- progress (API) ---------------------------------------------------------------------------

class StampCardOut(BaseModel):
    card_id: str
    name: str = Field(description="the card's name in the program in force (its id if the card was removed)")
    reward: str | None = Field(description="the reward code a full card issues; null if the card was removed")
    stamps: int = Field(description="stamps on the open card")
    stamps_to_complete: int
    stamps_missing: int = Field(description="0 when full and waiting for its reward (out of stock)")
    completed: int = Field(description="cards of this id the member completed")
    active: bool = Field(description="whether sales stamp this card now (in the program and its validity)")
    started_at: datetime | None
    last_completed_at: datetime | None


class StampCardList(BaseModel):
    customer_id: int
    items: list[StampCardOut]
