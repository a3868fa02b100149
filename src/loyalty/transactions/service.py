"""Recording purchases and returns: one transaction each, exactly once per (store, POS id)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import TypeAdapter
from sqlalchemy import Engine, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from loyalty.bulk import insert_rows
from loyalty.db import database_key, engine_key
from loyalty.errors import Conflict, NotFound, ValidationFailed
from loyalty.ledger import service as ledger
from loyalty.ledger.repository import Balance, read_balance, read_shown_balance
from loyalty.models import Hold, Transaction, TransactionLine
from loyalty.models.transactions import TransactionAward
from loyalty.programs import caps
from loyalty.programs.rules import NOTHING, Award, Earned, MemberFacts
from loyalty.programs.service import ActiveProgram, program_at
from loyalty.stamps import service as stamps
from loyalty.stores.service import store_kind
from loyalty.tiers import service as tiers
from loyalty.timeutil import as_utc, utcnow
from loyalty.transactions import effects, hotpath
from loyalty.transactions.schemas import AwardOut, BalanceOut, Line, PurchaseIn, PurchaseOut, ReturnIn, ReturnOut


def balance_out(balance: Balance | None) -> BalanceOut | None:
    if balance is None:
        return None
    return BalanceOut(available=balance.available, pending=balance.pending, held=balance.held,
                      owed=balance.owed_points)


# A POS clock may run a little fast; a sale dated further ahead, or before 1970, is a client error.
CLOCK_SKEW = timedelta(hours=24)
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)


def check_moment(moment: datetime, now: datetime, name: str = "occurred_at") -> None:
    # Aware datetimes compare without converting, so even year 1 or 9999 cannot overflow here.
    if not EARLIEST <= moment <= now + CLOCK_SKEW:
        raise ValidationFailed(f"{name} {moment.isoformat()} is not a plausible time: it must be after "
                               "1970 and at most 24 hours ahead of now")


def _insert_ignoring_duplicate(session: Session, values: dict[str, object]) -> int | None:
    """Inserts the transaction unless (store, POS id) exists; None means it was already recorded."""
    dialect = session.get_bind().dialect.name
    factory = pg_insert if dialect == "postgresql" else sqlite_insert
    statement = (factory(Transaction).values(**values)
                 .on_conflict_do_nothing(index_elements=["store_id", "pos_transaction_id"])
                 .returning(Transaction.id))
    return session.execute(statement).scalar_one_or_none()


def _insert_lines(session: Session, transaction_id: int, lines: list[Line]) -> None:
    if lines:
        insert_rows(session, TransactionLine, [
            {"transaction_id": transaction_id, "line_no": n, "sku": line.sku, "category": line.category,
             "quantity": line.quantity, "unit_price": line.unit_price}
            for n, line in enumerate(lines, start=1)
        ])


def _insert_awards(session: Session, transaction_id: int, awards: tuple[Award, ...]) -> None:
    if awards:
        insert_rows(session, TransactionAward, [
            {"transaction_id": transaction_id, "award_no": n, "rule_id": award.rule_id, "name": award.name,
             "points": award.points}
            for n, award in enumerate(awards, start=1)
        ])


def _awards_out(awards: tuple[Award, ...]) -> list[AwardOut]:
    return [AwardOut(rule_id=a.rule_id, name=a.name, points=a.points) for a in awards]


def _member_facts(session: Session, program: ActiveProgram, customer_id: int | None,
                  at: datetime) -> MemberFacts | None:
    """Birthday month, first purchase and tier, in one query, only for programs with rules or perks
    that need them."""
    if customer_id is None or not program.earn.needs_member:
        return None
    # None for an unknown customer: the write that follows answers 404.
    return hotpath.read_member_facts(session, customer_id, at=at, base_tier=program.earn.base_tier,
                                     lock=program.earn.needs_first_purchase)


def _existing(session: Session, store_id: str, pos_id: str) -> Transaction:
    found = session.scalar(select(Transaction).where(Transaction.store_id == store_id,
                                                     Transaction.pos_transaction_id == pos_id))
    assert found is not None
    return found


@dataclass(frozen=True, slots=True)
class Recorded:
    """What the endpoint answers; `replayed` is true when the POS sent a sale it had already sent."""

    body: PurchaseOut
    replayed: bool


def record_purchase(session: Session, data: PurchaseIn, *, actor: str, hot_path: bool = True) -> Recorded:
    """Records a sale and its points; `hot_path=False` forces the general path (tests compare the two)."""
    now = utcnow()
    check_moment(data.occurred_at, now)
    occurred_at = as_utc(data.occurred_at)
    kind = store_kind(session, data.store_id)
    program = program_at(session, occurred_at)
    _note_at_once(session, program)
    if data.currency != program.definition.currency:
        raise ValidationFailed(f"this program runs in {program.definition.currency}, not {data.currency}")
    point_value = program.definition.redemption.point_value
    member = _member_facts(session, program, data.customer_id, now)
    if hot_path and data.customer_id is not None and data.hold_id is None and not data.redeem_points:
        earned_at = min(occurred_at, now)  # a POS clock running a few minutes fast must not park points
        if program.available_at(earned_at) <= now:
            return _record_simple_sale(session, data, program, kind, member, actor=actor, now=now,
                                       occurred_at=occurred_at, earned_at=earned_at)
    if data.customer_id is not None:
        read_balance(session, data.customer_id)  # a clear 404 before anything is written
    # Without a hold, what the sale earns and spends is known before it is written, so the row
    # is inserted complete (one statement fewer on the hot path).
    known = data.hold_id is None
    if known and data.redeem_points:
        _check_redemption(program, data.amount, data.redeem_points)
    planned = _earned(program, kind, data, data.redeem_points, member) if known else NOTHING
    # Rules capped per member per day or in total claim from their counters (only when they pay).
    planned, claims = caps.apply(session, program.earn, planned, customer_id=data.customer_id,
                                 occurred_at=occurred_at)

    transaction_id = _insert_ignoring_duplicate(session, {
        "store_id": data.store_id, "pos_transaction_id": data.transaction_id, "kind": "purchase",
        "customer_id": data.customer_id, "occurred_at": occurred_at, "amount": data.amount,
        "currency": data.currency, "points_earned": planned.points,
        "points_redeemed": data.redeem_points if known else 0,
        "returned_amount": 0, "points_reversed": 0, "points_restored": 0, "created_at": now,
    })
    if transaction_id is None:
        caps.give_back(session, claims)  # a retried sale: what it claimed goes back
        return Recorded(_replay(session, data), replayed=True)
    _insert_lines(session, transaction_id, data.lines)

    redeemed = data.redeem_points
    if data.hold_id is not None:
        _check_hold(session, data)
        hold = ledger.capture_hold(session, data.hold_id, points=None, actor=actor, now=now,
                                   transaction_id=transaction_id)
        redeemed = hold.points
        _check_redemption(program, data.amount, redeemed)
    if redeemed and data.hold_id is None:
        assert data.customer_id is not None
        ledger.spend(session, customer_id=data.customer_id, points=redeemed, kind="redeem",
                     to_account="redeemed", source_type="transaction", source_id=str(transaction_id),
                     event="redeem", reason=f"points paid for purchase {data.transaction_id}", actor=actor,
                     now=now, spend_type="transaction", spend_id=transaction_id,
                     transaction_id=transaction_id)
    outcome = planned
    if not known:
        outcome, _ = caps.apply(session, program.earn, _earned(program, kind, data, redeemed, member),
                                customer_id=data.customer_id, occurred_at=occurred_at)
    earned = outcome.points
    _insert_awards(session, transaction_id, outcome.breakdown)
    settled = 0
    balance: Balance | None = None
    if earned:
        assert data.customer_id is not None
        result = ledger.credit(
            session, program, customer_id=data.customer_id, points=earned, kind="earn", from_account="issued",
            source_type="transaction", source_id=str(transaction_id), event="earn",
            reason=_earn_reason(data), actor=actor,
            # A POS clock running a few minutes fast must not park the points as pending.
            earned_at=min(occurred_at, now), now=now, transaction_id=transaction_id,
        )
        settled = result.settled_owed
    if not known and (earned or redeemed):
        session.execute(update(Transaction).where(Transaction.id == transaction_id)
                        .values(points_earned=earned, points_redeemed=redeemed))
    given: list[effects.InstantReward] = []
    if data.customer_id is not None:
        given = effects.after_purchase(session, program, effects.Sale(
            transaction_id=transaction_id, pos_transaction_id=data.transaction_id, store_id=data.store_id,
            store_kind=kind, customer_id=data.customer_id, occurred_at=occurred_at, amount=data.amount,
            lines=data.lines, points_earned=earned, actor=actor, now=now))
        # Read after the effects: the receipt's balance counts the points its bonuses and goals gave.
        balance = read_shown_balance(session, data.customer_id, now)
    return Recorded(PurchaseOut(
        id=transaction_id, store_id=data.store_id, transaction_id=data.transaction_id,
        customer_id=data.customer_id, occurred_at=occurred_at, amount=data.amount, currency=data.currency,
        points_earned=earned, points_redeemed=redeemed, redeemed_value=redeemed * point_value,
        owed_settled=settled, balance=balance_out(balance), points_breakdown=_awards_out(outcome.breakdown),
        instant_rewards=effects.rewards_out(session, given),
    ), replayed=False)


def at_once_program(program: ActiveProgram) -> bool:
    """Whether a program's simple sales are decided in Python alone, before anything is read or
    written: no rule needs member facts (read, some under lock), no counted cap or budget, and
    nothing happens after the sale (tiers, stamps, bonuses, referrals, goals)."""
    return not (program.earn.needs_member or program.earn.counted_caps or effects.acts_on_purchases(program))


# Per database, at_once_program of the program this process's last sale ran under: the endpoint
# skips trying a sale at once (an AUTOCOMMIT session and the program's look-up, ~4 % of a sale's
# CPU under a program with tiers) while the answer is no. Only a hint: the at-once path checks
# everything itself and the general path is always right, so a stale answer costs one wasted try
# or one sale the slower way, and the next sale corrects it.
_at_once_hints: dict[str, bool] = {}


def worth_trying_at_once(engine: Engine) -> bool:
    return _at_once_hints.get(engine_key(engine), True)


def _note_at_once(session: Session, program: ActiveProgram) -> bool:
    """Notes (and answers) at_once_program for this database's next sale."""
    verdict = _at_once_hints[database_key(session)] = at_once_program(program)
    return verdict


_JSON_TIME = TypeAdapter(datetime)


def record_purchase_at_once(session: Session, data: PurchaseIn, *, actor: str,
                            remember: Mapping[str, Any] | None) -> hotpath.WrittenAtOnce | None:
    """The common sale as one autocommitted statement on PostgreSQL (`session` must be AUTOCOMMIT),
    with the Idempotency-Key's record `remember` and the response written by it: the new id and the
    response's JSON, or None having written nothing when the sale is not provably what `record_purchase` would write
    in the same way (see at_once_program; a member who owes points, a recorded POS id, points paid,
    pending points, an anonymous sale). Errors raise, writing nothing.
    tests/transactions/test_at_once.py checks both write the same rows and answer the same."""
    if (data.customer_id is None or data.hold_id is not None or data.redeem_points
            or session.get_bind().dialect.name != "postgresql"):
        return None
    now = utcnow()
    check_moment(data.occurred_at, now)
    occurred_at = as_utc(data.occurred_at)
    kind = store_kind(session, data.store_id)
    program = program_at(session, occurred_at)
    allowed = _note_at_once(session, program)
    earned_at = min(occurred_at, now)
    if (data.currency != program.definition.currency or not allowed
            or program.available_at(earned_at) > now):
        return None
    earned = _earned(program, kind, data, 0, None)
    breakdown = [{"rule_id": a.rule_id, "name": a.name, "points": a.points} for a in earned.breakdown]
    receipt = hotpath.Receipt(
        head='{"id":',
        middle=(f',"store_id":{_json(data.store_id)},"transaction_id":{_json(data.transaction_id)},'
                f'"customer_id":{data.customer_id},"occurred_at":{_JSON_TIME.dump_json(occurred_at).decode()},'
                f'"amount":{data.amount},"currency":{_json(data.currency)},"points_earned":{earned.points},'
                '"points_redeemed":0,"redeemed_value":0,"owed_settled":0,"balance":{"available":'),
        tail=f'}},"points_breakdown":{_json(breakdown)},"instant_rewards":[]}}',
        status=201)
    return hotpath.write_sale_at_once(session, hotpath.SimpleSale(
        store_id=data.store_id, pos_transaction_id=data.transaction_id, customer_id=data.customer_id,
        occurred_at=occurred_at, amount=data.amount, currency=data.currency, points=earned.points, lines=data.lines,
        awards=earned.breakdown, reason=_earn_reason(data), actor=actor, now=now, earned_at=earned_at,
        available_at=program.available_at(earned_at), expires_at=program.expires_at(earned_at)), receipt, remember)


def _json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _record_simple_sale(
    session: Session, data: PurchaseIn, program: ActiveProgram, store_kind_: str, member: MemberFacts | None, *,
    actor: str, now: datetime, occurred_at: datetime, earned_at: datetime,
) -> Recorded:
    """A member's sale paid in money that earns available points: the hot path, one round trip."""
    assert data.customer_id is not None
    outcome, claims = caps.apply(session, program.earn, _earned(program, store_kind_, data, 0, member),
                                 customer_id=data.customer_id, occurred_at=occurred_at)
    points = outcome.points
    reason = _earn_reason(data)
    # PostgreSQL: the sale's statement also stores the member's tier metric and the sale's stamps (two
    # round trips fewer); the stamps only when no stamp rule reads member facts (read after the upgrade).
    postgres = session.get_bind().dialect.name == "postgresql"
    tier_metric = (tiers.tier_metric(program, occurred_at, amount=data.amount, points=points)
                   if postgres and program.definition.tiers is not None else None)
    earned_stamps = (stamps.stamps_before_sale(program, store_id=data.store_id, store_kind=store_kind_,
                                               amount=data.amount, occurred_at=occurred_at,
                                               customer_id=data.customer_id, lines=data.lines)
                     if postgres and program.definition.stamp_cards else None)
    written = hotpath.write_simple_sale(session, hotpath.SimpleSale(
        store_id=data.store_id, pos_transaction_id=data.transaction_id, customer_id=data.customer_id,
        occurred_at=occurred_at, amount=data.amount, currency=data.currency, points=points, lines=data.lines,
        awards=outcome.breakdown, reason=reason, actor=actor, now=now, earned_at=earned_at,
        available_at=program.available_at(earned_at), expires_at=program.expires_at(earned_at),
        tier_metric=tier_metric,
        stamps=hotpath.StampsToAdd(stamps.stamps_json(program, earned_stamps), program.version)
        if earned_stamps else None))
    if written.outcome is hotpath.Outcome.UNKNOWN_CUSTOMER:
        raise NotFound(f"customer {data.customer_id} does not exist")
    if written.outcome is hotpath.Outcome.DUPLICATE:
        caps.give_back(session, claims)  # a retried sale: what it claimed goes back
        return Recorded(_replay(session, data), replayed=True)
    assert written.transaction_id is not None
    balance, settled = written.balance, 0
    if written.outcome is hotpath.Outcome.NEEDS_CREDIT and points:
        # The member owes points from an earlier return: the ledger settles the debt first.
        result = ledger.credit(
            session, program, customer_id=data.customer_id, points=points, kind="earn", from_account="issued",
            source_type="transaction", source_id=str(written.transaction_id), event="earn", reason=reason,
            actor=actor, earned_at=earned_at, now=now, transaction_id=written.transaction_id)
        settled = result.settled_owed
    given = effects.after_purchase(session, program, effects.Sale(
        transaction_id=written.transaction_id, pos_transaction_id=data.transaction_id, store_id=data.store_id,
        store_kind=store_kind_, customer_id=data.customer_id, occurred_at=occurred_at, amount=data.amount,
        lines=data.lines, points_earned=points, actor=actor, now=now), tier_noted=written.tier_noted,
        stamped=None if earned_stamps is None else (earned_stamps, written.stamped or []))
    if balance is None or any(r.points for r in given):
        # The sale's statement did not update the balance (a debt was settled through the ledger), or
        # bonuses and goals gave points after it: the receipt shows the balance as it now stands.
        balance = read_shown_balance(session, data.customer_id, now)
    return Recorded(PurchaseOut(
        id=written.transaction_id, store_id=data.store_id, transaction_id=data.transaction_id,
        customer_id=data.customer_id, occurred_at=occurred_at, amount=data.amount, currency=data.currency,
        points_earned=points, points_redeemed=0, redeemed_value=0, owed_settled=settled,
        balance=balance_out(balance), points_breakdown=_awards_out(outcome.breakdown),
        instant_rewards=effects.rewards_out(session, given),
    ), replayed=False)


def _earn_reason(data: PurchaseIn) -> str:
    return f"purchase {data.transaction_id} at {data.store_id}"


def _earned(program: ActiveProgram, store_kind_: str, data: PurchaseIn, redeemed: int,
            member: MemberFacts | None) -> Earned:
    """Points pay part of the bill; only the part paid in money earns points."""
    return program.earn.evaluate(
        store_id=data.store_id, store_kind=store_kind_, amount=data.amount,
        paid=data.amount - redeemed * program.definition.redemption.point_value, occurred_at=data.occurred_at,
        customer_id=data.customer_id, lines=data.lines, member=member)


def _check_redemption(program: ActiveProgram, amount: int, redeemed: int) -> None:
    if not redeemed:
        return
    limit = program.max_redeemable(amount)
    if redeemed < program.definition.redemption.min_points:
        raise ValidationFailed(f"at least {program.definition.redemption.min_points} points per redemption")
    if redeemed > limit:
        raise ValidationFailed(f"at most {limit} points can pay for a purchase of {amount}", max_points=limit)


def _check_hold(session: Session, data: PurchaseIn) -> None:
    """A hold pays only for its own customer's purchase, at the store that made it."""
    hold = session.get(Hold, data.hold_id)
    if hold is None or hold.customer_id != data.customer_id:
        raise ValidationFailed(f"hold {data.hold_id} is not a hold of customer {data.customer_id}")
    if hold.store_id is not None and hold.store_id != data.store_id:
        raise ValidationFailed(f"hold {data.hold_id} was made at store {hold.store_id}, not {data.store_id}")


def _same_payment(session: Session, existing: Transaction, data: PurchaseIn) -> bool:
    if data.hold_id is not None:
        hold = session.get(Hold, data.hold_id)
        return hold is not None and hold.transaction_id == existing.id
    return existing.points_redeemed == data.redeem_points


def _replay(session: Session, data: PurchaseIn) -> PurchaseOut:
    existing = _existing(session, data.store_id, data.transaction_id)
    same = (existing.customer_id == data.customer_id and existing.amount == data.amount
            and existing.kind == "purchase" and as_utc(existing.occurred_at) == as_utc(data.occurred_at)
            and existing.currency == data.currency and _same_payment(session, existing, data))
    if not same:
        raise Conflict(
            f"transaction {data.transaction_id} at store {data.store_id} was already recorded with different "
            "details (customer, amount, time or points paid); use a new transaction_id for a new sale",
            existing_id=existing.id,
        )
    return purchase_out(session, existing)


def purchase_out(session: Session, tx: Transaction) -> PurchaseOut:
    program = program_at(session, tx.occurred_at)
    balance = read_shown_balance(session, tx.customer_id, utcnow()) if tx.customer_id is not None else None
    return PurchaseOut(
        id=tx.id, store_id=tx.store_id, transaction_id=tx.pos_transaction_id, customer_id=tx.customer_id,
        occurred_at=tx.occurred_at, amount=tx.amount, currency=tx.currency, points_earned=tx.points_earned,
        points_redeemed=tx.points_redeemed,
        redeemed_value=tx.points_redeemed * program.definition.redemption.point_value,
        owed_settled=ledger.owed_settled_by(session, tx.id) if tx.points_earned else 0,
        balance=balance_out(balance), points_breakdown=_stored_awards(session, tx) if tx.points_earned else [],
        instant_rewards=effects.stored_rewards(session, tx.id) if tx.customer_id is not None else [],
    )


def _stored_awards(session: Session, tx: Transaction) -> list[AwardOut]:
    rows = session.execute(select(TransactionAward.rule_id, TransactionAward.name, TransactionAward.points)
                           .where(TransactionAward.transaction_id == tx.id).order_by(TransactionAward.award_no))
    return [AwardOut(rule_id=rule_id, name=name, points=points) for rule_id, name, points in rows]


def get_transaction(session: Session, transaction_id: int) -> Transaction:
    tx = session.get(Transaction, transaction_id)
    if tx is None:
        raise NotFound(f"transaction {transaction_id} does not exist")
    return tx


def return_shares(tx: Transaction, returned_after: int) -> tuple[int, int]:
    """Cumulative points to reverse and to restore once `returned_after` of the amount is back.

    Both are computed on the running total, so partial returns add up to exactly the purchase's
    points when everything is returned, and rounding never favours a return over a purchase.
    """
    if tx.amount == 0:
        return tx.points_earned, tx.points_redeemed
    kept = tx.points_earned * (tx.amount - returned_after) // tx.amount
    return tx.points_earned - kept, tx.points_redeemed * returned_after // tx.amount


@dataclass(frozen=True, slots=True)
class RecordedReturn:
    """What the endpoint answers; `replayed` is true when the POS sent a return it had already sent."""

    body: ReturnOut
    replayed: bool


def record_return(session: Session, purchase_id: int, data: ReturnIn, *, actor: str,
                  allowed_store: str | None = None) -> ReturnOut:
    return register_return(session, purchase_id, data, actor=actor, allowed_store=allowed_store).body


def register_return(session: Session, purchase_id: int, data: ReturnIn, *, actor: str,
                    allowed_store: str | None = None) -> RecordedReturn:
    """Records a return exactly once per (store, POS id); a retry gets the first result back."""
    now = utcnow()
    check_moment(data.occurred_at, now)
    purchase = session.scalar(select(Transaction).where(Transaction.id == purchase_id).with_for_update())
    if purchase is None or purchase.kind != "purchase":
        raise NotFound(f"purchase {purchase_id} does not exist")
    if allowed_store is not None and purchase.store_id != allowed_store:
        raise NotFound(f"purchase {purchase_id} does not exist")
    store_id = data.store_id or purchase.store_id
    if allowed_store is not None and store_id != allowed_store:
        raise ValidationFailed("a store key records returns at its own store only")
    store_kind(session, store_id)
    duplicate = session.scalar(select(Transaction).where(Transaction.store_id == store_id,
                                                         Transaction.pos_transaction_id == data.transaction_id))
    if duplicate is not None:
        if duplicate.original_id == purchase.id and duplicate.amount == data.amount:
            return RecordedReturn(_return_out(session, duplicate, purchase), replayed=True)
        raise Conflict(f"transaction {data.transaction_id} at store {store_id} was already recorded")
    left = purchase.amount - purchase.returned_amount
    if data.amount > left:
        raise ValidationFailed(f"only {left} of purchase {purchase.pos_transaction_id} can still be returned",
                               returnable=left)
    returned_after = purchase.returned_amount + data.amount
    reverse_total, restore_total = return_shares(purchase, returned_after)
    reverse, restore = reverse_total - purchase.points_reversed, restore_total - purchase.points_restored
    return_tx = Transaction(
        store_id=store_id, pos_transaction_id=data.transaction_id, kind="return", original_id=purchase.id,
        customer_id=purchase.customer_id, occurred_at=as_utc(data.occurred_at), amount=data.amount,
        currency=purchase.currency, points_earned=0, points_redeemed=0, returned_amount=0,
        points_reversed=reverse, points_restored=restore, created_at=now,
    )
    session.add(return_tx)
    session.flush()
    _insert_lines(session, return_tx.id, data.lines)
    if purchase.customer_id is not None and (reverse or restore):
        ledger.reverse_for_return(session, customer_id=purchase.customer_id, purchase_id=purchase.id,
                                           return_id=return_tx.id, reverse=reverse, restore=restore, actor=actor,
                                           now=now)
    purchase.returned_amount = returned_after
    purchase.points_reversed, purchase.points_restored = reverse_total, restore_total
    session.flush()
    if purchase.customer_id is not None:
        effects.after_return(session, program_at(session, purchase.occurred_at), effects.Returned(
            return_id=return_tx.id, purchase_id=purchase.id, customer_id=purchase.customer_id, store_id=store_id,
            occurred_at=as_utc(data.occurred_at), amount=data.amount, lines=data.lines, actor=actor, now=now))
    return RecordedReturn(_return_out(session, return_tx, purchase), replayed=False)


def _return_out(session: Session, return_tx: Transaction, purchase: Transaction) -> ReturnOut:
    balance = (read_shown_balance(session, purchase.customer_id, utcnow())
               if purchase.customer_id is not None else None)
    return ReturnOut(
        id=return_tx.id, purchase_id=purchase.id, transaction_id=return_tx.pos_transaction_id,
        amount=return_tx.amount, points_reversed=return_tx.points_reversed,
        points_restored=return_tx.points_restored, shortfall=ledger.shortfall_of(session, return_tx.id),
        balance=balance_out(balance),
    )
