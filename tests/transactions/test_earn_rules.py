"""Earn rules at the till: the receipt's breakdown, replays, member facts read only when needed."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from loyalty.db import session_factory
from loyalty.models.transactions import TransactionAward
from loyalty.programs.rules import MemberFacts
from loyalty.programs.schemas import parse_program
from loyalty.programs.service import apply_program, default_program
from loyalty.transactions import hotpath
from loyalty.transactions.schemas import PurchaseIn
from loyalty.transactions.service import record_purchase
from tests.factories import auth, make_customer, make_key, make_store, purchase_body
from tests.readers import assert_ledger_ok, reading

SATURDAY = datetime(2026, 3, 14, 2, 30, tzinfo=UTC)  # 09:30 in Hồ Chí Minh City
DAIRY = [{"sku": "SUA-01", "category": "dairy", "quantity": 3, "unit_price": 100_000},
         {"sku": "BANH-01", "category": "bakery", "quantity": 1, "unit_price": 200_000}]


def rules_program(vip: list[int]) -> list[dict[str, Any]]:
    return [
        {"id": "welcome", "name": "Welcome gift", "when": {"first_purchase": True}, "give": {"bonus": 100}},
        {"id": "birthday", "name": "Birthday bonus", "when": {"birthday_month": True}, "give": {"bonus": 200}},
        {"id": "dairy", "name": "Dairy x2", "when": {"categories": ["dairy"]},
         "give": {"points_per": {"points": 10, "per_amount": 100_000}}},
        {"id": "vip-weekend", "name": "VIP weekend +50%", "when": {"segments": ["vip"], "weekdays": ["sat", "sun"]},
         "give": {"multiplier": "1.5"}},
    ]


def apply_rules(session: Session, rules: list[dict[str, Any]], segments: dict[str, list[int]] | None = None) -> None:
    definition = default_program().definition.model_dump(mode="json")
    definition.update(rules=rules, segments=segments or {})
    apply_program(session, parse_program(definition), "test", actor="test",
                  effective_from=datetime(2000, 1, 1, tzinfo=UTC))
    session.commit()


def breakdown(body: dict[str, Any]) -> list[tuple[str, int]]:
    return [(award["rule_id"], award["points"]) for award in body["points_breakdown"]]


class TestTheReceipt:
    def test_the_default_program_names_its_rate(self, client: TestClient, session: Session) -> None:
        make_store(session)
        customer = make_customer(session)
        body = client.post("/v1/transactions", json=purchase_body(customer.id, 250_000),
                           headers=auth(make_key(session))).json()
        assert body["points_earned"] == 20
        assert body["points_breakdown"] == [
            {"rule_id": "earn[0]", "name": "10 points per 100,000 VND at retail, online", "points": 20}]

    def test_an_anonymous_sale_has_no_breakdown(self, client: TestClient, session: Session) -> None:
        make_store(session)
        body = client.post("/v1/transactions", json=purchase_body(None, 250_000),
                           headers=auth(make_key(session))).json()
        assert (body["points_earned"], body["points_breakdown"]) == (0, [])

    def test_which_rule_gave_what_and_a_replay_says_the_same(self, client: TestClient, session: Session) -> None:
        make_store(session)
        customer = make_customer(session, birthday=date(1990, 3, 20))
        apply_rules(session, rules_program([customer.id]), {"vip": [customer.id]})
        key = make_key(session)
        sale = purchase_body(customer.id, 500_000, occurred_at=SATURDAY, lines=DAIRY)
        first = client.post("/v1/transactions", json=sale, headers=auth(key))
        assert first.status_code == 201, first.text
        body = first.json()
        # 50 base + 30 dairy = 80; +50% = 40; then the bonuses.
        # Priority order, file order within a priority: rules: before the earn: rates.
        assert breakdown(body) == [("welcome", 100), ("birthday", 200), ("dairy", 30), ("vip-weekend", 40),
                                   ("earn[0]", 50)]
        assert body["points_earned"] == 420
        assert body["balance"]["available"] == 420
        replay = client.post("/v1/transactions", json=sale, headers=auth(key))
        assert replay.status_code == 200
        assert replay.json()["points_breakdown"] == body["points_breakdown"]
        shown = client.get(f"/v1/transactions/{body['id']}", headers=auth(key)).json()
        assert shown["points_breakdown"] == body["points_breakdown"]
        # The next sale is not the first any more.
        second = client.post("/v1/transactions", json=purchase_body(customer.id, 100_000, occurred_at=SATURDAY),
                             headers=auth(key)).json()
        assert breakdown(second) == [("birthday", 200), ("vip-weekend", 5), ("earn[0]", 10)]
        assert_ledger_ok(session)

    def test_points_paid_with_points_earn_nothing_under_rules_either(self, session: Session) -> None:
        make_store(session)
        customer = make_customer(session)
        apply_rules(session, [{"id": "dairy", "name": "Dairy", "when": {"categories": ["dairy"]},
                               "give": {"points_per": {"points": 10, "per_amount": 100_000}}}])
        _sale(session, customer.id, 3_000_000, "p-1")
        paid = _sale(session, customer.id, 500_000, "p-2", lines=DAIRY, redeem_points=250)
        assert paid["points_breakdown"] == [
            {"rule_id": "dairy", "name": "Dairy", "points": 10},
            {"rule_id": "earn[0]", "name": "10 points per 100,000 VND at retail, online", "points": 20}]
        with reading(session) as reader:
            stored = reader.execute(select(TransactionAward.rule_id, TransactionAward.points)
                                    .where(TransactionAward.transaction_id == paid["id"])).all()
        assert [tuple(row) for row in stored] == [("dairy", 10), ("earn[0]", 20)]
        assert_ledger_ok(session)


def _sale(session: Session, customer_id: int, amount: int, pos_id: str, *, hot_path: bool = True,
          **extra: Any) -> dict[str, Any]:
    data = PurchaseIn.model_validate(purchase_body(customer_id, amount, pos_id=pos_id, occurred_at=SATURDAY,
                                                   **extra))
    body = record_purchase(session, data, actor="pos", hot_path=hot_path).body.model_dump()
    session.commit()
    return body


class _Reads:
    """Counts member-fact reads: each is one round trip the hot path would not otherwise make."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        real = hotpath.read_member_facts

        def counted(session: Session, customer_id: int, **options: Any) -> MemberFacts | None:
            self.calls += 1
            return real(session, customer_id, **options)

        monkeypatch.setattr(hotpath, "read_member_facts", counted)


class TestMemberFacts:
    def test_are_read_only_for_programs_that_need_them(self, session: Session,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
        make_store(session)
        customer = make_customer(session, birthday=date(1990, 3, 20))
        reads = _Reads(monkeypatch)
        assert _sale(session, customer.id, 100_000, "plain")["points_earned"] == 10
        assert reads.calls == 0
        apply_rules(session, [{"id": "bd", "name": "Birthday", "when": {"birthday_month": True},
                               "give": {"bonus": 200}}])
        assert _sale(session, customer.id, 100_000, "birthday")["points_earned"] == 210
        assert _sale(session, customer.id, 100_000, "general", hot_path=False)["points_earned"] == 210
        assert reads.calls == 2

    def test_read_the_birthday_month_and_the_first_purchase(self, session: Session) -> None:
        make_store(session)
        born_in_march, unknown_birthday = make_customer(session, birthday=date(1990, 3, 20)), make_customer(session)
        assert hotpath.read_member_facts(session, born_in_march.id) == MemberFacts(3, True)
        assert hotpath.read_member_facts(session, unknown_birthday.id) == MemberFacts(None, True)
        assert hotpath.read_member_facts(session, 999_999) is None
        session.rollback()
        _sale(session, born_in_march.id, 100_000, "first")
        assert hotpath.read_member_facts(session, born_in_march.id) == MemberFacts(3, False)
        session.rollback()

    def test_segments_are_in_the_program_file_and_need_no_read(self, session: Session,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
        make_store(session)
        vip, other = make_customer(session), make_customer(session)
        apply_rules(session, [{"id": "vip", "name": "VIP", "when": {"segments": ["vip"]}, "give": {"bonus": 5}}],
                    {"vip": [vip.id]})
        reads = _Reads(monkeypatch)
        assert _sale(session, vip.id, 100_000, "v")["points_earned"] == 15
        assert _sale(session, other.id, 100_000, "o")["points_earned"] == 10
        assert reads.calls == 0


class TestBothPaths:
    def test_write_the_same_awards(self, session: Session) -> None:
        make_store(session)
        fast, general = make_customer(session, birthday=date(1990, 3, 1)), make_customer(session)
        apply_rules(session, rules_program([]), {"vip": [fast.id, general.id]})
        answers = {}
        for customer, hot in ((fast, True), (general, False)):
            answers[hot] = [
                {k: v for k, v in _sale(session, customer.id, amount, f"{customer.id}-{n}", hot_path=hot,
                                        **extra).items() if k not in {"id", "transaction_id", "customer_id"}}
                for n, (amount, extra) in enumerate([(500_000, {"lines": DAIRY}), (99_000, {}), (250_000, {})])]
        fast_birthday = [[a["rule_id"] for a in answer["points_breakdown"]] for answer in answers[True]]
        assert all("birthday" in ids for ids in fast_birthday)
        # Same rules except the birthday: strip it from the fast member's answers before comparing.
        for answer in answers[True]:
            bonus = sum(a["points"] for a in answer["points_breakdown"] if a["rule_id"] == "birthday")
            answer["points_breakdown"] = [a for a in answer["points_breakdown"] if a["rule_id"] != "birthday"]
            answer["points_earned"] -= bonus
            answer["balance"] = None
        for answer in answers[False]:
            answer["balance"] = None
        assert answers[True] == answers[False]
        assert_ledger_ok(session)


class TestFirstPurchaseRace:
    def test_two_tills_racing_a_first_purchase_give_one_welcome(self, engine: Engine, session: Session) -> None:
        make_store(session)
        customer = make_customer(session)
        apply_rules(session, [{"id": "welcome", "name": "Welcome", "when": {"first_purchase": True},
                               "give": {"bonus": 100}}])
        factory = session_factory(engine)
        first, second = factory(), factory()
        outcome: dict[str, Any] = {}

        def other_till() -> None:
            # Blocks on the member's row (PostgreSQL) or on the write lock (SQLite) until `first` commits.
            outcome["body"] = record_purchase(second, _body(customer.id, "till-2"), actor="pos").body
            second.commit()

        try:
            mine = record_purchase(first, _body(customer.id, "till-1"), actor="pos").body
            thread = threading.Thread(target=other_till)
            thread.start()
            thread.join(timeout=0.5)
            assert thread.is_alive(), "the second till must wait for the first"
            first.commit()
            thread.join(timeout=30)
        finally:
            first.close()
            second.close()
        assert breakdown(mine.model_dump()) == [("welcome", 100), ("earn[0]", 10)]
        assert breakdown(outcome["body"].model_dump()) == [("earn[0]", 10)]
        assert_ledger_ok(session)


def _body(customer_id: int, pos_id: str) -> PurchaseIn:
    return PurchaseIn.model_validate(purchase_body(customer_id, 100_000, pos_id=pos_id, occurred_at=SATURDAY))
