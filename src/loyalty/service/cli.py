"""`loyalty staff ...` and `loyalty service ...`: staff members, SLA targets, store hours, the weekly review."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from loyalty.cli.common import DbOpt, console, friendly_errors, use_database
from loyalty.db import session_scope

staff_app = typer.Typer(help="Staff members who handle tickets (agents, managers).", no_args_is_help=True)
service_app = typer.Typer(help="Service desk settings and reports.", no_args_is_help=True)



@staff_app.command("add")
def staff_add(
    name: Annotated[str, typer.Option(help="full name")],
    email: Annotated[str, typer.Option(help="e-mail (unique)")],
    role: Annotated[str, typer.Option(help="agent, manager, admin or readonly")] = "agent",
    store: Annotated[list[str] | None, typer.Option(help="a store they cover (repeat for several)")] = None,
    database_url: DbOpt = None,
) -> None:
    """Add a staff member; then `loyalty keys create --role agent --staff ID` gives them a key."""
    from pydantic import ValidationError

    from loyalty.service.schemas import StaffIn
    from loyalty.service.staff import create_staff

    use_database(database_url)
    try:
        data = StaffIn.model_validate({"name": name, "email": email, "role": role, "stores": store or []})
    except ValidationError as exc:
        error = exc.errors()[0]
        console.print(f"[red]error:[/red] {'.'.join(map(str, error['loc']))}: {error['msg']}")
        raise typer.Exit(2) from None
    with friendly_errors(), session_scope() as session:
        member = create_staff(session, data)
        member_id = member.id
    console.print(f"[green]added[/green] staff member {member_id}: {name} ({role})")


@staff_app.command("list")
def staff_list(database_url: DbOpt = None) -> None:
    """List staff members and the stores they cover."""
    from loyalty.service.staff import list_staff

    use_database(database_url)
    with session_scope() as session:
        members = list_staff(session)
    table = Table("id", "name", "e-mail", "role", "active", "stores")
    for m in members:
        table.add_row(str(m.id), m.name, m.email, m.role, "yes" if m.active else "[red]no[/red]", ", ".join(m.stores))
    console.print(table)


def _change_staff(staff_id: int, changes: dict[str, object], database_url: str | None) -> None:
    from pydantic import ValidationError

    from loyalty.auth.service import clear_cache
    from loyalty.service.schemas import StaffPatch
    from loyalty.service.staff import to_out, update_staff

    use_database(database_url)
    try:
        data = StaffPatch.model_validate(changes)
    except ValidationError as exc:
        error = exc.errors()[0]
        console.print(f"[red]error:[/red] {'.'.join(map(str, error['loc']))}: {error['msg']}")
        raise typer.Exit(2) from None
    with friendly_errors(), session_scope() as session:
        out = to_out(session, update_staff(session, staff_id, data))
    clear_cache()  # this process only; a running server refuses the keys within 30 s
    console.print(f"staff member {out.id}: {out.name} ({out.role}), "
                  f"{'[green]active[/green]' if out.active else '[red]inactive[/red]'}, "
                  f"stores: {', '.join(out.stores) or '-'}")


@staff_app.command("deactivate")
def staff_deactivate(staff_id: Annotated[int, typer.Argument(min=1)], database_url: DbOpt = None) -> None:
    """Deactivate a staff member: their agent/manager keys stop working and round-robin skips them.

    A running server refuses their keys within 30 s (at once through PATCH /v1/staff/ID). Tickets
    they own stay theirs until a manager reassigns them.
    """
    _change_staff(staff_id, {"active": False}, database_url)


@staff_app.command("activate")
def staff_activate(staff_id: Annotated[int, typer.Argument(min=1)], database_url: DbOpt = None) -> None:
    """Reactivate a staff member (their existing keys work again)."""
    _change_staff(staff_id, {"active": True}, database_url)


@staff_app.command("stores")
def staff_stores(
    staff_id: Annotated[int, typer.Argument(min=1)],
    store: Annotated[list[str] | None, typer.Option(help="a store they cover from now on (repeat for several)")]
    = None,
    database_url: DbOpt = None,
) -> None:
    """Replace the stores a staff member covers (no --store: none)."""
    _change_staff(staff_id, {"stores": store or []}, database_url)


@service_app.command("sla")
def service_sla(
    priority: Annotated[str, typer.Option(help="low, normal, high or urgent")],
    first_response_hours: Annotated[int, typer.Option(min=1, max=24 * 60)],
    resolution_hours: Annotated[int, typer.Option(min=1, max=24 * 365)],
    business_hours: Annotated[bool, typer.Option("--business-hours/--clock-hours",
                                                 help="count only the store's service hours")] = False,
    database_url: DbOpt = None,
) -> None:
    """Set the first-response and resolution targets for one priority."""
    from loyalty.models.service import PRIORITIES, SlaPolicy

    use_database(database_url)
    if priority not in PRIORITIES:
        console.print(f"[red]error:[/red] priority must be one of {', '.join(PRIORITIES)}")
        raise typer.Exit(2)
    with session_scope() as session:
        session.merge(SlaPolicy(priority=priority, first_response_hours=first_response_hours,
                                resolution_hours=resolution_hours, business_hours=business_hours))
    console.print(f"[green]{priority}[/green]: first response in {first_response_hours} h, resolution in "
                  f"{resolution_hours} h ({'business' if business_hours else 'clock'} hours)")


@service_app.command("hours")
def service_hours(
    store_id: str,
    timezone: Annotated[str, typer.Option(help="IANA zone, e.g. Asia/Ho_Chi_Minh")] = "Asia/Ho_Chi_Minh",
    opens: Annotated[str, typer.Option(help="HH:MM")] = "08:00",
    closes: Annotated[str, typer.Option(help="HH:MM (24:00 for midnight)")] = "17:00",
    weekdays: Annotated[str, typer.Option(help="ISO weekdays as digits, 1 = Monday")] = "12345",
    database_url: DbOpt = None,
) -> None:
    """Set a store's time zone and service hours (used by business-hours SLA targets)."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    from loyalty.models.service import StoreHours
    from loyalty.stores.service import store_kind

    use_database(database_url)
    try:
        ZoneInfo(timezone)
        start, end = (int(v.split(":")[0]) * 60 + int(v.split(":")[1]) for v in (opens, closes))
        if not (0 <= start < end <= 1440) or not weekdays or set(weekdays) - set("1234567"):
            raise ValueError
    except (ValueError, IndexError, ZoneInfoNotFoundError):
        console.print("[red]error:[/red] give a known --timezone, --opens before --closes as HH:MM, "
                      "and --weekdays as digits 1-7")
        raise typer.Exit(2) from None
    with friendly_errors(), session_scope() as session:
        store_kind(session, store_id)
        session.merge(StoreHours(store_id=store_id, timezone=timezone, opens_minute=start, closes_minute=end,
                                 weekdays="".join(sorted(set(weekdays)))))
    console.print(f"[green]{store_id}[/green]: {opens}-{closes} on weekdays {weekdays}, {timezone}")


@service_app.command("review")
def service_review(
    week: Annotated[str | None, typer.Option(help="any day of the week to review, YYYY-MM-DD (default: this week)")]
    = None,
    weeks: Annotated[int, typer.Option(min=2, max=52, help="previous weeks to compare with")] = 8,
    database_url: DbOpt = None,
) -> None:
    """The weekly review: complaints by category and store against previous weeks, frequent words."""
    from datetime import date

    from loyalty.config import get_settings
    from loyalty.service.endpoints import review
    from loyalty.timeutil import business_date, utcnow

    use_database(database_url)
    try:
        day = date.fromisoformat(week) if week else business_date(utcnow(), get_settings().tz)
    except ValueError:
        console.print(f"[red]error:[/red] --week must be a date like 2026-11-23, not {week!r}")
        raise typer.Exit(2) from None
    with session_scope() as session:
        result = review(session, day, weeks)
    console.print(f"[bold]Week from {result.week_start:%Y-%m-%d %H:%M} UTC[/bold]; {result.comments} comments")
    table = Table("by", "value", "this week", f"previous {weeks} weeks", "threshold", "rising")
    for t in result.trends:
        table.add_row(t.dimension, t.value or "-", str(t.this_week), " ".join(map(str, t.previous)),
                      f"{t.threshold:.1f}", "[red]RISING[/red]" if t.rising else "")
    console.print(table)
    terms = Table("word or phrase", "comments", "for example")
    for term in [*result.phrases[:8], *result.words[:12]]:
        terms.add_row(term.term, str(term.count), (term.examples or [""])[0])
    console.print(terms)
