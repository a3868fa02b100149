"""The one-round-trip sale writes exactly what the general path writes, row for row."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from loyalty.errors import NotFound
from loyalty.ledger.service import adjust
from loyalty.models import LedgerEntry, LedgerPosting, MemberBalance, PointLot, Transaction, TransactionLine
from loyalty.models.transactions import TransactionAward
from loyalty.programs.schemas import parse_program
from loyalty.programs.service import apply_program, default_program, program_at
from loyalty.transactions.schemas import PurchaseIn, ReturnIn
from loyalty.transactions.service import Recorded, record_purchase, register_return
from tests.factories import make_customer, make_store, purchase_body
from tests.readers import assert_ledger_ok, reading

WHEN = datetime(2026, 3, 14, 9, 30, tzinfo=UTC)


def _buy(session: Session, customer_id: int, amount: int, pos_id: str, *, hot_path: bool, store_id: str = "HN01",
         **extra: Any) -> Recorded:
    data = PurchaseIn.model_validate(purchase_body(customer_id, amount, store_id=store_id, pos_id=pos_id,
                                                   occurred_at=WHEN, **extra))
    recorded = record_purchase(session, data, actor="pos", hot_path=hot_path)
    session.commit()
    return recorded


def _reason(reason: str, customer_id: int, sale_no: dict[int, int]) -> str:
    """A reason with the member's POS-id tag and database ids of sales made comparable."""
    reason = reason.replace(f"{customer_id}-", "")
    return re.sub(r"purchase (\d+)\)", lambda m: f"purchase #{sale_no.get(int(m.group(1)))})", reason)


def _history(session: Session, customer_id: int) -> dict[str, Any]:
    """The member's ledger and sales with database ids replaced by their order of appearance."""
    with reading(session) as reader:
        sales = reader.scalars(select(Transaction).where(Transaction.customer_id == customer_id)
                               .order_by(Transaction.id)).all()
        sale_no = {tx.id: n for n, tx in enumerate(sales)}
        entries = reader.scalars(select(LedgerEntry).where(LedgerEntry.customer_id == customer_id)
                                 .order_by(LedgerEntry.id)).all()
        entry_no = {e.id: n for n, e in enumerate(entries)}
        postings = reader.scalars(select(LedgerPosting).where(LedgerPosting.entry_id.in_(entry_no))
                                  .order_by(LedgerPosting.entry_id, LedgerPosting.account)).all()
        lots = reader.scalars(select(PointLot).where(PointLot.customer_id == customer_id).order_by(PointLot.id)).all()
        lines = reader.scalars(select(TransactionLine).where(TransactionLine.transaction_id.in_(sale_no))
                               .order_by(TransactionLine.transaction_id, TransactionLine.line_no)).all()
        awards = reader.scalars(select(TransactionAward).where(TransactionAward.transaction_id.in_(sale_no))
                                .order_by(TransactionAward.transaction_id, TransactionAward.award_no)).all()
        balance = reader.get(MemberBalance, customer_id)
        assert balance is not None
        return {
            "sales": [(tx.pos_transaction_id.split("-", 1)[1], tx.kind, tx.occurred_at, tx.amount, tx.currency,
                       tx.points_earned, tx.points_redeemed, tx.returned_amount, tx.points_reversed,
                       tx.points_restored) for tx in sales],
            "lines": [(sale_no[x.transaction_id], x.line_no, x.sku, x.category, x.quantity, x.unit_price)
                      for x in lines],
            "entries": [(e.kind, e.source_type, e.event, _reason(e.reason, customer_id, sale_no), e.actor,
                         sale_no.get(e.transaction_id or -1)) for e in entries],
            "postings": [(entry_no[p.entry_id], p.account, p.amount, p.customer_id == customer_id
                          if p.customer_id is not None else None) for p in postings],
            "lots": [(entry_no[lot.entry_id], sale_no.get(lot.transaction_id or -1), lot.points, lot.remaining,
                      lot.pending, lot.earned_at, lot.available_at, lot.expires_at) for lot in lots],
            "awards": [(sale_no[a.transaction_id], a.award_no, a.rule_id, a.name, a.points) for a in awards],
            "balance": (balance.available, balance.pending, balance.held, balance.owed, balance.earned_total),
        }


def _shop_day(session: Session, customer_id: int, *, hot_path: bool) -> list[dict[str, Any]]:
    """A day of sales for one member, including a debt from a return that later earnings settle."""
    tag = f"{customer_id}-"
    answers = []
    lines = [{"sku": "KEM-01", "category": "ice cream", "quantity": 2, "unit_price": 125_000},
             {"sku": "SUA-02", "category": None, "quantity": 1, "unit_price": 750_000}]
    for pos, amount, extra in [("a", 1_000_000, {"lines": lines}), ("b", 99_000, {}), ("c", 250_000, {}),
                               ("d", 1_500_000, {"store_id": "OUT1"})]:
        answers.append(_buy(session, customer_id, amount, tag + pos, hot_path=hot_path, **extra).body)
    # Spend all but 20 points, then return sale "a" (100 points): the member owes 80.
    available = session.get(MemberBalance, customer_id)
    assert available is not None
    adjust(session, program_at(session), customer_id=customer_id, points=20 - available.available,
           reason="gift card", actor="admin", source_id=f"gift-{customer_id}", now=WHEN + timedelta(minutes=1))
    session.commit()
    first = answers[0]
    register_return(session, first.id, ReturnIn(transaction_id=tag + "r", amount=1_000_000,
                                                occurred_at=WHEN + timedelta(minutes=2)), actor="pos")
    session.commit()
    for pos, amount in [("e", 500_000), ("f", 1_000_000), ("g", 300_000)]:
        answers.append(_buy(session, customer_id, amount, tag + pos, hot_path=hot_path).body)
    # A POS retry answers the first result again and writes nothing.
    replay = _buy(session, customer_id, 500_000, tag + "e", hot_path=hot_path)
    assert replay.replayed
    answers.append(replay.body)
    return [a.model_dump(exclude={"id", "transaction_id", "customer_id"}) for a in answers]


def test_both_paths_write_the_same_ledger(session: Session) -> None:
    make_store(session, "HN01", kind="retail")
    make_store(session, "OUT1", kind="outlet")
    fast, general = make_customer(session), make_customer(session)
    fast_answers = _shop_day(session, fast.id, hot_path=True)
    general_answers = _shop_day(session, general.id, hot_path=False)
    assert fast_answers == general_answers
    assert [a["owed_settled"] for a in fast_answers] == [0, 0, 0, 0, 50, 30, 0, 50]
    assert _history(session, fast.id) == _history(session, general.id)
    assert_ledger_ok(session)


def test_both_paths_write_the_same_ledger_under_earn_rules(session: Session) -> None:
    make_store(session, "HN01", kind="retail")
    make_store(session, "OUT1", kind="outlet")
    fast, general = make_customer(session, birthday=date(1990, 3, 2)), make_customer(session, birthday=date(1991, 3, 9))
    definition = default_program().definition.model_dump(mode="json")
    definition["segments"] = {"vip": [fast.id, general.id]}
    definition["rules"] = [
        {"id": "welcome", "name": "Welcome", "when": {"first_purchase": True}, "give": {"bonus": 30}},
        {"id": "birthday", "name": "Birthday x2", "priority": -1, "when": {"birthday_month": True},
         "give": {"multiplier": 2}},
        {"id": "ice-cream", "name": "Ice cream", "when": {"categories": ["ice cream"]},
         "give": {"points_per": {"points": 1, "per_amount": 10_000}}, "cap": {"per_transaction": 15}},
        {"id": "outlet-vip", "name": "Outlet VIP", "priority": 5, "exclusive": True,
         "when": {"store_kinds": ["outlet"], "segments": ["vip"]},
         "give": {"points_per": {"points": 8, "per_amount": 100_000}}},
    ]
    apply_program(session, parse_program(definition), "test", actor="test",
                  effective_from=datetime(2000, 1, 1, tzinfo=UTC))
    session.commit()
    fast_answers = _shop_day(session, fast.id, hot_path=True)
    general_answers = _shop_day(session, general.id, hot_path=False)
    assert fast_answers == general_answers
    assert [a["points_earned"] for a in fast_answers] == [30 + 100 + 15 + 115, 0, 20 + 20, 120, 100, 200, 60,
                                                          100]
    assert _history(session, fast.id) == _history(session, general.id)
    assert_ledger_ok(session)


def test_an_unknown_member_gets_a_404_and_nothing_is_written(session: Session) -> None:
    make_store(session)
    with pytest.raises(NotFound, match="customer 999999 does not exist"):
        _buy(session, 999_999, 500_000, "x-1", hot_path=True)
    session.rollback()
    with reading(session) as reader:
        assert reader.scalars(select(Transaction)).all() == []
