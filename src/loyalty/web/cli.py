"""`loyalty staff set-password`: gives a staff member a password for the web screens."""

from __future__ import annotations

import secrets
import sys
from typing import Annotated

import typer

from loyalty.cli.common import DatabaseOption, console, friendly_errors, use_database
from loyalty.db import session_scope


def set_password(
    email: Annotated[str, typer.Option(help="the staff member's e-mail")],
    password_stdin: Annotated[bool, typer.Option("--password-stdin",
                                                 help="read the password from standard input")] = False,
    generate: Annotated[bool, typer.Option(help="generate a random password and print it once")] = False,
    database_url: Annotated[str | None, DatabaseOption] = None,
) -> None:
    """Set the password a staff member logs in to the web screens with (at least 10 characters).

    Without --password-stdin or --generate it is asked for twice, hidden. It also ends their other
    sessions and clears a login lock."""
    from loyalty.timeutil import utcnow
    from loyalty.web.auth import set_password as store_password

    use_database(database_url)
    if generate:
        password = secrets.token_urlsafe(12)
    elif password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("new password", hide_input=True, confirmation_prompt=True)
    with friendly_errors(), session_scope() as session:
        member = store_password(session, email, password, utcnow())
        name, role = member.name, member.role
    console.print(f"[green]password set[/green] for {name} ({role}, {email.strip().lower()})")
    if generate:
        console.print(f"password: [bold]{password}[/bold]")
