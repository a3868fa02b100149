"""API keys: no key, no access; each role reaches only what it should (OWASP API1 and API5)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlalchemy.orm import Session

from loyalty.auth.service import clear_cache
from loyalty.models import ApiKey, Transaction
from loyalty.timeutil import utcnow
from tests.factories import auth, make_customer, make_key, make_purchase, make_store, purchase_body
from tests.readers import balance_of, count

PROBLEM = "application/problem+json"


@pytest.fixture
def customer_id(session: Session) -> int:
    make_store(session, "HN01")
    make_store(session, "HN02")
    cid = make_customer(session, phone="0912345678").id
    make_purchase(session, cid, 1_000_000)
    return cid


def _assert_problem(response: Any, status: int) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["status"] == status and body["title"] and body["detail"] and body["type"].startswith("https://")


class TestNoKey:
    @pytest.mark.parametrize(("method", "path"), [
        ("GET", "/v1/customers/1"), ("GET", "/v1/customers?phone=0912345678"), ("POST", "/v1/customers"),
        ("POST", "/v1/transactions"), ("GET", "/v1/customers/1/balance"), ("POST", "/v1/adjustments"),
        ("POST", "/v1/holds/1/void"), ("GET", "/v1/stores"), ("GET", "/v1/program"),
    ])
    def test_is_401_problem(self, client: TestClient, customer_id: int, method: str, path: str) -> None:
        response = client.request(method, path)
        _assert_problem(response, 401)
        assert response.headers["WWW-Authenticate"] == "Bearer"

    @pytest.mark.parametrize("header", [
        {"Authorization": "Bearer nonsense"}, {"Authorization": "Bearer lk_abc_def"}, {"X-API-Key": "lk_x"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
    ])
    def test_a_wrong_key_is_401(self, client: TestClient, customer_id: int, header: dict[str, str]) -> None:
        _assert_problem(client.get(f"/v1/customers/{customer_id}", headers=header), 401)

    def test_a_right_prefix_with_a_wrong_secret_is_401(self, client: TestClient, session: Session,
                                                       customer_id: int) -> None:
        key = make_key(session)
        forged = key[: key.rindex("_") + 1] + "x" * 43
        _assert_problem(client.get(f"/v1/customers/{customer_id}", headers=auth(forged)), 401)

    def test_a_revoked_key_is_401(self, client: TestClient, session: Session, customer_id: int) -> None:
        key = make_key(session)
        session.execute(update(ApiKey).values(revoked_at=utcnow()))
        session.commit()
        clear_cache()
        _assert_problem(client.get(f"/v1/customers/{customer_id}", headers=auth(key)), 401)

    def test_the_x_api_key_header_works_too(self, client: TestClient, session: Session, customer_id: int) -> None:
        response = client.get(f"/v1/customers/{customer_id}", headers={"X-API-Key": make_key(session)})
        assert response.status_code == 200


class TestReadonlyKey:
    @pytest.fixture
    def key(self, session: Session, customer_id: int) -> str:
        return make_key(session, "readonly")

    def test_reads(self, client: TestClient, customer_id: int, key: str) -> None:
        for path in (f"/v1/customers/{customer_id}", f"/v1/customers/{customer_id}/balance",
                     f"/v1/customers/{customer_id}/ledger", "/v1/customers?phone=0912345678"):
            assert client.get(path, headers=auth(key)).status_code == 200, path

    @pytest.mark.parametrize(("method", "path", "body"), [
        ("POST", "/v1/customers", {"phone": "0987654321"}),
        ("PATCH", "/v1/customers/{cid}", {"name": "X"}),
        ("POST", "/v1/transactions", None),
        ("POST", "/v1/customers/{cid}/holds", {"points": 1}),
        ("POST", "/v1/adjustments", {"customer_id": "{cid}", "points": 5, "reason": "test"}),
    ])
    def test_cannot_write(self, client: TestClient, session: Session, customer_id: int, key: str, method: str,
                          path: str, body: dict[str, Any] | None) -> None:
        if body is None:
            body = purchase_body(customer_id, 250_000)
        body = {k: (customer_id if v == "{cid}" else v) for k, v in body.items()}
        response = client.request(method, path.format(cid=customer_id), json=body, headers=auth(key))
        _assert_problem(response, 403)
        assert balance_of(session, customer_id)[0] == 100
        assert count(session, Transaction) == 1


class TestStoreKey:
    @pytest.fixture
    def key(self, session: Session, customer_id: int) -> str:
        return make_key(session, "store", "HN01")

    def test_posts_purchases_for_its_own_store(self, client: TestClient, session: Session, customer_id: int,
                                               key: str) -> None:
        response = client.post("/v1/transactions", json=purchase_body(customer_id, 250_000, store_id="HN01"),
                               headers=auth(key))
        assert response.status_code == 201
        assert balance_of(session, customer_id)[0] == 120

    def test_cannot_post_for_another_store(self, client: TestClient, session: Session, customer_id: int,
                                           key: str) -> None:
        response = client.post("/v1/transactions", json=purchase_body(customer_id, 250_000, store_id="HN02"),
                               headers=auth(key))
        _assert_problem(response, 403)
        assert "HN01" in response.json()["detail"]
        assert count(session, Transaction) == 1

    def test_looks_customers_up_and_reads_the_balance(self, client: TestClient, customer_id: int,
                                                      key: str) -> None:
        found = client.get("/v1/customers", params={"phone": "0912 345 678"}, headers=auth(key))
        assert found.status_code == 200 and found.json()["id"] == customer_id
        assert client.get(f"/v1/customers/{customer_id}", headers=auth(key)).status_code == 200
        balance = client.get(f"/v1/customers/{customer_id}/balance", headers=auth(key))
        assert balance.status_code == 200 and balance.json()["available"] == 100

    @pytest.mark.parametrize(("method", "path", "body"), [
        ("POST", "/v1/adjustments", {"customer_id": "{cid}", "points": 500, "reason": "a gift to myself"}),
        ("PATCH", "/v1/customers/{cid}", {"phone": "0987654321"}),
        ("POST", "/v1/customers", {"phone": "0987654321"}),
        ("POST", "/v1/stores", {"id": "X1", "name": "X", "kind": "retail"}),
    ])
    def test_cannot_reach_admin_functions(self, client: TestClient, session: Session, customer_id: int, key: str,
                                          method: str, path: str, body: dict[str, Any]) -> None:
        body = {k: (customer_id if v == "{cid}" else v) for k, v in body.items()}
        response = client.request(method, path.format(cid=customer_id), json=body, headers=auth(key))
        _assert_problem(response, 403)
        assert balance_of(session, customer_id)[0] == 100

    def test_cannot_read_the_ledger_history(self, client: TestClient, customer_id: int, key: str) -> None:
        _assert_problem(client.get(f"/v1/customers/{customer_id}/ledger", headers=auth(key)), 403)

    def test_reads_its_own_purchase_but_not_another_stores(self, client: TestClient, session: Session,
                                                           customer_id: int, key: str) -> None:
        admin = make_key(session)
        own = client.post("/v1/transactions", json=purchase_body(customer_id, 250_000, store_id="HN01"),
                          headers=auth(key)).json()
        other = client.post("/v1/transactions", json=purchase_body(customer_id, 250_000, store_id="HN02"),
                            headers=auth(admin)).json()
        assert client.get(f"/v1/transactions/{own['id']}", headers=auth(key)).status_code == 200
        response = client.get(f"/v1/transactions/{other['id']}", headers=auth(key))
        _assert_problem(response, 404)  # as if it did not exist: no hint about other stores' sales

    def test_cannot_return_another_stores_purchase(self, client: TestClient, session: Session, customer_id: int,
                                                   key: str) -> None:
        other = client.post("/v1/transactions", json=purchase_body(customer_id, 250_000, store_id="HN02"),
                            headers=auth(make_key(session))).json()
        response = client.post(f"/v1/transactions/{other['id']}/returns",
                               json={"transaction_id": "R1", "occurred_at": "2026-01-01T00:00:00Z",
                                     "amount": 250_000}, headers=auth(key))
        assert response.status_code in (403, 404)
        assert balance_of(session, customer_id)[0] == 120

    def test_cannot_record_a_return_at_another_store(self, client: TestClient, session: Session,
                                                     customer_id: int, key: str) -> None:
        own = client.post("/v1/transactions", json=purchase_body(customer_id, 250_000, store_id="HN01"),
                          headers=auth(key)).json()
        response = client.post(f"/v1/transactions/{own['id']}/returns",
                               json={"transaction_id": "R1", "store_id": "HN02",
                                     "occurred_at": "2026-01-01T00:00:00Z", "amount": 250_000}, headers=auth(key))
        assert response.status_code in (403, 422)
        assert balance_of(session, customer_id)[0] == 120


class TestAdminKey:
    def test_reaches_everything(self, client: TestClient, session: Session, customer_id: int) -> None:
        key = make_key(session)
        assert client.post("/v1/adjustments", json={"customer_id": customer_id, "points": 5, "reason": "gift"},
                           headers=auth(key)).status_code == 201
        assert client.patch(f"/v1/customers/{customer_id}", json={"name": "Y"}, headers=auth(key)).status_code == 200
        assert client.post("/v1/transactions", json=purchase_body(customer_id, 100_000, store_id="HN02"),
                           headers=auth(key)).status_code == 201
