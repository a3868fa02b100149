"""The CSV import's set-based path leaves exactly what recording the same sales one by one leaves.

The same purchases and returns go to two twin sets of members: one set through a CSV import,
the other through the live service (record_purchase / record_return, in file order: a batch's
purchases, then its returns). Balances, lots, postings and award rows must come out the same.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from loyalty.imports.pipeline import import_transaction_file
from loyalty.ledger.verify import verify
from loyalty.models import LedgerEntry, LedgerPosting, MemberBalance, PointLot, Transaction
from loyalty.models.transactions import TransactionAward
from loyalty.transactions.schemas import PurchaseIn, ReturnIn
from loyalty.transactions.service import record_purchase, record_return
from tests.factories import make_customer, make_store, next_phone

HEADER = "transaction_id,store_id,customer,occurred_at,amount,type,original_transaction_id\n"
MEMBERS = 3
_runs = itertools.count(1)

# (member, store, amount, days ago, returned parts as per-mille of the amount)
sale = st.tuples(
    st.integers(0, MEMBERS - 1), st.sampled_from(["HN01", "OUT1"]),
    st.integers(0, 3_000).map(lambda k: k * 1_000), st.integers(0, 400),
    st.lists(st.integers(1, 1_000), max_size=2),
)


def _returns(amount: int, parts: list[int]) -> list[int]:
    """Returned amounts that never exceed what is left of the purchase."""
    left, out = amount, []
    for per_mille in parts:
        part = min(left, max(1, amount * per_mille // 1_000))
        if part <= 0:
            break
        out.append(part)
        left -= part
    return out


def _member_state(session: Session, customer_id: int, prefix: str) -> dict[str, object]:
    balance = session.execute(select(MemberBalance.available, MemberBalance.pending, MemberBalance.held,
                                     MemberBalance.owed, MemberBalance.earned_total)
                              .where(MemberBalance.customer_id == customer_id)).one()
    lots = sorted(session.execute(select(PointLot.points, PointLot.remaining, PointLot.pending, PointLot.earned_at,
                                         PointLot.available_at, PointLot.expires_at)
                                  .where(PointLot.customer_id == customer_id)).all())
    postings = dict(session.execute(
        select(LedgerPosting.account, func.sum(LedgerPosting.amount))
        .join(LedgerEntry, LedgerEntry.id == LedgerPosting.entry_id)
        .where(LedgerEntry.customer_id == customer_id).group_by(LedgerPosting.account)).all())
    entries = sorted(session.execute(select(LedgerEntry.kind, LedgerEntry.event, func.count())
                                     .where(LedgerEntry.customer_id == customer_id)
                                     .group_by(LedgerEntry.kind, LedgerEntry.event)).all())
    sales = sorted(
        (pos_id.removeprefix(prefix), kind, amount, earned, returned, reversed_)
        for pos_id, kind, amount, earned, returned, reversed_ in session.execute(
            select(Transaction.pos_transaction_id, Transaction.kind, Transaction.amount, Transaction.points_earned,
                   Transaction.returned_amount, Transaction.points_reversed)
            .where(Transaction.customer_id == customer_id)))
    awards = sorted(
        (pos_id.removeprefix(prefix), award_no, rule_id, name, points)
        for pos_id, award_no, rule_id, name, points in session.execute(
            select(Transaction.pos_transaction_id, TransactionAward.award_no, TransactionAward.rule_id,
                   TransactionAward.name, TransactionAward.points)
            .join(Transaction, Transaction.id == TransactionAward.transaction_id)
            .where(Transaction.customer_id == customer_id)))
    return {"balance": tuple(balance), "lots": lots, "postings": postings, "entries": entries, "sales": sales,
            "awards": awards}


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sales=st.lists(sale, min_size=1, max_size=10))
def test_import_matches_recording_one_by_one(
    engine: Engine, session: Session, tmp_path: Path,
    sales: list[tuple[int, str, int, int, list[int]]],
) -> None:
    run = next(_runs)
    make_store(session, "HN01", "retail")
    make_store(session, "OUT1", "outlet")
    phones = [next_phone() for _ in range(MEMBERS)]
    imported = [make_customer(session, phone=phone) for phone in phones]
    live = [make_customer(session) for _ in range(MEMBERS)]
    now = datetime.now(UTC).replace(microsecond=0)
    lines = HEADER
    returns: list[tuple[int, str, str, str, int]] = []  # (member, store, pos id, purchase pos id, amount)
    purchase_ids: dict[str, int] = {}
    for n, (member, store, amount, days_ago, parts) in enumerate(sales):
        moment = (now - timedelta(days=days_ago, minutes=n)).isoformat()
        pos_id = f"P{n}"
        lines += f"I{run}-{pos_id},{store},{phones[member]},{moment},{amount},purchase,\n"
        recorded = record_purchase(session, PurchaseIn.model_validate({
            "store_id": store, "transaction_id": f"L{run}-{pos_id}", "customer_id": live[member].id,
            "occurred_at": moment, "amount": amount, "currency": "VND"}), actor="import")
        session.commit()
        purchase_ids[pos_id] = recorded.body.id
        for k, part in enumerate(_returns(amount, parts)):
            returns.append((member, store, f"{pos_id}R{k}", pos_id, part))
    back = (now - timedelta(minutes=1)).isoformat()
    for _member, store, pos_id, original, part in returns:
        lines += f"I{run}-{pos_id},{store},,{back},{part},return,I{run}-{original}\n"
        record_return(session, purchase_ids[original], ReturnIn.model_validate(
            {"transaction_id": f"L{run}-{pos_id}", "occurred_at": back, "amount": part}), actor="import")
        session.commit()
    path = tmp_path / f"run{run}.csv"
    path.write_text(lines, encoding="utf-8")

    report = import_transaction_file(engine, path)
    assert (report.rejected, report.imported) == (0, len(sales) + len(returns)), report.errors

    session.rollback()
    for twin_imported, twin_live in zip(imported, live, strict=True):
        assert _member_state(session, twin_imported.id, f"I{run}-") == _member_state(session, twin_live.id, f"L{run}-")
    again = import_transaction_file(engine, path)
    assert (again.imported, again.skipped) == (0, len(sales) + len(returns))
    session.rollback()
    assert all(r.ok for r in verify(session))
