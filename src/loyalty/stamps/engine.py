"""Which stamp cards a sale's lines touch, and how many stamps, decided in Python from the program.

Per card: `per: unit` gives one stamp per counting unit (a line of quantity 3 gives 3); `per:
purchase` one stamp when any line counts. A sale without lines only stamps a per-purchase card
that counts everything (no skus, categories or minimum price). Outside the card's validity
(business dates in the program's time zone) nothing counts.

Rules with `give: {stamp: ...}` are evaluated by the earn rule engine's own matcher (compiled
here as 1-point bonus rules, so every condition means exactly what it means for points), among
themselves: `times` multiplies the stamps the sale earned on the card (several add up: two
"x2" rules give x3), then `extra` stamps are added, also on a sale that earned none by its lines.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from loyalty.programs.rules import LineLike, MemberFacts, RuleEngine
from loyalty.programs.schemas import EarnRule, ProgramDefinition, RuleGive
from loyalty.stamps.schemas import StampCardDefinition, StampGive


@dataclass(frozen=True, slots=True)
class Card:
    id: str
    name: str
    skus: frozenset[str] | None
    categories: frozenset[str] | None
    min_unit_price: int | None
    per_unit: bool
    target: int
    reward: str
    valid_from: date | None
    valid_until: date | None

    @classmethod
    def of(cls, card: StampCardDefinition) -> Card:
        counts = card.counts
        return cls(card.id, card.name, frozenset(counts.skus) if counts.skus else None,
                   frozenset(counts.categories) if counts.categories else None, counts.min_unit_price,
                   card.per == "unit", card.stamps_to_complete, card.reward, card.valid_from, card.valid_until)

    @property
    def counts_everything(self) -> bool:
        return self.skus is None and self.categories is None and self.min_unit_price is None

    def counts(self, line: LineLike) -> bool:
        return ((self.skus is None or line.sku in self.skus)
                and (self.categories is None or line.category in self.categories)
                and (self.min_unit_price is None or line.unit_price >= self.min_unit_price))

    def stamps_for_lines(self, lines: Sequence[LineLike]) -> int:
        """What these lines give by themselves (also what returning them takes back)."""
        if self.per_unit:
            return sum(line.quantity for line in lines if self.counts(line))
        return 1 if any(self.counts(line) for line in lines) else 0

    def stamps_for_sale(self, lines: Sequence[LineLike]) -> int:
        if lines:
            return self.stamps_for_lines(lines)
        return 1 if not self.per_unit and self.counts_everything else 0

    def open_on(self, day: date) -> bool:
        return ((self.valid_from is None or day >= self.valid_from)
                and (self.valid_until is None or day <= self.valid_until))


class StampEngine:
    """A program's stamp cards and stamp rules, compiled once per program version."""

    __slots__ = ("by_id", "cards", "dated", "rules", "stamp_rules", "tz")

    def __init__(self, definition: ProgramDefinition) -> None:
        self.cards: tuple[Card, ...] = tuple(Card.of(card) for card in definition.stamp_cards)
        self.by_id = {card.id: card for card in self.cards}
        self.tz = ZoneInfo(definition.timezone)
        self.dated = any(card.valid_from or card.valid_until for card in self.cards)
        self.stamp_rules: dict[str, StampGive] = {
            rule.id: rule.give.stamp for rule in definition.rules if rule.give.stamp is not None}
        self.rules: RuleEngine | None = None
        if self.stamp_rules:
            as_bonus = [EarnRule(id=rule.id, name=rule.name, priority=rule.priority, exclusive=rule.exclusive,
                                 when=rule.when, give=RuleGive(bonus=1))
                        for rule in definition.rules if rule.give.stamp is not None]
            self.rules = RuleEngine(definition.model_copy(update={"rules": as_bonus, "earn": []}))

    @property
    def needs_member(self) -> bool:
        return self.rules is not None and self.rules.needs_member

    def stamps_for(
        self, *, store_id: str, store_kind: str, amount: int, occurred_at: datetime, customer_id: int,
        lines: Sequence[LineLike], member: Callable[[], MemberFacts | None],
    ) -> dict[str, int]:
        """Card id -> stamps this sale gives; empty when it touches no card (the usual case: no query)."""
        if not self.cards:
            return {}
        day = occurred_at.astimezone(self.tz).date() if self.dated else None
        earned: dict[str, int] = {}
        for card in self.cards:
            if day is not None and not card.open_on(day):
                continue
            stamps = card.stamps_for_sale(lines)
            if stamps:
                earned[card.id] = stamps
        if self.rules is None:
            return earned
        facts = member() if self.rules.needs_member else None
        matched = self.rules.evaluate(store_id=store_id, store_kind=store_kind, amount=amount, paid=amount,
                                      occurred_at=occurred_at, customer_id=customer_id, lines=lines, member=facts)
        times: dict[str, int] = {}
        extra: dict[str, int] = {}
        for award in matched.breakdown:
            give = self.stamp_rules.get(award.rule_id)
            if give is None:
                continue  # a tier perk's award: not a stamp rule
            card = self.by_id[give.card]
            if day is not None and not card.open_on(day):
                continue
            if give.times is not None:
                times[card.id] = times.get(card.id, 1) + give.times - 1
            else:
                assert give.extra is not None
                extra[card.id] = extra.get(card.id, 0) + give.extra
        for card_id, factor in times.items():
            if card_id in earned:
                earned[card_id] *= factor
        for card_id, stamps in extra.items():
            earned[card_id] = earned.get(card_id, 0) + stamps
        return earned


_lock = threading.Lock()
_engines: dict[int, tuple[ProgramDefinition, StampEngine]] = {}


def engine_for(definition: ProgramDefinition) -> StampEngine:
    """The compiled engine of a program definition (cached while the definition object lives)."""
    found = _engines.get(id(definition))
    if found is not None and found[0] is definition:
        return found[1]
    engine = StampEngine(definition)
    with _lock:
        if len(_engines) > 64:
            _engines.clear()
        _engines[id(definition)] = (definition, engine)
    return engine
