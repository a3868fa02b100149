"""Earn rules: each condition and effect, priority and exclusivity, caps, and the articles' rates."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest

from loyalty.errors import ConfigError
from loyalty.programs.rules import Earned, MemberFacts, RuleEngine
from loyalty.programs.schemas import parse_program
from loyalty.programs.service import DEFAULT_PROGRAM_FILE, load_program_file

# Saturday 14 March 2026, 09:30 in Hồ Chí Minh City (UTC+7).
SATURDAY_MORNING = datetime(2026, 3, 14, 2, 30, tzinfo=UTC)
BASE = [{"store_kinds": ["retail", "online"], "points": 10, "per_amount": 100_000},
        {"store_kinds": ["outlet"], "points": 5, "per_amount": 100_000}]


@dataclass(frozen=True)
class L:
    sku: str
    category: str | None
    quantity: int
    unit_price: int


def engine(rules: list[dict[str, Any]], earn: list[dict[str, Any]] | None = None, **extra: Any) -> RuleEngine:
    return RuleEngine(parse_program({"name": "test", "earn": BASE if earn is None else earn, "rules": rules,
                                     **extra}))


def earn(rules: RuleEngine, amount: int = 250_000, *, kind: str = "retail", store: str = "HN01",
         at: datetime = SATURDAY_MORNING, customer: int | None = 7, paid: int | None = None,
         lines: tuple[L, ...] = (), member: MemberFacts | None = None) -> Earned:
    return rules.evaluate(store_id=store, store_kind=kind, amount=amount, paid=amount if paid is None else paid,
                          occurred_at=at, customer_id=customer, lines=lines, member=member)


def by_rule(result: Earned) -> dict[str, int]:
    return {award.rule_id: award.points for award in result.breakdown}


def bonus(rule_id: str = "b", points: int = 50, **when: Any) -> dict[str, Any]:
    return {"id": rule_id, "name": f"bonus {rule_id}", "when": when, "give": {"bonus": points}}


class TestTheArticlesProgram:
    def test_10_points_per_100000_at_retail_and_online_5_at_outlets(self) -> None:
        definition, _ = load_program_file(DEFAULT_PROGRAM_FILE)
        rules = RuleEngine(definition)
        assert earn(rules, 250_000, kind="retail").points == 20
        assert earn(rules, 250_000, kind="online").points == 20
        assert earn(rules, 250_000, kind="outlet").points == 10
        assert earn(rules, 99_999, kind="retail").points == 0
        assert earn(rules, 1_000_000, kind="partner").points == 0

    def test_the_breakdown_names_the_rate(self) -> None:
        result = earn(engine([]), 1_000_000, kind="outlet")
        assert [(a.rule_id, a.name, a.points) for a in result.breakdown] == [
            ("earn[1]", "5 points per 100,000 VND at outlet", 50)]

    def test_anonymous_sales_earn_nothing(self) -> None:
        assert earn(engine([bonus()]), customer=None) == Earned(0, ())

    def test_only_the_part_paid_in_money_earns(self) -> None:
        assert earn(engine([]), 1_000_000, paid=550_000).points == 50

    def test_a_birthday_bonus(self) -> None:
        rules = engine([bonus("birthday", 200, birthday_month=True)])
        assert by_rule(earn(rules, member=MemberFacts(3, False))) == {"earn[0]": 20, "birthday": 200}
        assert by_rule(earn(rules, member=MemberFacts(4, False))) == {"earn[0]": 20}
        assert by_rule(earn(rules, member=MemberFacts(None, False))) == {"earn[0]": 20}
        assert rules.needs_member


class TestConditions:
    @pytest.mark.parametrize(("when", "matches"), [
        ({"store_ids": ["HN01", "HN02"]}, True),
        ({"store_ids": ["HN02"]}, False),
        ({"store_kinds": ["retail"]}, True),
        ({"store_kinds": ["outlet"]}, False),
        ({"min_spend": 250_000}, True),
        ({"min_spend": 250_001}, False),
        ({"date_from": "2026-03-14", "date_to": "2026-03-14"}, True),
        ({"date_from": "2026-03-15"}, False),
        ({"date_to": "2026-03-13"}, False),
        ({"weekdays": ["sat", "sun"]}, True),
        ({"weekdays": ["mon"]}, False),
        ({"hours": "09:30-10:00"}, True),
        ({"hours": ["07:00-09:30", "17:00-19:00"]}, False),
        ({"hours": "22:00-09:31"}, True),
        ({"segments": ["vip"]}, True),
        ({"segments": ["staff"]}, False),
    ])
    def test_each_condition(self, when: dict[str, Any], matches: bool) -> None:
        rules = engine([bonus(**when)], segments={"vip": [7, 8], "staff": [1]})
        assert ("b" in by_rule(earn(rules))) is matches

    def test_dates_and_hours_are_business_local_time(self) -> None:
        # 17:30 UTC on Friday the 13th is already Saturday 00:30 in Hồ Chí Minh City.
        late = datetime(2026, 3, 13, 17, 30, tzinfo=UTC)
        rules = engine([bonus(weekdays=["sat"], date_from="2026-03-14", hours="00:00-01:00")])
        assert "b" in by_rule(earn(rules, at=late))

    def test_first_purchase(self) -> None:
        rules = engine([bonus("welcome", 100, first_purchase=True)])
        assert by_rule(earn(rules, member=MemberFacts(None, True)))["welcome"] == 100
        assert "welcome" not in by_rule(earn(rules, member=MemberFacts(None, False)))
        assert "welcome" not in by_rule(earn(rules, member=None))

    def test_all_conditions_must_hold(self) -> None:
        rules = engine([bonus(store_kinds=["retail"], weekdays=["sat"], min_spend=300_000)])
        assert "b" not in by_rule(earn(rules, 250_000))
        assert "b" in by_rule(earn(rules, 300_000))

    def test_sku_and_category_rules_count_only_matching_lines(self) -> None:
        rules = engine([{"id": "dairy", "name": "dairy x2", "when": {"categories": ["dairy"]},
                         "give": {"points_per": {"points": 10, "per_amount": 100_000}}},
                        {"id": "kem", "name": "ice cream", "when": {"skus": ["KEM-01"]}, "give": {"bonus": 7}}])
        lines = (L("SUA-01", "dairy", 3, 100_000), L("BANH-01", "bakery", 1, 200_000))
        assert by_rule(earn(rules, 500_000, lines=lines)) == {"earn[0]": 50, "dairy": 30}
        # Half paid with points: the matching lines earn on their half too.
        assert by_rule(earn(rules, 500_000, paid=250_000, lines=lines)) == {"earn[0]": 20, "dairy": 10}
        # No lines: a sku or category rule never matches.
        assert by_rule(earn(rules, 500_000)) == {"earn[0]": 50}

    def test_min_spend_of_a_line_rule_is_the_matching_lines_amount(self) -> None:
        rules = engine([bonus(categories=["dairy"], min_spend=300_001)])
        lines = (L("SUA-01", "dairy", 3, 100_000), L("BANH-01", "bakery", 1, 200_000))
        assert "b" not in by_rule(earn(rules, 500_000, lines=lines))


class TestEffects:
    def test_points_per_amount_whole_blocks(self) -> None:
        rules = engine([{"id": "online", "name": "online extra", "when": {"store_kinds": ["online"]},
                         "give": {"points_per": {"points": 3, "per_amount": 50_000}}}])
        assert by_rule(earn(rules, 249_999, kind="online")) == {"earn[0]": 20, "online": 12}

    def test_a_multiplier_adds_to_the_per_amount_points_and_rounds_down(self) -> None:
        rules = engine([{"id": "weekend", "name": "x1.5 weekend", "when": {"weekdays": ["sat"]},
                         "give": {"multiplier": 1.5}}])
        assert by_rule(earn(rules, 350_000)) == {"earn[0]": 30, "weekend": 15}
        assert earn(rules, 350_000).points == 45
        rules = engine([{"id": "m", "name": "x1.33", "give": {"multiplier": "1.33"}}])
        assert by_rule(earn(rules, 100_000)) == {"earn[0]": 10, "m": 3}

    def test_a_multiplier_only_multiplies_rules_of_its_priority_or_higher_and_not_bonuses(self) -> None:
        rules = engine([
            {"id": "m", "name": "double", "priority": 5, "give": {"multiplier": 2}},
            {"id": "hi", "name": "high", "priority": 5, "give": {"points_per": {"points": 1, "per_amount": 10_000}}},
            bonus("b", 100),
        ])
        # earn[0] (priority 0) is below the multiplier: only "hi" doubles.
        assert by_rule(earn(rules, 100_000)) == {"m": 10, "hi": 10, "earn[0]": 10, "b": 100}

    def test_multipliers_add_up_rather_than_compound(self) -> None:
        rules = engine([{"id": "a", "name": "a", "give": {"multiplier": 2}},
                        {"id": "b", "name": "b", "give": {"multiplier": "1.5"}}])
        assert earn(rules, 100_000).points == 10 + 10 + 5


class TestPriorityAndExclusivity:
    def test_an_exclusive_rule_stops_lower_priorities_but_not_its_own(self) -> None:
        rules = engine([
            {"id": "vip", "name": "VIP rate", "priority": 10, "exclusive": True, "when": {"segments": ["vip"]},
             "give": {"points_per": {"points": 20, "per_amount": 100_000}}},
            {"id": "same", "name": "same priority", "priority": 10, "give": {"bonus": 5}},
            bonus("low", 1),
        ], segments={"vip": [7]})
        assert by_rule(earn(rules, 200_000)) == {"vip": 40, "same": 5}
        assert by_rule(earn(rules, 200_000, customer=8)) == {"same": 5, "earn[0]": 20, "low": 1}

    def test_the_breakdown_is_in_priority_order(self) -> None:
        rules = engine([bonus("low", 1, ), {**bonus("high", 2), "priority": 3}, {**bonus("neg", 3), "priority": -1}])
        assert [a.rule_id for a in earn(rules).breakdown] == ["high", "low", "earn[0]", "neg"]

    def test_a_matching_exclusive_rule_that_gives_nothing_still_stops_lower_ones(self) -> None:
        rules = engine([{"id": "x", "name": "x", "priority": 1, "exclusive": True,
                         "give": {"points_per": {"points": 1, "per_amount": 1_000_000}}}])
        assert earn(rules, 500_000) == Earned(0, ())


class TestCaps:
    def test_per_transaction_caps_what_one_rule_gives(self) -> None:
        rules = engine([{"id": "big", "name": "big", "cap": {"per_transaction": 30},
                         "give": {"points_per": {"points": 10, "per_amount": 100_000}}},
                        {"id": "m", "name": "m", "cap": {"per_transaction": 4}, "give": {"multiplier": 2}}])
        assert by_rule(earn(rules, 1_000_000)) == {"big": 30, "earn[0]": 100, "m": 4}

    @pytest.mark.parametrize("key", ["per_member_per_day", "total"])
    def test_counter_caps_must_be_positive(self, key: str) -> None:
        with pytest.raises(ConfigError) as caught:
            engine([{**bonus(), "cap": {key: 0}}])
        assert caught.value.extra["errors"] == [f"rules[0].cap.{key}: Input should be greater than or equal to 1"]

    def test_counted_caps_are_known_to_the_engine_and_leave_evaluate_alone(self) -> None:
        rules = engine([{**bonus(), "cap": {"per_member_per_day": 3, "total": 10}}])
        assert set(rules.counted_caps) == {"b"}
        assert rules.counted_caps["b"].per_member_per_day == 3 and rules.counted_caps["b"].total == 10
        assert by_rule(earn(rules, 100_000))["b"] == 50  # evaluate gives the uncapped award; caps.apply counts it


class TestValidation:
    def errors(self, rules: list[dict[str, Any]], **extra: Any) -> list[str]:
        with pytest.raises(ConfigError) as caught:
            engine(rules, **extra)
        return list(caught.value.extra["errors"])

    def test_every_error_has_its_path(self) -> None:
        assert self.errors([
            bonus("ok"),
            {"id": "Bad Id", "name": "x", "give": {"bonus": 1}},
            {"id": "h", "name": "h", "when": {"hours": "7-10"}, "give": {"bonus": 1}},
            {"id": "d", "name": "d", "when": {"date_from": "2026-05-02", "date_to": "2026-05-01"},
             "give": {"bonus": 1}},
            {"id": "none", "name": "none", "give": {}},
            {"id": "two", "name": "two", "give": {"bonus": 1, "multiplier": 2}},
            {"id": "m", "name": "m", "give": {"multiplier": 1.255}},
            {"id": "s", "name": "s", "give": {"stamp": {"every": 5}}},
            {"id": "w", "name": "w", "when": {"weekdays": ["monday"]}, "give": {"bonus": 1}},
        ]) == [
            "rules[1].id: String should match pattern '^[a-z0-9][a-z0-9_-]{0,39}$'",
            "rules[2].when.hours: '7-10' is not a range like '07:00-10:00'",
            "rules[3].when: date_from 2026-05-02 is after date_to 2026-05-01",
            "rules[4].give: give exactly one effect of points_per, multiplier, bonus, stamp (got 0: none)",
            "rules[5].give: give exactly one effect of points_per, multiplier, bonus, stamp (got 2: multiplier, "
            "bonus)",
            "rules[6].give.multiplier: 1.255 has more than 2 decimal places",
            "rules[7].give.stamp.card: Field required",  # stamp cards (L5): see tests/stamps
            "rules[7].give.stamp.every: Extra inputs are not permitted",
            "rules[8].when.weekdays[0]: Input should be 'mon', 'tue', 'wed', 'thu', 'fri', 'sat' or 'sun'",
        ]

    def test_duplicate_ids_and_unknown_segments(self) -> None:
        assert self.errors([bonus("a"), bonus("a", segments=["vip", "gold"]), bonus("c", segments=["staff"])],
                           segments={"vip": [1]}) == [
            "rules[1].id: 'a' is also the id of rules[0]",
            "rules[1].when.segments: unknown segment 'gold'; define it under segments:",
            "rules[2].when.segments: unknown segment 'staff'; define it under segments:",
        ]

    def test_a_multiplier_is_stored_as_a_whole_percent(self) -> None:
        definition = parse_program({"name": "x", "rules": [{"id": "m", "name": "m", "give": {"multiplier": 1.5}}]})
        assert definition.rules[0].give.multiplier_percent == 150
        assert '"multiplier":"1.5"' in definition.model_dump_json()


class TestVectorised:
    def test_the_same_as_one_by_one(self) -> None:
        rules = engine([bonus("sat", 7, weekdays=["sat"]),
                        {"id": "m", "name": "m", "when": {"store_ids": ["HN02"]}, "give": {"multiplier": 2}}])
        totals, per_rule = rules.evaluate_many(
            amounts=np.array([250_000, 250_000, 99_000], dtype=np.int64),
            store_kinds=np.array(["retail", "outlet", "retail"]), store_ids=np.array(["HN01", "OUT1", "HN02"]),
            local_times=np.array(["2026-03-14T09:30", "2026-03-15T09:30", "2026-03-14T23:59"],
                                 dtype="datetime64[m]"),
            customer_ids=np.array([7, 7, 7], dtype=np.int64))
        assert totals.tolist() == [27, 10, 7]
        assert [r.id for r in rules.rules] == ["sat", "m", "earn[0]", "earn[1]"]
        assert per_rule[:, 0].tolist() == [7, 0, 20, 0]
