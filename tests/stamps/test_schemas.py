"""The program file's stamp_cards: section and rules that give stamps: shapes and path-checked errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from loyalty.errors import ConfigError
from loyalty.programs.rules import RuleEngine
from loyalty.programs.schemas import parse_program
from loyalty.programs.service import load_program_file
from tests.stamps.helpers import DOZEN, ICE_CREAM, REWARDS, program_data

EXAMPLE = Path(__file__).parents[2] / "docs" / "programs" / "stamp_cards.yaml"


def errors(cards: list[dict[str, Any]], rules: list[dict[str, Any]] | None = None,
           rewards: list[dict[str, Any]] | None = REWARDS) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_program(program_data(cards, rules, rewards))
    return list(caught.value.extra["errors"])


class TestTheExampleFile:
    def test_docs_program_is_valid_and_has_both_product_examples(self) -> None:
        definition, _ = load_program_file(EXAMPLE)
        cards = {card.id: card for card in definition.stamp_cards}
        assert (cards["ice-cream"].stamps_to_complete, cards["ice-cream"].reward) == (5, "FREE-CONE")
        assert (cards["dozen"].stamps_to_complete, cards["dozen"].reward) == (12, "DOUBLE-SUNDAE")
        assert [rule.give.stamp.card for rule in definition.rules if rule.give.stamp] == ["ice-cream", "dozen"]

    def test_stamp_rules_give_no_points(self) -> None:
        definition, _ = load_program_file(EXAMPLE)
        assert [rule.id for rule in RuleEngine(definition).rules] == ["earn[0]", "earn[1]"]


class TestCardShapes:
    def test_defaults(self) -> None:
        card = parse_program(program_data([{"id": "visits", "name": "10 visits", "per": "purchase",
                                            "stamps_to_complete": 10, "reward": "FREE-CONE"}])).stamp_cards[0]
        assert (card.per, card.counts.skus, card.counts.categories, card.valid_from) == ("purchase", None, None, None)

    def test_every_error_has_its_path(self) -> None:
        assert errors([
            ICE_CREAM,
            {**DOZEN, "id": "Bad Id"},
            {**DOZEN, "id": "zero", "stamps_to_complete": 0},
            {**DOZEN, "id": "per", "per": "visit"},
            {**DOZEN, "id": "window", "valid_from": "2026-05-02", "valid_until": "2026-05-01"},
            {**DOZEN, "id": "counts", "counts": {"skus": []}},
            {**DOZEN, "id": "price", "counts": {"min_unit_price": -1}},
            {**DOZEN, "id": "extra", "colour": "red"},
        ]) == [
            "stamp_cards[1].id: String should match pattern '^[a-z0-9][a-z0-9_-]{0,39}$'",
            "stamp_cards[2].stamps_to_complete: Input should be greater than or equal to 1",
            "stamp_cards[3].per: Input should be 'unit' or 'purchase'",
            "stamp_cards[4]: valid_from 2026-05-02 is after valid_until 2026-05-01",
            "stamp_cards[5].counts.skus: List should have at least 1 item after validation, not 0",
            "stamp_cards[6].counts.min_unit_price: Input should be greater than or equal to 0",
            "stamp_cards[7].colour: Extra inputs are not permitted",
        ]

    def test_unknown_reward_and_duplicate_ids(self) -> None:
        assert errors([ICE_CREAM, {**DOZEN, "reward": "X"}, {**DOZEN, "reward": "FREE-CONE"}]) == [
            "stamp_cards[1].reward: unknown reward 'X'; define it under rewards:",
            "stamp_cards[2].id: 'dozen' is also the id of stamp_cards[1]",
        ]

    def test_rewards_are_only_checked_against_a_rewards_list(self) -> None:
        # Without rewards: in the file the catalogue is managed through the API.
        definition = parse_program(program_data([{**DOZEN, "reward": "ANYTHING"}], rewards=None))
        assert definition.stamp_cards[0].reward == "ANYTHING"


class TestStampRules:
    def rule(self, give: Any, **when: Any) -> dict[str, Any]:
        return {"id": "r", "name": "r", "when": when, "give": give}

    def test_a_rule_names_a_known_card(self) -> None:
        assert errors([ICE_CREAM], [self.rule({"stamp": {"card": "dozen", "extra": 1}})]) == [
            "rules[0].give.stamp.card: unknown stamp card 'dozen'; define it under stamp_cards:"]

    def test_shapes(self) -> None:
        assert errors([ICE_CREAM], [
            {**self.rule({"stamp": {"card": "ice-cream"}}), "id": "a"},
            {**self.rule({"stamp": {"card": "ice-cream", "extra": 1, "times": 2}}), "id": "b"},
            {**self.rule({"stamp": {"card": "ice-cream", "times": 1}}), "id": "c"},
            {**self.rule({"stamp": {"card": "ice-cream", "extra": 1}, "bonus": 5}), "id": "d"},
            {**self.rule({"stamp": {"every": 5}}), "id": "e"},
        ]) == [
            "rules[0].give.stamp: give exactly one of extra or times",
            "rules[1].give.stamp: give exactly one of extra or times",
            "rules[2].give.stamp.times: Input should be greater than or equal to 2",
            "rules[3].give: give exactly one effect of points_per, multiplier, bonus, stamp (got 2: bonus, stamp)",
            "rules[4].give.stamp.card: Field required",
            "rules[4].give.stamp.every: Extra inputs are not permitted",
        ]

    def test_first_purchase_and_caps_are_refused(self) -> None:
        assert errors([ICE_CREAM], [
            self.rule({"stamp": {"card": "ice-cream", "extra": 1}}, first_purchase=True),
            {**self.rule({"stamp": {"card": "ice-cream", "extra": 1}}), "id": "c", "cap": {"per_transaction": 1}},
        ]) == [
            "rules[0].when.first_purchase: not supported in a rule that gives stamps",
            "rules[1].cap: not supported in a rule that gives stamps",
        ]
