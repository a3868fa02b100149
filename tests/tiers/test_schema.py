"""The program file's tiers: section: what is accepted, and every mistake reported with its path."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from loyalty.errors import ConfigError
from loyalty.programs.schemas import parse_program
from tests.tiers.helpers import program_data


def errors_of(data: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_program(data)
    return list(caught.value.extra["errors"])


class TestAccepted:
    def test_no_tiers_section_means_no_tiers(self) -> None:
        data = program_data()
        del data["tiers"]
        assert parse_program(data).tiers is None

    def test_calendar_year_and_perks(self) -> None:
        tiers = parse_program(program_data()).tiers
        assert tiers is not None
        assert tiers.qualification.window.calendar_year and tiers.qualification.window.rolling_months is None
        gold = tiers.levels[2].perks
        assert gold.earn_multiplier == Decimal("1.5") and gold.earn_multiplier_percent == 150
        assert tiers.levels[1].perks.earn_multiplier_percent == 125  # YAML's float 1.25, read exactly
        assert tiers.levels[0].perks.earn_multiplier_percent == 100 and not tiers.levels[0].perks.free_shipping
        assert [tiers.rank(code) for code in ("MEMBER", "SILVER", "GOLD", "NOPE")] == [0, 1, 2, -1]
        assert [tiers.qualifying(v).code for v in (0, 4_999_999, 5_000_000, 10**12)] == \
            ["MEMBER", "MEMBER", "SILVER", "GOLD"]

    def test_rolling_window(self) -> None:
        tiers = parse_program(program_data(window={"rolling_months": 12}, every="quarter")).tiers
        assert tiers is not None and tiers.qualification.window.rolling_months == 12

    def test_survives_the_round_trip_through_the_database_json(self) -> None:
        from loyalty.programs.schemas import ProgramDefinition

        definition = parse_program(program_data(window={"rolling_months": 6}))
        assert ProgramDefinition.model_validate_json(definition.model_dump_json()) == definition


class TestRejected:
    def test_thresholds_must_increase(self) -> None:
        data = program_data()
        data["tiers"]["levels"][2]["threshold"] = 5_000_000
        assert errors_of(data) == ["tiers.levels[2].threshold: must be greater than tiers.levels[1].threshold "
                                   "(5000000)"]

    def test_the_base_tier_starts_at_zero(self) -> None:
        data = program_data()
        data["tiers"]["levels"][0]["threshold"] = 100
        assert errors_of(data) == ["tiers.levels[0].threshold: the first level is the base tier and must have "
                                   "threshold 0"]

    def test_codes_are_unique(self) -> None:
        data = program_data()
        data["tiers"]["levels"][2]["code"] = "SILVER"
        assert errors_of(data) == ["tiers.levels[2].code: 'SILVER' is also the code of tiers.levels[1]"]

    @pytest.mark.parametrize(("change", "expected"), [
        (lambda t: t["qualification"].update(metric="balance"), "tiers.qualification.metric: Input should be"),
        (lambda t: t["qualification"].update(window="forever"),
         "tiers.qualification.window: 'forever' is not a window; use calendar_year or {rolling_months: 12}"),
        (lambda t: t["qualification"].update(window={"rolling_months": 0}),
         "tiers.qualification.window.rolling_months: Input should be greater than or equal to 1"),
        (lambda t: t["qualification"].update(window={"rolling_months": 12, "calendar_year": True}),
         "tiers.qualification.window: choose calendar_year or rolling_months, exactly one"),
        (lambda t: t["qualification"]["review"].update(grace_days=-1),
         "tiers.qualification.review.grace_days: Input should be greater than or equal to 0"),
        (lambda t: t["qualification"]["review"].update(every="week"), "tiers.qualification.review.every: Input"),
        (lambda t: t["levels"][1]["perks"].update(earn_multiplier="1.255"),
         "tiers.levels[1].perks.earn_multiplier: 1.255 must be a number with at most 2 decimal places"),
        (lambda t: t["levels"][1]["perks"].update(earn_multiplier="0.5"),
         "tiers.levels[1].perks.earn_multiplier: 0.5 must be between 1 and 100"),
        (lambda t: t["levels"][2]["perks"].update(discount_percent=101),
         "tiers.levels[2].perks.discount_percent: Input should be less than or equal to 100"),
        (lambda t: t["levels"][1].update(threshold=-5), "tiers.levels[1].threshold: Input should be greater than"),
        (lambda t: t["levels"][1].update(code="has space"), "tiers.levels[1].code: String should match pattern"),
        (lambda t: t.update(levels=[]), "tiers.levels: List should have at least 1 item"),
    ])
    def test_paths(self, change: Any, expected: str) -> None:
        data = program_data()
        change(data["tiers"])
        problems = errors_of(data)
        assert len(problems) == 1 and problems[0].startswith(expected), problems
