"""Driver-level statements (loyalty/driver.py): what they send and what they answer."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine, bindparam, event, insert, select
from sqlalchemy.orm import Session

from loyalty.db import session_factory
from loyalty.driver import DriverStatement, numbered
from loyalty.models import Customer
from loyalty.models.base import UTCDateTime

# customers: a table whose key the database numbers (SQLAlchemy would fetch it with RETURNING)
_VALUES: dict[str, Any] = {
    "name": bindparam("name"), "consent_email": False, "consent_sms": False, "consent_zalo": False,
    "consent_phone": False, **{name: bindparam("at", type_=UTCDateTime())
                               for name in ("enrolled_at", "created_at", "updated_at")}}


def _sent(engine: Engine, statement: DriverStatement, params: dict[str, Any]) -> tuple[list[Any], list[str]]:
    """The statement's rows, and the SQL its run sent (as statement listeners see it)."""
    sent: list[str] = []

    def note(conn: Any, cursor: Any, sql: str, *args: Any) -> None:
        if not sql.startswith("BEGIN"):  # SQLite's writer transaction
            sent.append(sql)

    event.listen(engine, "before_cursor_execute", note)
    session = session_factory(engine)()
    try:
        rows = statement.rows(session, params)
        session.commit()
    finally:
        session.close()
        event.remove(engine, "before_cursor_execute", note)
    return rows, sent


def test_an_insert_without_returning_asks_for_nothing_back(engine: Engine, session: Session) -> None:
    # SQLAlchemy compiles a lone INSERT with RETURNING of its key; nothing reads it here.
    statement = DriverStatement("customer", lambda: insert(Customer).values(_VALUES))
    rows, sent = _sent(engine, statement, {"name": "One", "at": datetime(2026, 1, 1, tzinfo=UTC)})
    assert rows == []
    assert len(sent) == 1
    assert "RETURNING" not in sent[0].upper()
    assert session.scalars(select(Customer.name)).all() == ["One"]


def test_an_explicit_returning_is_kept(engine: Engine) -> None:
    statement = DriverStatement("customer", lambda: insert(Customer).values(_VALUES).returning(Customer.name))
    rows, sent = _sent(engine, statement, {"name": "Two", "at": datetime(2026, 1, 1, tzinfo=UTC)})
    assert [tuple(row) for row in rows] == [("Two",)]
    assert "RETURNING" in sent[0].upper()


@pytest.mark.parametrize(("sql", "expected"), [
    ("SELECT %(a)s, %(b)s, %(a)s", ("SELECT $1, $2, $1", ("a", "b"))),
    ("SELECT 100%% WHERE x = %(x)s", ("SELECT 100% WHERE x = $1", ("x",))),
    ("SELECT 1", ("SELECT 1", ())),
])
def test_numbered_turns_named_parameters_into_positions(sql: str, expected: tuple[str, tuple[str, ...]]) -> None:
    assert numbered(sql) == expected
