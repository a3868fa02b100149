"""Ledger operations: earn, redeem, hold/capture/void, return reversals, adjustments, expiry.

Every function takes the caller's session and never commits: the request, CLI command or job
that calls it owns the transaction, so a multi-step operation is all-or-nothing.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, func, select, text, update
from sqlalchemy.orm import Session

from loyalty.bulk import insert_rows
from loyalty.errors import HoldNotActive, InsufficientPoints, NotFound, ValidationFailed
from loyalty.ledger.repository import (
    Balance,
    EntrySpec,
    due_lot_filter,
    give_back_to_lots,
    insert_entries,
    insert_lots,
    lock_member,
    plan_restore,
    plan_spend,
    read_balance,
    read_shown_balance,
    take_from_lots,
)
from loyalty.models import Hold, LedgerEntry, LedgerPosting, LotAllocation, MemberBalance, PointLot, Transaction
from loyalty.models.ledger import MEMBER_ACCOUNTS
from loyalty.programs.service import ActiveProgram


@dataclass(frozen=True, slots=True)
class CreditResult:
    entry_id: int
    points: int
    settled_owed: int
    balance: Balance | None


def credit(
    session: Session, program: ActiveProgram, *, customer_id: int, points: int, kind: str, from_account: str,
    source_type: str, source_id: str, event: str, reason: str, actor: str, earned_at: datetime, now: datetime,
    transaction_id: int | None = None, counts_as_earned: bool = True,
) -> CreditResult:
    """Gives a member points as a new lot; a pending period parks them, a debt is settled first."""
    available_at = program.available_at(earned_at)
    pending = available_at > now
    earned = points if counts_as_earned else 0
    spec = EntrySpec(kind, customer_id, source_type, source_id, event, reason, actor, now, [],
                     transaction_id=transaction_id, earned_delta=earned)
    balance: Balance | None = None
    settled = 0
    if pending:
        spec.postings = [(from_account, -points), ("pending", points)]
        insert_entries(session, [spec])
    else:
        # Fast path, one statement: members who owe nothing (nearly all) just get the points.
        row = session.execute(
            update(MemberBalance)
            .where(MemberBalance.customer_id == customer_id, MemberBalance.owed == 0)
            .values(available=MemberBalance.available + points, earned_total=MemberBalance.earned_total + earned)
            .returning(MemberBalance.available, MemberBalance.pending, MemberBalance.held, MemberBalance.owed,
                       MemberBalance.earned_total)
        ).one_or_none()
        if row is not None:
            balance = Balance(*row)
            spec.postings = [(from_account, -points), ("available", points)]
            insert_entries(session, [spec], apply_balances=False)
        else:
            current = lock_member(session, customer_id)
            settled = min(points, current.owed_points)
            spec.postings = [(from_account, -points), ("owed", settled), ("available", points - settled)]
            spec.postings = [p for p in spec.postings if p[1] != 0]
            insert_entries(session, [spec])
    lot_points = points - settled
    if lot_points:
        assert spec.entry_id is not None
        insert_lots(session, [{
            "customer_id": customer_id, "entry_id": spec.entry_id, "transaction_id": transaction_id,
            "points": lot_points, "remaining": lot_points, "pending": pending, "earned_at": earned_at,
            "available_at": available_at, "expires_at": program.expires_at(earned_at),
        }])
    assert spec.entry_id is not None
    return CreditResult(spec.entry_id, points, settled, balance)


def spend(
    session: Session, *, customer_id: int, points: int, kind: str, to_account: str, source_type: str,
    source_id: str, event: str, reason: str, actor: str, now: datetime, spend_type: str, spend_id: int,
    transaction_id: int | None = None,
) -> int:
    """Takes available points from the soonest-expiring lots into `to_account`; all or nothing."""
    lock_member(session, customer_id)
    expire_due(session, now, customer_ids=[customer_id], actor=actor)
    plan = plan_spend(session, customer_id, points, now)
    spec = EntrySpec(kind, customer_id, source_type, source_id, event, reason, actor, now,
                     [("available", -points), (to_account, points)], transaction_id=transaction_id)
    insert_entries(session, [spec])
    assert spec.entry_id is not None
    take_from_lots(session, plan, entry_id=spec.entry_id, spend_type=spend_type, spend_id=spend_id)
    return spec.entry_id


def give_back(
    session: Session, *, customer_id: int, points: int, kind: str, from_account: str, source_type: str,
    source_id: str, event: str, reason: str, actor: str, now: datetime, spend_type: str, spend_id: int,
    transaction_id: int | None = None,
) -> int:
    """Returns points that a spend took, into the very lots they came from.

    A member who owes points (a return took back points that were held or spent) pays the debt
    from them first, as from an earning: otherwise returning a sale while its points are held,
    then voiding the hold, would leave the points spendable beside the debt. The points that
    settle it stay allocated to the spend, so the lots still account for every point.
    """
    settled = min(points, lock_member(session, customer_id).owed_points)
    plan = plan_restore(session, spend_type, spend_id, points - settled) if points > settled else []
    postings = [(from_account, -points), ("available", points - settled), ("owed", settled)]
    spec = EntrySpec(kind, customer_id, source_type, source_id, event, reason, actor, now,
                     [p for p in postings if p[1]], transaction_id=transaction_id)
    insert_entries(session, [spec])
    assert spec.entry_id is not None
    give_back_to_lots(session, plan, entry_id=spec.entry_id, spend_type=spend_type, spend_id=spend_id)
    return spec.entry_id


# --- holds (two-phase redemption) -------------------------------------------------------------

def create_hold(
    session: Session, *, customer_id: int, points: int, store_id: str | None, reference: str | None,
    timeout: timedelta, actor: str, now: datetime,
) -> Hold:
    if points <= 0:
        raise ValidationFailed("points to hold must be a positive whole number")
    lock_member(session, customer_id)
    hold = Hold(customer_id=customer_id, store_id=store_id, points=points, captured_points=0, status="held",
                reference=reference, created_at=now, expires_at=now + timeout)
    session.add(hold)
    session.flush()
    spend(session, customer_id=customer_id, points=points, kind="hold", to_account="held", source_type="hold",
          source_id=str(hold.id), event="hold", reason=f"points held for redemption{_ref(reference)}",
          actor=actor, now=now, spend_type="hold", spend_id=hold.id)
    return hold


def _ref(reference: str | None) -> str:
    return f" ({reference})" if reference else ""


def _active_hold(session: Session, hold_id: int, now: datetime) -> Hold:
    hold = session.get(Hold, hold_id)
    if hold is None:
        raise NotFound(f"hold {hold_id} does not exist")
    lock_member(session, hold.customer_id)
    session.refresh(hold, with_for_update=True)
    if hold.status != "held":
        raise HoldNotActive(f"hold {hold_id} is already {hold.status}", hold_status=hold.status)
    if hold.expires_at <= now:
        _close_hold(session, hold, event="lapse", actor="system", now=now)
        raise HoldNotActive(f"hold {hold_id} lapsed at {hold.expires_at.isoformat()} and can no longer be "
                            "captured; its points go back to the member", hold_status="expired")
    return hold


def capture_hold(
    session: Session, hold_id: int, *, points: int | None, actor: str, now: datetime,
    transaction_id: int | None = None,
) -> Hold:
    """Captures all or part of a hold; the rest goes back to the member."""
    hold = _active_hold(session, hold_id, now)
    captured = hold.points if points is None else points
    if not 0 < captured <= hold.points:
        raise ValidationFailed(f"capture between 1 and {hold.points} points of hold {hold_id}")
    spec = EntrySpec("capture", hold.customer_id, "hold", str(hold.id), "capture",
                     f"held points redeemed{_ref(hold.reference)}", actor, now,
                     [("held", -captured), ("redeemed", captured)], transaction_id=transaction_id)
    insert_entries(session, [spec])
    rest = hold.points - captured
    if rest:
        give_back(session, customer_id=hold.customer_id, points=rest, kind="release_hold", from_account="held",
                  source_type="hold", source_id=str(hold.id), event="capture_rest",
                  reason=f"uncaptured part of hold {hold.id} returned", actor=actor, now=now,
                  spend_type="hold", spend_id=hold.id)
    hold.status, hold.captured_points, hold.closed_at = "captured", captured, now
    hold.transaction_id = transaction_id
    session.flush()
    return hold


def void_hold(session: Session, hold_id: int, *, actor: str, now: datetime) -> Hold:
    hold = _active_hold(session, hold_id, now)
    _close_hold(session, hold, event="void", actor=actor, now=now)
    return hold


def _close_hold(session: Session, hold: Hold, *, event: str, actor: str, now: datetime) -> None:
    reason = "hold voided" if event == "void" else "hold lapsed uncaptured"
    give_back(session, customer_id=hold.customer_id, points=hold.points, kind="release_hold", from_account="held",
              source_type="hold", source_id=str(hold.id), event=event, reason=f"{reason}; points returned",
              actor=actor, now=now, spend_type="hold", spend_id=hold.id)
    hold.status, hold.closed_at = ("voided" if event == "void" else "expired"), now
    session.flush()


def lapse_holds(session: Session, now: datetime) -> int:
    ids = session.scalars(select(Hold.id).where(Hold.status == "held", Hold.expires_at <= now)
                          .order_by(Hold.customer_id, Hold.id)).all()
    lapsed = 0
    for hold_id in ids:
        hold = session.get(Hold, hold_id)
        assert hold is not None
        lock_member(session, hold.customer_id)
        session.refresh(hold, with_for_update=True)
        if hold.status == "held":  # a capture or void may have got there first
            _close_hold(session, hold, event="lapse", actor="job:holds", now=now)
            lapsed += 1
    return lapsed


# --- returns --------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class ReversalResult:
    points_reversed: int
    points_restored: int
    shortfall: int


def _payment_of(session: Session, purchase_id: int) -> tuple[str, int]:
    """The spend whose lot allocations paid for a purchase: a captured hold, or a redemption in the sale."""
    hold_id = session.scalar(select(Hold.id).where(Hold.transaction_id == purchase_id, Hold.status == "captured"))
    return ("hold", hold_id) if hold_id is not None else ("transaction", purchase_id)


def reverse_for_return(
    session: Session, *, customer_id: int, purchase_id: int, return_id: int, reverse: int, restore: int,
    actor: str, now: datetime,
) -> ReversalResult:
    """Gives back points spent on the returned share, then takes back the points it earned.

    Taking back never blocks and never makes `available` negative. The purchase's own points go
    first; those of them that expired are taken back from the expired account (the member lost
    them already, so they cost the member nothing now); what was spent comes from the member's
    other points, and what those cannot cover becomes an explicit debt (the owed account),
    settled from future earnings.
    """
    lock_member(session, customer_id)
    if restore:
        spend_type, spend_id = _payment_of(session, purchase_id)
        give_back(session, customer_id=customer_id, points=restore, kind="restore", from_account="redeemed",
                  source_type="transaction", source_id=str(return_id), event="restore",
                  reason=f"points spent on returned goods given back (purchase {purchase_id})", actor=actor,
                  now=now, spend_type=spend_type, spend_id=spend_id, transaction_id=return_id)
    if not reverse:
        return ReversalResult(0, restore, 0)
    # First the purchase's own lot (pending or not), then other lots still holding points, soonest-
    # expiring first: a lot past expiry but not yet swept is still in `available`, and taking it
    # back first costs the member least. No inline expiry here, so history imported later replays
    # the same way it happened.
    own = session.execute(
        select(PointLot.id, PointLot.remaining, PointLot.pending)
        .where(PointLot.transaction_id == purchase_id, PointLot.customer_id == customer_id, PointLot.remaining > 0)
        .order_by(PointLot.id)
    ).all()
    takes: list[tuple[int, int, bool]] = []
    left = reverse
    for lot_id, remaining, pending in own:
        take = min(left, remaining)
        if take:
            takes.append((lot_id, take, pending))
            left -= take
    from_expired = min(left, _expired_not_reversed(session, purchase_id)) if left else 0
    left -= from_expired
    if left:
        others = session.execute(
            select(PointLot.id, PointLot.remaining)
            .where(PointLot.customer_id == customer_id, PointLot.remaining > 0, PointLot.pending.is_(False),
                   (PointLot.transaction_id.is_(None)) | (PointLot.transaction_id != purchase_id))
            .order_by(PointLot.expires_at.is_(None), PointLot.expires_at, PointLot.id)
        ).all()
        for lot_id, remaining in others:
            if not left:
                break
            take = min(left, remaining)
            takes.append((lot_id, take, False))
            left -= take
    from_pending = sum(t for _, t, p in takes if p)
    from_available = sum(t for _, t, p in takes if not p)
    postings = [("issued", reverse), ("expired", -from_expired), ("pending", -from_pending),
                ("available", -from_available), ("owed", -left)]
    spec = EntrySpec("reverse", customer_id, "transaction", str(return_id), "reverse",
                     f"points earned on returned goods taken back (purchase {purchase_id})", actor, now,
                     [p for p in postings if p[1]], transaction_id=return_id, earned_delta=-reverse)
    insert_entries(session, [spec])
    assert spec.entry_id is not None
    if takes:
        session.connection().execute(
            text("UPDATE point_lots SET remaining = remaining - :take WHERE id = :lot_id AND remaining >= :take"),
            [{"lot_id": lot_id, "take": take} for lot_id, take, _ in takes],
        )
        insert_rows(session, LotAllocation, [
            {"lot_id": lot_id, "entry_id": spec.entry_id, "points": take, "spend_type": "reverse",
             "spend_id": return_id}
            for lot_id, take, _ in takes
        ])
    return ReversalResult(reverse, restore, left)


def _expired_not_reversed(session: Session, purchase_id: int) -> int:
    """Points a purchase earned that expired and that no earlier return of it has taken back yet."""
    expired = session.scalar(
        select(func.coalesce(func.sum(LotAllocation.points), 0))
        .join(PointLot, PointLot.id == LotAllocation.lot_id)
        .where(PointLot.transaction_id == purchase_id, LotAllocation.spend_type == "expire"))
    # Earlier returns' reversals posted these as negative amounts on the expired account.
    reversed_ = session.scalar(
        select(func.coalesce(func.sum(LedgerPosting.amount), 0))
        .join(LedgerEntry, LedgerEntry.id == LedgerPosting.entry_id)
        .join(Transaction, Transaction.id == LedgerEntry.transaction_id)
        .where(Transaction.original_id == purchase_id, Transaction.kind == "return", LedgerEntry.kind == "reverse",
               LedgerPosting.account == "expired"))
    return int(expired or 0) + int(reversed_ or 0)


# --- adjustments ----------------------------------------------------------------------------

def adjust(
    session: Session, program: ActiveProgram, *, customer_id: int, points: int, reason: str, actor: str,
    source_id: str, now: datetime,
) -> int:
    if points == 0:
        raise ValidationFailed("an adjustment must add or remove at least one point")
    if not reason.strip():
        raise ValidationFailed("an adjustment needs a reason")
    if points > 0:
        return credit(session, program, customer_id=customer_id, points=points, kind="adjust",
                      from_account="adjusted", source_type="adjustment", source_id=source_id, event="adjust",
                      reason=reason, actor=actor, earned_at=now, now=now, counts_as_earned=False).entry_id
    return spend(session, customer_id=customer_id, points=-points, kind="adjust", to_account="adjusted",
                 source_type="adjustment", source_id=source_id, event="adjust", reason=reason, actor=actor,
                 now=now, spend_type="adjustment", spend_id=0)


# --- jobs: expiry and pending release, set-based ----------------------------------------------

def _lock_members(session: Session, customer_ids: list[int]) -> None:
    """Row locks in customer order, the same order every writer uses, so jobs cannot deadlock them."""
    if session.get_bind().dialect.name == "postgresql" and customer_ids:
        session.execute(select(MemberBalance.customer_id)
                        .where(MemberBalance.customer_id.in_(sorted(customer_ids)))
                        .order_by(MemberBalance.customer_id).with_for_update()).all()


def expire_due(
    session: Session, now: datetime, *, customer_ids: list[int] | None = None, actor: str = "job:expiry",
    batch: int = 5000,
) -> int:
    """Expires every spendable point whose lot is past its expiry; running it twice does nothing more."""
    expired_total = 0
    run_id = uuid.uuid4().hex
    while True:
        due = select(PointLot.customer_id).where(due_lot_filter(now))
        if customer_ids is not None:
            due = due.where(PointLot.customer_id.in_(customer_ids))
        members = sorted(session.scalars(due.distinct().order_by(PointLot.customer_id).limit(batch)).all())
        if not members:
            return expired_total
        if customer_ids is None:
            _lock_members(session, members)
        lots = session.execute(
            select(PointLot.id, PointLot.customer_id, PointLot.remaining)
            .where(PointLot.customer_id.in_(members), due_lot_filter(now))
        ).all()
        per_member: dict[int, int] = defaultdict(int)
        for _, customer_id, remaining in lots:
            per_member[customer_id] += remaining
        specs = [
            EntrySpec("expire", cid, "job", run_id, f"expire:{cid}", "points expired", actor, now,
                      [("available", -pts), ("expired", pts)])
            for cid, pts in sorted(per_member.items())
        ]
        insert_entries(session, specs)
        entry_of = {spec.customer_id: spec.entry_id for spec in specs}
        session.connection().execute(
            text("UPDATE point_lots SET remaining = 0 WHERE id = :lot_id"), [{"lot_id": i} for i, _, _ in lots])
        insert_rows(session, LotAllocation, [
            {"lot_id": lot_id, "entry_id": entry_of[cid], "points": remaining, "spend_type": "expire",
             "spend_id": entry_of[cid]}
            for lot_id, cid, remaining in lots
        ])
        expired_total += sum(per_member.values())
        if customer_ids is not None:
            return expired_total


def release_pending(session: Session, now: datetime, *, batch: int = 5000) -> int:
    """Pending points whose period is over become spendable, settling any debt first."""
    released_total = 0
    run_id = uuid.uuid4().hex
    while True:
        members = sorted(session.scalars(
            select(PointLot.customer_id).where(PointLot.pending.is_(True), PointLot.available_at <= now)
            .distinct().order_by(PointLot.customer_id).limit(batch)).all())
        if not members:
            return released_total
        _lock_members(session, members)
        lots = session.execute(
            select(PointLot.id, PointLot.customer_id, PointLot.remaining)
            .where(PointLot.customer_id.in_(members), PointLot.pending.is_(True), PointLot.available_at <= now)
        ).all()
        owed = dict(session.execute(select(MemberBalance.customer_id, MemberBalance.owed)
                                    .where(MemberBalance.customer_id.in_(members), MemberBalance.owed < 0)).all())
        per_member: dict[int, int] = defaultdict(int)
        for _, customer_id, remaining in lots:
            per_member[customer_id] += remaining
        specs = []
        for cid, pts in sorted(per_member.items()):
            if pts == 0:
                continue
            settle = min(pts, -owed.get(cid, 0))
            postings = [("pending", -pts), ("owed", settle), ("available", pts - settle)]
            specs.append(EntrySpec("release", cid, "job", run_id, f"release:{cid}",
                                   "pending points became spendable", "job:release", now,
                                   [p for p in postings if p[1]]))
        insert_entries(session, specs)
        session.connection().execute(
            text("UPDATE point_lots SET pending = :f WHERE id = :lot_id"),
            [{"lot_id": i, "f": False} for i, _, _ in lots])
        if owed:
            _settle_lots(session, specs, owed, run_id)
        released_total += sum(per_member.values())


def _settle_lots(session: Session, specs: list[EntrySpec], owed: dict[int, int], run_id: str) -> None:
    """Points that paid a debt leave the member's lots (oldest first) so lots still match `available`."""
    for spec in specs:
        assert spec.customer_id is not None
        settled = dict(spec.postings).get("owed", 0)
        if settled and spec.entry_id is not None:
            plan = plan_spend(session, spec.customer_id, settled, datetime.min.replace(tzinfo=spec.created_at.tzinfo))
            take_from_lots(session, plan, entry_id=spec.entry_id, spend_type="settle", spend_id=spec.entry_id)


# --- reads ----------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class BalanceView:
    available: int
    pending: int
    held: int
    owed: int
    expiring: dict[int, int]


def balance_view(session: Session, customer_id: int, now: datetime) -> BalanceView:
    balance = read_shown_balance(session, customer_id, now)
    windows = (30, 60, 90)
    row = session.execute(
        select(*[func.coalesce(func.sum(case((PointLot.expires_at <= now + timedelta(days=d), PointLot.remaining),
                                             else_=0)), 0) for d in windows])
        .where(PointLot.customer_id == customer_id, PointLot.remaining > 0, PointLot.expires_at > now)
    ).one()
    return BalanceView(available=balance.available, pending=balance.pending, held=balance.held,
                       owed=balance.owed_points, expiring={d: int(v) for d, v in zip(windows, row, strict=True)})


@dataclass(frozen=True, slots=True)
class HistoryItem:
    entry_id: int
    kind: str
    reason: str
    actor: str
    created_at: datetime
    transaction_id: int | None
    changes: dict[str, int]


def history(session: Session, customer_id: int, *, before: int | None, limit: int) -> list[HistoryItem]:
    read_balance(session, customer_id)  # 404 for an unknown customer
    query = select(LedgerEntry).where(LedgerEntry.customer_id == customer_id)
    if before is not None:
        query = query.where(LedgerEntry.id < before)
    entries = session.scalars(query.order_by(LedgerEntry.id.desc()).limit(limit)).all()
    changes: dict[int, dict[str, int]] = defaultdict(dict)
    if entries:
        for entry_id, account, amount in session.execute(
            select(LedgerPosting.entry_id, LedgerPosting.account, LedgerPosting.amount)
            .where(LedgerPosting.entry_id.in_([e.id for e in entries]), LedgerPosting.account.in_(MEMBER_ACCOUNTS))
        ):
            # The API shows the debt as a positive number of points owed.
            changes[entry_id][account] = changes[entry_id].get(account, 0) + (-amount if account == "owed" else amount)
    return [HistoryItem(e.id, e.kind, e.reason, e.actor, e.created_at, e.transaction_id, changes[e.id])
            for e in entries]


def require_points(available: int, points: int) -> None:
    if points > available:
        raise InsufficientPoints(f"the member has {available} points, {points} were asked for",
                                 available=available, requested=points)


def owed_settled_by(session: Session, transaction_id: int) -> int:
    """Points a purchase's earning paid towards the member's debt (shown again when the sale is replayed)."""
    settled = session.scalar(
        select(func.coalesce(func.sum(LedgerPosting.amount), 0))
        .join(LedgerEntry, LedgerEntry.id == LedgerPosting.entry_id)
        .where(LedgerEntry.transaction_id == transaction_id, LedgerEntry.kind == "earn",
               LedgerPosting.account == "owed")
    )
    return int(settled or 0)


def shortfall_of(session: Session, return_id: int) -> int:
    """Points a return could not take back (already spent) and so put on the member's debt."""
    owed = session.scalar(
        select(func.coalesce(func.sum(LedgerPosting.amount), 0))
        .join(LedgerEntry, LedgerEntry.id == LedgerPosting.entry_id)
        .where(LedgerEntry.transaction_id == return_id, LedgerEntry.kind == "reverse",
               LedgerPosting.account == "owed")
    )
    return -int(owed or 0)


@dataclass(frozen=True, slots=True)
class ManyCredit:
    customer_id: int
    points: int
    source_id: str
    reason: str


def credit_many(
    session: Session, program: ActiveProgram, credits: list[ManyCredit], *, kind: str, from_account: str,
    source_type: str, event: str, actor: str, earned_at: datetime, now: datetime,
) -> None:
    """`credit` for many members in a few statements (jobs); members who owe points settle their debt
    first, one by one through `credit` (rare). Ordered by member so concurrent writers lock alike."""
    credits = sorted((c for c in credits if c.points), key=lambda c: c.customer_id)
    if not credits:
        return
    owing = set(session.scalars(select(MemberBalance.customer_id).where(
        MemberBalance.customer_id.in_(sorted({c.customer_id for c in credits})), MemberBalance.owed < 0)))
    available_at = program.available_at(earned_at)
    pending = available_at > now
    specs: list[EntrySpec] = []
    lots: list[dict[str, object]] = []
    for c in credits:
        if c.customer_id in owing:
            credit(session, program, customer_id=c.customer_id, points=c.points, kind=kind, from_account=from_account,
                   source_type=source_type, source_id=c.source_id, event=event, reason=c.reason, actor=actor,
                   earned_at=earned_at, now=now)
            continue
        specs.append(EntrySpec(kind, c.customer_id, source_type, c.source_id, event, c.reason, actor, now,
                               [(from_account, -c.points), ("pending" if pending else "available", c.points)],
                               earned_delta=c.points))
        lots.append({"customer_id": c.customer_id, "transaction_id": None, "points": c.points,
                     "remaining": c.points, "pending": pending, "earned_at": earned_at, "available_at": available_at,
                     "expires_at": program.expires_at(earned_at)})
    insert_entries(session, specs)
    for spec, lot in zip(specs, lots, strict=True):
        lot["entry_id"] = spec.entry_id
    insert_lots(session, lots)
