"""Returns: the returned share's points are taken back, points spent on it are given back, exactly."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from loyalty.ledger.service import expire_due
from loyalty.models import LedgerEntry, LedgerPosting, MemberBalance, Transaction
from loyalty.programs.schemas import parse_program
from loyalty.programs.service import apply_program, default_program
from tests.factories import auth, make_customer, make_key, make_purchase, make_store, purchase_body
from tests.readers import assert_ledger_ok, balance_of, count, reading

PROBLEM = "application/problem+json"


def _return_body(amount: int, pos_id: str, **extra: Any) -> dict[str, Any]:
    return {"transaction_id": pos_id, "occurred_at": datetime.now(UTC).isoformat(), "amount": amount, **extra}


def _balance(session: Session, customer_id: int) -> tuple[int, int, int, int]:
    return balance_of(session, customer_id)


def _program_accounts(session: Session) -> dict[str, int]:
    """The issued and expired accounts' sums."""
    with reading(session) as reader:
        rows = dict(reader.execute(select(LedgerPosting.account, func.sum(LedgerPosting.amount))
                                   .where(LedgerPosting.account.in_(("issued", "expired")))
                                   .group_by(LedgerPosting.account)).all())
    return {account: int(rows.get(account, 0)) for account in ("issued", "expired")}


class Shop:
    """One retail store, one member, an admin key; purchases and returns over HTTP."""

    def __init__(self, client: TestClient, session: Session) -> None:
        make_store(session)
        self.client, self.session = client, session
        self.customer_id = make_customer(session).id
        self.key = make_key(session)
        self._returns = 0

    def buy(self, amount: int, **extra: Any) -> dict[str, Any]:
        response = self.client.post("/v1/transactions", json=purchase_body(self.customer_id, amount, **extra),
                                    headers=auth(self.key))
        assert response.status_code == 201, response.text
        return dict(response.json())

    def give_back(self, purchase_id: int, amount: int, pos_id: str | None = None, **extra: Any) -> Any:
        self._returns += 1
        return self.client.post(f"/v1/transactions/{purchase_id}/returns",
                                json=_return_body(amount, pos_id or f"R-{self._returns}", **extra),
                                headers=auth(self.key))


@pytest.fixture
def shop(client: TestClient, session: Session) -> Shop:
    return Shop(client, session)


class TestFullReturn:
    def test_takes_back_every_point(self, shop: Shop) -> None:
        purchase = shop.buy(250_000)
        response = shop.give_back(purchase["id"], 250_000)
        assert response.status_code == 201, response.text
        body = response.json()
        assert (body["points_reversed"], body["points_restored"], body["shortfall"]) == (20, 0, 0)
        assert body["balance"] == {"available": 0, "pending": 0, "held": 0, "owed": 0}
        assert body["purchase_id"] == purchase["id"]
        assert _balance(shop.session, shop.customer_id) == (0, 0, 0, 0)
        assert_ledger_ok(shop.session)

    def test_the_earned_total_goes_down_too(self, shop: Shop) -> None:
        purchase = shop.buy(250_000)
        shop.buy(100_000)
        shop.give_back(purchase["id"], 250_000)
        with reading(shop.session) as reader:
            balance = reader.get(MemberBalance, shop.customer_id)
            assert balance is not None and balance.earned_total == 10

    def test_of_an_anonymous_sale_records_it_without_points(self, client: TestClient, session: Session) -> None:
        make_store(session)
        key = make_key(session)
        purchase = client.post("/v1/transactions", json=purchase_body(None, 250_000), headers=auth(key)).json()
        response = client.post(f"/v1/transactions/{purchase['id']}/returns", json=_return_body(250_000, "R1"),
                               headers=auth(key))
        assert response.status_code == 201
        assert (response.json()["points_reversed"], response.json()["balance"]) == (0, None)


class TestPartialReturns:
    def test_reverse_the_proportional_points(self, shop: Shop) -> None:
        purchase = shop.buy(1_000_000)  # 100 points
        body = shop.give_back(purchase["id"], 330_000).json()
        assert body["points_reversed"] == 33
        assert _balance(shop.session, shop.customer_id) == (67, 0, 0, 0)
        assert_ledger_ok(shop.session)

    @pytest.mark.parametrize("parts", [
        [333_333, 333_333, 333_333], [1, 999_998], [100_000] * 9 + [99_999], [500_000, 1, 499_998],
        [7, 13, 999_979],
    ])
    def test_add_up_exactly_to_the_purchases_points(self, shop: Shop, parts: list[int]) -> None:
        assert sum(parts) == 999_999
        purchase = shop.buy(999_999)  # 90 points
        reversed_points = []
        for part in parts:
            response = shop.give_back(purchase["id"], part)
            assert response.status_code == 201, response.text
            reversed_points.append(response.json()["points_reversed"])
        assert sum(reversed_points) == 90
        assert all(p >= 0 for p in reversed_points)
        assert _balance(shop.session, shop.customer_id) == (0, 0, 0, 0)
        assert_ledger_ok(shop.session)

    def test_never_take_back_less_than_the_kept_share_earned(self, shop: Shop) -> None:
        # 150,000 VND kept out of 250,000 would have earned 10 points on its own; the member keeps 10 at most.
        purchase = shop.buy(250_000)
        shop.give_back(purchase["id"], 100_000)
        assert _balance(shop.session, shop.customer_id)[0] <= 20 * 150_000 // 250_000

    def test_returning_more_than_bought_is_422_and_nothing_written(self, shop: Shop) -> None:
        purchase = shop.buy(250_000)
        first = shop.give_back(purchase["id"], 200_000)
        assert first.status_code == 201
        response = shop.give_back(purchase["id"], 50_001)
        assert response.status_code == 422
        assert response.headers["content-type"] == PROBLEM
        assert response.json()["returnable"] == 50_000
        assert count(shop.session, Transaction, Transaction.kind == "return") == 1
        assert shop.give_back(purchase["id"], 250_001).status_code == 422
        assert_ledger_ok(shop.session)


class TestReturnOfSpentPoints:
    def _spend_everything_but(self, shop: Shop, keep: int) -> None:
        available = _balance(shop.session, shop.customer_id)[0]
        response = shop.client.post("/v1/adjustments", json={"customer_id": shop.customer_id,
                                                              "points": keep - available,
                                                              "reason": "points given as a gift card"},
                                    headers=auth(shop.key))
        assert response.status_code == 201, response.text

    def test_reports_the_shortfall_and_never_goes_negative(self, shop: Shop) -> None:
        purchase = shop.buy(1_000_000)  # 100 points
        self._spend_everything_but(shop, 20)
        response = shop.give_back(purchase["id"], 1_000_000)
        assert response.status_code == 201, response.text
        body = response.json()
        assert (body["points_reversed"], body["shortfall"]) == (100, 80)
        assert body["balance"] == {"available": 0, "pending": 0, "held": 0, "owed": 80}
        assert _balance(shop.session, shop.customer_id) == (0, 0, 0, 80)
        assert_ledger_ok(shop.session)

    def test_held_points_are_not_taken(self, shop: Shop) -> None:
        purchase = shop.buy(1_000_000)
        hold = shop.client.post(f"/v1/customers/{shop.customer_id}/holds", json={"points": 70},
                                headers=auth(shop.key))
        assert hold.status_code == 201
        body = shop.give_back(purchase["id"], 1_000_000).json()
        assert (body["points_reversed"], body["shortfall"]) == (100, 70)
        assert _balance(shop.session, shop.customer_id) == (0, 0, 70, 70)
        assert_ledger_ok(shop.session)

    def test_held_points_that_come_back_pay_the_debt_first(self, shop: Shop) -> None:
        # Return a sale while its points are held, then void the hold: the points must not be
        # spendable again beside the debt their return left.
        purchase = shop.buy(1_000_000)
        hold = shop.client.post(f"/v1/customers/{shop.customer_id}/holds", json={"points": 70},
                                headers=auth(shop.key)).json()
        shop.give_back(purchase["id"], 1_000_000)
        assert _balance(shop.session, shop.customer_id) == (0, 0, 70, 70)
        void = shop.client.post(f"/v1/holds/{hold['id']}/void", headers=auth(shop.key))
        assert void.status_code == 200, void.text
        assert void.json()["balance"] == {"available": 0, "pending": 0, "held": 0, "owed": 0}
        assert _balance(shop.session, shop.customer_id) == (0, 0, 0, 0)
        assert_ledger_ok(shop.session)

    def test_a_partly_captured_hold_pays_the_debt_from_its_rest(self, shop: Shop) -> None:
        purchase = shop.buy(1_000_000)  # 100 points
        shop.buy(500_000)  # 50 more
        hold = shop.client.post(f"/v1/customers/{shop.customer_id}/holds", json={"points": 150},
                                headers=auth(shop.key)).json()
        shop.give_back(purchase["id"], 1_000_000)  # all 150 held: 100 owed
        capture = shop.client.post(f"/v1/holds/{hold['id']}/capture", json={"points": 30}, headers=auth(shop.key))
        assert capture.status_code == 200, capture.text
        # 120 come back: 100 pay the debt, 20 are spendable.
        assert _balance(shop.session, shop.customer_id) == (20, 0, 0, 0)
        assert_ledger_ok(shop.session)

    def test_the_debt_is_settled_by_the_next_earning(self, shop: Shop) -> None:
        purchase = shop.buy(1_000_000)
        self._spend_everything_but(shop, 20)
        shop.give_back(purchase["id"], 1_000_000)
        body = purchase_body(shop.customer_id, 500_000)
        first = shop.client.post("/v1/transactions", json=body, headers=auth(shop.key))
        assert first.status_code == 201
        assert (first.json()["points_earned"], first.json()["owed_settled"]) == (50, 50)
        assert first.json()["balance"] == {"available": 0, "pending": 0, "held": 0, "owed": 30}
        second = shop.buy(1_000_000)
        assert (second["points_earned"], second["owed_settled"]) == (100, 30)
        assert second["balance"] == {"available": 70, "pending": 0, "held": 0, "owed": 0}
        assert _balance(shop.session, shop.customer_id) == (70, 0, 0, 0)
        assert_ledger_ok(shop.session)
        # A POS retrying the sale that paid the debt gets that very answer back.
        replay = shop.client.post("/v1/transactions", json=body, headers=auth(shop.key))
        assert replay.status_code == 200
        assert replay.json()["owed_settled"] == 50
        assert replay.json()["points_earned"] == 50

    def test_a_debt_can_be_paid_by_a_positive_adjustment(self, shop: Shop) -> None:
        purchase = shop.buy(1_000_000)
        self._spend_everything_but(shop, 0)
        shop.give_back(purchase["id"], 1_000_000)
        response = shop.client.post("/v1/adjustments", json={"customer_id": shop.customer_id, "points": 130,
                                                              "reason": "goodwill"}, headers=auth(shop.key))
        assert response.status_code == 201
        assert response.json()["balance"] == {"available": 30, "pending": 0, "held": 0, "owed": 0}
        assert_ledger_ok(shop.session)


class TestPointsThatExpired:
    """The purchase's points expired before the goods came back: the member already lost them, so
    the return takes them back from the expired account, not from the member's other points."""

    def _expired_purchase(self, shop: Shop) -> dict[str, Any]:
        purchase = shop.buy(1_000_000, occurred_at=datetime.now(UTC) - timedelta(days=400))  # 100 points
        shop.buy(500_000)  # 50 fresh points
        assert expire_due(shop.session, datetime.now(UTC)) == 100
        shop.session.commit()
        return purchase

    def test_a_full_return_leaves_the_other_points_alone(self, shop: Shop) -> None:
        purchase = self._expired_purchase(shop)
        body = shop.give_back(purchase["id"], 1_000_000).json()
        assert (body["points_reversed"], body["shortfall"]) == (100, 0)
        assert body["balance"] == {"available": 50, "pending": 0, "held": 0, "owed": 0}
        assert _balance(shop.session, shop.customer_id) == (50, 0, 0, 0)
        assert _program_accounts(shop.session) == {"issued": -50, "expired": 0}
        assert_ledger_ok(shop.session)

    def test_partial_returns_take_back_no_more_than_expired(self, shop: Shop) -> None:
        purchase = self._expired_purchase(shop)
        for amount in (300_000, 300_000, 400_000):
            body = shop.give_back(purchase["id"], amount).json()
            assert body["shortfall"] == 0
        assert _balance(shop.session, shop.customer_id) == (50, 0, 0, 0)
        assert _program_accounts(shop.session) == {"issued": -50, "expired": 0}
        assert_ledger_ok(shop.session)

    def test_points_partly_spent_partly_expired(self, shop: Shop) -> None:
        # 100 points that expire in about 65 days; 40 of them are held for a redemption first.
        purchase = shop.buy(1_000_000, occurred_at=datetime.now(UTC) - timedelta(days=300))
        hold = shop.client.post(f"/v1/customers/{shop.customer_id}/holds", json={"points": 40},
                                headers=auth(shop.key))
        assert hold.status_code == 201, hold.text
        assert expire_due(shop.session, datetime.now(UTC) + timedelta(days=70)) == 60
        shop.session.commit()
        shop.buy(500_000)  # 50 fresh points
        body = shop.give_back(purchase["id"], 1_000_000).json()
        # 60 come back from the expired account; the 40 spent come from the fresh points.
        assert (body["points_reversed"], body["shortfall"]) == (100, 0)
        assert _balance(shop.session, shop.customer_id) == (10, 0, 40, 0)
        assert _program_accounts(shop.session) == {"issued": -50, "expired": 0}
        assert_ledger_ok(shop.session)


class TestPointsSpentOnThePurchase:
    def test_full_return_gives_them_back(self, shop: Shop) -> None:
        shop.buy(1_000_000)  # 100 points
        purchase = shop.buy(300_000, redeem_points=100)  # 200,000 paid in money: 20 points
        assert _balance(shop.session, shop.customer_id)[0] == 20
        body = shop.give_back(purchase["id"], 300_000).json()
        assert (body["points_restored"], body["points_reversed"], body["shortfall"]) == (100, 20, 0)
        assert _balance(shop.session, shop.customer_id) == (100, 0, 0, 0)
        assert_ledger_ok(shop.session)

    def test_partial_returns_give_back_their_share_and_add_up(self, shop: Shop) -> None:
        shop.buy(1_000_000)
        purchase = shop.buy(300_000, redeem_points=100)
        restored, reversed_points = [], []
        for part in (100_000, 100_000, 100_000):
            body = shop.give_back(purchase["id"], part).json()
            restored.append(body["points_restored"])
            reversed_points.append(body["points_reversed"])
        assert sum(restored) == 100 and sum(reversed_points) == 20
        assert restored[0] == 33
        assert _balance(shop.session, shop.customer_id) == (100, 0, 0, 0)
        assert_ledger_ok(shop.session)

    def test_points_paid_through_a_hold_are_given_back(self, shop: Shop) -> None:
        shop.buy(1_000_000)
        hold = shop.client.post(f"/v1/customers/{shop.customer_id}/holds", json={"points": 60},
                                headers=auth(shop.key)).json()
        purchase = shop.buy(260_000, hold_id=hold["id"])  # 200,000 paid in money: 20 points
        assert _balance(shop.session, shop.customer_id)[0] == 60
        response = shop.give_back(purchase["id"], 260_000)
        assert response.status_code == 201, response.text
        assert (response.json()["points_restored"], response.json()["points_reversed"]) == (60, 20)
        assert _balance(shop.session, shop.customer_id) == (100, 0, 0, 0)
        assert_ledger_ok(shop.session)

    def test_given_back_points_return_to_the_lots_they_came_from(self, shop: Shop, session: Session) -> None:
        old = datetime.now(UTC) - timedelta(days=300)
        make_purchase(session, shop.customer_id, 500_000, occurred_at=old)  # 50 points, expire in ~65 days
        purchase = shop.buy(300_000, redeem_points=50)
        shop.give_back(purchase["id"], 300_000)
        body = shop.client.get(f"/v1/customers/{shop.customer_id}/balance", headers=auth(shop.key)).json()
        assert body["available"] == 50
        assert body["expiring_90_days"] == 50
        assert_ledger_ok(session)


class TestReplay:
    def test_same_return_id_again_changes_nothing(self, shop: Shop) -> None:
        purchase = shop.buy(1_000_000)
        first = shop.give_back(purchase["id"], 400_000, pos_id="R-9")
        again = shop.give_back(purchase["id"], 400_000, pos_id="R-9")
        assert first.status_code == 201
        assert again.status_code == 200
        assert again.headers["Idempotent-Replayed"] == "true"
        assert again.json() == first.json()
        assert _balance(shop.session, shop.customer_id) == (60, 0, 0, 0)
        assert count(shop.session, LedgerEntry, LedgerEntry.kind == "reverse") == 1
        assert_ledger_ok(shop.session)

    def test_same_return_id_with_another_amount_is_409(self, shop: Shop) -> None:
        purchase = shop.buy(1_000_000)
        shop.give_back(purchase["id"], 400_000, pos_id="R-9")
        response = shop.give_back(purchase["id"], 300_000, pos_id="R-9")
        assert response.status_code == 409
        assert _balance(shop.session, shop.customer_id) == (60, 0, 0, 0)

    def test_a_return_id_cannot_reuse_a_sales_pos_id(self, shop: Shop) -> None:
        purchase = shop.buy(1_000_000, pos_id="SALE-1")
        response = shop.give_back(purchase["id"], 100_000, pos_id="SALE-1")
        assert response.status_code == 409


class TestRefusals:
    def test_unknown_purchase_is_404(self, shop: Shop) -> None:
        response = shop.give_back(987654, 1000)
        assert response.status_code == 404
        assert response.headers["content-type"] == PROBLEM

    def test_a_return_is_not_a_purchase(self, shop: Shop) -> None:
        purchase = shop.buy(1_000_000)
        ret = shop.give_back(purchase["id"], 100_000).json()
        assert shop.give_back(ret["id"], 1000).status_code == 404

    @pytest.mark.parametrize("change", [{"amount": 0}, {"amount": -5}, {"occurred_at": "2026-01-01T10:00:00"},
                                        {"lines": [{"sku": "A", "quantity": 1, "unit_price": 1}]},
                                        {"points_reversed": 0}])
    def test_bad_bodies_are_422(self, shop: Shop, change: dict[str, Any]) -> None:
        purchase = shop.buy(1_000_000)
        response = shop.client.post(f"/v1/transactions/{purchase['id']}/returns",
                                    json={**_return_body(100_000, "R-1"), **change}, headers=auth(shop.key))
        assert response.status_code == 422
        assert _balance(shop.session, shop.customer_id)[0] == 100


class TestPendingPoints:
    def test_a_return_in_the_pending_period_takes_them_from_pending(self, client: TestClient,
                                                                    session: Session) -> None:
        definition = default_program().definition.model_dump()
        definition["pending_days"] = 14
        apply_program(session, parse_program(definition), "test", actor="test",
                      effective_from=datetime(2000, 1, 1, tzinfo=UTC))
        session.commit()
        shop = Shop(client, session)
        purchase = shop.buy(1_000_000)
        body = shop.give_back(purchase["id"], 500_000).json()
        assert (body["points_reversed"], body["shortfall"]) == (50, 0)
        assert body["balance"] == {"available": 0, "pending": 50, "held": 0, "owed": 0}
        assert_ledger_ok(session)
