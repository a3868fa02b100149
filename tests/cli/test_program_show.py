"""`loyalty program show` prints what is set, readably, and what it prints is the same program."""

from __future__ import annotations

import yaml
from typer.testing import CliRunner

from loyalty.cli.main import app
from loyalty.demo.build import DEMO_PROGRAM_FILE
from loyalty.programs.schemas import parse_program
from loyalty.programs.service import load_program_file

runner = CliRunner()


def test_show_prints_only_what_is_set_and_round_trips(cli_db: str) -> None:
    assert runner.invoke(app, ["init"]).exit_code == 0
    assert runner.invoke(app, ["program", "apply", str(DEMO_PROGRAM_FILE)]).exit_code == 0
    result = runner.invoke(app, ["program", "show"], env={"COLUMNS": "60"})
    assert result.exit_code == 0, result.output
    header, body = result.output.split("\n", 1)
    assert header.startswith("# version 2")
    assert "null" not in body and ": []" not in body and ": {}" not in body
    assert "Kim cương" in body and "Sáng cuối tuần x1.5" in body  # Vietnamese as written, no escapes
    shown = yaml.safe_load(body)
    assert "max_points_per_purchase" not in shown["redemption"] and "segments" not in shown
    expected, _ = load_program_file(DEMO_PROGRAM_FILE)
    assert parse_program(shown) == expected  # nothing that matters was left out


def test_show_the_default_program(cli_db: str) -> None:
    assert runner.invoke(app, ["init"]).exit_code == 0
    result = runner.invoke(app, ["program", "show"])
    assert result.exit_code == 0 and "null" not in result.output
    assert yaml.safe_load(result.output.split("\n", 1)[1])["earn"][0]["points"] == 10
