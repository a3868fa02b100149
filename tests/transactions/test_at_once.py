"""The sale written at once (one autocommitted statement, PostgreSQL) writes exactly what the
general path writes, answers the same, and writes nothing whenever it does not apply."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from loyalty.db import session_factory
from loyalty.ledger.service import adjust
from loyalty.models import ApiKey, IdempotencyRecord, MemberBalance, Transaction
from loyalty.programs.schemas import parse_program
from loyalty.programs.service import apply_program, default_program, program_at
from loyalty.transactions import hotpath
from loyalty.transactions.schemas import PurchaseIn, ReturnIn
from loyalty.transactions.service import purchase_out, record_purchase, record_purchase_at_once, register_return
from tests.factories import make_customer, make_key, make_store, purchase_body
from tests.readers import assert_ledger_ok, reading
from tests.tiers.helpers import program_data
from tests.transactions.test_hotpath import _history

WHEN = datetime(2026, 3, 14, 9, 30, tzinfo=UTC)
LINES = [{"sku": "KEM-01", "category": "ice cream", "quantity": 2, "unit_price": 125_000},
         {"sku": "SUA-02", "category": None, "quantity": 1, "unit_price": 750_000}]


def _purchase(customer_id: int | None, amount: int, pos_id: str, *, occurred_at: datetime = WHEN,
              **extra: Any) -> PurchaseIn:
    return PurchaseIn.model_validate(purchase_body(customer_id, amount, pos_id=pos_id, occurred_at=occurred_at,
                                                   **extra))


def _at_once(engine: Engine, data: PurchaseIn, remember: dict[str, Any] | None = None) -> hotpath.WrittenAtOnce | None:
    session = session_factory(engine.execution_options(isolation_level="AUTOCOMMIT"))()
    try:
        return record_purchase_at_once(session, data, actor="pos", remember=remember)
    finally:
        session.close()


def _sales(session: Session) -> int:
    with reading(session) as reader:
        return len(reader.scalars(select(Transaction.id)).all())


def _apply(session: Session, **changes: Any) -> None:
    definition = default_program().definition.model_dump(mode="json") | changes
    apply_program(session, parse_program(definition), "test", actor="test",
                  effective_from=datetime(2000, 1, 1, tzinfo=UTC))
    session.commit()


@pytest.fixture
def postgres(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("the sale at once is PostgreSQL's (SQLite: see test_sqlite_never_writes_at_once)")


def test_sqlite_never_writes_at_once(session: Session, engine: Engine) -> None:
    make_store(session)
    member = make_customer(session)
    written = _at_once(engine, _purchase(member.id, 500_000, "a"))
    if engine.dialect.name == "postgresql":
        assert written is not None and _sales(session) == 1
    else:
        assert written is None and _sales(session) == 0


@pytest.mark.usefixtures("postgres")
def test_at_once_writes_and_answers_what_the_general_path_does(session: Session, engine: Engine) -> None:
    make_store(session, "HN01", kind="retail")
    make_store(session, "OUT1", kind="outlet")
    _apply(session, rules=[
        {"id": "ice-cream", "name": "Kem ×", "when": {"categories": ["ice cream"]},
         "give": {"points_per": {"points": 1, "per_amount": 10_000}}, "cap": {"per_transaction": 15}},
        {"id": "outlet", "name": "Outlet", "priority": 5, "exclusive": True, "when": {"store_kinds": ["outlet"]},
         "give": {"points_per": {"points": 8, "per_amount": 100_000}}},
    ])
    fast, general = make_customer(session), make_customer(session)
    sales: list[tuple[str, int, dict[str, Any]]] = [
        ("a", 1_000_000, {"lines": LINES}), ("b", 99_000, {}), ("c", 0, {}), ("d", 1_500_000, {"store_id": "OUT1"}),
        ("e", 250_000, {"store_id": "HN01", "currency": "VND"})]
    for pos, amount, extra in sales:
        written = _at_once(engine, _purchase(fast.id, amount, f"{fast.id}-{pos}", **extra))
        assert written is not None, pos
        recorded = record_purchase(session, _purchase(general.id, amount, f"{general.id}-{pos}", **extra),
                                   actor="pos")
        session.commit()
        answer = json.loads(written.body)
        assert answer["id"] == written.transaction_id
        expected = recorded.body.model_dump(mode="json")
        ignore = ("id", "transaction_id", "customer_id")
        assert {k: v for k, v in answer.items() if k not in ignore} == {
            k: v for k, v in expected.items() if k not in ignore}
        assert list(answer) == list(expected)  # same fields, same order
        with reading(session) as reader:
            tx = reader.get(Transaction, written.transaction_id)
            assert tx is not None
            assert purchase_out(reader, tx).model_dump(mode="json") == answer  # what a replay answers
    assert [s[0] for s in _history(session, fast.id)["sales"]] == ["a", "b", "c", "d", "e"]
    assert _history(session, fast.id) == _history(session, general.id)
    assert_ledger_ok(session)


@pytest.mark.usefixtures("postgres")
def test_a_keyed_sale_stores_its_receipt_and_a_reused_key_writes_nothing(session: Session, engine: Engine) -> None:
    make_store(session)
    member = make_customer(session)
    make_key(session)
    with reading(session) as reader:
        key_id = reader.scalars(select(ApiKey.id)).one()
    remember = {"api_key_id": key_id, "key": "k-1", "method": "POST", "path": "/v1/transactions",
                "request_hash": "f" * 64, "created_at": WHEN}
    written = _at_once(engine, _purchase(member.id, 500_000, "a"), remember)
    assert written is not None
    with reading(session) as reader:
        record = reader.scalars(select(IdempotencyRecord)).one()
        assert (record.key, record.response_status, record.request_hash) == ("k-1", 201, "f" * 64)
        assert json.loads(record.response_body) == json.loads(written.body)
    with pytest.raises(IntegrityError):
        _at_once(engine, _purchase(member.id, 700_000, "b"), remember)
    assert _sales(session) == 1
    with reading(session) as reader:
        balance = reader.get(MemberBalance, member.id)
        assert balance is not None and balance.available == 50
    assert_ledger_ok(session)


@pytest.mark.usefixtures("postgres")
@pytest.mark.parametrize("case", ["unknown member", "recorded POS id", "points paid", "anonymous", "wrong currency"])
def test_what_does_not_apply_writes_nothing(session: Session, engine: Engine, case: str) -> None:
    make_store(session)
    member = make_customer(session)
    record_purchase(session, _purchase(member.id, 1_000_000, "first"), actor="pos")
    session.commit()
    data = {
        "unknown member": _purchase(999_999, 500_000, "x"),
        "recorded POS id": _purchase(member.id, 1_000_000, "first"),
        "points paid": _purchase(member.id, 500_000, "x", redeem_points=10),
        "anonymous": _purchase(None, 500_000, "x"),
        "wrong currency": _purchase(member.id, 500_000, "x", currency="USD"),
    }[case]
    assert _at_once(engine, data) is None
    assert _sales(session) == 1
    with reading(session) as reader:
        balance = reader.get(MemberBalance, member.id)
        assert balance is not None and balance.available == 100


@pytest.mark.usefixtures("postgres")
def test_a_member_who_owes_points_is_left_to_the_general_path(session: Session, engine: Engine) -> None:
    make_store(session)
    member = make_customer(session)
    first = record_purchase(session, _purchase(member.id, 1_000_000, "a"), actor="pos").body
    session.commit()
    adjust(session, program_at(session), customer_id=member.id, points=-80, reason="gift card", actor="admin",
           source_id="gift", now=WHEN + timedelta(minutes=1))
    session.commit()
    register_return(session, first.id, ReturnIn(transaction_id="r", amount=1_000_000,
                                                occurred_at=WHEN + timedelta(minutes=2)), actor="pos")
    session.commit()
    assert _at_once(engine, _purchase(member.id, 500_000, "b")) is None
    assert _sales(session) == 2  # the purchase and its return
    assert _at_once(engine, _purchase(member.id, 500_000, "b")) is None


@pytest.mark.usefixtures("postgres")
@pytest.mark.parametrize("changes", [
    {"pending_days": 7},
    {"rules": [{"id": "welcome", "name": "Welcome", "when": {"first_purchase": True}, "give": {"bonus": 30}}]},
    {"rules": [{"id": "bday", "name": "Birthday", "when": {"birthday_month": True}, "give": {"bonus": 30}}]},
    {"rules": [{"id": "daily", "name": "Daily", "when": {"store_kinds": ["retail"]}, "give": {"bonus": 5},
                "cap": {"per_member_per_day": 5}}]},
    {"tiers": program_data()["tiers"]},
], ids=["pending", "first purchase", "birthday", "counted cap", "tiers"])
def test_programs_it_cannot_decide_alone_write_nothing(session: Session, engine: Engine,
                                                      changes: dict[str, Any]) -> None:
    make_store(session)
    member = make_customer(session)
    _apply(session, **changes)
    # Sold now: points earned in March would be available by now even with a pending period.
    assert _at_once(engine, _purchase(member.id, 500_000, "a", occurred_at=datetime.now(UTC))) is None
    assert _sales(session) == 0
