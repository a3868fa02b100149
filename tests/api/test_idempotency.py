"""Idempotency-Key (Stripe semantics): a retry gets the first response back; a reused key is a 409."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event, insert, select
from sqlalchemy.orm import Session

from loyalty.models import ApiKey, Customer, Hold, IdempotencyRecord, LedgerEntry, Transaction
from loyalty.programs.schemas import parse_program
from loyalty.programs.service import apply_program, default_program
from tests.factories import auth, make_customer, make_key, make_purchase, make_store, purchase_body
from tests.readers import balance_of, count
from tests.tiers.helpers import program_data

PROBLEM = "application/problem+json"


@pytest.fixture
def customer_id(session: Session) -> int:
    make_store(session)
    cid = make_customer(session).id
    make_purchase(session, cid, 1_000_000)  # 100 points
    return cid


class TestSameKeySameBody:
    def test_a_purchase_is_replayed_not_recorded_twice(self, client: TestClient, session: Session,
                                                       customer_id: int) -> None:
        key = make_key(session)
        body = purchase_body(customer_id, 250_000)
        first = client.post("/v1/transactions", json=body, headers=auth(key, "k-1"))
        again = client.post("/v1/transactions", json=body, headers=auth(key, "k-1"))
        assert first.status_code == 201
        assert "Idempotent-Replayed" not in first.headers
        assert again.status_code == 201  # the stored first response, status and all
        assert again.headers["Idempotent-Replayed"] == "true"
        assert again.json() == first.json()
        assert balance_of(session, customer_id)[0] == 120
        assert count(session, Transaction) == 2

    @pytest.mark.parametrize("points", [30, -30])
    def test_an_adjustment_is_applied_once(self, client: TestClient, session: Session, customer_id: int,
                                           points: int) -> None:
        key = make_key(session)
        body = {"customer_id": customer_id, "points": points, "reason": "goodwill"}
        responses = [client.post("/v1/adjustments", json=body, headers=auth(key, "adj-1")) for _ in range(3)]
        assert [r.status_code for r in responses] == [201, 201, 201]
        assert responses[1].json() == responses[2].json() == responses[0].json()
        assert balance_of(session, customer_id)[0] == 100 + points
        assert count(session, LedgerEntry, LedgerEntry.kind == "adjust") == 1

    def test_without_a_key_each_adjustment_counts(self, client: TestClient, session: Session,
                                                  customer_id: int) -> None:
        key = make_key(session)
        body = {"customer_id": customer_id, "points": 5, "reason": "goodwill"}
        for _ in range(2):
            assert client.post("/v1/adjustments", json=body, headers=auth(key)).status_code == 201
        assert balance_of(session, customer_id)[0] == 110

    def test_a_hold_is_made_once(self, client: TestClient, session: Session, customer_id: int) -> None:
        key = make_key(session)
        first = client.post(f"/v1/customers/{customer_id}/holds", json={"points": 30}, headers=auth(key, "h"))
        again = client.post(f"/v1/customers/{customer_id}/holds", json={"points": 30}, headers=auth(key, "h"))
        assert again.json()["id"] == first.json()["id"]
        assert count(session, Hold) == 1
        assert balance_of(session, customer_id) == (70, 0, 30, 0)

    def test_a_capture_retried_after_it_succeeded_gets_its_answer(self, client: TestClient, session: Session,
                                                                  customer_id: int) -> None:
        key = make_key(session)
        hold = client.post(f"/v1/customers/{customer_id}/holds", json={"points": 30}, headers=auth(key)).json()
        first = client.post(f"/v1/holds/{hold['id']}/capture", json={"points": 20}, headers=auth(key, "cap"))
        again = client.post(f"/v1/holds/{hold['id']}/capture", json={"points": 20}, headers=auth(key, "cap"))
        assert first.status_code == again.status_code == 200  # not 409: the retry is the same request
        assert again.json() == first.json()
        assert balance_of(session, customer_id) == (80, 0, 0, 0)

    def test_a_void_retried_gets_its_answer(self, client: TestClient, session: Session, customer_id: int) -> None:
        key = make_key(session)
        hold = client.post(f"/v1/customers/{customer_id}/holds", json={"points": 30}, headers=auth(key)).json()
        first = client.post(f"/v1/holds/{hold['id']}/void", headers=auth(key, "void"))
        again = client.post(f"/v1/holds/{hold['id']}/void", headers=auth(key, "void"))
        assert (first.status_code, again.status_code) == (200, 200)
        assert again.headers["Idempotent-Replayed"] == "true"

    def test_a_customer_is_created_once(self, client: TestClient, session: Session) -> None:
        key = make_key(session)
        body = {"phone": "0987654321", "name": "Phạm Minh"}
        first = client.post("/v1/customers", json=body, headers=auth(key, "c-1"))
        again = client.post("/v1/customers", json=body, headers=auth(key, "c-1"))
        assert (first.status_code, again.status_code) == (201, 201)
        assert again.json() == first.json()
        assert count(session, Customer) == 1

    def test_the_same_body_in_another_key_order_is_the_same_request(self, client: TestClient, session: Session,
                                                                    customer_id: int) -> None:
        key = make_key(session)
        body = purchase_body(customer_id, 250_000)
        client.post("/v1/transactions", json=body, headers=auth(key, "k-1"))
        again = client.post("/v1/transactions", json=dict(reversed(list(body.items()))), headers=auth(key, "k-1"))
        assert again.headers["Idempotent-Replayed"] == "true"


class TestSameKeyDifferentRequest:
    @pytest.mark.parametrize("change", [{"amount": 260_000}, {"redeem_points": 10}, {"transaction_id": "OTHER"}])
    def test_a_different_body_is_409_and_does_nothing(self, client: TestClient, session: Session, customer_id: int,
                                                      change: dict[str, Any]) -> None:
        key = make_key(session)
        body = purchase_body(customer_id, 250_000)
        assert client.post("/v1/transactions", json=body, headers=auth(key, "k-1")).status_code == 201
        response = client.post("/v1/transactions", json={**body, **change}, headers=auth(key, "k-1"))
        assert response.status_code == 409
        assert response.headers["content-type"] == PROBLEM
        problem = response.json()
        assert problem["type"].endswith("/idempotency-key-reused")
        assert problem["status"] == 409 and "k-1" in problem["detail"]
        assert balance_of(session, customer_id)[0] == 120
        assert count(session, Transaction) == 2

    def test_another_endpoint_with_the_same_key_is_409(self, client: TestClient, session: Session,
                                                       customer_id: int) -> None:
        key = make_key(session)
        client.post("/v1/adjustments", json={"customer_id": customer_id, "points": 5, "reason": "goodwill"},
                    headers=auth(key, "same"))
        response = client.post(f"/v1/customers/{customer_id}/holds", json={"points": 5}, headers=auth(key, "same"))
        assert response.status_code == 409
        assert balance_of(session, customer_id) == (105, 0, 0, 0)

    def test_a_failed_request_does_not_use_up_the_key(self, client: TestClient, session: Session,
                                                      customer_id: int) -> None:
        key = make_key(session)
        too_many = client.post(f"/v1/customers/{customer_id}/holds", json={"points": 500}, headers=auth(key, "h"))
        assert too_many.status_code == 409
        assert count(session, IdempotencyRecord) == 0
        retry = client.post(f"/v1/customers/{customer_id}/holds", json={"points": 50}, headers=auth(key, "h"))
        assert retry.status_code == 201


class TestKeysArePerApiKey:
    def test_two_api_keys_may_use_the_same_idempotency_key(self, client: TestClient, session: Session,
                                                           customer_id: int) -> None:
        till_1, till_2 = make_key(session, "store", "HN01"), make_key(session, "store", "HN01")
        first = client.post("/v1/transactions", json=purchase_body(customer_id, 250_000), headers=auth(till_1, "1"))
        second = client.post("/v1/transactions", json=purchase_body(customer_id, 300_000),
                             headers=auth(till_2, "1"))
        assert (first.status_code, second.status_code) == (201, 201)
        assert "Idempotent-Replayed" not in second.headers
        assert balance_of(session, customer_id)[0] == 150

    def test_another_api_key_cannot_read_a_stored_response(self, client: TestClient, session: Session,
                                                           customer_id: int) -> None:
        admin, other = make_key(session), make_key(session)
        body = {"customer_id": customer_id, "points": 5, "reason": "goodwill"}
        client.post("/v1/adjustments", json=body, headers=auth(admin, "x"))
        response = client.post("/v1/adjustments", json=body, headers=auth(other, "x"))
        assert response.status_code == 201
        assert "Idempotent-Replayed" not in response.headers
        assert balance_of(session, customer_id)[0] == 110


class TestKeyFormat:
    def test_an_overlong_key_is_422(self, client: TestClient, session: Session, customer_id: int) -> None:
        response = client.post("/v1/transactions", json=purchase_body(customer_id, 250_000),
                               headers=auth(make_key(session), "x" * 256))
        assert response.status_code == 422
        assert response.headers["content-type"] == PROBLEM
        assert count(session, Transaction) == 1


class TestASaleOffTheAtOncePath:
    """A program with tiers is never written at once: its sales take `Writer.run` optimistically, with
    no replay look-up before the work (the record's unique key catches a stored key instead)."""

    @pytest.fixture
    def tiered(self, session: Session, customer_id: int) -> int:
        definition = default_program().definition.model_dump(mode="json") | {"tiers": program_data()["tiers"]}
        apply_program(session, parse_program(definition), "test", actor="test",
                      effective_from=datetime(2000, 1, 1, tzinfo=UTC))
        session.commit()
        return customer_id

    def test_a_new_sale_reads_no_stored_response(self, client: TestClient, session: Session, engine: Engine,
                                                 tiered: int) -> None:
        key = make_key(session)
        look_ups: list[str] = []

        def note(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            if statement.lstrip().upper().startswith("SELECT") and "idempotency_keys" in statement:
                look_ups.append(statement)

        event.listen(engine, "before_cursor_execute", note)
        try:
            response = client.post("/v1/transactions", json=purchase_body(tiered, 250_000), headers=auth(key, "n-1"))
        finally:
            event.remove(engine, "before_cursor_execute", note)
        assert response.status_code == 201
        assert look_ups == []
        assert count(session, IdempotencyRecord) == 1

    def test_a_retry_gets_the_stored_response(self, client: TestClient, session: Session, tiered: int) -> None:
        key = make_key(session)
        body = purchase_body(tiered, 250_000)
        first = client.post("/v1/transactions", json=body, headers=auth(key, "t-1"))
        again = client.post("/v1/transactions", json=body, headers=auth(key, "t-1"))
        assert (first.status_code, again.status_code) == (201, 201)
        assert again.headers["Idempotent-Replayed"] == "true"
        assert again.json() == first.json()
        assert balance_of(session, tiered)[0] == 120
        assert count(session, Transaction) == 2
        assert count(session, IdempotencyRecord) == 1

    @pytest.mark.parametrize("change", [{"amount": 260_000}, {"transaction_id": "OTHER"},
                                        {"store_id": "NOWHERE"}, {"customer_id": 10**9}])
    def test_the_same_key_for_another_request_is_409_before_any_error(
        self, client: TestClient, session: Session, tiered: int, change: dict[str, Any],
    ) -> None:
        # An unknown store or member would be a 404 on its own: the stored key answers first.
        key = make_key(session)
        body = purchase_body(tiered, 250_000)
        assert client.post("/v1/transactions", json=body, headers=auth(key, "t-2")).status_code == 201
        response = client.post("/v1/transactions", json={**body, **change}, headers=auth(key, "t-2"))
        assert response.status_code == 409
        assert response.json()["type"].endswith("/idempotency-key-reused")
        assert balance_of(session, tiered)[0] == 120
        assert count(session, Transaction) == 2

    def test_a_key_stored_while_the_sale_ran_commits_nothing(self, client: TestClient, session: Session,
                                                             engine: Engine, tiered: int) -> None:
        # Off the at-once path a sale does not look the key up first (optimistic): the record's INSERT
        # failing after the sale must answer as the key's conflict, with the sale rolled back.
        if engine.dialect.name != "postgresql":
            pytest.skip("no other writer can store the key meanwhile on SQLite")
        key = make_key(session)
        api_key_id = session.scalar(select(ApiKey.id).order_by(ApiKey.id.desc()).limit(1))
        transactions_before = count(session, Transaction)

        stored: list[bool] = []

        def store_first(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            if statement.lstrip().upper().startswith("INSERT INTO IDEMPOTENCY_KEYS") and not stored:
                stored.append(True)  # before the insert below, which this listener sees too
                with engine.connect() as other:
                    other.execute(insert(IdempotencyRecord).values(
                        api_key_id=api_key_id, key="t-race", method="POST", path="/v1/transactions",
                        request_hash="another request", response_status=201, response_body="{}",
                        created_at=datetime.now(UTC)))
                    other.commit()

        event.listen(engine, "before_cursor_execute", store_first)
        try:
            response = client.post("/v1/transactions", json=purchase_body(tiered, 250_000),
                                   headers=auth(key, "t-race"))
        finally:
            event.remove(engine, "before_cursor_execute", store_first)
        assert response.status_code == 409
        assert response.json()["type"].endswith("/idempotency-key-reused")
        assert count(session, Transaction) == transactions_before
        assert balance_of(session, tiered)[0] == 100
        assert count(session, IdempotencyRecord) == 1

    def test_a_failed_sale_does_not_use_up_the_key(self, client: TestClient, session: Session, tiered: int) -> None:
        key = make_key(session)
        missing = client.post("/v1/transactions", json=purchase_body(tiered, 250_000, store_id="NOWHERE"),
                              headers=auth(key, "t-3"))
        assert missing.status_code == 404
        assert count(session, IdempotencyRecord) == 0
        retry = client.post("/v1/transactions", json=purchase_body(tiered, 250_000), headers=auth(key, "t-3"))
        assert retry.status_code == 201
