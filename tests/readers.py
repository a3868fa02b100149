"""Reads for assertions, each in its own short read-only session.

The test's `session` fixture is a writer: on SQLite any read through it starts BEGIN IMMEDIATE
and holds the write lock until it ends, which would block the API under test.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from loyalty.db import read_only_engine, session_factory
from loyalty.ledger.verify import CheckResult, verify
from loyalty.models import MemberBalance


def _engine(session: Session) -> Engine:
    bind = session.get_bind()
    assert isinstance(bind, Engine)
    return bind


@contextmanager
def reading(session: Session) -> Iterator[Session]:
    reader = session_factory(read_only_engine(_engine(session)))()
    try:
        yield reader
    finally:
        reader.rollback()
        reader.close()


def balance_of(session: Session, customer_id: int) -> tuple[int, int, int, int]:
    """(available, pending, held, owed) with owed as the positive number of points owed."""
    with reading(session) as reader:
        row = reader.get(MemberBalance, customer_id)
        assert row is not None
        return row.available, row.pending, row.held, -row.owed


def count(session: Session, model: type[Any], *where: Any) -> int:
    with reading(session) as reader:
        return int(reader.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def failed_checks(session: Session) -> list[CheckResult]:
    with reading(session) as reader:
        return [result for result in verify(reader) if not result.ok]


def assert_ledger_ok(session: Session) -> None:
    failed = [(r.name, r.examples) for r in failed_checks(session)]
    assert failed == []
