"""`loyalty goals show | evaluate`."""

from __future__ import annotations

from sqlalchemy.orm import Session
from typer.testing import CliRunner

from loyalty.cli.main import app
from tests.factories import make_customer, make_store
from tests.goals.helpers import all_badges, buy, goal, use_goals

runner = CliRunner()


def test_evaluate_then_show(cli_db: str, session: Session) -> None:
    make_store(session)
    use_goals(session, [])
    customer_id = make_customer(session).id
    buy(session, customer_id, 100_000)
    use_goals(session, [goal("first", "purchases", 1, points=5), goal("ten", "purchases", 10),
                        goal("ambassador", "referrals", 2)])
    result = runner.invoke(app, ["goals", "evaluate"])
    assert result.exit_code == 0, result.output
    assert "1 badges awarded" in result.output
    assert all_badges(session) == [(customer_id, "first")]
    assert "0 badges awarded" in runner.invoke(app, ["goals", "evaluate"]).output
    result = runner.invoke(app, ["goals", "show"])
    assert result.exit_code == 0, result.output
    rows = {line.split()[1]: line for line in result.output.splitlines() if line.strip()[:1] == "│"
            and len(line.split()) > 2}
    assert rows["first"].rstrip(" │").endswith("1") and rows["ten"].rstrip(" │").endswith("0")
    assert "not counted yet" not in result.output  # every metric is counted


def test_show_without_goals(cli_db: str) -> None:
    result = runner.invoke(app, ["goals", "show"])
    assert result.exit_code == 0 and "the program has no goals" in result.output
