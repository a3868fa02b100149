"""Ledger writes and reads in bulk-friendly SQL; service.py decides what to post."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import and_, func, insert, or_, select, text
from sqlalchemy.orm import Session

from loyalty.bulk import allocate_ids, insert_rows
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


def read_balance(session: Session, customer_id: int) -> Balance:
    row = session.execute(
        select(MemberBalance.available, MemberBalance.pending, MemberBalance.held, MemberBalance.owed,
               MemberBalance.earned_total)
        .where(MemberBalance.customer_id == customer_id)
    ).one_or_none()
    if row is None:
        raise NotFound(f"customer {customer_id} does not exist")
    return Balance(*row)


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


def due_lot_filter(now: datetime) -> object:
    return and_(PointLot.pending.is_(False), PointLot.remaining > 0, PointLot.expires_at <= now)


