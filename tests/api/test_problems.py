"""Every error is RFC 9457 problem+json an integrator can read; bad input is a 4xx, never a 500."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from loyalty.api.problems import Problem
from loyalty.models import Customer, Transaction
from tests.factories import auth, make_customer, make_key, make_purchase, make_store, purchase_body
from tests.readers import count

PROBLEM = "application/problem+json"
BIG = 2**63


@pytest.fixture
def key(session: Session) -> str:
    make_store(session)
    customer = make_customer(session)
    make_purchase(session, customer.id, 1_000_000)
    return make_key(session)


def _assert_problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert isinstance(body["type"], str) and body["type"].startswith("https://")
    assert isinstance(body["title"], str) and body["title"]
    assert body["status"] == status
    assert isinstance(body["detail"], str) and body["detail"]
    Problem.model_validate(body)  # the schema /openapi.json documents for every error
    return body


class TestShape:
    def test_not_found(self, client: TestClient, key: str) -> None:
        body = _assert_problem(client.get("/v1/customers/777", headers=auth(key)), 404)
        assert "777" in body["detail"]
        assert body["instance"] == "/v1/customers/777"

    def test_unknown_route(self, client: TestClient, key: str) -> None:
        _assert_problem(client.get("/v1/nothing-here", headers=auth(key)), 404)

    def test_wrong_method(self, client: TestClient, key: str) -> None:
        _assert_problem(client.delete("/v1/customers/1", headers=auth(key)), 405)

    def test_validation_lists_every_field(self, client: TestClient, key: str) -> None:
        response = client.post("/v1/transactions", json={"store_id": "HN01", "amount": -5}, headers=auth(key))
        body = _assert_problem(response, 422)
        fields = {error["field"] for error in body["errors"]}
        assert {"transaction_id", "occurred_at", "amount"} <= fields
        assert "amount" in body["detail"]

    def test_conflict(self, client: TestClient, key: str) -> None:
        body = purchase_body(1, 250_000, pos_id="P1")
        client.post("/v1/transactions", json=body, headers=auth(key))
        _assert_problem(client.post("/v1/transactions", json={**body, "amount": 1}, headers=auth(key)), 409)

    def test_insufficient_points_says_how_many_there_are(self, client: TestClient, key: str) -> None:
        response = client.post("/v1/customers/1/holds", json={"points": 101}, headers=auth(key))
        body = _assert_problem(response, 409)
        assert (body["available"], body["requested"]) == (100, 101)

    def test_a_closed_hold_keeps_the_http_status(self, client: TestClient, key: str) -> None:
        hold = client.post("/v1/customers/1/holds", json={"points": 5}, headers=auth(key)).json()
        client.post(f"/v1/holds/{hold['id']}/void", headers=auth(key))
        body = _assert_problem(client.post(f"/v1/holds/{hold['id']}/void", headers=auth(key)), 409)
        assert body["hold_status"] == "voided"


class TestMalformedRequests:
    @pytest.mark.parametrize("raw", [b"{", b"not json", b"[1, 2]", b"null", b'{"amount": }', b"\xff\xfe",
                                     b'"a string"', b""])
    def test_broken_json_is_422_not_500(self, client: TestClient, session: Session, key: str, raw: bytes) -> None:
        response = client.post("/v1/transactions", content=raw,
                               headers={**auth(key), "Content-Type": "application/json"})
        _assert_problem(response, 422)
        assert count(session, Transaction) == 1

    def test_naive_datetime_is_422(self, client: TestClient, session: Session, key: str) -> None:
        body = purchase_body(1, 250_000) | {"occurred_at": "2026-03-01T10:00:00"}
        response = _assert_problem(client.post("/v1/transactions", json=body, headers=auth(key)), 422)
        assert "occurred_at" in response["detail"]
        assert count(session, Transaction) == 1

    def test_naive_enrolment_time_is_422(self, client: TestClient, session: Session, key: str) -> None:
        body = {"phone": "0987654321", "enrolled_at": "2026-03-01T10:00:00"}
        _assert_problem(client.post("/v1/customers", json=body, headers=auth(key)), 422)
        assert count(session, Customer) == 1

    @pytest.mark.parametrize("moment", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00",
                                        "9999-06-30T00:00:00Z", "1969-12-31T23:59:59Z", "2999-01-01T00:00:00Z"])
    def test_implausible_sale_times_are_422(self, client: TestClient, session: Session, key: str,
                                            moment: str) -> None:
        purchase = purchase_body(1, 1_000_000) | {"occurred_at": moment}
        _assert_problem(client.post("/v1/transactions", json=purchase, headers=auth(key)), 422)
        ret = {"transaction_id": "R1", "occurred_at": moment, "amount": 1}
        _assert_problem(client.post("/v1/transactions/1/returns", json=ret, headers=auth(key)), 422)
        assert count(session, Transaction) == 1

    @pytest.mark.parametrize("moment", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00",
                                        "1899-12-31T23:59:59Z", "2999-01-01T00:00:00Z"])
    def test_implausible_enrolment_times_are_422(self, client: TestClient, session: Session, key: str,
                                                 moment: str) -> None:
        customer = {"phone": "0987654321", "enrolled_at": moment}
        _assert_problem(client.post("/v1/customers", json=customer, headers=auth(key)), 422)
        assert count(session, Customer) == 1

    def test_a_sale_a_few_minutes_in_the_future_earns_spendable_points(self, client: TestClient,
                                                                        key: str) -> None:
        from datetime import UTC, datetime, timedelta

        body = purchase_body(1, 250_000, occurred_at=datetime.now(UTC) + timedelta(minutes=3))
        response = client.post("/v1/transactions", json=body, headers=auth(key))
        assert response.status_code == 201
        assert response.json()["balance"]["available"] == 120  # a POS clock running fast parks nothing as pending

    @pytest.mark.parametrize(("method", "path", "body"), [
        ("GET", f"/v1/customers/{BIG}", None),
        ("PATCH", f"/v1/customers/{BIG}", {}),
        ("GET", f"/v1/customers/{BIG}/balance", None),
        ("GET", f"/v1/customers/{BIG}/ledger", None),
        ("GET", f"/v1/customers/1/ledger?before={BIG}", None),
        ("POST", f"/v1/customers/{BIG}/holds", {"points": 1}),
        ("GET", f"/v1/holds/{BIG}", None),
        ("POST", f"/v1/holds/{BIG}/capture", {}),
        ("POST", f"/v1/holds/{BIG}/void", None),
        ("GET", f"/v1/transactions/{BIG}", None),
        ("POST", f"/v1/transactions/{BIG}/returns", {"transaction_id": "R1", "occurred_at": "2026-01-01T00:00:00Z",
                                                     "amount": 1}),
        ("POST", "/v1/adjustments", {"customer_id": BIG, "points": 1, "reason": "abc"}),
        ("POST", "/v1/transactions", purchase_body(BIG, 100)),
        ("POST", "/v1/transactions", purchase_body(1, 100_000, hold_id=BIG)),
        ("GET", f"/v1/customers/{-BIG}", None),
    ])
    def test_ids_beyond_64_bits_are_422(self, client: TestClient, key: str, method: str, path: str,
                                        body: dict[str, Any] | None) -> None:
        _assert_problem(client.request(method, path, json=body, headers=auth(key)), 422)

    @pytest.mark.parametrize("field", ["transaction_id", "store_id", "currency"])
    def test_a_nul_character_is_never_a_500(self, client: TestClient, session: Session, key: str,
                                            field: str) -> None:
        # PostgreSQL cannot store NUL in text (a 422); SQLite can, so there a POS id may contain one.
        body = purchase_body(1, 250_000) | {field: "A\x00B"}
        response = client.post("/v1/transactions", json=body, headers=auth(key))
        assert response.status_code < 500, response.text
        if session.get_bind().dialect.name == "postgresql" or field != "transaction_id":
            assert 400 <= response.status_code < 500
            _assert_problem(response, response.status_code)
            assert count(session, Transaction) == 1

    def test_a_nul_character_in_a_lookup_is_a_4xx(self, client: TestClient, key: str) -> None:
        response = client.get("/v1/customers", params={"email": "a\x00@example.com"}, headers=auth(key))
        assert 400 <= response.status_code < 500
        response = client.get("/v1/customers", params={"external_id": "a\x00b", "namespace": "x"},
                              headers=auth(key))
        assert 400 <= response.status_code < 500

    def test_huge_numbers_are_422(self, client: TestClient, key: str) -> None:
        for change in ({"amount": 10**30}, {"redeem_points": 10**30},
                       {"lines": [{"sku": "A", "quantity": 10**7, "unit_price": 1}]}):
            _assert_problem(client.post("/v1/transactions", json=purchase_body(1, 250_000) | change,
                                        headers=auth(key)), 422)

    def test_a_wrong_content_type_is_a_4xx(self, client: TestClient, key: str) -> None:
        response = client.post("/v1/transactions", content=b"store_id=HN01",
                               headers={**auth(key), "Content-Type": "application/x-www-form-urlencoded"})
        assert 400 <= response.status_code < 500
        assert response.headers["content-type"] == PROBLEM
