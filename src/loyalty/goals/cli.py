"""`loyalty goals show | evaluate`: the program's goals with how many members earned each, and awarding now."""

from __future__ import annotations

import typer
from rich.table import Table

from loyalty.cli.common import AtOpt, DbOpt, console, friendly_errors, use_database
from loyalty.db import session_scope
from loyalty.timeutil import as_utc, utcnow

app = typer.Typer(help="Goals and badges (the program file's goals: section).", no_args_is_help=True)



@app.command("show")
def show(database_url: DbOpt = None, at: AtOpt = None) -> None:
    """Each goal of the program in force: metric, target, window, points and members who earned it."""
    from loyalty.goals import service
    from loyalty.programs.service import program_at

    use_database(database_url)
    moment = as_utc(at) if at else utcnow()
    with friendly_errors(), session_scope() as session:
        program = program_at(session, moment)
        earned = service.badge_counts(session)
    if not program.definition.goals:
        console.print("the program has no goals")
        return
    table = Table("goal", "badge", "metric", "target", "window", "points", "members")
    for goal in program.definition.goals:
        table.add_row(goal.id, goal.badge.name, goal.metric, f"{goal.target:,}", goal.window.label,
                      f"{goal.points:,}", f"{earned.get(goal.id, 0):,}")
    console.print(table)


@app.command("evaluate")
def evaluate(database_url: DbOpt = None, at: AtOpt = None) -> None:
    """Award every member the goals they have reached (after an import or adding goals); `loyalty jobs run`
    does the same. Safe to run twice."""
    from loyalty.goals import service

    use_database(database_url)
    moment = as_utc(at) if at else utcnow()
    with friendly_errors(), session_scope() as session:
        given = service.evaluate_all(session, moment, actor="cli:goals-evaluate")
    console.print(f"{given:,} badges awarded")
