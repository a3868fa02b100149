"""Imported purchases earn by the same rules as the API, with the same breakdown by rule."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from loyalty.imports.rows import LineItem, TransactionRow
from loyalty.imports.service import import_transactions
from loyalty.models import Transaction
from loyalty.models.transactions import TransactionAward
from loyalty.programs.schemas import parse_program
from loyalty.programs.service import apply_program, default_program
from loyalty.transactions.schemas import PurchaseIn
from loyalty.transactions.service import record_purchase
from tests.factories import make_customer, make_store
from tests.readers import assert_ledger_ok, reading

RULES = [
    {"id": "welcome", "name": "Welcome", "when": {"first_purchase": True}, "give": {"bonus": 100}},
    {"id": "birthday", "name": "Birthday", "when": {"birthday_month": True}, "give": {"bonus": 50}},
    {"id": "weekend", "name": "VIP weekend", "when": {"segments": ["vip"], "weekdays": ["sat", "sun"]},
     "give": {"multiplier": "1.5"}},
    {"id": "morning", "name": "Morning outlet", "priority": 3, "exclusive": True,
     "when": {"store_ids": ["OUT1"], "hours": "07:00-10:00"},
     "give": {"points_per": {"points": 9, "per_amount": 100_000}}},
    {"id": "dairy", "name": "Dairy", "when": {"categories": ["dairy"]},
     "give": {"points_per": {"points": 10, "per_amount": 100_000}}, "cap": {"per_transaction": 25}},
]
SALES: list[tuple[str, str, int, tuple[LineItem, ...]]] = [  # store, local time, amount, lines
    ("HN01", "2026-03-14T09:30:00+07:00", 550_000, ()),   # Saturday, March: first purchase, birthday, weekend
    ("OUT1", "2026-03-16T08:00:00+07:00", 300_000, ()),   # Monday morning at the outlet: stops the rest
    ("OUT1", "2026-03-16T10:00:00+07:00", 300_000, ()),   # 10:00 is after the range: birthday again
    ("HN01", "2026-04-05T20:00:00+07:00", 500_000,        # Sunday in April, with dairy lines
     (LineItem("SUA-01", "dairy", 3, 100_000), LineItem("BANH-01", "bakery", 1, 200_000))),
    ("HN01", "2026-04-06T20:00:00+07:00", 5_000_000,
     (LineItem("SUA-02", "dairy", 5, 1_000_000),)),
]


def awards(session: Session, customer_id: int) -> list[tuple[int, list[tuple[str, str, int]]]]:
    with reading(session) as reader:
        sales = reader.execute(select(Transaction.id, Transaction.points_earned)
                               .where(Transaction.customer_id == customer_id).order_by(Transaction.id)).all()
        result: list[tuple[int, list[tuple[str, str, int]]]] = []
        for tx_id, points in sales:
            rows = reader.execute(select(TransactionAward.rule_id, TransactionAward.name, TransactionAward.points)
                                  .where(TransactionAward.transaction_id == tx_id)
                                  .order_by(TransactionAward.award_no)).all()
            result.append((points, [(rule_id, name, pts) for rule_id, name, pts in rows]))
        return result


def test_imported_purchases_earn_and_break_down_like_the_api(session: Session) -> None:
    make_store(session, "HN01", "retail")
    make_store(session, "OUT1", "outlet")
    imported = make_customer(session, phone="0912345678", birthday=date(1990, 3, 3))
    served = make_customer(session, phone="0987654321", birthday=date(1985, 3, 30))
    definition: dict[str, Any] = default_program().definition.model_dump(mode="json")
    definition.update(rules=RULES, segments={"vip": [imported.id, served.id]})
    apply_program(session, parse_program(definition), "test", actor="test",
                  effective_from=datetime.fromisoformat("2000-01-01T00:00:00+00:00"))
    session.commit()
    rows: list[TransactionRow] = []
    for n, (store, when, amount, lines) in enumerate(SALES):
        rows.append(TransactionRow(line=n + 2, transaction_id=f"I{n}", store_id=store, customer="0912345678",
                                   occurred_at=datetime.fromisoformat(when), amount=amount, currency="VND",
                                   type="purchase", original_transaction_id=None, lines=lines))
        record_purchase(session, PurchaseIn.model_validate({
            "store_id": store, "transaction_id": f"S{n}", "customer_id": served.id, "occurred_at": when,
            "amount": amount, "lines": [{"sku": li.sku, "category": li.category, "quantity": li.quantity,
                                         "unit_price": li.unit_price} for li in lines]}), actor="test")
        session.commit()
    report = import_transactions(session, list(rows), actor="test")
    session.commit()
    assert (report.imported, report.errors) == (len(SALES), [])
    expected = [
        (100 + 50 + 25 + 50, [("welcome", "Welcome", 100), ("birthday", "Birthday", 50),
                              ("weekend", "VIP weekend", 25), ("earn[0]", "10 points per 100,000 VND at retail, "
                                                                           "online", 50)]),
        (27, [("morning", "Morning outlet", 27)]),
        (50 + 15, [("birthday", "Birthday", 50), ("earn[1]", "5 points per 100,000 VND at outlet", 15)]),
        (37 + 25 + 50, [("weekend", "VIP weekend", 37), ("dairy", "Dairy", 25),
                        ("earn[0]", "10 points per 100,000 VND at retail, online", 50)]),
        (25 + 500, [("dairy", "Dairy", 25), ("earn[0]", "10 points per 100,000 VND at retail, online", 500)]),
    ]
    assert awards(session, served.id) == expected
    assert awards(session, imported.id) == expected
    assert_ledger_ok(session)


def test_tier_rules_and_perks_are_scored_like_the_api(session: Session) -> None:
    """Vectorised: each member's tier when the batch is imported, as the API uses it when the sale is recorded."""
    from datetime import UTC, timedelta

    from loyalty.tiers.service import set_override

    make_store(session, "HN01", "retail")
    gold = make_customer(session, phone="0912345670")
    served = make_customer(session, phone="0987654320")
    base = make_customer(session, phone="0912345671")
    definition: dict[str, Any] = default_program().definition.model_dump(mode="json")
    definition.update(
        rules=[{"id": "gold-day", "name": "Gold day", "when": {"tiers": ["G"]}, "give": {"bonus": 7}},
               RULES[-1]],
        tiers={"qualification": {"metric": "spend", "window": {"rolling_months": 12}},
               "levels": [{"code": "M", "name": "Member", "threshold": 0},
                          {"code": "G", "name": "Gold", "threshold": 10**12,
                           "perks": {"earn_multiplier": "1.25"}}]})
    apply_program(session, parse_program(definition), "test", actor="test",
                  effective_from=datetime.fromisoformat("2000-01-01T00:00:00+00:00"))
    session.commit()
    now = datetime.now(UTC)
    for member in (gold, served):
        set_override(session, member.id, tier="G", reason="test", until=now + timedelta(days=30), actor="test",
                     now=now)
    session.commit()
    lines = (LineItem("SUA-01", "dairy", 3, 100_000), LineItem("BANH-01", "bakery", 1, 200_000))
    rows = []
    for n, (customer, phone) in enumerate(((gold, "0912345670"), (base, "0912345671"))):
        rows.append(TransactionRow(line=n + 2, transaction_id=f"T{n}", store_id="HN01", customer=phone,
                                   occurred_at=now - timedelta(hours=1), amount=500_000, currency="VND",
                                   type="purchase", original_transaction_id=None, lines=lines))
        assert customer.id
    record_purchase(session, PurchaseIn.model_validate({
        "store_id": "HN01", "transaction_id": "S1", "customer_id": served.id,
        "occurred_at": (now - timedelta(hours=1)).isoformat(), "amount": 500_000,
        "lines": [{"sku": li.sku, "category": li.category, "quantity": li.quantity, "unit_price": li.unit_price}
                  for li in lines]}), actor="test")
    session.commit()
    report = import_transactions(session, rows, actor="test")
    session.commit()
    assert report.errors == []
    expected = [(7 + 25 + 50 + 18, [("gold-day", "Gold day", 7), ("dairy", "Dairy", 25),
                                    ("earn[0]", "10 points per 100,000 VND at retail, online", 50),
                                    ("tier:G", "Gold: x1.25 points", 18)])]
    assert awards(session, served.id) == expected
    assert awards(session, gold.id) == expected
    assert awards(session, base.id) == [(25 + 50, [("dairy", "Dairy", 25),
                                                   ("earn[0]", "10 points per 100,000 VND at retail, online", 50)])]
    assert_ledger_ok(session)
