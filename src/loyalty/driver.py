"""Core statements compiled once per dialect and run on the driver connection.

For the few statements a sale runs every time (or often), SQLAlchemy's per-call work — building
the expression, the compile-cache look-up, processing each parameter, wrapping the result — cost
more CPU than the database's own work (profiled on the rules benchmark: a tier's metric UPDATE
and a stamp card's completion each spent most of their time there). A `DriverStatement` keeps the
statement written in SQLAlchemy (one definition for both databases, checked against the models)
and skips that work at run time: the SQL text and parameter order are computed once per dialect,
and each call is one cursor execute.

What it does not do: result processing. Rows come back as the driver gives them (on SQLite a
datetime is text), so these statements return ids, numbers and strings. Datetime parameters are
converted as the UTCDateTime column type would (naive UTC text on SQLite). Listeners of the
engine's `before_cursor_execute` event are told of each statement, as for any other.
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

import psycopg
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from sqlalchemy.sql import Executable, Insert

from loyalty.bulk import sqlite_datetime


class _Compiled:
    __slots__ = ("defaults", "order", "sql")

    def __init__(self, sql: str, order: tuple[str, ...] | None, defaults: dict[str, Any]) -> None:
        self.sql = sql
        self.order = order  # positional parameter names (SQLite's qmark style); None: named (psycopg)
        self.defaults = defaults  # values SQLAlchemy bound itself (literals in the expression)


class DriverStatement:
    """A statement built by `build` (once), compiled once per dialect, executed at driver level."""

    def __init__(self, name: str, build: Callable[[], Executable]) -> None:
        self.name = name
        self._build = build
        self._statement: Executable | None = None
        self._compiled: dict[str, _Compiled] = {}
        self._lock = threading.Lock()

    def _for(self, dialect: Any) -> _Compiled:
        found = self._compiled.get(dialect.name)
        if found is not None:
            return found
        with self._lock:
            if self._statement is None:
                statement = self._build()
                if isinstance(statement, Insert):
                    # Compiled on its own, an INSERT gets SQLAlchemy's implicit RETURNING of its key (for
                    # inserted_primary_key), which nothing here reads: ~6 % of a full-program sale's
                    # profile went to describing the key record's answer. Inline, an explicit RETURNING
                    # stays.
                    statement = statement.inline()
                self._statement = statement
            compiled = self._statement.compile(dialect=dialect)  # type: ignore[attr-defined]
            positional = tuple(compiled.positiontup) if compiled.positional else None
            found = _Compiled(compiled.string, positional, dict(compiled.params))
            self._compiled[dialect.name] = found
        return found

    def rows(self, session: Session, params: dict[str, Any]) -> list[Any]:
        """Runs the statement in the session's transaction; its rows (empty without RETURNING)."""
        connection = session.connection()
        dialect = connection.dialect
        compiled = self._for(dialect)
        values = compiled.defaults | params
        arguments: Any
        if compiled.order is None:
            arguments = values
        else:
            arguments = [sqlite_datetime(v) if isinstance(v, datetime) else v
                         for v in (values[name] for name in compiled.order)]
        driver: Any = connection.connection.driver_connection
        dbapi = dialect.loaded_dbapi
        try:
            cursor = driver.cursor()
            try:
                if connection._has_events or connection.engine._has_events:
                    # Statement listeners (tracing, tests counting statements) still see it.
                    connection.dispatch.before_cursor_execute(connection, cursor, compiled.sql, arguments, None,
                                                              False)
                cursor.execute(compiled.sql, arguments)
                return list(cursor.fetchall()) if cursor.description is not None else []
            finally:
                cursor.close()
        except dbapi.Error as exc:
            # What SQLAlchemy would raise (IntegrityError, OperationalError...), so the writer's retries
            # and the API's error mapping treat it the same.
            raise DBAPIError.instance(self.name, None, exc, dbapi.Error, dialect=dialect) from exc

    def one_or_none(self, session: Session, params: dict[str, Any]) -> Any | None:
        found = self.rows(session, params)
        return found[0] if found else None


_PSYCOPG_PLACEHOLDER = re.compile(r"%\((\w+)\)s|%%")


@functools.cache
def numbered(sql: str) -> tuple[str, tuple[str, ...]]:
    """A statement in psycopg's `%(name)s` style turned into PostgreSQL's own `$1, $2 …` once, and the
    names in that order. psycopg re-parses any statement longer than 4,096 bytes on every execute
    (its cache skips them): for the sale's statement with tier and stamps that parse was 6 % of a
    worker's CPU samples. A `psycopg.RawCursor` sends the numbered form as it is."""
    positions: dict[str, int] = {}

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "%%":
            return "%"
        return f"${positions.setdefault(match.group(1), len(positions) + 1)}"
    return _PSYCOPG_PLACEHOLDER.sub(replace, sql), tuple(positions)


def fetch_one_numbered(driver: Any, sql: str, params: dict[str, Any]) -> Any:
    """Runs a `%(name)s` statement through a raw cursor on the psycopg connection `driver`; its first row."""
    text, names = numbered(sql)
    with psycopg.RawCursor(driver) as cursor:
        cursor.execute(text, [params[name] for name in names])
        return cursor.fetchone()
