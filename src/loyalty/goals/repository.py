"""Goal queries: each metric for one member (a scalar subquery) or for every member (one GROUP BY).

A purchase counts while some of it is kept (amount > returned_amount), as for tiers: returns are
netted on the purchase they undo, so progress is always shown net of returns.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import BigInteger, ColumnElement, Integer, Select, Subquery, and_, extract, func, select
from sqlalchemy import cast as sql_cast
from sqlalchemy.orm import Session

from loyalty.goals.schemas import GoalDefinition
from loyalty.models.bonuses import Referral
from loyalty.models.goals import MemberBadge
from loyalty.models.transactions import Transaction, TransactionLine

T = Transaction
L = TransactionLine
_SQLITE_MONTH = "loyalty_business_month"


def _sqlite_month(value: str | None, tz: str) -> int | None:
    """Months since year 0 of a stored UTC time (naive text on SQLite) in the time zone `tz`."""
    if value is None:
        return None
    moment = datetime.fromisoformat(value).replace(tzinfo=UTC).astimezone(ZoneInfo(tz))
    return moment.year * 12 + moment.month - 1


def prepare(session: Session) -> str:
    """The session's dialect name; on SQLite, registers the business-month function on its connection
    (SQLite knows no time zones; PostgreSQL converts with its own zone database)."""
    dialect = session.get_bind().dialect.name
    if dialect == "sqlite":
        connection = session.connection().connection.driver_connection
        connection.create_function(_SQLITE_MONTH, 2, _sqlite_month, deterministic=True)  # type: ignore[union-attr]
    return dialect


def month_index(dialect: str, tz: str, moment: Any) -> ColumnElement[int]:
    """year * 12 + month - 1 of a UTC time in the program's time zone: consecutive months differ by 1."""
    if dialect == "sqlite":
        return func.loyalty_business_month(moment, tz, type_=Integer)
    local = func.timezone(tz, moment)
    return sql_cast(extract("year", local) * 12 + extract("month", local) - 1, Integer)


def business_month(moment: datetime, tz: ZoneInfo) -> int:
    local = moment.astimezone(tz)
    return local.year * 12 + local.month - 1


def _counted(start: datetime | None, end: datetime | None) -> ColumnElement[bool]:
    """Purchases of members that are not wholly returned, in [start, end) when bounded."""
    conditions = [T.kind == "purchase", T.amount > T.returned_amount, T.customer_id.is_not(None)]
    if start is not None:
        conditions.append(T.occurred_at >= start)
    if end is not None:
        conditions.append(T.occurred_at < end)
    return and_(*conditions)


def metric_values(metric: str, start: datetime | None, end: datetime | None,
                  customer_id: int | None = None) -> Select[tuple[int | None, int]]:
    """(customer_id, value) per member with a counted purchase, for the additive metrics; one member's
    row only when `customer_id` is given (read through the (customer_id, occurred_at) index)."""
    where = _counted(start, end)
    if customer_id is not None:
        where = and_(where, T.customer_id == customer_id)
    value: ColumnElement[Any]
    if metric == "purchases":
        value = func.count()
    elif metric == "spend":
        # SUM of a BIGINT is NUMERIC on PostgreSQL: cast back so Python sees an int.
        value = sql_cast(func.sum(T.amount - T.returned_amount), BigInteger)
    elif metric == "stores":
        value = func.count(T.store_id.distinct())
    elif metric == "categories":
        value = func.count(L.category.distinct())
    else:
        raise ValueError(f"{metric} is not an additive metric")
    query = select(T.customer_id.label("customer_id"), value.label("value")).where(where)
    if metric == "categories":
        query = query.select_from(T).join(L, L.transaction_id == T.id).where(L.category.is_not(None))
    return query.group_by(T.customer_id)


def _runs(dialect: str, tz: str, customer_id: int | None) -> Subquery:
    """Runs of consecutive business months with a counted purchase: customer_id, length, last month."""
    month = month_index(dialect, tz, T.occurred_at)
    where = _counted(None, None)
    if customer_id is not None:
        where = and_(where, T.customer_id == customer_id)
    months = select(T.customer_id.label("customer_id"), month.label("month")).where(where).distinct().subquery("months")
    # Gaps and islands: within a run, month - row_number() is constant.
    island = months.c.month - func.row_number().over(partition_by=months.c.customer_id, order_by=months.c.month)
    grouped = select(months.c.customer_id, months.c.month, island.label("island")).subquery("islands")
    return (select(grouped.c.customer_id, func.count().label("length"), func.max(grouped.c.month).label("last"))
            .group_by(grouped.c.customer_id, grouped.c.island).subquery("runs"))


def streak_values(dialect: str, tz: str, customer_id: int | None = None,
                  alive_from: int | None = None) -> Select[tuple[int | None, int]]:
    """(customer_id, months): the longest run ever, or with `alive_from` the run whose last month is at or
    after that month (the streak still running)."""
    runs = _runs(dialect, tz, customer_id)
    query = select(runs.c.customer_id.label("customer_id"), func.max(runs.c.length).label("value"))
    if alive_from is not None:
        query = query.where(runs.c.last >= alive_from)
    return query.group_by(runs.c.customer_id)


def goal_values(dialect: str, tz: str, goal: GoalDefinition, start: datetime | None, end: datetime | None,
                customer_id: int | None = None, *, running_streak_from: int | None = None,
                ) -> Select[tuple[int | None, int]]:
    if goal.metric == "streak_months":
        return streak_values(dialect, tz, customer_id, running_streak_from)
    if goal.metric == "referrals":
        return referral_values(start, end, customer_id)
    return metric_values(goal.metric, start, end, customer_id)


def referral_values(start: datetime | None, end: datetime | None,
                    customer_id: int | None = None) -> Select[tuple[int | None, int]]:
    """(referrer, referrals) counting the members they brought who went on to a qualifying purchase
    (rewarded, or over the monthly cap: the member still brought a buyer), in [start, end) when bounded."""
    conditions: list[ColumnElement[bool]] = [Referral.status.in_(("rewarded", "capped"))]
    if start is not None:
        conditions.append(Referral.qualified_at >= start)
    if end is not None:
        conditions.append(Referral.qualified_at < end)
    if customer_id is not None:
        conditions.append(Referral.referrer_id == customer_id)
    count: ColumnElement[Any] = func.count()
    return (select(Referral.referrer_id.label("customer_id"), count.label("value"))
            .where(and_(*conditions)).group_by(Referral.referrer_id))


def one_value(values: Select[tuple[int | None, int]]) -> ColumnElement[int]:
    """A member's value as a scalar (0 without a counted purchase)."""
    sub = values.subquery()
    return func.coalesce(select(sub.c.value).scalar_subquery(), 0)


def earned_goal(customer_id: int, goal_id: str) -> ColumnElement[bool]:
    return select(MemberBadge.goal_id).where(MemberBadge.customer_id == customer_id,
                                             MemberBadge.goal_id == goal_id).exists()
