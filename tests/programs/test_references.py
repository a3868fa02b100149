"""Tier codes and reward codes a program file refers to must exist in that file, with their paths."""

from __future__ import annotations

from typing import Any

import pytest

from loyalty.errors import ConfigError
from loyalty.programs.schemas import parse_program

TIERS: dict[str, Any] = {
    "qualification": {"metric": "spend", "window": "calendar_year"},
    "levels": [{"code": "MEMBER", "name": "Member", "threshold": 0},
               {"code": "GOLD", "name": "Gold", "threshold": 100, "perks": {"reward_access": ["LOUNGE"]}}],
}
REWARDS: list[dict[str, Any]] = [{"code": "LOUNGE", "name": "Lounge", "kind": "experience", "points_cost": 10},
                                 {"code": "CF", "name": "Coffee", "kind": "item", "points_cost": 5,
                                  "min_tier": "GOLD"}]


def errors(data: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_program({"name": "x", **data})
    return list(caught.value.extra["errors"])


def rule(*tiers: str, rule_id: str = "t") -> dict[str, Any]:
    return {"id": rule_id, "name": rule_id, "when": {"tiers": list(tiers)}, "give": {"bonus": 1}}


def test_a_consistent_file_is_accepted() -> None:
    program = parse_program({"name": "x", "tiers": TIERS, "rewards": REWARDS, "rules": [rule("GOLD")]})
    assert program.rules[0].when.tiers == ["GOLD"]


def test_rule_tiers_must_be_levels_of_the_file() -> None:
    assert errors({"tiers": TIERS, "rules": [rule("GOLD"), rule("GOLD", "PLATINUM", "gold", rule_id="u")]}) == [
        "rules[1].when.tiers: unknown tier 'PLATINUM', 'gold'; use one of MEMBER, GOLD"]
    assert errors({"rules": [rule("GOLD")]}) == [
        "rules[0].when.tiers: the program has no tiers; add a tiers: section or remove this"]


def test_reward_min_tier_must_be_a_level() -> None:
    bad = [*REWARDS, {"code": "X", "name": "X", "kind": "item", "points_cost": 1, "min_tier": "SILVER"}]
    assert errors({"tiers": TIERS, "rewards": bad}) == [
        "rewards[2].min_tier: unknown tier 'SILVER'; use one of MEMBER, GOLD"]
    assert errors({"rewards": REWARDS}) == [
        "rewards[1].min_tier: the program has no tiers; add a tiers: section or remove this"]


def test_reward_access_must_name_rewards_of_the_file() -> None:
    tiers = {**TIERS, "levels": [TIERS["levels"][0], {**TIERS["levels"][1],
                                                      "perks": {"reward_access": ["LOUNGE", "SPA"]}}]}
    assert errors({"tiers": tiers, "rewards": REWARDS}) == [
        "tiers.levels[1].perks.reward_access: unknown reward 'SPA'; list it under rewards:"]
    # Without a rewards: list the catalogue is managed through the API: nothing to check against.
    assert parse_program({"name": "x", "tiers": tiers}).tiers is not None


def test_every_problem_is_reported_at_once() -> None:
    found = errors({"tiers": TIERS, "rules": [rule("NOPE")],
                    "rewards": [{**REWARDS[1], "min_tier": "NOPE"}]})
    assert [line.split(":")[0] for line in found] == ["rules[0].when.tiers", "rewards[0].min_tier",
                                                       "tiers.levels[1].perks.reward_access"]
