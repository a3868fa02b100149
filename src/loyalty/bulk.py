"""Bulk-insert helpers: ids allocated up front so inserts need no RETURNING round trips."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table, func, select, text
from sqlalchemy.orm import Session

from loyalty.models.base import Base


def _table(model: type[Base]) -> Table:
    table = model.__table__
    assert isinstance(table, Table)
    return table


def allocate_ids(session: Session, model: type[Base], count: int) -> list[int]:
    """`count` fresh primary keys for `table`.

    PostgreSQL draws them from the table's sequence (safe under concurrency). On SQLite the
    caller holds the database's write lock (BEGIN IMMEDIATE), so max(id) cannot move under us.
    """
    if count <= 0:
        return []
    table = _table(model)
    if session.get_bind().dialect.name == "postgresql":
        rows = session.execute(
            text("SELECT nextval(pg_get_serial_sequence(:table, 'id')) FROM generate_series(1, :n)"),
            {"table": table.name, "n": count},
        ).scalars().all()
        return [int(r) for r in rows]
    start = session.scalar(select(func.coalesce(func.max(table.c.id), 0))) or 0
    return list(range(start + 1, start + count + 1))


def insert_rows(session: Session, model: type[Base], rows: list[dict[str, Any]]) -> None:
    """Core executemany (multi-row VALUES on PostgreSQL), no RETURNING.

    Deliberately not the ORM's bulk insert, which here fell back to one statement per row.
    """
    if rows:
        session.connection().execute(_table(model).insert(), rows)
