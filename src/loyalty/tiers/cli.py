"""`loyalty tiers show | recompute`: members per tier, and re-qualifying everyone after an import."""

from __future__ import annotations

import typer
from rich.table import Table

from loyalty.cli.common import AtOpt, DbOpt, console, friendly_errors, use_database
from loyalty.db import session_scope
from loyalty.timeutil import as_utc, utcnow

app = typer.Typer(help="Member tiers (the program file's tiers: section).", no_args_is_help=True)



@app.command("show")
def show(database_url: DbOpt = None, at: AtOpt = None) -> None:
    """The levels, what qualifies for each, their perks and how many members are in each."""
    from loyalty.programs.service import program_at
    from loyalty.tiers import service

    use_database(database_url)
    moment = as_utc(at) if at else utcnow()
    with friendly_errors(), session_scope() as session:
        program = program_at(session, moment)
        rows = service.counts(session, program, moment)
        tiers = service.require_tiers(program)
    window = tiers.qualification.window
    console.print(f"qualifies on {tiers.qualification.metric} over "
                  f"{'the calendar year' if window.rolling_months is None else f'{window.rolling_months} months'}"
                  f", reviewed every {tiers.qualification.review.every} with "
                  f"{tiers.qualification.review.grace_days} days' grace")
    table = Table("tier", "name", "threshold", "earn x", "discount %", "free shipping", "members")
    for level, members in rows:
        table.add_row(level.code, level.name, f"{level.threshold:,}", str(level.perks.earn_multiplier),
                      str(level.perks.discount_percent), "yes" if level.perks.free_shipping else "no",
                      f"{members:,}")
    console.print(table)


@app.command("recompute")
def recompute(database_url: DbOpt = None, at: AtOpt = None) -> None:
    """Upgrade every member who qualifies for a higher tier (after an import or a program change).
    Never downgrades: that is the review's job (`loyalty jobs run`)."""
    from loyalty.programs.service import program_at
    from loyalty.tiers import service

    use_database(database_url)
    moment = as_utc(at) if at else utcnow()
    with friendly_errors(), session_scope() as session:
        risen = service.recompute_all(session, program_at(session, moment), moment, actor="cli:tiers-recompute")
    console.print(f"{risen:,} members moved up a tier")
