"""The `bonuses:` and `referrals:` sections: the documented examples load, bad files name their paths."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from loyalty.errors import ConfigError
from loyalty.programs.schemas import parse_program
from loyalty.programs.service import load_program_file
from tests.bonuses.helpers import program_data

DOCS = Path(__file__).parents[2] / "docs" / "programs"


def errors_of(**sections: Any) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_program(program_data(**sections))
    return list(caught.value.extra["errors"])


class TestDocumentedPrograms:
    def test_bonuses_example_has_the_products_sign_up_gift_and_birthday_bonus(self) -> None:
        definition, _ = load_program_file(DOCS / "bonuses.yaml")
        bonuses = definition.bonuses
        assert bonuses is not None and bonuses.signup is not None and bonuses.birthday is not None
        assert bonuses.signup.points == 50 and bonuses.signup.reward == "WELCOME-COFFEE"
        assert bonuses.birthday.window == "month"
        assert bonuses.first_purchase is not None and [b.id for b in bonuses.instant] == ["big-basket", "dairy-week"]

    def test_referrals_example(self) -> None:
        definition, _ = load_program_file(DOCS / "referrals.yaml")
        referrals = definition.referrals
        assert referrals is not None
        assert (referrals.min_spend, referrals.referrer.points, referrals.max_rewards_per_month) == (200000, 300, 5)
        assert referrals.welcome is not None and referrals.welcome.reward == "FRIEND-30K"

    def test_the_products_examples_as_written(self) -> None:
        definition = parse_program({"name": "Shop", "bonuses": {
            "signup": {"name": "a sign-up gift", "points": 50},
            "birthday": {"name": "a birthday bonus", "points": 200}}})
        assert definition.bonuses is not None and definition.bonuses.birthday is not None
        assert definition.bonuses.birthday.days is None  # the birthday month by default

    def test_without_sections_nothing_changes(self) -> None:
        definition = parse_program({"name": "Shop"})
        assert definition.bonuses is None and definition.referrals is None


class TestBadFiles:
    def test_unknown_reward_is_reported_with_its_path(self) -> None:
        problems = errors_of(bonuses={"signup": {"name": "Gift", "reward": "NOPE"},
                                      "instant": [{"id": "x", "name": "X", "reward": "ALSO-NOPE"}]},
                             referrals={"referrer": {"name": "R", "reward": "MISSING"}})
        assert problems == [
            "bonuses.signup.reward: unknown reward 'NOPE'; list it under rewards:",
            "bonuses.instant[0].reward: unknown reward 'ALSO-NOPE'; list it under rewards:",
            "referrals.referrer.reward: unknown reward 'MISSING'; list it under rewards:",
        ]

    def test_reward_codes_are_not_checked_when_the_catalogue_is_kept_through_the_api(self) -> None:
        data = program_data(bonuses={"signup": {"name": "Gift", "reward": "FROM-API"}})
        del data["rewards"]
        assert parse_program(data).bonuses is not None

    def test_a_gift_must_give_something(self) -> None:
        assert errors_of(bonuses={"signup": {"name": "Nothing"}}) == [
            "bonuses.signup: give points (at least 1), a reward, or both"]

    @pytest.mark.parametrize(("window", "message"), [
        ({"days": 40}, "window.days must be between 0 and 31"),
        ({"weeks": 1}, "window is `month` or `{days: N}`"),
        ("year", "Input should be 'month'"),
    ])
    def test_bad_birthday_window(self, window: Any, message: str) -> None:
        problems = errors_of(bonuses={"birthday": {"name": "B", "points": 1, "window": window}})
        assert any(p.startswith("bonuses.birthday.window") and message in p for p in problems), problems

    def test_negative_points_and_unknown_fields(self) -> None:
        problems = errors_of(bonuses={"first_purchase": {"name": "F", "points": -1, "bogus": 1}})
        assert any(p.startswith("bonuses.first_purchase.points") for p in problems), problems
        assert any(p.startswith("bonuses.first_purchase.bogus") for p in problems), problems

    def test_instant_ids_unique_and_conditions_checked(self) -> None:
        problems = errors_of(bonuses={"instant": [
            {"id": "a", "name": "A", "points": 1},
            {"id": "a", "name": "A again", "points": 1, "when": {"store_kinds": ["kiosk"],
                                                                 "date_from": "2026-02-01", "date_to": "2026-01-01"}},
        ]})
        assert any(p.startswith("bonuses.instant[1].when.store_kinds: unknown store kind kiosk") for p in problems)
        dates = errors_of(bonuses={"instant": [{"id": "a", "name": "A", "points": 1, "when": {
            "date_from": "2026-02-01", "date_to": "2026-01-01"}}]})
        assert dates == ["bonuses.instant[0].when: date_from 2026-02-01 is after date_to 2026-01-01"]
        dup = errors_of(bonuses={"instant": [{"id": "a", "name": "A", "points": 1},
                                             {"id": "a", "name": "B", "points": 1}]})
        assert dup == ["bonuses.instant: 'a' is the id of instant[0] and instant[1]"]

    def test_referrals_need_a_referrer_reward_and_a_sane_cap(self) -> None:
        problems = errors_of(referrals={"max_rewards_per_month": 0, "min_spend": -5})
        assert any(p.startswith("referrals.referrer") for p in problems), problems
        assert any(p.startswith("referrals.max_rewards_per_month") for p in problems), problems
        assert any(p.startswith("referrals.min_spend") for p in problems), problems
