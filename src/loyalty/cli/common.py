"""Shared CLI plumbing: the database option, error printing, rich console."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated

import typer
from rich.console import Console

from loyalty.config import get_settings
from loyalty.db import get_engine
from loyalty.errors import ConfigError, LoyaltyError

console = Console()
err_console = Console(stderr=True)


def use_database(url: str | None) -> None:
    """--database-url wins over LOYALTY_DATABASE_URL for this command."""
    if url:
        os.environ["LOYALTY_DATABASE_URL"] = url
    get_settings.cache_clear()
    get_engine.cache_clear()
    try:
        get_settings()
    except Exception as exc:
        err_console.print(f"[red]configuration error:[/red] {exc}")
        raise typer.Exit(2) from None


@contextmanager
def friendly_errors() -> Iterator[None]:
    try:
        yield
    except ConfigError as exc:
        for line in exc.extra.get("errors") or [exc.detail]:
            err_console.print(f"[red]error:[/red] {line}")
        raise typer.Exit(2) from None
    except LoyaltyError as exc:
        err_console.print(f"[red]error:[/red] {exc.detail}")
        raise typer.Exit(2) from None


DatabaseOption = typer.Option("--database-url", envvar="LOYALTY_DATABASE_URL",
                              help="sqlite:///loyalty.db (default) or postgresql+psycopg://user@host/db")

# The options every domain's commands share, as annotated types for their signatures.
DbOpt = Annotated[str | None, DatabaseOption]
AtOpt = Annotated[datetime | None, typer.Option("--at", help="as if it were this time (ISO, UTC if no offset)")]
