"""`loyalty`: init, serve, demo, program, keys, import, jobs, ledger verify, customer show."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from loyalty.analytics.cli import app as analytics_app
from loyalty.cli.common import DbOpt, console, err_console, friendly_errors, use_database
from loyalty.config import get_settings
from loyalty.db import get_engine, session_scope
from loyalty.goals.cli import app as goals_app
from loyalty.referrals.cli import app as referrals_app
from loyalty.service.cli import service_app, staff_app
from loyalty.tiers.cli import app as tiers_app
from loyalty.timeutil import as_utc, utcnow
from loyalty.web.cli import set_password

if TYPE_CHECKING:
    from loyalty.imports.service import BatchReport

app = typer.Typer(help="Customer loyalty platform: customers, points ledger, API.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
program_app = typer.Typer(help="Load, check and show the loyalty program.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys.", no_args_is_help=True)
import_app = typer.Typer(help="Import CSV files (streamed, batched, safe to run twice).", no_args_is_help=True)
jobs_app = typer.Typer(help="Scheduled jobs.", no_args_is_help=True)
ledger_app = typer.Typer(help="The points ledger.", no_args_is_help=True)
customer_app = typer.Typer(help="Customers.", no_args_is_help=True)
stores_app = typer.Typer(help="Stores and channels.", no_args_is_help=True)
for sub, name in ((program_app, "program"), (keys_app, "keys"), (import_app, "import"), (jobs_app, "jobs"),
                  (ledger_app, "ledger"), (customer_app, "customer"), (stores_app, "stores")):
    app.add_typer(sub, name=name)
app.add_typer(analytics_app, name="analytics")
app.add_typer(staff_app, name="staff")
staff_app.command("set-password")(set_password)  # web login (loyalty.web.cli)
app.add_typer(service_app, name="service")
app.add_typer(tiers_app, name="tiers")
app.add_typer(goals_app, name="goals")
app.add_typer(referrals_app, name="referrals")



def initialise() -> int | None:
    """Migrates to head and applies the bundled program if none exists; returns its version if applied."""
    from sqlalchemy import select

    from loyalty.migrations.runner import upgrade_to_head
    from loyalty.models import ProgramVersion
    from loyalty.programs.service import DEFAULT_PROGRAM_FILE, apply_program, load_program_file

    upgrade_to_head(get_settings().database_url)
    with session_scope() as session:
        if session.scalar(select(ProgramVersion.id).limit(1)) is None:
            definition, source = load_program_file(DEFAULT_PROGRAM_FILE)
            return apply_program(session, definition, source, actor="cli:init",
                                 effective_from=datetime(2000, 1, 1, tzinfo=as_utc(utcnow()).tzinfo))
    return None


@app.command()
def init(database_url: DbOpt = None) -> None:
    """Create or migrate the database to the latest schema."""
    use_database(database_url)
    with friendly_errors():
        version = initialise()
    console.print(f"[green]database ready[/green] at {get_settings().database_url}")
    if version:
        console.print(f"applied the default program as version {version}")


@app.command()
def serve(
    database_url: DbOpt = None,
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port")] = 8000,
    workers: Annotated[int, typer.Option(help="worker processes")] = 1,
) -> None:
    """Serve the API (OpenAPI docs at /docs); with several workers, each has its own socket (loyalty/server.py)."""
    from loyalty.server import ServeOptions, ServerError
    from loyalty.server import serve as run_server

    use_database(database_url)
    console.print(f"serving http://{host}:{port}  (docs: http://{host}:{port}/docs)")
    try:
        code = run_server(ServeOptions(app="loyalty.asgi:app", host=host, port=port, workers=workers))
    except ServerError as exc:
        err_console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    raise typer.Exit(code)


@app.command()
def demo(
    database_url: DbOpt = None,
    serve_after: Annotated[bool, typer.Option("--serve/--no-serve", help="serve the API afterwards")] = False,
    seed: Annotated[int, typer.Option(help="random seed of the generated business")] = 20261123,
    customers: Annotated[int, typer.Option(help="number of customers")] = 3200,
    purchases: Annotated[int, typer.Option(help="approximate number of purchases")] = 105_000,
    port: Annotated[int, typer.Option(help="port for --serve")] = 8000,
    export_transactions: Annotated[Path | None, typer.Option(
        "--export-transactions", help="only write the demo's purchases and returns to this CSV (import format)",
    )] = None,
) -> None:
    """Build a realistic demo business (a Vietnamese retail chain) and print API keys."""
    from loyalty.demo.build import build_demo

    if export_transactions is not None:
        from loyalty.demo.export import export_transactions as export

        rows = export(export_transactions, seed=seed, customers=customers, purchases=purchases)
        console.print(f"wrote {rows:,} transactions to {export_transactions}")
        return
    use_database(database_url)
    with friendly_errors():
        initialise()
        summary = build_demo(get_engine(), seed=seed, customers=customers, purchases=purchases, console=console)
    table = Table(title="Demo business", show_header=False)
    for label, value in summary.rows():
        table.add_row(label, value)
    console.print(table)
    console.print(f"staff screens (dashboard): [bold]http://127.0.0.1:{port}/staff/[/bold] "
                  "(log in with a web login above)")
    if serve_after:
        from loyalty.portal import demo as portal_demo  # the member portal's codes go to this log in the demo

        portal_demo.enable_demo_codes()
        console.print(portal_demo.hint(get_engine(), f"http://127.0.0.1:{port}"))
        serve(database_url=None, host="127.0.0.1", port=port, workers=1)


# --- program ----------------------------------------------------------------------------------

@program_app.command("validate")
def program_validate(file: Path) -> None:
    """Check a program file; every error is printed with its path in the file."""
    from loyalty.programs.service import load_program_file

    with friendly_errors():
        definition, _ = load_program_file(file)
    console.print(f"[green]valid:[/green] {definition.name}")


@program_app.command("apply")
def program_apply(
    file: Path, database_url: DbOpt = None,
    effective_from: Annotated[datetime | None, typer.Option(help="ISO time it takes effect (default: now)")] = None,
) -> None:
    """Make a program file the new version, effective from now or a given time."""
    from loyalty.programs.service import apply_program, load_program_file

    use_database(database_url)
    with friendly_errors():
        definition, source = load_program_file(file)
        with session_scope() as session:
            version = apply_program(session, definition, source, actor="cli",
                                    effective_from=as_utc(effective_from) if effective_from else None)
    console.print(f"[green]applied[/green] {definition.name} as version {version}")


@program_app.command("show")
def program_show(database_url: DbOpt = None) -> None:
    """Print the program in force."""
    import yaml

    from loyalty.programs.service import program_at

    use_database(database_url)
    with session_scope() as session:
        active = program_at(session)
    console.print(f"# version {active.version}, effective from {active.effective_from}")
    console.print(yaml.safe_dump(_only_set(active.definition.model_dump(mode="json")), allow_unicode=True,
                                 sort_keys=False, width=100), markup=False, highlight=False, soft_wrap=True)


def _only_set(value: object) -> object:
    """The program as its author would write it: no null values, no empty lists or mappings."""
    if isinstance(value, dict):
        pruned = {key: _only_set(item) for key, item in value.items()}
        return {key: item for key, item in pruned.items() if item is not None and item != [] and item != {}}
    if isinstance(value, list):
        return [_only_set(item) for item in value]
    return value


@program_app.command("simulate")
def program_simulate(
    file: Path, database_url: DbOpt = None,
    transactions: Annotated[Path | None, typer.Option("--transactions", help="a transactions CSV (import format); "
                                                      "default: the database's own history")] = None,
    date_from: Annotated[datetime | None, typer.Option("--from", help="first business date replayed")] = None,
    date_to: Annotated[datetime | None, typer.Option("--to", help="last business date replayed")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
) -> None:
    """Replay history under a draft program beside the one in force; writes nothing."""
    from loyalty.programs.service import load_program_file
    from loyalty.programs.simulate import read_only_session, simulate_database

    use_database(database_url)
    with friendly_errors():
        draft, _ = load_program_file(file)
        with read_only_session(get_engine()) as session:
            report = simulate_database(session, draft, csv=transactions,
                                       date_from=date_from.date() if date_from else None,
                                       date_to=date_to.date() if date_to else None)
    if as_json:
        import json

        console.print_json(json.dumps(report.to_dict()))
        return
    period = f"{report.date_from or 'start'} to {report.date_to or 'end'}"
    table = Table("", f"draft: {report.draft.name}", f"active: {report.active.name}", "difference",
                  title=f"{report.source}, {period}: {report.purchases:,} purchases ({report.member_purchases:,} "
                        f"by {report.members:,} members), {report.returns:,} returns; {report.seconds:.2f} s")
    for label, draft_value, active_value in report.rows():
        diff = (draft_value or 0) - (active_value or 0)
        table.add_row(label, "-" if draft_value is None else f"{draft_value:,}",
                      "-" if active_value is None else f"{active_value:,}",
                      f"[green]{diff:+,}[/green]" if diff < 0 else f"[red]{diff:+,}[/red]" if diff > 0 else "0")
    console.print(table)
    for note in report.notes:
        console.print(f"[dim]note: {note}[/dim]")


# --- keys and stores --------------------------------------------------------------------------

@keys_app.command("create")
def keys_create(
    role: Annotated[str, typer.Option(help="admin, store, readonly, agent or manager")],
    store: Annotated[str | None, typer.Option(help="the store a store key acts for")] = None,
    staff: Annotated[int | None, typer.Option(help="the staff member an agent or manager key acts for")] = None,
    name: Annotated[str, typer.Option(help="a label for the key")] = "cli",
    database_url: DbOpt = None,
) -> None:
    """Create an API key; the key is shown once and stored only as a hash."""
    from loyalty.auth.service import create_key

    use_database(database_url)
    with friendly_errors(), session_scope() as session:
        _, plaintext = create_key(session, role=role, store_id=store, name=name, staff_id=staff)
    console.print(plaintext)


@stores_app.command("add")
def stores_add(
    store_id: str, name: Annotated[str, typer.Option()], kind: Annotated[str, typer.Option()],
    city: Annotated[str | None, typer.Option()] = None, database_url: DbOpt = None,
) -> None:
    """Add a store or channel (retail, online, outlet, call_centre, partner)."""
    from pydantic import ValidationError

    from loyalty.stores.service import StoreIn, create_store

    use_database(database_url)
    try:
        data = StoreIn(id=store_id, name=name, kind=kind, city=city)
    except ValidationError as exc:
        err_console.print(f"[red]error:[/red] {exc.errors()[0]['loc'][0]}: {exc.errors()[0]['msg']}")
        raise typer.Exit(2) from None
    with friendly_errors(), session_scope() as session:
        create_store(session, data)
    console.print(f"[green]added[/green] {store_id}")


# --- import -----------------------------------------------------------------------------------

def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("rows"),
                    TimeElapsedColumn(), console=err_console, transient=False)


def _bar(progress: Progress, file: Path) -> Callable[[int, int], None]:
    """The importer's progress callback, drawn as a rich bar."""
    task = progress.add_task(f"importing {file.name}", total=None)

    def on_rows(done: int, total: int) -> None:
        progress.update(task, completed=done, total=total)
    return on_rows


def _report(report: object, file: Path, max_errors: int) -> None:
    from loyalty.imports.service import BatchReport

    assert isinstance(report, BatchReport)
    console.print(f"{file}: {report.rows} rows, {report.imported} imported, {report.skipped} already there, "
                  f"{report.rejected} rejected"
                  + (f", {report.created_customers} customers created" if report.created_customers else "")
                  + (f", {report.points} points" if report.points else ""), soft_wrap=True)
    for error in report.errors[:max_errors]:
        err_console.print(f"[yellow]{file}:{error.line}:[/yellow] {error.message}", soft_wrap=True, markup=True,
                          highlight=False)
    if report.rejected > max_errors:
        err_console.print(f"... and {report.rejected - max_errors} more rejected rows")


def _import_recorded(kind: str, file: Path, *, batch_size: int, create_customers: bool = False) -> BatchReport:
    """Runs the import with a progress bar, recorded in the import history (started by "cli")."""
    from loyalty.imports import history
    from loyalty.imports.pipeline import run_recorded

    if not file.is_file():
        err_console.print(f"[red]error:[/red] {file}: no such file")
        raise typer.Exit(2)
    engine = get_engine()
    with friendly_errors():
        with session_scope(engine) as session:
            run_id = history.start_run(session, kind=kind, file_name=file.name, size_bytes=file.stat().st_size,
                                       started_by=history.CLI, create_customers=create_customers).id
        with _progress() as progress:
            return run_recorded(engine, run_id, kind, file, create_customers=create_customers,
                                batch_size=batch_size, on_rows=_bar(progress, file))


@import_app.command("customers")
def import_customers(
    file: Path, database_url: DbOpt = None,
    batch_size: Annotated[int, typer.Option(min=1, max=100_000)] = 5000,
    max_errors: Annotated[int, typer.Option(help="rejected rows to print")] = 50,
) -> None:
    """Import customers from CSV (phone,email,card,external_id,namespace,name,birthday,...)."""
    use_database(database_url)
    report = _import_recorded("customers", file, batch_size=batch_size)
    _report(report, file, max_errors)
    if report.rejected:
        raise typer.Exit(1)


@import_app.command("transactions")
def import_transactions(
    file: Path, database_url: DbOpt = None,
    create_customers: Annotated[bool, typer.Option("--create-customers", help="enrol unknown customers")] = False,
    batch_size: Annotated[int, typer.Option(min=1, max=100_000)] = 10_000,
    max_errors: Annotated[int, typer.Option(help="rejected rows to print")] = 50,
) -> None:
    """Import purchases and returns from CSV (transaction_id,store_id,customer,occurred_at,amount[,type,...])."""
    use_database(database_url)
    report = _import_recorded("transactions", file, batch_size=batch_size, create_customers=create_customers)
    _report(report, file, max_errors)
    if report.rejected:
        raise typer.Exit(1)


# --- jobs, ledger, customers ------------------------------------------------------------------

@jobs_app.command("run")
def jobs_run(
    database_url: DbOpt = None,
    now: Annotated[datetime | None, typer.Option(help="run as if it were this time (ISO, UTC if no offset)")] = None,
) -> None:
    """Lapse old holds, release pending points, expire due points, purge old idempotency keys."""
    from loyalty.jobs import run_jobs

    use_database(database_url)
    moment = as_utc(now) if now else utcnow()
    with friendly_errors():
        for result in run_jobs(get_engine(), moment, retention_hours=get_settings().idempotency_retention_hours):
            console.print(f"{result.name}: {result.count} {result.unit}")


@ledger_app.command("verify")
def ledger_verify(database_url: DbOpt = None) -> None:
    """Prove the ledger's invariants; exits 1 on any violation."""
    from loyalty.ledger.verify import verify

    use_database(database_url)
    with session_scope() as session:
        results = verify(session)
    table = Table("check", "result", "examples")
    for result in results:
        table.add_row(result.description, "[green]ok[/green]" if result.ok else f"[red]{result.violations} "
                      "violation(s)[/red]", "; ".join(map(str, result.examples)))
    console.print(table)
    if not all(r.ok for r in results):
        raise typer.Exit(1)
    console.print("[green]ledger verified[/green]")


@customer_app.command("show")
def customer_show(reference: str, database_url: DbOpt = None) -> None:
    """Show a customer by id, phone, e-mail or card: profile, balance and recent history."""
    from loyalty.customers.service import resolve_reference, to_out
    from loyalty.ledger.service import balance_view, history

    use_database(database_url)
    with friendly_errors(), session_scope() as session:
        customer = to_out(session, resolve_reference(session, reference))
        balance = balance_view(session, customer.id, utcnow())
        items = history(session, customer.id, before=None, limit=10)
    ids = customer.identities
    console.print(f"[bold]#{customer.id} {customer.name or '(no name)'}[/bold]  phone {ids.phone or '-'}  "
                  f"e-mail {ids.email or '-'}  cards {', '.join(ids.cards) or '-'}")
    console.print(f"birthday {customer.birthday or '-'}  city {customer.city or '-'}  "
                  f"enrolled {customer.enrolled_at:%Y-%m-%d} at {customer.enrolled_store_id or '-'}")
    console.print(f"points: available {balance.available}, pending {balance.pending}, held {balance.held}, "
                  f"owed {balance.owed}; expiring in 30/60/90 days: "
                  f"{balance.expiring[30]}/{balance.expiring[60]}/{balance.expiring[90]}")
    table = Table("entry", "when", "kind", "change", "reason")
    for item in items:
        change = ", ".join(f"{k} {v:+d}" for k, v in item.changes.items())
        table.add_row(str(item.entry_id), f"{item.created_at:%Y-%m-%d %H:%M}", item.kind, change, item.reason)
    console.print(table)
