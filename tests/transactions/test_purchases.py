"""Purchases: points earned per store kind, points paying part of the bill, and exactly-once recording."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from loyalty.ledger.service import create_hold, release_pending
from loyalty.models import Hold, LedgerEntry, PointLot, Transaction, TransactionLine
from loyalty.programs.schemas import parse_program
from loyalty.programs.service import apply_program, default_program
from tests.factories import auth, make_customer, make_key, make_purchase, make_store, purchase_body
from tests.readers import assert_ledger_ok, balance_of, count, reading

PROBLEM = "application/problem+json"


def _count(session: Session, model: type[Any]) -> int:
    return count(session, model)


def _available(session: Session, customer_id: int) -> int:
    return balance_of(session, customer_id)[0]


class TestEarn:
    @pytest.mark.parametrize(("kind", "amount", "points"), [
        ("retail", 250_000, 20), ("online", 250_000, 20), ("outlet", 250_000, 10),
        ("retail", 99_999, 0), ("retail", 100_000, 10), ("retail", 199_999, 10), ("outlet", 1_000_000, 50),
        ("call_centre", 500_000, 0), ("partner", 500_000, 0),
    ])
    def test_whole_blocks_at_the_store_kinds_rate(self, client: TestClient, session: Session, kind: str,
                                                  amount: int, points: int) -> None:
        make_store(session, "S1", kind=kind)
        customer = make_customer(session)
        response = client.post("/v1/transactions", json=purchase_body(customer.id, amount, store_id="S1"),
                               headers=auth(make_key(session)))
        assert response.status_code == 201, response.text
        body = response.json()
        assert body["points_earned"] == points
        assert body["points_redeemed"] == 0
        assert body["balance"] == {"available": points, "pending": 0, "held": 0, "owed": 0}
        assert _available(session, customer.id) == points
        assert response.headers["Location"] == f"/v1/transactions/{body['id']}"
        assert_ledger_ok(session)

    def test_earnings_add_up_across_purchases(self, client: TestClient, session: Session) -> None:
        make_store(session)
        make_store(session, "OUT1", kind="outlet")
        customer = make_customer(session)
        key = make_key(session)
        for body in (purchase_body(customer.id, 250_000), purchase_body(customer.id, 340_000, store_id="OUT1"),
                     purchase_body(customer.id, 1_050_000)):
            assert client.post("/v1/transactions", json=body, headers=auth(key)).status_code == 201
        assert _available(session, customer.id) == 20 + 15 + 100

    def test_records_lines(self, client: TestClient, session: Session) -> None:
        make_store(session)
        customer = make_customer(session)
        lines = [{"sku": "AO-01", "category": "ao", "quantity": 2, "unit_price": 100_000},
                 {"sku": "MU-02", "quantity": 1, "unit_price": 50_000}]
        response = client.post("/v1/transactions", json=purchase_body(customer.id, 250_000, lines=lines),
                               headers=auth(make_key(session)))
        assert response.status_code == 201
        assert _count(session, TransactionLine) == 2

    def test_the_purchase_can_be_read_back(self, client: TestClient, session: Session) -> None:
        make_store(session)
        customer = make_customer(session)
        key = make_key(session)
        created = client.post("/v1/transactions", json=purchase_body(customer.id, 250_000), headers=auth(key))
        read = client.get(f"/v1/transactions/{created.json()['id']}", headers=auth(key))
        assert read.status_code == 200
        assert read.json() == created.json()


class TestAnonymousSale:
    def test_is_recorded_without_points(self, client: TestClient, session: Session) -> None:
        make_store(session)
        response = client.post("/v1/transactions", json=purchase_body(None, 500_000),
                               headers=auth(make_key(session)))
        assert response.status_code == 201, response.text
        body = response.json()
        assert (body["customer_id"], body["points_earned"], body["balance"]) == (None, 0, None)
        assert _count(session, Transaction) == 1
        assert _count(session, LedgerEntry) == 0

    def test_cannot_pay_with_points(self, client: TestClient, session: Session) -> None:
        make_store(session)
        response = client.post("/v1/transactions", json=purchase_body(None, 500_000, redeem_points=10),
                               headers=auth(make_key(session)))
        assert response.status_code == 422
        assert _count(session, Transaction) == 0


class TestRedeemInPurchase:
    def test_points_pay_part_and_only_the_money_paid_earns(self, client: TestClient, session: Session) -> None:
        make_store(session)
        customer = make_customer(session)
        make_purchase(session, customer.id, 1_000_000)  # 100 points
        response = client.post("/v1/transactions",
                               json=purchase_body(customer.id, 250_000, redeem_points=60),
                               headers=auth(make_key(session)))
        assert response.status_code == 201, response.text
        body = response.json()
        # 60 points pay 60,000 VND; the 190,000 VND paid in money earns one whole block.
        assert (body["points_redeemed"], body["redeemed_value"], body["points_earned"]) == (60, 60_000, 10)
        assert body["balance"]["available"] == 100 - 60 + 10
        assert _available(session, customer.id) == 50
        assert_ledger_ok(session)

    def test_points_can_pay_the_whole_bill_and_earn_nothing(self, client: TestClient, session: Session) -> None:
        make_store(session)
        customer = make_customer(session)
        make_purchase(session, customer.id, 1_000_000)
        response = client.post("/v1/transactions", json=purchase_body(customer.id, 100_000, redeem_points=100),
                               headers=auth(make_key(session)))
        assert response.status_code == 201
        assert (response.json()["points_earned"], _available(session, customer.id)) == (0, 0)

    def test_more_points_than_the_member_has_is_409_and_nothing_written(
        self, client: TestClient, session: Session,
    ) -> None:
        make_store(session)
        customer = make_customer(session)
        make_purchase(session, customer.id, 300_000)  # 30 points
        before = (_count(session, Transaction), _count(session, LedgerEntry))
        response = client.post("/v1/transactions", json=purchase_body(customer.id, 500_000, redeem_points=31),
                               headers=auth(make_key(session)))
        assert response.status_code == 409
        assert response.json()["type"].endswith("/insufficient-points")
        assert (_count(session, Transaction), _count(session, LedgerEntry)) == before
        assert _available(session, customer.id) == 30

    def test_points_worth_more_than_the_bill_are_422(self, client: TestClient, session: Session) -> None:
        make_store(session)
        customer = make_customer(session)
        make_purchase(session, customer.id, 1_000_000)
        response = client.post("/v1/transactions", json=purchase_body(customer.id, 50_000, redeem_points=51),
                               headers=auth(make_key(session)))
        assert response.status_code == 422
        assert response.json()["max_points"] == 50
        assert _available(session, customer.id) == 100

    def test_a_hold_captured_by_the_purchase_pays(self, client: TestClient, session: Session) -> None:
        make_store(session)
        customer = make_customer(session)
        make_purchase(session, customer.id, 1_000_000)
        key = make_key(session)
        hold = client.post(f"/v1/customers/{customer.id}/holds", json={"points": 40, "store_id": "HN01"},
                           headers=auth(key)).json()
        response = client.post("/v1/transactions",
                               json=purchase_body(customer.id, 240_000, hold_id=hold["id"]), headers=auth(key))
        assert response.status_code == 201, response.text
        body = response.json()
        assert (body["points_redeemed"], body["points_earned"]) == (40, 20)
        assert body["balance"] == {"available": 80, "pending": 0, "held": 0, "owed": 0}
        assert client.get(f"/v1/holds/{hold['id']}", headers=auth(key)).json()["status"] == "captured"
        assert_ledger_ok(session)

    def test_another_customers_hold_cannot_pay(self, client: TestClient, session: Session) -> None:
        make_store(session)
        owner, other = make_customer(session), make_customer(session)
        make_purchase(session, owner.id, 1_000_000)
        key = make_key(session)
        hold = client.post(f"/v1/customers/{owner.id}/holds", json={"points": 40}, headers=auth(key)).json()
        response = client.post("/v1/transactions", json=purchase_body(other.id, 240_000, hold_id=hold["id"]),
                               headers=auth(key))
        assert response.status_code == 422
        assert client.get(f"/v1/holds/{hold['id']}", headers=auth(key)).json()["status"] == "held"
        assert _count(session, Transaction) == 1

    def test_another_stores_hold_cannot_pay(self, client: TestClient, session: Session) -> None:
        make_store(session, "HN01")
        make_store(session, "HN02")
        customer = make_customer(session)
        make_purchase(session, customer.id, 1_000_000)
        hold = create_hold(session, customer_id=customer.id, points=40, store_id="HN01", reference=None,
                           timeout=timedelta(minutes=15), actor="test", now=datetime.now(UTC))
        session.commit()
        response = client.post("/v1/transactions",
                               json=purchase_body(customer.id, 240_000, store_id="HN02", hold_id=hold.id),
                               headers=auth(make_key(session, "store", "HN02")))
        assert response.status_code in (404, 422)
        with reading(session) as reader:
            assert reader.get(Hold, hold.id).status == "held"  # type: ignore[union-attr]


class TestSamePosIdAgain:
    def test_same_sale_is_replayed_with_the_same_body_and_no_new_points(
        self, client: TestClient, session: Session,
    ) -> None:
        make_store(session)
        customer = make_customer(session)
        key = make_key(session)
        body = purchase_body(customer.id, 250_000, pos_id="TILL-42",
                             lines=[{"sku": "A", "quantity": 1, "unit_price": 250_000}])
        first = client.post("/v1/transactions", json=body, headers=auth(key))
        again = client.post("/v1/transactions", json=body, headers=auth(key))
        assert (first.status_code, again.status_code) == (201, 200)
        assert again.json() == first.json()
        assert again.headers["Idempotent-Replayed"] == "true"
        assert _available(session, customer.id) == 20
        assert (_count(session, Transaction), _count(session, LedgerEntry), _count(session, PointLot)) == (1, 1, 1)

    def test_replay_of_a_sale_paid_with_points_spends_nothing_more(
        self, client: TestClient, session: Session,
    ) -> None:
        make_store(session)
        customer = make_customer(session)
        make_purchase(session, customer.id, 1_000_000)
        key = make_key(session)
        body = purchase_body(customer.id, 300_000, redeem_points=50)
        first = client.post("/v1/transactions", json=body, headers=auth(key))
        again = client.post("/v1/transactions", json=body, headers=auth(key))
        assert again.status_code == 200
        assert again.json() == first.json()
        assert _available(session, customer.id) == 100 - 50 + 20

    @pytest.mark.parametrize("change", [{"amount": 260_000}, {"occurred_at": "2026-01-01T00:00:00+00:00"},
                                        {"customer_id": None}, {"redeem_points": 5}])
    def test_same_pos_id_with_different_details_is_409(self, client: TestClient, session: Session,
                                                        change: dict[str, Any]) -> None:
        make_store(session)
        customer = make_customer(session)
        make_purchase(session, customer.id, 1_000_000)
        key = make_key(session)
        body = purchase_body(customer.id, 250_000, pos_id="TILL-42")
        assert client.post("/v1/transactions", json=body, headers=auth(key)).status_code == 201
        response = client.post("/v1/transactions", json={**body, **change}, headers=auth(key))
        assert response.status_code == 409
        assert response.headers["content-type"] == PROBLEM
        assert "TILL-42" in response.json()["detail"]
        assert _available(session, customer.id) == 120
        assert _count(session, Transaction) == 2

    def test_the_same_pos_id_at_another_store_is_another_sale(self, client: TestClient, session: Session) -> None:
        make_store(session, "HN01")
        make_store(session, "HN02")
        customer = make_customer(session)
        key = make_key(session)
        for store in ("HN01", "HN02"):
            response = client.post("/v1/transactions",
                                   json=purchase_body(customer.id, 250_000, store_id=store, pos_id="1"),
                                   headers=auth(key))
            assert response.status_code == 201
        assert _available(session, customer.id) == 40


class TestRefusals:
    def test_unknown_customer_is_404_and_nothing_written(self, client: TestClient, session: Session) -> None:
        make_store(session)
        response = client.post("/v1/transactions", json=purchase_body(9999, 250_000),
                               headers=auth(make_key(session)))
        assert response.status_code == 404
        assert response.headers["content-type"] == PROBLEM
        assert _count(session, Transaction) == 0

    def test_unknown_store_is_refused_and_nothing_written(self, client: TestClient, session: Session) -> None:
        make_store(session)
        customer = make_customer(session)
        response = client.post("/v1/transactions", json=purchase_body(customer.id, 250_000, store_id="NOPE"),
                               headers=auth(make_key(session)))
        assert response.status_code in (404, 422)
        assert "NOPE" in response.json()["detail"]
        assert _count(session, Transaction) == 0
        assert _available(session, customer.id) == 0

    def test_lines_not_adding_up_are_422(self, client: TestClient, session: Session) -> None:
        make_store(session)
        customer = make_customer(session)
        lines = [{"sku": "A", "quantity": 2, "unit_price": 100_000}]
        response = client.post("/v1/transactions", json=purchase_body(customer.id, 250_000, lines=lines),
                               headers=auth(make_key(session)))
        assert response.status_code == 422
        assert "200000" in response.json()["detail"]
        assert _count(session, Transaction) == 0

    @pytest.mark.parametrize("change", [{"amount": -1}, {"amount": 1.5}, {"amount": "many"}, {"currency": "vnd"},
                                        {"transaction_id": ""}, {"customer_id": 0}, {"redeem_points": -1}])
    def test_bad_fields_are_422(self, client: TestClient, session: Session, change: dict[str, Any]) -> None:
        make_store(session)
        customer = make_customer(session)
        response = client.post("/v1/transactions", json={**purchase_body(customer.id, 250_000), **change},
                               headers=auth(make_key(session)))
        assert response.status_code == 422
        assert _count(session, Transaction) == 0

    def test_another_currency_is_422(self, client: TestClient, session: Session) -> None:
        make_store(session)
        customer = make_customer(session)
        response = client.post("/v1/transactions", json=purchase_body(customer.id, 250_000, currency="USD"),
                               headers=auth(make_key(session)))
        assert response.status_code == 422
        assert _count(session, Transaction) == 0


class TestPendingPeriod:
    def _apply_pending_program(self, session: Session, days: int) -> None:
        definition = default_program().definition.model_dump()
        definition["pending_days"] = days
        apply_program(session, parse_program(definition), "test", actor="test",
                      effective_from=datetime(2000, 1, 1, tzinfo=UTC))
        session.commit()

    def test_points_wait_then_become_spendable(self, client: TestClient, session: Session) -> None:
        make_store(session)
        customer = make_customer(session)
        self._apply_pending_program(session, 14)
        response = client.post("/v1/transactions", json=purchase_body(customer.id, 250_000),
                               headers=auth(make_key(session)))
        assert response.json()["balance"] == {"available": 0, "pending": 20, "held": 0, "owed": 0}
        assert release_pending(session, datetime.now(UTC) + timedelta(days=13)) == 0
        assert release_pending(session, datetime.now(UTC) + timedelta(days=15)) == 20
        session.commit()
        assert release_pending(session, datetime.now(UTC) + timedelta(days=16)) == 0
        session.commit()
        assert balance_of(session, customer.id)[:2] == (20, 0)
        assert_ledger_ok(session)
