"""`loyalty analytics <report>`: on the database, or on a transactions CSV with --transactions."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from loyalty.analytics.catalogue import REPORTS
from loyalty.cli.common import DatabaseOption, console, err_console, friendly_errors, use_database

if TYPE_CHECKING:
    import polars as pl

    from loyalty.analytics.report import Report

app = typer.Typer(help="Analytics: RFM, Pareto, CLV, churn, cohorts, lifecycle, program, profitability.",
                  no_args_is_help=True)


def _date(value: datetime | None) -> date | None:
    return value.date() if value else None


def _cell(value: Any, column: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, int) and not isinstance(value, bool) and column not in ("customer", "key"):
        return f"{value:,}"
    return str(value)


def _table(frame: pl.DataFrame, title: str, limit: int) -> Table:
    table = Table(*frame.columns, title=title + (f" (first {limit} of {frame.height})" if frame.height > limit else ""))
    for row in frame.head(limit).iter_rows():
        table.add_row(*(_cell(v, c) for v, c in zip(row, frame.columns, strict=True)))
    return table


def show(report: Report, limit: int) -> None:
    nested = ("bgnbd", "pareto_nbd", "gamma_gamma", "holdout", "thresholds", "points", "uplift", "stages")
    facts = {k: v for k, v in report.summary.items() if not isinstance(v, dict | list) or k in nested}
    console.print(f"[bold]{report.title}[/bold] as of {report.as_of}")
    for key, value in facts.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k}={_cell(v) if not isinstance(v, dict) else '{...}'}" for k, v in value.items())
        console.print(f"  {key}: {_cell(value) if not isinstance(value, str) else value}", highlight=False)
    console.print(_table(report.table.select(report.display) if report.display else report.table, report.title,
                         limit))
    for name, frame in report.sections.items():
        if frame.height and name != "by_risk":
            console.print(_table(frame, name.replace("_", " "), max(limit, 20)))


def _command(name: str) -> Callable[..., None]:
    def command(
        transactions: Annotated[Path | None, typer.Option(
            "--transactions", help="a CSV (customer, date or occurred_at, amount) instead of the database")] = None,
        as_of: Annotated[datetime | None, typer.Option(
            "--as-of", formats=["%Y-%m-%d"], help="compute as if today were this date")] = None,
        as_json: Annotated[bool, typer.Option("--json", help="print JSON instead of tables")] = False,
        out: Annotated[Path | None, typer.Option("--out", help="write the full table as CSV")] = None,
        plot: Annotated[Path | None, typer.Option("--plot", help="draw the report's figure (.png or .svg)")] = None,
        limit: Annotated[int, typer.Option(min=1, help="rows to print (and to put in --json)")] = 20,
        model: Annotated[str, typer.Option(help="clv/churn: bgnbd or pareto-nbd")] = "bgnbd",
        time_unit: Annotated[str, typer.Option("--time-unit", help="clv: D, W or M")] = "W",
        horizon: Annotated[int, typer.Option(help="clv: months ahead")] = 12,
        discount_rate: Annotated[float, typer.Option(help="clv: yearly discount rate (0.1 = 10%)")] = 0.10,
        calibration_end: Annotated[datetime | None, typer.Option(
            "--calibration-end", formats=["%Y-%m-%d"], help="clv: fit up to this date, test on the rest")] = None,
        period_days: Annotated[int, typer.Option(help="lifecycle: flows over the last N days")] = 30,
        lapsed_after: Annotated[int | None, typer.Option(help="lifecycle: days without purchase to lapse")] = None,
        lost_after: Annotated[int | None, typer.Option(help="lifecycle: days without purchase to be lost")] = None,
        loyal_purchases: Annotated[int | None, typer.Option(help="lifecycle: purchase days to be loyal")] = None,
        value_quantile: Annotated[float, typer.Option(help="churn: once-valuable = revenue above this quantile")] = 0.8,
        max_p_alive: Annotated[float, typer.Option(help="churn: probably gone below this P(alive)")] = 0.5,
        database_url: Annotated[str | None, DatabaseOption] = None,
    ) -> None:
        # Polars, SciPy and the models load only when a report runs, so `loyalty` itself starts fast.
        from loyalty.analytics.churn import WinBackOptions
        from loyalty.analytics.clv import ClvOptions
        from loyalty.analytics.report import jsonable
        from loyalty.analytics.reports import Options, run

        options = Options(
            clv=ClvOptions(model, time_unit.upper(), horizon, discount_rate, _date(calibration_end)),
            winback=WinBackOptions(value_quantile, max_p_alive), period_days=period_days,
            lapsed_after_days=lapsed_after, lost_after_days=lost_after, loyal_min_purchases=loyal_purchases)
        with friendly_errors():
            if transactions is not None:
                from loyalty.analytics.loader import load_csv

                report = run(name, load_csv(transactions, _date(as_of)), options)
            else:
                from loyalty.analytics.reports import run_on_database
                from loyalty.db import session_scope

                use_database(database_url)
                with session_scope() as session:
                    report = run_on_database(session, name, options, _date(as_of))
            if out is not None:
                report.table.write_csv(out)
            if plot is not None:
                from loyalty.analytics.plots import draw

                draw(report, plot)
        for warning in report.warnings:
            err_console.print(f"[yellow]warning:[/yellow] {warning}", highlight=False)
        if as_json:
            print(json.dumps(jsonable(report.to_json(limit)), ensure_ascii=False))
        else:
            show(report, limit)
        if out is not None:
            err_console.print(f"wrote {report.table.height} rows to {out}")

    command.__doc__ = REPORTS[name] + "."
    return command


for _name in REPORTS:
    app.command(_name)(_command(_name))
