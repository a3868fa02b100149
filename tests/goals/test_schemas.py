"""The program file's goals: section: valid files load, bad ones fail with their path in the file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from loyalty.errors import ConfigError
from loyalty.programs.schemas import parse_program
from loyalty.programs.service import load_program_file
from tests.goals.helpers import goal, program_data

DOCS = Path(__file__).parents[2] / "docs" / "programs" / "goals.yaml"


def errors(goals: list[dict[str, Any]]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_program(program_data(goals))
    return list(caught.value.extra["errors"])


class TestDocumentedProgram:
    def test_docs_goals_yaml_is_valid_and_has_every_metric(self) -> None:
        definition, _ = load_program_file(DOCS)
        assert {g.metric for g in definition.goals} == {"purchases", "spend", "categories", "stores",
                                                        "streak_months", "referrals"}
        regular = next(g for g in definition.goals if g.id == "regular")
        assert (regular.target, regular.window.rolling_months, regular.points) == (5, 12, 50)
        assert next(g for g in definition.goals if g.id == "big-spender").window.calendar_year

    def test_no_goals_is_the_default(self) -> None:
        data = yaml.safe_load(DOCS.read_text(encoding="utf-8"))
        del data["goals"]
        assert parse_program(data).goals == []


class TestWindows:
    @pytest.mark.parametrize(("window", "label"), [
        (None, "lifetime"), ("lifetime", "lifetime"), ("calendar_year", "calendar_year"),
        ({"rolling_months": 6}, "rolling_6_months"),
    ])
    def test_window_forms(self, window: Any, label: str) -> None:
        extra = {} if window is None else {"window": window}
        [parsed] = parse_program(program_data([goal("a", "purchases", 3, **extra)])).goals
        assert parsed.window.label == label


class TestBadFiles:
    def test_duplicate_ids_name_both_paths(self) -> None:
        assert errors([goal("a", "purchases", 1), goal("b", "spend", 5), goal("a", "stores", 2)]) == [
            "goals[2].id: 'a' is also the id of goals[0]"]

    @pytest.mark.parametrize(("change", "expected"), [
        ({"metric": "visits"}, "goals[0].metric: Input should be 'purchases', 'spend', 'categories', 'stores', "
                               "'streak_months' or 'referrals'"),
        ({"target": 0}, "goals[0].target: Input should be greater than or equal to 1"),
        ({"points": -5}, "goals[0].points: Input should be greater than or equal to 0"),
        ({"id": "Bad Id"}, "goals[0].id: String should match pattern '^[a-z0-9][a-z0-9_-]{0,39}$'"),
        ({"badge": {}}, "goals[0].badge.name: Field required"),
        ({"badge": {"name": "X", "colour": "red"}}, "goals[0].badge.colour: Extra inputs are not permitted"),
        ({"window": "weekly"}, "goals[0].window: 'weekly' is not a window; use lifetime, calendar_year or "
                               "{rolling_months: 12}"),
        ({"window": {"rolling_months": 0}}, "goals[0].window.rolling_months: Input should be greater than or "
                                            "equal to 1"),
        ({"window": {"rolling_months": 3, "calendar_year": True}},
         "goals[0].window: choose calendar_year or rolling_months, not both"),
        ({"reward": "COFFEE"}, "goals[0].reward: not supported yet: a goal cannot issue a reward voucher until "
                               "vouchers free of points exist; give points instead"),
    ])
    def test_each_problem_has_its_path(self, change: dict[str, Any], expected: str) -> None:
        assert errors([goal("a", "purchases", 3) | change]) == [expected]

    def test_a_streak_has_no_window(self) -> None:
        assert errors([goal("a", "purchases", 1), goal("s", "streak_months", 3, window="calendar_year")]) == [
            "goals[1]: a streak_months goal counts consecutive months whenever they fall: leave window out "
            "(lifetime)"]

    def test_targets_have_a_ceiling_per_metric(self) -> None:
        assert errors([goal("s", "streak_months", 121)]) == [
            "goals[0]: target 121 is more than 120, the most a streak_months goal allows"]

    def test_goals_must_be_a_list(self) -> None:
        assert errors({"a": 1}) == ["goals: Input should be a valid list"]  # type: ignore[arg-type]
