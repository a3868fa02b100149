"""A PostgreSQL connection that dies under the pool: one clear 503, then the retry lands exactly once."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from tests.factories import auth, make_customer, make_key, make_store, purchase_body
from tests.readers import assert_ledger_ok, balance_of


def test_a_lost_connection_is_a_503_and_the_retry_counts_once(client: TestClient, session: Session) -> None:
    if session.get_bind().dialect.name != "postgresql":
        pytest.skip("SQLite has no server connection to lose")
    make_store(session)
    customer = make_customer(session)
    key = make_key(session, "store", "HN01")
    first = client.post("/v1/transactions", json=purchase_body(customer.id, 300_000), headers=auth(key, "k-1"))
    assert first.status_code == 201, first.text
    # What a server restart does to every pooled connection of the API (the pool is shared with
    # the test's session, so an outside connection does it).
    outsider = create_engine(session.get_bind().engine.url, poolclass=NullPool)
    with outsider.begin() as connection:
        ended = connection.execute(text("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                        "WHERE datname = current_database() AND pid <> pg_backend_pid()"))
        assert ended.scalar_one() >= 1
    outsider.dispose()
    body = purchase_body(customer.id, 500_000)
    lost = client.post("/v1/transactions", json=body, headers=auth(key, "k-2"))
    assert lost.status_code == 503, lost.text
    assert lost.headers["content-type"] == "application/problem+json"
    assert "retry the request with the same Idempotency-Key" in lost.json()["detail"]
    retry = client.post("/v1/transactions", json=body, headers=auth(key, "k-2"))
    assert retry.status_code == 201, retry.text
    assert retry.json()["points_earned"] == 50
    assert balance_of(session, customer.id)[0] == 30 + 50
    assert_ledger_ok(session)
