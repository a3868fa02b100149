"""The stamping write on the sale's hot path, at driver level like transactions/hotpath.py.

A sale that touches cards writes its stamp events and adds its stamps to the member's open cards
(an upsert on the one-open-card-per-id index, which also starts a member's first card) and gets
the cards back to see whether one is full: one statement on PostgreSQL (data-modifying CTEs),
two prepared statements on SQLite. SQLAlchemy's statement building is kept out of the way: through
the ORM these statements cost more CPU than the rest of the sale's effects (profiled).

Concurrency: the upsert is atomic on the open card's row (PostgreSQL re-checks a conflicting row
that another sale completed meanwhile and adds to the new open card instead); SQLite writers are
serial. The event insert's UNIQUE (transaction, card) makes stamping a sale twice fail loudly.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from loyalty.bulk import sqlite_datetime


@dataclass(frozen=True, slots=True)
class OpenCard:
    """A member's open card after the sale's stamps were added."""

    card_id: str
    id: int
    card_no: int
    stamps: int
    target: int


_PG_STAMP = """
WITH stamped AS (
    SELECT * FROM jsonb_to_recordset(%(cards)s::jsonb) AS s(card_id text, stamps int, target int)
), events AS (
    INSERT INTO stamp_events (transaction_id, purchase_id, customer_id, card_id, kind, stamps, created_at)
    SELECT %(tx)s, %(tx)s, %(customer_id)s, card_id, 'purchase', stamps, %(now)s FROM stamped
)
INSERT INTO member_stamp_cards (customer_id, card_id, card_no, program_version, stamps, target, started_at)
SELECT %(customer_id)s, card_id, 1, %(version)s, stamps, target, %(now)s FROM stamped
ON CONFLICT (customer_id, card_id) WHERE completed_at IS NULL
DO UPDATE SET stamps = member_stamp_cards.stamps + EXCLUDED.stamps
RETURNING card_id, id, card_no, stamps, target
"""

_SQLITE_EVENT = ("INSERT INTO stamp_events (transaction_id, purchase_id, customer_id, card_id, kind, stamps, "
                 "created_at) VALUES (?, ?, ?, ?, 'purchase', ?, ?)")
_SQLITE_CARDS = ("INSERT INTO member_stamp_cards (customer_id, card_id, card_no, program_version, stamps, target, "
                 "started_at) VALUES {values} "
                 "ON CONFLICT (customer_id, card_id) WHERE completed_at IS NULL "
                 "DO UPDATE SET stamps = member_stamp_cards.stamps + excluded.stamps "
                 "RETURNING card_id, id, card_no, stamps, target")


def add_stamps(session: Session, *, transaction_id: int, customer_id: int, program_version: int,
               stamps: dict[str, tuple[int, int]], now: datetime) -> list[OpenCard]:
    """`stamps`: card id -> (stamps, stamps to complete a new card). Returns the open cards after."""
    connection = session.connection()
    driver: Any = connection.connection.driver_connection
    dbapi = connection.dialect.loaded_dbapi
    try:
        if connection.dialect.name == "postgresql":
            with driver.cursor() as cursor:
                cursor.execute(_PG_STAMP, {
                    # One JSON text: psycopg's dumping of three arrays cost more CPU than the JSON.
                    "cards": json.dumps([{"card_id": card_id, "stamps": n, "target": target}
                                         for card_id, (n, target) in stamps.items()]),
                    "tx": transaction_id, "customer_id": customer_id,
                    "now": now, "version": program_version})
                rows = cursor.fetchall()
        else:
            at = sqlite_datetime(now)
            cursor = driver.cursor()
            try:
                cursor.executemany(_SQLITE_EVENT, [(transaction_id, transaction_id, customer_id, card_id, n, at)
                                                   for card_id, (n, _) in stamps.items()])
                values = ", ".join("(?, ?, 1, ?, ?, ?, ?)" for _ in stamps)
                params: list[Any] = []
                for card_id, (n, target) in stamps.items():
                    params += [customer_id, card_id, program_version, n, target, at]
                rows = cursor.execute(_SQLITE_CARDS.format(values=values), params).fetchall()
            finally:
                cursor.close()
    except dbapi.Error as exc:
        # What SQLAlchemy would raise (IntegrityError...), so retries and error mapping treat it the same.
        raise DBAPIError.instance("stamping", None, exc, dbapi.Error, dialect=connection.dialect) from exc
    return [OpenCard(*row) for row in rows]
