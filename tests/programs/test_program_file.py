"""Program files with earn rules through `loyalty program validate | apply | show`."""

from __future__ import annotations

from pathlib import Path

import yaml
from typer.testing import CliRunner

from loyalty.cli.main import app
from loyalty.programs.rules import RuleEngine
from loyalty.programs.service import DEFAULT_PROGRAM_FILE, load_program_file

runner = CliRunner()


def run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def uncommented_examples(path: Path) -> Path:
    """The default file with its commented segments: and rules: examples switched on."""
    text = DEFAULT_PROGRAM_FILE.read_text(encoding="utf-8")
    head, examples = text.split("# segments:", 1)
    lines = ["segments:"] + [line.removeprefix("# ") for line in examples.splitlines()]
    path.write_text(head + "\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_the_default_program_is_the_articles_and_its_examples_are_valid(tmp_path: Path) -> None:
    default, _ = load_program_file(DEFAULT_PROGRAM_FILE)
    assert default.rules == [] and default.segments == {}
    examples, _ = load_program_file(uncommented_examples(tmp_path / "examples.yaml"))
    assert [rule.id for rule in examples.rules] == ["birthday", "weekend-mornings", "dairy", "vip-rate"]
    assert RuleEngine(examples).needs_member
    assert run("program", "validate", str(tmp_path / "examples.yaml"))[0] == 0


def test_validate_reports_rule_errors_with_their_paths(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"name": "x", "rules": [
        {"id": "a", "name": "A", "when": {"hours": "7-10"}, "give": {"bonus": 5}},
        {"id": "a", "name": "B", "when": {"segments": ["gold"]}, "give": {"bonus": 5}},
        {"id": "c", "name": "C", "give": {"bonus": 5}, "cap": {"total": 0}},
    ]}))
    code, output = run("program", "validate", str(path))
    assert code == 2
    flat = " ".join(output.split())
    assert "rules[0].when.hours: '7-10' is not a range like '07:00-10:00'" in flat
    assert "rules[2].cap.total: Input should be greater than or equal to 1" in flat


def test_apply_and_show_a_program_with_rules(cli_db: str, tmp_path: Path) -> None:
    assert run("init")[0] == 0
    code, output = run("program", "apply", str(uncommented_examples(tmp_path / "examples.yaml")))
    assert code == 0 and "version 2" in output
    code, output = run("program", "show")
    assert code == 0
    shown = yaml.safe_load(output.split("\n", 1)[1])
    assert [rule["id"] for rule in shown["rules"]] == ["birthday", "weekend-mornings", "dairy", "vip-rate"]
    assert shown["rules"][1]["give"]["multiplier"] == "1.5"
    assert shown["segments"] == {"vip": [1042, 2210]}
