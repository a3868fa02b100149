"""Tier queries: the qualifying metric per member (one indexed aggregate) or for everyone (one GROUP BY),
and the CASE expressions that turn a metric into a tier and a tier code into its rank."""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    CursorResult,
    Integer,
    Select,
    String,
    and_,
    bindparam,
    case,
    func,
    select,
    type_coerce,
    update,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from loyalty.driver import DriverStatement
from loyalty.models.base import UTCDateTime
from loyalty.models.customers import Customer
from loyalty.models.tiers import MemberTier
from loyalty.models.transactions import Transaction
from loyalty.programs.schemas import TierProgram

T = Transaction


def rowcount(result: Any) -> int:
    return int(cast(CursorResult[Any], result).rowcount or 0)


def _contribution(metric: str) -> tuple[ColumnElement[Any], ColumnElement[bool]]:
    """What one purchase adds to the metric, net of what was returned, and whether it adds anything."""
    if metric == "spend":
        return T.amount - T.returned_amount, T.amount > T.returned_amount
    if metric == "points_earned":
        return T.points_earned - T.points_reversed, T.points_earned > T.points_reversed
    # purchases: a purchase counts unless all of it came back (a zero-amount one is not a purchase here)
    counts = T.amount > T.returned_amount
    return case((counts, 1), else_=0), counts


def _in_window(start: datetime, end: datetime) -> ColumnElement[bool]:
    """Purchases (returns are netted on the purchase they undo) in [start, end)."""
    return and_(T.kind == "purchase", T.occurred_at >= start, T.occurred_at < end)


def _total(metric: str) -> ColumnElement[int]:
    value, _ = _contribution(metric)
    # SUM of a BIGINT is NUMERIC on PostgreSQL: cast back so Python sees an int.
    return sql_cast(func.coalesce(func.sum(value), 0), BigInteger)


@functools.cache
def _member_metric_statement(metric: str) -> Select[int, datetime]:
    """Built once per metric: a sale runs it every time, and building (and cache-keying) a fresh
    expression cost more CPU than the query itself."""
    _, counts = _contribution(metric)
    oldest = type_coerce(func.min(case((counts, T.occurred_at), else_=None)), UTCDateTime())
    return select(_total(metric), oldest).where(
        T.customer_id == bindparam("metric_customer"), T.kind == "purchase",
        T.occurred_at >= bindparam("metric_start", type_=UTCDateTime()),
        T.occurred_at < bindparam("metric_end", type_=UTCDateTime()))


def member_metric(session: Session, metric: str, customer_id: int, start: datetime,
                  end: datetime) -> tuple[int, datetime | None]:
    """One member's metric in [start, end) and the time of the oldest purchase that counts,
    read through the (customer_id, occurred_at) index."""
    session.flush()  # Core below, past the ORM's autoflush: purchases added to the session must count
    row = session.connection().execute(_member_metric_statement(metric), {
        "metric_customer": customer_id, "metric_start": start, "metric_end": end}).one()
    return int(row[0]), row[1]


@functools.cache
def _note_metric_statement(metric: str) -> Any:
    """Recomputes a member's metric in [start, end) into their tier row and returns (tier, value),
    locking the row: one statement where the aggregate, a SELECT ... FOR UPDATE and an UPDATE were
    three. Built once per metric (building expressions per sale cost more than running them)."""
    value = select(_total(metric)).where(
        T.customer_id == bindparam("tier_customer"), T.kind == "purchase",
        T.occurred_at >= bindparam("tier_start", type_=UTCDateTime()),
        T.occurred_at < bindparam("tier_end", type_=UTCDateTime())).scalar_subquery()
    return (update(MemberTier).where(MemberTier.customer_id == bindparam("tier_customer"))
            .values(qualified_value=value).returning(MemberTier.tier, MemberTier.qualified_value))


def note_metric(session: Session, metric: str, customer_id: int, start: datetime,
                end: datetime) -> tuple[str, int] | None:
    """Stores the member's qualifying value in their tier row: (stored tier, value), or None when the
    member has no tier row yet (their first purchase under tiers)."""
    session.flush()  # driver level below, past the ORM's autoflush: purchases added to the session must count
    found = _note_metric_driver(metric).one_or_none(session, {
        "tier_customer": customer_id, "tier_start": start, "tier_end": end})
    return None if found is None else (str(found[0]), int(found[1]))


@functools.cache
def metric_total_sql(metric: str) -> str:
    """PostgreSQL's text of the member's metric total over `transactions` (for the sale's own statement,
    transactions/hotpath.py): the same expression as note_metric's."""
    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    return str(_total(metric).compile(dialect=dialect, compile_kwargs={"literal_binds": True}))


def own_share(metric: str, *, amount: int, points: int) -> int:
    """What a new purchase (nothing returned yet) adds to the metric: `_contribution` for one row."""
    if metric == "spend":
        return amount
    if metric == "points_earned":
        return points
    return 1 if amount > 0 else 0


@functools.cache
def _note_metric_driver(metric: str) -> DriverStatement:
    # Every sale under tiers runs it: at driver level, SQLAlchemy's per-call work was most of its CPU.
    return DriverStatement(f"tier metric ({metric})", lambda: _note_metric_statement(metric))


def metrics(metric: str, start: datetime, end: datetime) -> Select[int | None, int]:
    """Every member's metric in [start, end): customer_id, value (members with a purchase in it)."""
    return (select(T.customer_id.label("customer_id"), _total(metric).label("value"))
            .where(T.customer_id.is_not(None), _in_window(start, end))
            .group_by(T.customer_id))


def code_for(tiers: TierProgram, value: ColumnElement[Any]) -> ColumnElement[str]:
    """The tier a metric value qualifies for."""
    whens = [(value >= level.threshold, level.code) for level in reversed(tiers.levels[1:])]
    base = tiers.levels[0].code
    return case(*whens, else_=base) if whens else sql_cast(base, String)


def rank_for(tiers: TierProgram, value: ColumnElement[Any]) -> ColumnElement[int]:
    whens = [(value >= level.threshold, index) for index, level in reversed(list(enumerate(tiers.levels)))
             if index]
    return case(*whens, else_=0) if whens else sql_cast(0, Integer)


def rank_of(tiers: TierProgram, code: ColumnElement[Any]) -> ColumnElement[int]:
    """The rank of a stored tier code; -1 for a code the program no longer has."""
    return case({level.code: index for index, level in enumerate(tiers.levels)}, value=code, else_=-1)


def effective_tier(tiers: TierProgram, at: datetime) -> ColumnElement[str]:
    """The tier a member has at `at` (an override first), for rows of customers LEFT JOIN member_tiers."""
    M = MemberTier
    return case((M.override_until > at, M.override_tier), else_=func.coalesce(M.tier, tiers.levels[0].code))


def tier_counts(session: Session, tiers: TierProgram, at: datetime) -> dict[str, int]:
    """Members per tier in one GROUP BY; every customer is a member, in the base tier until they rise."""
    members = (select(effective_tier(tiers, at).label("tier")).select_from(Customer)
               .outerjoin(MemberTier, MemberTier.customer_id == Customer.id).subquery())
    rows = session.execute(select(members.c.tier, func.count()).group_by(members.c.tier)).all()
    return {str(code): int(count) for code, count in rows}


@functools.cache
def _insert_tier_statement(dialect: str) -> Any:
    dialect_insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return (dialect_insert(MemberTier)
            .values(customer_id=bindparam("new_customer"), tier=bindparam("new_tier"),
                    since=bindparam("new_since", type_=UTCDateTime()), qualified_value=bindparam("new_value"))
            .on_conflict_do_nothing(index_elements=["customer_id"]).returning(MemberTier.customer_id))


def insert_if_absent(session: Session, *, customer_id: int, tier: str, since: datetime, qualified_value: int) -> bool:
    """Inserts a member's first tier row; False when a concurrent transaction inserted it first."""
    connection = session.connection()
    inserted = connection.execute(_insert_tier_statement(connection.dialect.name), {
        "new_customer": customer_id, "new_tier": tier, "new_since": since, "new_value": qualified_value})
    return inserted.scalar_one_or_none() is not None
