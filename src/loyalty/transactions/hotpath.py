"""The common sale, written in one round trip: a member's purchase that earns available points.

Nearly every POS call is this case: a known member, no points paid, no pending period, and a
member who owes nothing. For it the general path (record_purchase → ledger.credit) costs eight
ORM statements; here the same rows — the transaction and its lines, the balance update, the
journal entry with its two postings, the lot, and which earn rule gave what — are written by one statement on PostgreSQL
(data-modifying CTEs) and by a few prepared driver-level statements on SQLite, with SQLAlchemy's
statement building kept out of the way (profiled: it was most of the CPU per purchase).

On PostgreSQL the statement can also carry two of the sale's effects (transactions/effects.py):
the member's tier metric and the sale's stamps, each one round trip fewer; the caller passes what
they need and hands what they answer to the effects.

Anything unusual falls back to the general path: the caller learns which of these happened.
- `DUPLICATE`: (store, POS id) was already recorded — the caller replays it.
- `UNKNOWN_CUSTOMER`: nothing was written.
- `NEEDS_CREDIT`: the transaction (and lines) are written but the member owes points, so the
  earning must settle the debt first: the caller credits through the ledger service.
tests/transactions/test_hotpath.py checks row for row that both paths write the same ledger.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any

from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from loyalty.bulk import sqlite_datetime
from loyalty.driver import fetch_one_numbered
from loyalty.ledger.repository import OVERDUE_POINTS_SQL, Balance
from loyalty.programs.rules import Award, MemberFacts
from loyalty.stamps.repository import OpenCard
from loyalty.timeutil import utcnow
from loyalty.transactions.schemas import Line


class Outcome(Enum):
    WRITTEN = "written"
    DUPLICATE = "duplicate"
    UNKNOWN_CUSTOMER = "unknown_customer"
    NEEDS_CREDIT = "needs_credit"


@dataclass(frozen=True, slots=True)
class SimpleSale:
    """A purchase by a known member, paid in money only, earning `points` (may be 0) at once."""

    store_id: str
    pos_transaction_id: str
    customer_id: int
    occurred_at: datetime
    amount: int
    currency: str
    points: int
    lines: list[Line]
    awards: tuple[Award, ...]  # the points' breakdown by earn rule, stored with the sale for replays
    reason: str
    actor: str
    now: datetime
    earned_at: datetime
    available_at: datetime  # not after `now`: pending points take the general path
    expires_at: datetime | None
    # PostgreSQL: the tier metric UPDATE (tiers/repository.note_metric) folded into the sale's statement.
    tier_metric: TierMetric | None = None
    # PostgreSQL: the stamping (stamps/repository.add_stamps) folded in too, when decided before the sale.
    stamps: StampsToAdd | None = None

    @property
    def own_overdue(self) -> int:
        """The sale's own points when its lot is already past expiry (a sale entered long after it
        happened): the statement's read of overdue lots cannot see the lot it writes."""
        return self.points if self.expires_at is not None and self.expires_at <= self.now else 0


@dataclass(frozen=True, slots=True)
class StampsToAdd:
    """A sale's stamps per card, as stamps/repository.add_stamps writes them: `cards` is the JSON list of
    {card_id, stamps, target}."""

    cards: str
    program_version: int


@dataclass(frozen=True, slots=True)
class TierMetric:
    """The member's qualifying metric in [start, end) to store in their tier row: `total` is the SQL
    of the sum over their purchases (tiers/repository.py), `own` what this sale adds to it (the
    statement cannot read its own new row)."""

    total: str
    start: datetime
    end: datetime
    own: int


class NotNoted:
    """No tier metric stored by the sale's statement (SQLite, or a program without tiers)."""


NOT_NOTED = NotNoted()


@dataclass(frozen=True, slots=True)
class SaleWritten:
    outcome: Outcome
    transaction_id: int | None = None
    balance: Balance | None = None
    # With `tier_metric` on PostgreSQL, once the sale is written: (stored tier, metric) as note_metric
    # answers, or None when the member has no tier row yet.
    tier_noted: tuple[str, int] | NotNoted | None = NOT_NOTED
    # With `stamps`, once the sale is written: the cards its stamps filled (of add_stamps's answer, the
    # ones stamps/service._completions acts on).
    stamped: list[OpenCard] | None = None


# What every sale statement below writes: the transaction (nothing when its POS id is recorded),
# its lines and awards, the balance, and the earning's entry, postings and lot.
_PG_SALE_ROWS = """\
tx AS (
    INSERT INTO transactions (store_id, pos_transaction_id, kind, original_id, customer_id, occurred_at,
                              amount, currency, points_earned, points_redeemed, returned_amount,
                              points_reversed, points_restored, created_at)
    SELECT %(store_id)s, %(pos_id)s, 'purchase', NULL, member.customer_id, %(occurred_at)s, %(amount)s,
           %(currency)s, %(points)s, 0, 0, 0, 0, %(now)s
    FROM member
    ON CONFLICT (store_id, pos_transaction_id) DO NOTHING
    RETURNING id
), sale_lines AS (
    INSERT INTO transaction_lines (transaction_id, line_no, sku, category, quantity, unit_price)
    SELECT tx.id, l.line_no, l.sku, l.category, l.quantity, l.unit_price
    FROM tx, jsonb_to_recordset(%(lines)s::jsonb) AS l(line_no int, sku text, category text, quantity int,
                                                      unit_price bigint)
), sale_awards AS (
    INSERT INTO transaction_awards (transaction_id, award_no, rule_id, name, points)
    SELECT tx.id, a.award_no, a.rule_id, a.name, a.points
    FROM tx, jsonb_to_recordset(%(awards)s::jsonb) AS a(award_no int, rule_id text, name text, points bigint)
), balance AS (
    UPDATE member_balances
    SET available = available + %(points)s, earned_total = earned_total + %(points)s
    WHERE customer_id = %(customer_id)s AND owed = 0 AND EXISTS (SELECT 1 FROM tx)
    RETURNING available, pending, held, owed, earned_total
), entry AS (
    INSERT INTO ledger_entries (kind, customer_id, source_type, source_id, event, reason, actor,
                                corrects_entry_id, transaction_id, created_at)
    SELECT 'earn', %(customer_id)s, 'transaction', tx.id::text, 'earn', %(reason)s, %(actor)s, NULL, tx.id,
           %(now)s
    FROM tx, balance
    WHERE %(points)s > 0
    RETURNING id, transaction_id
), postings AS (
    INSERT INTO ledger_postings (entry_id, account, customer_id, amount)
    SELECT entry.id, p.account, p.customer_id, p.amount
    FROM entry, (VALUES ('issued', NULL::bigint, -%(points)s::bigint),
                        ('available', %(customer_id)s::bigint, %(points)s::bigint)) AS p(account, customer_id, amount)
), lot AS (
    INSERT INTO point_lots (customer_id, entry_id, transaction_id, points, remaining, pending, earned_at,
                            available_at, expires_at)
    SELECT %(customer_id)s, entry.id, entry.transaction_id, %(points)s, %(points)s, false, %(earned_at)s,
           %(available_at)s, %(expires_at)s
    FROM entry
)"""
_PG_SALE = """
WITH member AS (
    SELECT customer_id FROM member_balances WHERE customer_id = %(customer_id)s
), """ + _PG_SALE_ROWS + """TIER
SELECT (SELECT id FROM tx), (SELECT count(*) FROM member), """ + OVERDUE_POINTS_SQL + """,
       b.available, b.pending, b.held, b.owed, b.earned_total
FROM (SELECT 1) AS one LEFT JOIN balance AS b ON true
"""
# The tier metric UPDATE of tiers/repository.note_metric, one round trip fewer: the sum over the member's
# purchases in the window cannot see the row this statement inserts, so the sale's own share is added.
# It runs only when the sale is written; it locks the member's tier row as note_metric does.
_PG_TIER = """, tier AS (
    UPDATE member_tiers
    SET qualified_value = (SELECT {total} FROM transactions
                           WHERE customer_id = %(customer_id)s AND kind = 'purchase'
                             AND occurred_at >= %(tier_start)s AND occurred_at < %(tier_end)s) + %(tier_own)s
    WHERE customer_id = %(customer_id)s AND EXISTS (SELECT 1 FROM tx)
    RETURNING tier, qualified_value
)
"""
# The stamping of stamps/repository.py (_PG_STAMP), on the new sale's id, only when it is written.
_PG_STAMPS = """, stamped AS (
    SELECT * FROM jsonb_to_recordset(%(cards)s::jsonb) AS s(card_id text, stamps int, target int)
), stamp_events_written AS (
    INSERT INTO stamp_events (transaction_id, purchase_id, customer_id, card_id, kind, stamps, created_at)
    SELECT tx.id, tx.id, %(customer_id)s, stamped.card_id, 'purchase', stamped.stamps, %(now)s FROM tx, stamped
), cards AS (
    INSERT INTO member_stamp_cards (customer_id, card_id, card_no, program_version, stamps, target, started_at)
    SELECT %(customer_id)s, stamped.card_id, 1, %(version)s, stamped.stamps, stamped.target, %(now)s FROM tx, stamped
    ON CONFLICT (customer_id, card_id) WHERE completed_at IS NULL
    DO UPDATE SET stamps = member_stamp_cards.stamps + EXCLUDED.stamps
    RETURNING card_id, id, card_no, stamps, target
)
"""


@functools.cache
def _pg_sale(total: str | None, stamps: bool) -> str:
    """The sale statement with the tier metric's CTE (`total`: its SQL) and the stamping's, as asked."""
    ctes, columns = "", ""
    if total is not None:
        ctes += _PG_TIER.format(total=total)
        columns += ",\n       (SELECT tier FROM tier), (SELECT qualified_value FROM tier)"
    if stamps:
        ctes += _PG_STAMPS
        # Only the cards this sale filled: nearly always none, so nearly always NULL (no JSON to parse).
        columns += (",\n       (SELECT json_agg(json_build_array(card_id, id, card_no, stamps, target)) FROM cards"
                    " WHERE stamps >= target)")
    return _PG_SALE.replace(")TIER\n", ")" + ctes if ctes else ")\n").replace(
        "b.earned_total\nFROM", "b.earned_total" + columns + "\nFROM")

# The same sale as _PG_SALE, autocommitted on its own: the sale, its points, the receipt (built
# here from the Python-made `head`, `middle` and `tail` around the new id and balance) and, when
# the request has an Idempotency-Key, the key's record with that receipt — or nothing at all.
# - The member's row is locked first, and only if it owes nothing: the balance UPDATE that follows
#   then cannot miss (a sale without its points would commit), even when a return that makes the
#   member owe commits in between (the lock re-checks `owed = 0` on the newest row version).
# - A POS id already recorded (a retry, even one still in flight) inserts no transaction, so nothing
#   else; a key already stored (or being stored) makes the record insert fail on its unique key,
#   so the whole statement rolls back. Either way the caller takes the general path, which replays.
# - The last SELECT turns "a transaction without a balance update" into an error (a cast that
#   fails), which rolls the statement back: the lock makes it impossible; this keeps it so.
_PG_SALE_AT_ONCE = """
WITH member AS (
    SELECT customer_id FROM member_balances WHERE customer_id = %(customer_id)s AND owed = 0 FOR UPDATE
), """ + _PG_SALE_ROWS + """, overdue AS (
    SELECT """ + OVERDUE_POINTS_SQL + """ + %(own_overdue)s AS points
), receipt AS (
    SELECT %(head)s::text || tx.id || %(middle)s::text || (b.available - LEAST(b.available, overdue.points))
           || ',"pending":' || b.pending
           || ',"held":' || b.held || ',"owed":' || (-b.owed) || %(tail)s::text AS body
    FROM tx, balance AS b, overdue
)REMEMBER
SELECT t.id, r.body, CASE WHEN t.id IS NOT NULL AND r.body IS NULL
                    THEN ('sale ' || t.id || ' written without its balance update')::int END
FROM (SELECT 1) AS one LEFT JOIN tx AS t ON true LEFT JOIN receipt AS r ON true
"""
_PG_REMEMBER = """, remembered AS (
    INSERT INTO idempotency_keys (api_key_id, key, method, path, request_hash, response_status, response_body,
                                  created_at)
    SELECT %(api_key_id)s, %(key)s, %(method)s, %(path)s, %(request_hash)s, %(status)s, receipt.body,
           %(created_at)s
    FROM receipt
)
"""
_PG_SALE_AT_ONCE_KEYED = _PG_SALE_AT_ONCE.replace(")REMEMBER\n", ")" + _PG_REMEMBER)
_PG_SALE_AT_ONCE = _PG_SALE_AT_ONCE.replace(")REMEMBER\n", ")\n")

_SQLITE_TRANSACTION = (
    "INSERT INTO transactions (store_id, pos_transaction_id, kind, original_id, customer_id, occurred_at, amount, "
    "currency, points_earned, points_redeemed, returned_amount, points_reversed, points_restored, created_at) "
    "SELECT ?, ?, 'purchase', NULL, customer_id, ?, ?, ?, ?, 0, 0, 0, 0, ? "
    "FROM member_balances WHERE customer_id = ? "
    "ON CONFLICT (store_id, pos_transaction_id) DO NOTHING RETURNING id"
)
_SQLITE_MEMBER_EXISTS = "SELECT 1 FROM member_balances WHERE customer_id = ?"
_SQLITE_LINES = ("INSERT INTO transaction_lines (transaction_id, line_no, sku, category, quantity, unit_price) "
                 "VALUES (?, ?, ?, ?, ?, ?)")
_SQLITE_AWARDS = ("INSERT INTO transaction_awards (transaction_id, award_no, rule_id, name, points) "
                  "VALUES (?, ?, ?, ?, ?)")
_SQLITE_BALANCE = (
    "UPDATE member_balances SET available = available + ?, earned_total = earned_total + ? "
    "WHERE customer_id = ? AND owed = 0 RETURNING available, pending, held, owed, earned_total"
)
_SQLITE_ENTRY = (
    "INSERT INTO ledger_entries (kind, customer_id, source_type, source_id, event, reason, actor, "
    "corrects_entry_id, transaction_id, created_at) "
    "VALUES ('earn', ?, 'transaction', ?, 'earn', ?, ?, NULL, ?, ?) RETURNING id"
)
_SQLITE_POSTINGS = ("INSERT INTO ledger_postings (entry_id, account, customer_id, amount) "
                    "VALUES (?, 'issued', NULL, ?), (?, 'available', ?, ?)")
_SQLITE_LOT = (
    "INSERT INTO point_lots (customer_id, entry_id, transaction_id, points, remaining, pending, earned_at, "
    "available_at, expires_at) VALUES (?, ?, ?, ?, ?, 0, ?, ?, ?)"
)

_SQLITE_OVERDUE = OVERDUE_POINTS_SQL.replace("%(customer_id)s", "?").replace("%(now)s", "?")[1:-1]

# What member-conditioned earn rules need, in one read (only for programs that have such rules).
# The tier: an override in force, else the earned tier; NULL (no row yet) is the base tier. The
# same rule as tiers.repository.effective_tier, written out here to keep the read one round trip.
_PG_MEMBER = ("SELECT EXTRACT(MONTH FROM c.birthday)::int, EXISTS (SELECT 1 FROM transactions "
              "WHERE customer_id = %(id)s AND kind = 'purchase'), "
              "CASE WHEN t.override_until > %(at)s THEN t.override_tier ELSE t.tier END "
              "FROM customers c LEFT JOIN member_tiers t ON t.customer_id = c.id WHERE c.id = %(id)s")
# Two tills racing a member's first purchase must not both see "no earlier purchase": the
# member's row is locked first, and the facts are read by a second statement, whose snapshot
# (READ COMMITTED) then includes the other till's committed sale. SQLite writers are serialised.
_PG_LOCK_MEMBER = "SELECT 1 FROM member_balances WHERE customer_id = %(id)s FOR UPDATE"
_SQLITE_MEMBER = ("SELECT CAST(strftime('%m', c.birthday) AS INTEGER), EXISTS (SELECT 1 FROM transactions "
                  "WHERE customer_id = ?1 AND kind = 'purchase'), "
                  "CASE WHEN t.override_until > ?2 THEN t.override_tier ELSE t.tier END "
                  "FROM customers c LEFT JOIN member_tiers t ON t.customer_id = c.id WHERE c.id = ?1")


def read_member_facts(session: Session, customer_id: int, *, at: datetime | None = None,
                      base_tier: str | None = None, lock: bool = False) -> MemberFacts | None:
    """Birthday month, whether this is the first purchase, and the tier at `at` (`base_tier` for a
    member without a tier row); None for an unknown customer.

    Driver-level like the sale itself: through the ORM this read cost more CPU than 50 rules.
    `lock` (for first-purchase rules) first locks the member's balance row on PostgreSQL.
    """
    at = at or utcnow()
    connection = session.connection()
    driver: Any = connection.connection.driver_connection
    dbapi = connection.dialect.loaded_dbapi
    try:
        cursor = driver.cursor()
        try:
            if connection.dialect.name == "postgresql":
                if lock:
                    cursor.execute(_PG_LOCK_MEMBER, {"id": customer_id})
                cursor.execute(_PG_MEMBER, {"id": customer_id, "at": at})
            else:
                cursor.execute(_SQLITE_MEMBER, (customer_id, sqlite_datetime(at)))
            row = cursor.fetchone()
        finally:
            cursor.close()
    except dbapi.Error as exc:
        raise DBAPIError.instance("member facts", None, exc, dbapi.Error, dialect=connection.dialect) from exc
    if row is None:
        return None
    month, bought, tier = row
    return MemberFacts(int(month) if month is not None else None, not bought, tier if tier is not None else base_tier)


def write_simple_sale(session: Session, sale: SimpleSale) -> SaleWritten:
    """Writes the sale in the caller's transaction; see the module docstring for the outcomes."""
    connection = session.connection()
    driver: Any = connection.connection.driver_connection
    dbapi = connection.dialect.loaded_dbapi
    postgres = connection.dialect.name == "postgresql"
    try:
        return _write_postgres(driver, sale) if postgres else _write_sqlite(driver, sale)
    except dbapi.Error as exc:
        # Raise what SQLAlchemy would have (IntegrityError, DataError, OperationalError...), so the
        # writer's retries and the API's error mapping treat driver-level statements the same.
        raise DBAPIError.instance("hot-path sale", None, exc, dbapi.Error,
                                  dialect=connection.dialect) from exc


def _lines_json(lines: list[Line]) -> str:
    return json.dumps([{"line_no": n, "sku": line.sku, "category": line.category, "quantity": line.quantity,
                        "unit_price": line.unit_price} for n, line in enumerate(lines, start=1)])


def _awards_json(awards: tuple[Award, ...]) -> str:
    return json.dumps([{"award_no": n, "rule_id": a.rule_id, "name": a.name, "points": a.points}
                       for n, a in enumerate(awards, start=1)])


def _write_postgres(driver: Any, sale: SimpleSale) -> SaleWritten:
    params = {
        "customer_id": sale.customer_id, "store_id": sale.store_id, "pos_id": sale.pos_transaction_id,
        "occurred_at": sale.occurred_at, "amount": sale.amount, "currency": sale.currency, "points": sale.points,
        "now": sale.now, "reason": sale.reason, "actor": sale.actor, "earned_at": sale.earned_at,
        "available_at": sale.available_at, "expires_at": sale.expires_at,
        # One JSON text per list: psycopg's array dumping (seven arrays) cost more CPU than the JSON.
        "lines": _lines_json(sale.lines), "awards": _awards_json(sale.awards),
    }
    metric, stamps = sale.tier_metric, sale.stamps
    if metric is not None:
        params |= {"tier_start": metric.start, "tier_end": metric.end, "tier_own": metric.own}
    if stamps is not None:
        params |= {"cards": stamps.cards, "version": stamps.program_version}
    transaction_id, members, overdue, *row = fetch_one_numbered(
        driver, _pg_sale(metric.total if metric is not None else None, stamps is not None), params)
    if transaction_id is None:
        return SaleWritten(Outcome.DUPLICATE if members else Outcome.UNKNOWN_CUSTOMER)
    balance, extra = row[:5], row[5:]
    noted: tuple[str, int] | NotNoted | None = NOT_NOTED
    if metric is not None:
        tier, value, *extra = extra
        noted = None if tier is None else (str(tier), int(value))
    stamped = None
    if stamps is not None:
        stamped = [OpenCard(*card) for card in extra[0] or []]
    if balance[0] is None:
        return SaleWritten(Outcome.NEEDS_CREDIT, transaction_id, tier_noted=noted, stamped=stamped)
    shown = Balance(*balance).less_overdue(overdue + sale.own_overdue)
    return SaleWritten(Outcome.WRITTEN, transaction_id, shown, tier_noted=noted, stamped=stamped)


def _write_sqlite(driver: Any, sale: SimpleSale) -> SaleWritten:
    now = sqlite_datetime(sale.now)
    cursor = driver.cursor()
    try:
        row = cursor.execute(_SQLITE_TRANSACTION, (
            sale.store_id, sale.pos_transaction_id, sqlite_datetime(sale.occurred_at), sale.amount, sale.currency,
            sale.points, now, sale.customer_id)).fetchone()
        if row is None:
            known = cursor.execute(_SQLITE_MEMBER_EXISTS, (sale.customer_id,)).fetchone()
            return SaleWritten(Outcome.DUPLICATE if known else Outcome.UNKNOWN_CUSTOMER)
        transaction_id: int = row[0]
        if sale.lines:
            cursor.executemany(_SQLITE_LINES, [
                (transaction_id, n, line.sku, line.category, line.quantity, line.unit_price)
                for n, line in enumerate(sale.lines, start=1)])
        if sale.awards:
            cursor.executemany(_SQLITE_AWARDS, [(transaction_id, n, a.rule_id, a.name, a.points)
                                                for n, a in enumerate(sale.awards, start=1)])
        row = cursor.execute(_SQLITE_BALANCE, (sale.points, sale.points, sale.customer_id)).fetchone()
        if row is None:
            return SaleWritten(Outcome.NEEDS_CREDIT, transaction_id)
        balance = Balance(*row)
        if sale.points:
            (entry_id,) = cursor.execute(_SQLITE_ENTRY, (
                sale.customer_id, str(transaction_id), sale.reason, sale.actor, transaction_id, now)).fetchone()
            cursor.execute(_SQLITE_POSTINGS, (entry_id, -sale.points, entry_id, sale.customer_id, sale.points))
            cursor.execute(_SQLITE_LOT, (sale.customer_id, entry_id, transaction_id, sale.points, sale.points,
                                         sqlite_datetime(sale.earned_at), sqlite_datetime(sale.available_at),
                                         sqlite_datetime(sale.expires_at)))
        if balance.available:
            (overdue,) = cursor.execute(_SQLITE_OVERDUE, (sale.customer_id, now)).fetchone()
            balance = balance.less_overdue(overdue)
        return SaleWritten(Outcome.WRITTEN, transaction_id, balance)
    finally:
        cursor.close()


@dataclass(frozen=True, slots=True)
class Receipt:
    """The response body around what only the statement knows: `head` + id + `middle` + available
    + pending, held, owed + `tail` (JSON text made by the caller)."""

    head: str
    middle: str
    tail: str
    status: int


@dataclass(frozen=True, slots=True)
class WrittenAtOnce:
    transaction_id: int
    body: str  # the receipt, as stored with the Idempotency-Key


def write_sale_at_once(session: Session, sale: SimpleSale, receipt: Receipt,
                       remember: Mapping[str, Any] | None) -> WrittenAtOnce | None:
    """PostgreSQL only, on an AUTOCOMMIT session: writes and commits the sale, and the Idempotency-Key
    record `remember` (its values but the response's) with the receipt; answers the receipt, or None
    when nothing was written (unknown member, a member who owes points, a recorded POS id).
    Raises (writing nothing) when the key is already stored."""
    connection = session.connection()
    driver: Any = connection.connection.driver_connection
    dbapi = connection.dialect.loaded_dbapi
    params: dict[str, Any] = {
        "customer_id": sale.customer_id, "store_id": sale.store_id, "pos_id": sale.pos_transaction_id,
        "occurred_at": sale.occurred_at, "amount": sale.amount, "currency": sale.currency, "points": sale.points,
        "now": sale.now, "reason": sale.reason, "actor": sale.actor, "earned_at": sale.earned_at,
        "available_at": sale.available_at, "expires_at": sale.expires_at,
        "lines": _lines_json(sale.lines), "awards": _awards_json(sale.awards),
        "head": receipt.head, "middle": receipt.middle, "tail": receipt.tail, "own_overdue": sale.own_overdue,
    }
    statement = _PG_SALE_AT_ONCE
    if remember is not None:
        params |= remember
        params["status"] = receipt.status
        statement = _PG_SALE_AT_ONCE_KEYED
    try:
        transaction_id, body, _ = fetch_one_numbered(driver, statement, params)
    except dbapi.Error as exc:
        raise DBAPIError.instance("sale at once", None, exc, dbapi.Error, dialect=connection.dialect) from exc
    return None if body is None else WrittenAtOnce(transaction_id, body)
