"""Ledger writes and reads in bulk-friendly SQL; service.py decides what to post."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from sqlalchemy import ColumnElement, ScalarSelect, and_, func, insert, or_, select, text
from sqlalchemy.orm import Session

from loyalty.bulk import allocate_ids, insert_rows, insert_tuples
from loyalty.errors import InsufficientPoints, NotFound
from loyalty.models import LedgerEntry, LedgerPosting, LotAllocation, MemberBalance, PointLot
from loyalty.models.ledger import ACCOUNTS, MEMBER_ACCOUNTS


@dataclass(frozen=True, slots=True)
class Balance:
    available: int
    pending: int
    held: int
    owed: int  # zero or negative: a receivable
    earned_total: int = 0

    @property
    def owed_points(self) -> int:
        return -self.owed

    def less_overdue(self, overdue: int) -> Balance:
        """The balance as shown: points past their expiry that the expiry job has not swept yet are
        no longer spendable (a spend sweeps them first), so they are not available."""
        return replace(self, available=self.available - min(overdue, self.available))


@dataclass(slots=True)
class EntrySpec:
    """One journal entry to post: `postings` pairs (account, amount) must sum to zero."""

    kind: str
    customer_id: int | None
    source_type: str
    source_id: str
    event: str
    reason: str
    actor: str
    created_at: datetime
    postings: list[tuple[str, int]]
    transaction_id: int | None = None
    corrects_entry_id: int | None = None
    earned_delta: int = 0
    entry_id: int | None = field(default=None)

    def member_deltas(self) -> dict[str, int]:
        deltas = dict.fromkeys(MEMBER_ACCOUNTS, 0)
        for account, amount in self.postings:
            if account in deltas:
                deltas[account] += amount
        return deltas


def validate_entry(spec: EntrySpec) -> None:
    if not spec.postings:
        raise ValueError(f"{spec.kind}: an entry needs postings")
    for account, amount in spec.postings:
        if account not in ACCOUNTS:
            raise ValueError(f"unknown account {account!r}")
        if not isinstance(amount, int) or isinstance(amount, bool) or amount == 0:
            raise ValueError(f"posting amounts are non-zero integers, got {amount!r}")
        if account in MEMBER_ACCOUNTS and spec.customer_id is None:
            raise ValueError("member postings need a customer")
    if sum(amount for _, amount in spec.postings) != 0:
        raise ValueError(f"{spec.kind}: postings {spec.postings} do not sum to zero")


_APPLY_DELTAS = text(
    "UPDATE member_balances SET available = available + :available, pending = pending + :pending, "
    "held = held + :held, owed = owed + :owed, earned_total = earned_total + :earned "
    "WHERE customer_id = :customer_id AND available + :available >= 0 AND pending + :pending >= 0 "
    "AND held + :held >= 0 AND owed + :owed <= 0"
)


def _entry_row(spec: EntrySpec) -> dict[str, object]:
    return {
        "kind": spec.kind, "customer_id": spec.customer_id, "source_type": spec.source_type,
        "source_id": spec.source_id, "event": spec.event, "reason": spec.reason, "actor": spec.actor,
        "created_at": spec.created_at, "transaction_id": spec.transaction_id,
        "corrects_entry_id": spec.corrects_entry_id,
    }


def insert_entries(session: Session, specs: Sequence[EntrySpec], *, apply_balances: bool = True) -> None:
    """Posts entries in three statements whatever their number; sets each spec's entry_id.

    Balances move with a conditional UPDATE, so the database itself refuses to take a member
    below zero even if a caller's check was wrong (and the CHECK constraints back that up).
    """
    if not specs:
        return
    for spec in specs:
        validate_entry(spec)
    if len(specs) == 1:
        # One entry (every API call): RETURNING saves the separate round trip for an id.
        spec = specs[0]
        spec.entry_id = session.execute(insert(LedgerEntry).returning(LedgerEntry.id), [_entry_row(spec)]).scalar_one()
    else:
        ids = allocate_ids(session, LedgerEntry, len(specs))
        for spec, entry_id in zip(specs, ids, strict=True):
            spec.entry_id = entry_id
        insert_rows(session, LedgerEntry, [_entry_row(s) | {"id": s.entry_id} for s in specs])
    insert_rows(session, LedgerPosting, [
        {"entry_id": s.entry_id, "account": account, "amount": amount,
         "customer_id": s.customer_id if account in MEMBER_ACCOUNTS else None}
        for s in specs for account, amount in s.postings
    ])
    if apply_balances:
        apply_member_deltas(session, specs)


def apply_member_deltas(session: Session, specs: Iterable[EntrySpec]) -> None:
    per_customer: dict[int, dict[str, int]] = defaultdict(lambda: dict.fromkeys((*MEMBER_ACCOUNTS, "earned"), 0))
    for spec in specs:
        if spec.customer_id is None:
            continue
        totals = per_customer[spec.customer_id]
        for account, amount in spec.member_deltas().items():
            totals[account] += amount
        totals["earned"] += spec.earned_delta
    params = [{"customer_id": cid, **totals} for cid, totals in per_customer.items() if any(totals.values())]
    if not params:
        return
    connection = session.connection()
    if len(params) == 1:
        if connection.execute(_APPLY_DELTAS, params[0]).rowcount != 1:
            raise InsufficientPoints("the member does not have enough points for this")
    else:
        connection.execute(_APPLY_DELTAS, params)


def lock_member(session: Session, customer_id: int) -> Balance:
    """Locks the member's balance row (PostgreSQL row lock; SQLite writers are already serial)."""
    row = session.execute(
        select(MemberBalance.available, MemberBalance.pending, MemberBalance.held, MemberBalance.owed,
               MemberBalance.earned_total)
        .where(MemberBalance.customer_id == customer_id).with_for_update()
    ).one_or_none()
    if row is None:
        raise NotFound(f"customer {customer_id} does not exist")
    return Balance(*row)


# The points of a member's lots past expiry and not yet swept (due_lot_filter), as a scalar subquery
# for the driver-level sale statements (PostgreSQL placeholders).
OVERDUE_POINTS_SQL = ("(SELECT CAST(coalesce(sum(remaining), 0) AS BIGINT) FROM point_lots "
                      "WHERE customer_id = %(customer_id)s AND NOT pending AND remaining > 0 "
                      "AND expires_at <= %(now)s)")


def _overdue_points(customer_id: int, now: datetime) -> ScalarSelect[int]:
    return (select(func.coalesce(func.sum(PointLot.remaining), 0))
            .where(PointLot.customer_id == customer_id, due_lot_filter(now)).scalar_subquery())


def read_shown_balance(session: Session, customer_id: int, now: datetime) -> Balance:
    """The member's balance as every response shows it (Balance.less_overdue), in one read."""
    row = session.execute(
        select(MemberBalance.available, MemberBalance.pending, MemberBalance.held, MemberBalance.owed,
               MemberBalance.earned_total, _overdue_points(customer_id, now))
        .where(MemberBalance.customer_id == customer_id)
    ).one_or_none()
    if row is None:
        raise NotFound(f"customer {customer_id} does not exist")
    return Balance(*row[:5]).less_overdue(int(row[5]))


def read_balance(session: Session, customer_id: int) -> Balance:
    row = session.execute(
        select(MemberBalance.available, MemberBalance.pending, MemberBalance.held, MemberBalance.owed,
               MemberBalance.earned_total)
        .where(MemberBalance.customer_id == customer_id)
    ).one_or_none()
    if row is None:
        raise NotFound(f"customer {customer_id} does not exist")
    return Balance(*row)


@dataclass(frozen=True, slots=True)
class Earning:
    """Points a member earned on a purchase: one earn entry, its two postings and one lot."""

    customer_id: int
    transaction_id: int
    points: int
    pending: bool
    earned_at: datetime
    available_at: datetime
    expires_at: datetime | None
    reason: str


_ENTRY_COLUMNS = ("id", "kind", "customer_id", "source_type", "source_id", "event", "reason", "actor", "created_at",
                  "transaction_id")
_LOT_COLUMNS = ("id", "customer_id", "entry_id", "transaction_id", "points", "remaining", "pending", "earned_at",
                "available_at", "expires_at")
# Each lot's entry gets its two postings from the lot itself (issued -points, then the member's
# pending or available +points), so they are never shipped from Python.
_POSTINGS_FROM_LOTS = (
    "INSERT INTO ledger_postings (entry_id, account, customer_id, amount) "
    "SELECT l.entry_id, CASE WHEN s.member = 0 THEN 'issued' WHEN l.pending THEN 'pending' ELSE 'available' END, "
    "CASE WHEN s.member = 1 THEN l.customer_id END, CASE WHEN s.member = 1 THEN l.points ELSE -l.points END "
    "FROM point_lots AS l CROSS JOIN (SELECT 0 AS member UNION ALL SELECT 1) AS s WHERE {lots} "
    "ORDER BY l.id, s.member"
)
_APPLY_EARNINGS_POSTGRESQL = text(
    "UPDATE member_balances AS b SET available = b.available + d.available, pending = b.pending + d.pending, "
    "earned_total = b.earned_total + d.available + d.pending "
    "FROM unnest(CAST(:customer_ids AS bigint[]), CAST(:available AS bigint[]), CAST(:pending AS bigint[])) "
    "AS d(customer_id, available, pending) WHERE b.customer_id = d.customer_id"
)


def insert_earnings(session: Session, earnings: Sequence[Earning], *, actor: str, now: datetime) -> list[int]:
    """Posts a batch of earnings set-based; returns their entry ids in order.

    Entries and lots go in one bulk insert each (ids allocated up front), the postings are
    derived from the lots by one INSERT … SELECT, and balances move by one statement per
    batch. The result is what `insert_entries` + `insert_lots` write for the same earnings.
    """
    if not earnings:
        return []
    for earning in earnings:
        if not isinstance(earning.points, int) or isinstance(earning.points, bool) or earning.points <= 0:
            raise ValueError(f"earned points are positive integers, got {earning.points!r}")
    entry_ids = allocate_ids(session, LedgerEntry, len(earnings))
    lot_ids = allocate_ids(session, PointLot, len(earnings))
    insert_tuples(session, LedgerEntry, _ENTRY_COLUMNS, [
        (entry_id, "earn", e.customer_id, "transaction", str(e.transaction_id), "earn", e.reason, actor, now,
         e.transaction_id)
        for e, entry_id in zip(earnings, entry_ids, strict=True)])
    insert_tuples(session, PointLot, _LOT_COLUMNS, [
        (lot_id, e.customer_id, entry_id, e.transaction_id, e.points, e.points, e.pending, e.earned_at,
         e.available_at, e.expires_at)
        for e, entry_id, lot_id in zip(earnings, entry_ids, lot_ids, strict=True)])
    connection = session.connection()
    postgresql = connection.dialect.name == "postgresql"
    if lot_ids[-1] - lot_ids[0] + 1 == len(lot_ids):
        # One unbroken run of ids (always on SQLite, whose import holds the write lock; on PostgreSQL
        # unless another session drew from the sequence meanwhile): every lot in the range is ours.
        connection.execute(text(_POSTINGS_FROM_LOTS.format(lots="l.id BETWEEN :first AND :last")),
                           {"first": lot_ids[0], "last": lot_ids[-1]})
    else:
        connection.execute(text(_POSTINGS_FROM_LOTS.format(lots="l.id = ANY(CAST(:lot_ids AS bigint[]))")),
                           {"lot_ids": lot_ids})
    per_customer: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for e in earnings:
        per_customer[e.customer_id][1 if e.pending else 0] += e.points
    if postgresql:
        updated = connection.execute(_APPLY_EARNINGS_POSTGRESQL, {
            "customer_ids": list(per_customer), "available": [v[0] for v in per_customer.values()],
            "pending": [v[1] for v in per_customer.values()]}).rowcount
    else:
        updated = connection.execute(_APPLY_DELTAS, [
            {"customer_id": cid, "available": available, "pending": pending, "held": 0, "owed": 0,
             "earned": available + pending}
            for cid, (available, pending) in per_customer.items()]).rowcount
    if updated != len(per_customer):
        raise NotFound("a member earning points has no balance row")
    return entry_ids


def insert_lots(session: Session, rows: list[dict[str, object]]) -> None:
    if rows:
        insert_rows(session, PointLot, rows)


@dataclass(frozen=True, slots=True)
class LotTake:
    lot_id: int
    points: int


def plan_spend(session: Session, customer_id: int, points: int, now: datetime) -> list[LotTake]:
    """Soonest-expiring spendable lots first (no expiry last); raises if they fall short."""
    lots = session.execute(
        select(PointLot.id, PointLot.remaining)
        .where(PointLot.customer_id == customer_id, PointLot.remaining > 0, PointLot.pending.is_(False),
               or_(PointLot.expires_at.is_(None), PointLot.expires_at > now))
        .order_by(PointLot.expires_at.is_(None), PointLot.expires_at, PointLot.id)
    ).all()
    plan: list[LotTake] = []
    left = points
    for lot_id, remaining in lots:
        if left == 0:
            break
        take = min(left, remaining)
        plan.append(LotTake(lot_id, take))
        left -= take
    if left:
        raise InsufficientPoints(
            f"the member has {points - left} spendable points, {points} were asked for",
            available=points - left, requested=points,
        )
    return plan


def take_from_lots(
    session: Session, plan: Sequence[LotTake], *, entry_id: int, spend_type: str, spend_id: int,
) -> None:
    if not plan:
        return
    connection = session.connection()
    result = connection.execute(
        text("UPDATE point_lots SET remaining = remaining - :take WHERE id = :lot_id AND remaining >= :take"),
        [{"lot_id": take.lot_id, "take": take.points} for take in plan],
    )
    if result.rowcount not in (-1, len(plan)):
        raise InsufficientPoints("points were spent by another request at the same time; try again")
    insert_rows(session, LotAllocation, [
        {"lot_id": t.lot_id, "entry_id": entry_id, "points": t.points, "spend_type": spend_type,
         "spend_id": spend_id}
        for t in plan
    ])


def plan_restore(session: Session, spend_type: str, spend_id: int, points: int) -> list[LotTake]:
    """Points go back to the lots they were taken from, latest-expiring first."""
    net = func.sum(LotAllocation.points)
    rows = session.execute(
        select(LotAllocation.lot_id, net)
        .join(PointLot, PointLot.id == LotAllocation.lot_id)
        .where(LotAllocation.spend_type == spend_type, LotAllocation.spend_id == spend_id)
        .group_by(LotAllocation.lot_id, PointLot.expires_at)
        .having(net > 0)
        .order_by(PointLot.expires_at.is_(None).desc(), PointLot.expires_at.desc(), LotAllocation.lot_id.desc())
    ).all()
    plan: list[LotTake] = []
    left = points
    for lot_id, spent in rows:
        if left == 0:
            break
        give = min(left, int(spent))
        plan.append(LotTake(lot_id, give))
        left -= give
    if left:
        raise AssertionError(f"cannot restore {points} points to {spend_type} {spend_id}: only {points - left} spent")
    return plan


def give_back_to_lots(
    session: Session, plan: Sequence[LotTake], *, entry_id: int, spend_type: str, spend_id: int,
) -> None:
    if not plan:
        return
    session.connection().execute(
        text("UPDATE point_lots SET remaining = remaining + :give WHERE id = :lot_id"),
        [{"lot_id": t.lot_id, "give": t.points} for t in plan],
    )
    insert_rows(session, LotAllocation, [
        {"lot_id": t.lot_id, "entry_id": entry_id, "points": -t.points, "spend_type": spend_type,
         "spend_id": spend_id}
        for t in plan
    ])


def due_lot_filter(now: datetime) -> ColumnElement[bool]:
    """Lots past their expiry that still hold spendable points: what the expiry job takes."""
    return and_(PointLot.pending.is_(False), PointLot.remaining > 0, PointLot.expires_at <= now)


