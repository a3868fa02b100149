"""Tiers in earning: tier-conditioned rules, the earn-multiplier perk, and upgrades as a purchase crosses."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from loyalty.imports.pipeline import import_transaction_file
from loyalty.imports.rows import TransactionRow
from loyalty.imports.service import import_transactions
from loyalty.models import Customer, CustomerIdentity
from loyalty.models.tiers import MemberTier
from loyalty.programs.schemas import parse_program
from loyalty.programs.service import apply_program
from loyalty.tiers.service import member_tier, set_override
from loyalty.transactions.schemas import PurchaseIn
from loyalty.transactions.service import record_purchase
from tests.factories import make_customer, make_store
from tests.imports.test_import_rules import awards
from tests.readers import assert_ledger_ok, reading
from tests.tiers.helpers import program_data

RETAIL = ("earn[0]", "10 points per 100,000 VND at retail, online")
GOLD_DAY = {"id": "gold-day", "name": "Gold members' bonus", "when": {"tiers": ["GOLD"]}, "give": {"bonus": 100}}


def _program(session: Session, rules: list[dict[str, Any]] | None = None) -> None:
    data = program_data()  # spend in the calendar year: MEMBER 0, SILVER 5M (x1.25), GOLD 20M (x1.5)
    data["rules"] = rules or []
    apply_program(session, parse_program(data), "test", actor="test",
                  effective_from=datetime(2000, 1, 1, tzinfo=UTC))
    session.commit()


def _buy(session: Session, customer_id: int, amount: int, pos_id: str, *, hot_path: bool = True) -> Any:
    body = PurchaseIn.model_validate({"store_id": "HN01", "transaction_id": pos_id, "customer_id": customer_id,
                                      "occurred_at": datetime.now(UTC).isoformat(), "amount": amount})
    recorded = record_purchase(session, body, actor="test", hot_path=hot_path)
    session.commit()
    return recorded.body


def _gold(session: Session, customer_id: int) -> None:
    now = datetime.now(UTC)
    set_override(session, customer_id, tier="GOLD", reason="test", until=now + timedelta(days=30), actor="test",
                 now=now)
    session.commit()


@pytest.mark.parametrize("hot_path", [True, False])
def test_a_gold_member_earns_the_perk_and_the_gold_rule(session: Session, hot_path: bool) -> None:
    make_store(session)
    _program(session, [GOLD_DAY])
    gold, member = make_customer(session).id, make_customer(session).id
    _gold(session, gold)
    sale = _buy(session, gold, 1_000_000, "G1", hot_path=hot_path)
    assert sale.points_earned == 100 + 50 + 100
    assert [(a.rule_id, a.points) for a in sale.points_breakdown] == [
        ("gold-day", 100), (RETAIL[0], 100), ("tier:GOLD", 50)]
    assert sale.points_breakdown[2].name == "Vàng: x1.5 points"
    plain = _buy(session, member, 1_000_000, "M1", hot_path=hot_path)
    assert (plain.points_earned, [a.rule_id for a in plain.points_breakdown]) == (100, [RETAIL[0]])
    assert_ledger_ok(session)


def test_crossing_a_threshold_upgrades_at_once_and_the_next_sale_earns_the_perk(session: Session) -> None:
    make_store(session)
    _program(session)
    customer = make_customer(session).id
    first = _buy(session, customer, 3_000_000, "U1")
    with reading(session) as reader:
        assert member_tier(reader, customer) == "MEMBER"
    crossing = _buy(session, customer, 2_500_000, "U2")  # 5.5M in the year: SILVER from now on
    assert (first.points_earned, crossing.points_earned) == (300, 250)  # earned at the tier it was recorded in
    with reading(session) as reader:
        assert member_tier(reader, customer) == "SILVER"
        assert reader.get(MemberTier, customer) is not None
    after = _buy(session, customer, 1_000_000, "U3")
    assert after.points_earned == 100 + 25
    assert ("tier:SILVER", 25) in [(a.rule_id, a.points) for a in after.points_breakdown]
    assert_ledger_ok(session)


def test_imports_use_the_members_tier_like_the_api(session: Session) -> None:
    make_store(session)
    _program(session, [GOLD_DAY])
    served = make_customer(session).id
    imported = make_customer(session, phone="0912345678").id
    for member in (served, imported):
        _gold(session, member)
    when = datetime.now(UTC) - timedelta(hours=1)
    record_purchase(session, PurchaseIn.model_validate({
        "store_id": "HN01", "transaction_id": "S1", "customer_id": served, "occurred_at": when.isoformat(),
        "amount": 2_350_000}), actor="test")
    session.commit()
    report = import_transactions(session, [TransactionRow(
        line=2, transaction_id="I1", store_id="HN01", customer="0912345678", occurred_at=when, amount=2_350_000,
        currency="VND", type="purchase", original_transaction_id=None, lines=())], actor="test")
    session.commit()
    assert (report.imported, report.errors) == (1, [])
    expected = [(100 + 230 + 115, [("gold-day", "Gold members' bonus", 100), (*RETAIL, 230),
                                   ("tier:GOLD", "Vàng: x1.5 points", 115)])]
    assert awards(session, served) == awards(session, imported) == expected
    assert_ledger_ok(session)


def test_an_imported_file_lifts_members_to_the_tier_their_purchases_reach(engine: Engine, session: Session,
                                                                        tmp_path: Path) -> None:
    make_store(session)
    _program(session)
    make_customer(session, phone="0912345678")
    quiet = make_customer(session, phone="0912000111").id
    day = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)
    csv = tmp_path / "sales.csv"
    csv.write_text("transaction_id,store_id,customer,occurred_at,amount\n"
                   f"F1,HN01,0912345678,{day.isoformat()},3000000\n"
                   f"F2,HN01,0912345678,{(day + timedelta(minutes=5)).isoformat()},2500000\n"
                   f"F3,HN01,0912000111,{day.isoformat()},400000\n", encoding="utf-8")
    report = import_transaction_file(engine, csv)
    assert (report.imported, report.errors) == (3, [])
    with reading(session) as reader:
        buyer = reader.scalars(select(Customer.id).join(CustomerIdentity)
                               .where(CustomerIdentity.value == "+84912345678")).one()
        assert member_tier(reader, buyer) == "SILVER"
        assert member_tier(reader, quiet) == "MEMBER"
    assert_ledger_ok(session)
