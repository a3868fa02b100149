"""What the staff pages share: sessions, the clock and zone, writes with a flash message."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TypeVar
from zoneinfo import ZoneInfo

from fastapi import Request
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from loyalty.config import get_settings
from loyalty.db import database_key, read_only_engine, run_in_transaction, session_factory

T = TypeVar("T")


def engine_of(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


@contextmanager
def reading(request: Request) -> Iterator[Session]:
    """A read-only unit of work (SQLite: a deferred transaction that never waits for writers)."""
    session = session_factory(read_only_engine(engine_of(request)))()
    try:
        yield session
    finally:
        session.close()  # ends the transaction; loaded rows stay readable (a rollback would expire them)


def writing(request: Request, work: Callable[[Session], T]) -> T:
    """Runs `work` in one transaction and commits (retrying deadlocks): services never commit."""
    return run_in_transaction(engine_of(request), work)


def tz() -> ZoneInfo:
    return get_settings().tz


def local(moment: datetime | None) -> str:
    return "–" if moment is None else moment.astimezone(tz()).strftime("%Y-%m-%d %H:%M")


def db_key(request: Request) -> str:
    with reading(request) as session:
        return database_key(session)
