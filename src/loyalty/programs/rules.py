"""The earn rule engine (L1): which rules a purchase matches and the points each one gives.

Order of evaluation, the same in the scalar and the vectorised evaluator:

1. The program's `earn:` rates are built-in per-amount rules of priority 0 with ids `earn[0]`,
   `earn[1]`, ...; the `rules:` list comes before them at equal priority.
2. Rules are tried from the highest priority down (file order among equal priorities). A
   matching `exclusive` rule stops every rule of LOWER priority; rules of its own priority
   still apply.
3. Per-amount rules (`points_per`) earn whole blocks of the rule's amount: the amount paid in
   money, or, for a rule with `skus`/`categories`, the matching lines' share of it (lines total
   x paid / amount, rounded down). A purchase without lines never matches a sku/category rule.
   `min_spend` compares with the rule's amount.
4. A multiplier "1.5" adds floor(S x 50 / 100) where S is the points of the applied per-amount
   rules whose priority is at least the multiplier's own; several multipliers add up (they do
   not compound).
5. Fixed bonuses add their points.
6. `cap.per_transaction` caps what one rule gives to one purchase (for a multiplier: the points
   it adds). Points are integers throughout; the breakdown lists rules that gave points.
   `cap.per_member_per_day` and `cap.total` (a budget) are counted in the database after
   evaluation (programs/caps.py): they reduce the rule's own award, in the order sales are
   recorded; multipliers and tier perks are computed from the points before those two caps.

7. A tier's `earn_multiplier` perk (tiers.levels[].perks) adds floor(S x (percent - 100) / 100)
   where S is the points of every applied per-amount rule, as an award `tier:<CODE>`.

Member facts (birthday month, first purchase, tier) are only read when a rule or a tier perk
needs them (`RuleEngine.needs_member`); segments are lists in the program file; the tier is
the member's tier when the purchase is recorded (an active override first), as the tiers
service defines it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from loyalty.models.customers import STORE_KINDS
from loyalty.programs.schemas import WEEKDAYS, PointsPer, ProgramDefinition, RuleGive, RuleWhen, parse_hours

_PER_AMOUNT, _MULTIPLIER, _BONUS = 0, 1, 2
_MINUTES_PER_DAY = 24 * 60
_NO_STOP = -(2**62)


class LineLike(Protocol):
    @property
    def sku(self) -> str: ...
    @property
    def category(self) -> str | None: ...
    @property
    def quantity(self) -> int: ...
    @property
    def unit_price(self) -> int: ...


@dataclass(frozen=True, slots=True)
class MemberFacts:
    """What member-conditioned rules need, read in one query only when the program has such rules."""

    birthday_month: int | None
    first_purchase: bool
    tier: str | None = None


@dataclass(frozen=True, slots=True)
class Award:
    rule_id: str
    name: str
    points: int


@dataclass(frozen=True, slots=True)
class Earned:
    points: int
    breakdown: tuple[Award, ...]


NOTHING = Earned(0, ())


class _Rule:
    """A rule compiled to plain values: sets, ints and None for "no condition"."""

    __slots__ = ("birthday", "bonus", "cap", "categories", "date_from", "date_to", "effect", "exclusive", "first",
                 "hours", "hours_table", "id", "lines", "min_spend", "name", "per_amount", "percent", "points",
                 "priority", "segment_ids", "skus", "store_ids", "store_kinds", "tiers", "weekdays")

    def __init__(self, rule_id: str, name: str, priority: int, exclusive: bool, when: RuleWhen, give: RuleGive,
                 cap: int | None, segments: dict[str, list[int]]) -> None:
        self.id, self.name, self.priority, self.exclusive, self.cap = rule_id, name, priority, exclusive, cap
        self.effect, self.points, self.per_amount, self.percent, self.bonus = _BONUS, 0, 1, 100, 0
        if give.points_per is not None:
            self.effect, self.points, self.per_amount = _PER_AMOUNT, give.points_per.points, give.points_per.per_amount
        elif give.multiplier is not None:
            self.effect, self.percent = _MULTIPLIER, give.multiplier_percent
        else:
            assert give.bonus is not None
            self.bonus = give.bonus
        self.store_ids = frozenset(when.store_ids) if when.store_ids else None
        self.store_kinds = frozenset(when.store_kinds) if when.store_kinds else None
        self.skus = frozenset(when.skus) if when.skus else None
        self.categories = frozenset(when.categories) if when.categories else None
        self.lines = self.skus is not None or self.categories is not None
        self.min_spend = when.min_spend
        self.date_from, self.date_to = when.date_from, when.date_to
        self.weekdays = frozenset(WEEKDAYS.index(day) for day in when.weekdays) if when.weekdays else None
        self.hours_table: npt.NDArray[np.bool_] | None = None
        self.hours: frozenset[int] | None = None
        if when.hours:
            table = np.zeros(_MINUTES_PER_DAY, dtype=bool)
            for text in when.hours:
                start, end = parse_hours(text)
                if start < end:
                    table[start:end] = True
                else:  # crosses midnight
                    table[start:] = True
                    table[:end] = True
            self.hours_table = table
            self.hours = frozenset(np.flatnonzero(table).tolist())
        self.birthday = bool(when.birthday_month)
        self.first = bool(when.first_purchase)
        self.segment_ids = (frozenset(cid for name in when.segments for cid in segments[name])
                            if when.segments else None)
        self.tiers = frozenset(when.tiers) if when.tiers else None

    @property
    def needs_local_time(self) -> bool:
        return (self.date_from is not None or self.date_to is not None or self.weekdays is not None
                or self.hours is not None or self.birthday)


@dataclass(frozen=True, slots=True)
class CountedCap:
    """A rule's caps counted in the database: per member per business day, and in total."""

    rule_id: str
    per_member_per_day: int | None
    total: int | None


def _compile(definition: ProgramDefinition) -> list[_Rule]:
    compiled = [_Rule(rule.id, rule.name, rule.priority, rule.exclusive, rule.when, rule.give,
                      rule.cap.per_transaction if rule.cap else None, definition.segments)
                for rule in definition.rules if rule.give.stamp is None]  # stamp rules: stamps/engine.py
    for index, rate in enumerate(definition.earn):
        give = RuleGive(points_per=PointsPer(points=rate.points, per_amount=rate.per_amount))
        name = f"{rate.points} points per {rate.per_amount:,} {definition.currency} at {', '.join(rate.store_kinds)}"
        compiled.append(_Rule(f"earn[{index}]", name, 0, False, RuleWhen(store_kinds=rate.store_kinds), give,
                              None, definition.segments))
    # Stable: file order among equal priorities, rules: before earn: rates.
    return sorted(compiled, key=lambda rule: -rule.priority)


class RuleEngine:
    """A program's earn rules, compiled once when the program is loaded."""

    __slots__ = ("_by_kind", "_unkinded", "base_tier", "counted_caps", "needs_first_purchase", "needs_local_time",
                 "needs_member", "needs_tier", "rules", "tier_perks", "tz")

    def __init__(self, definition: ProgramDefinition) -> None:
        self.rules: tuple[_Rule, ...] = tuple(_compile(definition))
        self.tz = ZoneInfo(definition.timezone)
        # Rules whose day or total caps need counters (programs/caps.py): only sales they pay for
        # touch the counter rows.
        self.counted_caps: dict[str, CountedCap] = {
            rule.id: CountedCap(rule.id, rule.cap.per_member_per_day, rule.cap.total)
            for rule in definition.rules
            if rule.cap is not None and (rule.cap.per_member_per_day is not None or rule.cap.total is not None)}
        levels = definition.tiers.levels if definition.tiers is not None else []
        self.base_tier: str | None = levels[0].code if levels else None
        # tier code -> (percent, award name) for tiers whose perk multiplies earned points
        self.tier_perks: dict[str, tuple[int, str]] = {
            level.code: (level.perks.earn_multiplier_percent,
                         f"{level.name}: x{level.perks.earn_multiplier.normalize()} points")
            for level in levels if level.perks.earn_multiplier_percent != 100}
        self.needs_tier = bool(self.tier_perks) or any(rule.tiers is not None for rule in self.rules)
        self.needs_member = self.needs_tier or any(rule.birthday or rule.first for rule in self.rules)
        self.needs_first_purchase = any(rule.first for rule in self.rules)
        self.needs_local_time = any(rule.needs_local_time for rule in self.rules)
        # Candidates per store kind, so a purchase only looks at rules that can match its store.
        self._by_kind = {kind: tuple(r for r in self.rules if r.store_kinds is None or kind in r.store_kinds)
                         for kind in STORE_KINDS}
        self._unkinded = tuple(r for r in self.rules if r.store_kinds is None)

    @classmethod
    def from_program(cls, definition: ProgramDefinition) -> RuleEngine:
        return cls(definition)

    # --- one purchase -----------------------------------------------------------------------

    def evaluate(
        self, *, store_id: str, store_kind: str, amount: int, paid: int, occurred_at: datetime,
        customer_id: int | None, lines: Sequence[LineLike] = (), member: MemberFacts | None = None,
    ) -> Earned:
        """Points for one purchase of `amount`, `paid` of it in money (only that part earns)."""
        if customer_id is None:
            return NOTHING
        candidates = self._by_kind.get(store_kind, self._unkinded)
        if not candidates:
            return NOTHING
        paid = max(paid, 0)
        day = None
        weekday = minute = month = 0
        if self.needs_local_time:
            local = occurred_at.astimezone(self.tz)
            day, weekday, minute, month = local.date(), local.weekday(), local.hour * 60 + local.minute, local.month
        stop = _NO_STOP
        applied: list[tuple[_Rule, int]] = []
        for rule in candidates:
            if rule.priority < stop:
                break  # sorted by priority: everything after is stopped too
            if rule.store_ids is not None and store_id not in rule.store_ids:
                continue
            if rule.tiers is not None and (member is None or member.tier not in rule.tiers):
                continue
            if rule.segment_ids is not None and customer_id not in rule.segment_ids:
                continue
            if day is not None:
                if rule.date_from is not None and day < rule.date_from:
                    continue
                if rule.date_to is not None and day > rule.date_to:
                    continue
                if rule.weekdays is not None and weekday not in rule.weekdays:
                    continue
                if rule.hours is not None and minute not in rule.hours:
                    continue
            if rule.birthday and (member is None or member.birthday_month != month):
                continue
            if rule.first and (member is None or not member.first_purchase):
                continue
            base = paid
            if rule.lines:
                matching = 0
                found = False
                for line in lines:
                    if ((rule.skus is None or line.sku in rule.skus)
                            and (rule.categories is None or line.category in rule.categories)):
                        matching += line.quantity * line.unit_price
                        found = True
                if not found:
                    continue
                base = matching * paid // amount if amount > 0 else 0
            if rule.min_spend is not None and base < rule.min_spend:
                continue
            if rule.effect == _PER_AMOUNT:
                points = base // rule.per_amount * rule.points
            elif rule.effect == _BONUS:
                points = rule.bonus
            else:
                points = 0  # multipliers are computed once every per-amount rule is known
            if rule.cap is not None and points > rule.cap:
                points = rule.cap
            applied.append((rule, points))
            if rule.exclusive:
                stop = rule.priority
        if not applied:
            return NOTHING
        total = 0
        awards = []
        for rule, points in applied:
            if rule.effect == _MULTIPLIER:
                earned = sum(p for r, p in applied if r.effect == _PER_AMOUNT and r.priority >= rule.priority)
                points = earned * (rule.percent - 100) // 100
                if rule.cap is not None and points > rule.cap:
                    points = rule.cap
            if points:
                total += points
                awards.append(Award(rule.id, rule.name, points))
        tier = member.tier if member is not None else None
        perk = self.tier_perks.get(tier) if tier is not None else None
        if perk is not None:
            earned = sum(p for r, p in applied if r.effect == _PER_AMOUNT)
            extra = earned * (perk[0] - 100) // 100
            if extra:
                total += extra
                awards.append(Award(f"tier:{tier}", perk[1], extra))
        return Earned(total, tuple(awards))

    # --- many purchases at once (imports) ---------------------------------------------------

    def evaluate_many(
        self, *, amounts: npt.NDArray[np.int64], store_kinds: npt.NDArray[np.str_], store_ids: npt.NDArray[np.str_],
        local_times: npt.NDArray[np.datetime64], customer_ids: npt.NDArray[np.int64],
        birthday_months: npt.NDArray[np.int64] | None = None, first_purchase: npt.NDArray[np.bool_] | None = None,
        tiers: npt.NDArray[np.str_] | None = None, line_bases: Mapping[str, npt.NDArray[np.int64]] | None = None,
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """Vectorised twin of `evaluate` for purchases without lines, all by members.

        `amounts` are the amounts paid in money; `local_times` business local times (naive,
        datetime64); `birthday_months` 1-12 or 0 when unknown. Returns the total per purchase and
        a (rules x purchases) matrix of what each rule in `self.rules` gave.

        Optional (the simulator passes them): `tiers`, each purchase's member tier code, scores
        rules with `when.tiers` (tier perks: `tier_perks_many`); `line_bases`, by rule id, the
        paid share of each purchase's lines matching that sku/category rule (-1: no matching
        line), scores those rules. Without them such rules give nothing here.
        """
        n = len(amounts)
        per_rule = np.zeros((len(self.rules), n), dtype=np.int64)
        if n == 0 or not self.rules:
            return np.zeros(n, dtype=np.int64), per_rule
        paid = np.maximum(amounts, 0)
        minutes = local_times.astype("datetime64[m]")
        days = minutes.astype("datetime64[D]")
        minute = (minutes - days).astype(np.int64)
        weekday = (days.astype(np.int64) + 3) % 7  # 1970-01-01 was a Thursday
        month = days.astype("datetime64[M]").astype(np.int64) % 12 + 1
        stop = np.full(n, _NO_STOP, dtype=np.int64)
        applied = np.zeros((len(self.rules), n), dtype=bool)
        for index, rule in enumerate(self.rules):
            base = paid
            if rule.lines:
                if line_bases is None or rule.id not in line_bases:
                    continue  # rows with lines are scored by `evaluate`
                base = line_bases[rule.id]
            if rule.tiers is not None and tiers is None:
                continue  # programs that need tiers are scored by `evaluate`
            mask = rule.priority >= stop
            if rule.lines:
                mask &= base >= 0
                base = np.maximum(base, 0)
            if rule.tiers is not None and tiers is not None:
                mask &= np.isin(tiers, list(rule.tiers))
            if rule.store_kinds is not None:
                mask &= np.isin(store_kinds, list(rule.store_kinds))
            if rule.store_ids is not None:
                mask &= np.isin(store_ids, list(rule.store_ids))
            if rule.segment_ids is not None:
                mask &= np.isin(customer_ids, np.array(sorted(rule.segment_ids), dtype=np.int64))
            if rule.date_from is not None:
                mask &= days >= np.datetime64(rule.date_from, "D")
            if rule.date_to is not None:
                mask &= days <= np.datetime64(rule.date_to, "D")
            if rule.weekdays is not None:
                mask &= np.isin(weekday, list(rule.weekdays))
            if rule.hours_table is not None:
                mask &= rule.hours_table[minute]
            if rule.birthday:
                mask &= (birthday_months == month) if birthday_months is not None else False
            if rule.first:
                mask &= first_purchase if first_purchase is not None else False
            if rule.min_spend is not None:
                mask &= base >= rule.min_spend
            if rule.effect == _PER_AMOUNT:
                points = base // rule.per_amount * rule.points
            elif rule.effect == _BONUS:
                points = np.full(n, rule.bonus, dtype=np.int64)
            else:
                points = np.zeros(n, dtype=np.int64)
            if rule.cap is not None:
                points = np.minimum(points, rule.cap)
            per_rule[index] = np.where(mask, points, 0)
            applied[index] = mask
            if rule.exclusive:
                stop = np.where(mask, rule.priority, stop)
        for index, rule in enumerate(self.rules):
            if rule.effect != _MULTIPLIER or not applied[index].any():
                continue
            earned = np.zeros(n, dtype=np.int64)
            for other_index, other in enumerate(self.rules):
                if other.effect == _PER_AMOUNT and other.priority >= rule.priority:
                    earned += per_rule[other_index]
            factor = rule.percent - 100
            # floor(S x factor / 100) without overflowing int64 for large S.
            extra = earned // 100 * factor + earned % 100 * factor // 100
            if rule.cap is not None:
                extra = np.minimum(extra, rule.cap)
            per_rule[index] = np.where(applied[index], extra, 0)
        return per_rule.sum(axis=0), per_rule

    def tier_perks_many(
        self, per_rule: npt.NDArray[np.int64], tiers: npt.NDArray[np.str_],
    ) -> npt.NDArray[np.int64]:
        """Vectorised twin of the tier perk in `evaluate`: the extra points each purchase's tier
        multiplier gives on the per-amount points of `per_rule` (from `evaluate_many`)."""
        n = per_rule.shape[1] if per_rule.ndim == 2 else 0
        extra = np.zeros(n, dtype=np.int64)
        if not self.tier_perks or n == 0:
            return extra
        earned = np.zeros(n, dtype=np.int64)
        for index, rule in enumerate(self.rules):
            if rule.effect == _PER_AMOUNT:
                earned += per_rule[index]
        for code, (percent, _) in self.tier_perks.items():
            mask = tiers == code
            factor = percent - 100
            extra = np.where(mask, earned // 100 * factor + earned % 100 * factor // 100, extra)
        return extra
