"""Bulk-insert helpers: ids allocated up front so inserts need no RETURNING round trips."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, Date, Integer, SmallInteger, String, Table, func, select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session
from sqlalchemy.types import TypeEngine

from loyalty.db import database_key
from loyalty.models.base import Base, UTCDateTime


def _table(model: type[Base]) -> Table:
    table = model.__table__
    assert isinstance(table, Table)
    return table


# pg_get_serial_sequence evaluated for every id drawn cost 4.5 µs of the server's time an id, nine times
# nextval's own, so each table's sequence is looked up once per database (its name never changes).
_sequences: dict[tuple[str, str], str] = {}
_FEW_IDS = 100
_DRAW_FEW = text("SELECT nextval(CAST(:sequence AS regclass)) FROM generate_series(1, :n)")
# Many ids travel as (low, high) when they are one run, else as an array in the order drawn
# (increasing). The sequence is cast once (an InitPlan); the CTE is volatile, so it is evaluated once.
_DRAW_MANY = text(
    "WITH drawn AS (SELECT nextval((SELECT CAST(:sequence AS regclass))) AS id FROM generate_series(1, :n)),"
    " span AS (SELECT min(id) AS low, max(id) AS high, count(*) AS n FROM drawn)"
    " SELECT low, high, CASE WHEN high - low + 1 = n THEN NULL"
    " ELSE (SELECT array_agg(id ORDER BY id) FROM drawn) END FROM span")


def _sequence(session: Session, table: str) -> str:
    key = (database_key(session), table)
    name = _sequences.get(key)
    if name is None:
        name = session.scalar(text("SELECT pg_get_serial_sequence(:table, 'id')"), {"table": table})
        if name is None:
            raise ValueError(f"{table}.id is not numbered by a sequence")
        _sequences[key] = name
    return name


def allocate_ids(session: Session, model: type[Base], count: int) -> list[int]:
    """`count` fresh primary keys for `table`, increasing.

    PostgreSQL draws them from the table's sequence (safe under concurrency). On SQLite the
    caller holds the database's write lock (BEGIN IMMEDIATE), so max(id) cannot move under us.
    """
    if count <= 0:
        return []
    table = _table(model)
    if session.get_bind().dialect.name == "postgresql":
        sequence = _sequence(session, table.name)
        if count < _FEW_IDS:
            return [int(i) for i in session.scalars(_DRAW_FEW, {"sequence": sequence, "n": count})]
        low, high, scattered = session.execute(_DRAW_MANY, {"sequence": sequence, "n": count}).one()
        if scattered is None:  # one unbroken run, as when no other session drew from the sequence meanwhile
            return list(range(low, high + 1))
        return [int(i) for i in scattered]
    start = session.scalar(select(func.coalesce(func.max(table.c.id), 0))) or 0
    return list(range(start + 1, start + count + 1))


def insert_rows(session: Session, model: type[Base], rows: list[dict[str, Any]]) -> None:
    """Inserts rows (all with the same keys) in one driver-level bulk operation.

    SQLAlchemy's per-row parameter processing cost more than SQLite's own work (profiled:
    ~7 s of 21 s for 60k purchases), so values go to the driver as ready-made tuples:
    executemany on SQLite, COPY on PostgreSQL. Datetimes are converted here exactly as the
    UTCDateTime column type would (naive UTC text on SQLite), so both paths store the same.
    """
    if not rows:
        return
    table = _table(model)
    columns = list(rows[0])
    if session.get_bind().dialect.name == "postgresql":
        if len(rows) < 50:  # COPY's set-up costs more than a few VALUES rows
            session.connection().execute(table.insert(), rows)
        else:
            _copy(session, table, columns, ([row[c] for c in columns] for row in rows))
        return
    converters = [_sqlite_converter(table.c[name].type) for name in columns]
    if any(converters):
        tuples = [tuple(conv(row[c]) if conv else row[c] for c, conv in zip(columns, converters, strict=True))
                  for row in rows]
    else:
        tuples = [tuple(row[c] for c in columns) for row in rows]
    placeholders = ", ".join("?" for _ in columns)
    session.connection().exec_driver_sql(
        f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({placeholders})", tuples)


def insert_tuples(session: Session, model: type[Base], columns: Sequence[str],
                  rows: Sequence[tuple[Any, ...]]) -> None:
    """insert_rows for callers that already hold each row as a tuple in `columns` order.

    No dict per row: executemany on SQLite (datetimes converted in place), COPY on PostgreSQL
    with the columns' types declared, so psycopg dumps each value without guessing its type.
    """
    if not rows:
        return
    table = _table(model)
    names = ", ".join(columns)
    if session.get_bind().dialect.name == "postgresql":
        _copy(session, table, list(columns), rows)
        return
    converters = [(index, conv) for index, name in enumerate(columns)
                  if (conv := _sqlite_converter(table.c[name].type)) is not None]
    if converters:
        by_column: list[Sequence[Any]] = list(zip(*rows, strict=True))
        for index, conv in converters:
            by_column[index] = _converted_column(by_column[index], conv)
        rows = list(zip(*by_column, strict=True))
    session.connection().exec_driver_sql(
        f"INSERT INTO {table.name} ({names}) VALUES ({', '.join('?' for _ in columns)})", list(rows))


# PostgreSQL's binary COPY needs each column's exact type (an int4 column refuses int8 data), so only
# these are sent binary; a table with another column type is copied as text.
_BINARY_TYPES: tuple[tuple[type[TypeEngine[Any]], str], ...] = (
    (UTCDateTime, "timestamptz"), (BigInteger, "int8"), (SmallInteger, "int2"), (Integer, "int4"),
    (Boolean, "bool"), (Date, "date"), (String, "text"))


def _binary_type(column_type: TypeEngine[Any]) -> str | None:
    return next((name for kind, name in _BINARY_TYPES if isinstance(column_type, kind)), None)


def _sqlite_converter(column_type: Any) -> Callable[[Any], Any] | None:
    if isinstance(column_type, UTCDateTime):
        return sqlite_datetime
    return None


def sqlite_datetime(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is not UTC:
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
    # The same text SQLAlchemy's SQLite DateTime writes ("2025-01-01 03:04:05.000000"): the ISO form
    # without its "+00:00" (slicing is faster than a replace(tzinfo=None) copy).
    return value.isoformat(" ", "microseconds")[:26]


def _converted_column(values: Sequence[Any], convert: Callable[[Any], Any]) -> list[Any]:
    """`convert` of each value; a value that is the same object as the one before is converted once
    (a batch's `now`, or one expiry shared by the lots of a day, repeat row after row)."""
    out: list[Any] = []
    last: Any = out  # no value is this list
    text: Any = None
    for value in values:
        if value is not last:
            last, text = value, convert(value)
        out.append(text)
    return out


def _copy(session: Session, table: Table, columns: list[str], rows: Iterable[Sequence[Any]]) -> None:
    """COPY in PostgreSQL's binary format, with each column's type declared: measured on the import
    benchmark, the client's CPU fell by a third and the server's by a seventh against text COPY
    (no text for datetimes to write and then parse). Text COPY for a column type not listed above."""
    raw = session.connection().connection.driver_connection
    assert raw is not None
    types = [_binary_type(table.c[name].type) for name in columns]
    binary = None not in types
    with raw.cursor() as cursor, cursor.copy(
        f"COPY {table.name} ({', '.join(columns)}) FROM STDIN{' (FORMAT BINARY)' if binary else ''}"
    ) as copy:
        if binary:
            copy.set_types(types)
        for row in rows:
            copy.write_row(row)


GROWING_TABLES = ("transactions", "transaction_lines", "ledger_entries", "ledger_postings", "point_lots",
                  "lot_allocations", "member_balances", "customers", "customer_identities")


def refresh_statistics(session: Session) -> None:
    """ANALYZE the tables a bulk load grows (PostgreSQL only).

    A freshly loaded table still has the statistics of an empty one, so the planner picks
    sequential scans for the per-row look-ups of returns: profiled, the import slowed from
    1,900 to 530 rows/s as it grew. Autovacuum would catch up, but only after the load.
    """
    if session.get_bind().dialect.name == "postgresql":
        for table in GROWING_TABLES:
            session.execute(text(f"ANALYZE {table}"))


@contextmanager
def foreign_keys_checked_at_end(session: Session, tables: Sequence[str], *, lock_timeout: str = "2s") -> Iterator[bool]:
    """On PostgreSQL, checks the foreign keys of `tables` once for the whole block instead of per row.

    Each row's foreign-key trigger costs the server a query and a row lock on the parent (profiled:
    60% of the import's server time). Here the constraints are dropped inside the caller's
    transaction and added back, exactly as they were (pg_get_constraintdef), at the end: adding
    one validates every row in one set-based query, and a violation raises, so the transaction
    rolls back with the constraints in place (DDL is transactional). Dropping a foreign key takes
    ACCESS EXCLUSIVE locks on both tables until commit (even reads wait), so the caller uses this
    only for loads that dwarf the tables; if a lock is not granted within `lock_timeout` (live
    traffic), the block runs with per-row checks instead. Yields whether the checks were moved to the end.
    """
    if session.get_bind().dialect.name != "postgresql":
        yield False
        return
    definitions = session.execute(text(
        "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE contype = 'f' AND conrelid = ANY(CAST(:tables AS regclass[])) ORDER BY conrelid, conname"),
        {"tables": list(tables)}).all()
    savepoint = session.begin_nested()
    try:
        session.execute(text(f"SET LOCAL lock_timeout = '{lock_timeout}'"))
        for table, name, _ in definitions:
            session.execute(text(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"'))
        session.execute(text("SET LOCAL lock_timeout = DEFAULT"))
    except OperationalError:
        savepoint.rollback()  # busy tables: keep the per-row checks
        yield False
        return
    savepoint.commit()
    yield True
    for table, name, definition in definitions:
        session.execute(text(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}'))
