"""A NUL character anywhere in a /v1 request is the same 422 on SQLite and PostgreSQL, naming the
field, and writes nothing (PostgreSQL cannot store it; SQLite used to)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from loyalty.api.text import body_nul_errors
from loyalty.models import Customer, LedgerEntry, Transaction
from tests.factories import auth, make_customer, make_key, make_store, purchase_body
from tests.readers import count


@pytest.fixture
def key(session: Session) -> str:
    make_store(session)
    make_customer(session, phone="0912000001")
    return make_key(session)


def _assert_refused(response: Any, field: str) -> None:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert {"field": field, "message": "must not contain the NUL character (\\u0000)"} in body["errors"]
    assert field in body["detail"]


@pytest.mark.parametrize(("field", "value"), [
    ("transaction_id", "A\x00B"), ("store_id", "HN\x0001"), ("currency", "V\x00D"),
])
def test_a_purchase_with_a_nul_is_refused_and_writes_nothing(client: TestClient, session: Session, key: str,
                                                             field: str, value: str) -> None:
    response = client.post("/v1/transactions", json=purchase_body(1, 250_000) | {field: value}, headers=auth(key))
    _assert_refused(response, field)
    assert (count(session, Transaction), count(session, LedgerEntry)) == (0, 0)


def test_a_nul_in_a_purchase_line_names_the_line(client: TestClient, session: Session, key: str) -> None:
    lines = [{"sku": "KEM-01", "quantity": 1, "unit_price": 100_000},
             {"sku": "SUA\x0002", "quantity": 1, "unit_price": 150_000}]
    response = client.post("/v1/transactions", json=purchase_body(1, 250_000, lines=lines), headers=auth(key))
    _assert_refused(response, "lines.1.sku")
    assert count(session, Transaction) == 0


def test_a_new_customer_with_a_nul_is_refused(client: TestClient, session: Session, key: str) -> None:
    response = client.post("/v1/customers", json={"phone": "0912000002", "name": "Lan\x00"}, headers=auth(key))
    _assert_refused(response, "name")
    assert count(session, Customer) == 1


def test_a_profile_change_with_a_nul_is_refused(client: TestClient, session: Session, key: str) -> None:
    response = client.patch("/v1/customers/1", json={"city": "Hà\x00Nội"}, headers=auth(key))
    _assert_refused(response, "city")
    assert client.get("/v1/customers/1", headers=auth(key)).json()["city"] is None


def test_a_nul_in_a_lookup_is_refused(client: TestClient, key: str) -> None:
    response = client.get("/v1/customers", params={"email": "a\x00@example.com"}, headers=auth(key))
    _assert_refused(response, "query.email")


def test_the_six_characters_backslash_u0000_are_ordinary_text(client: TestClient, session: Session,
                                                              key: str) -> None:
    response = client.post("/v1/customers", json={"phone": "0912000003", "name": "a\\u0000b"}, headers=auth(key))
    assert response.status_code == 201, response.text
    assert response.json()["name"] == "a\\u0000b"


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-32"])
def test_a_nul_in_a_body_encoded_as_utf16_or_utf32_is_refused_too(client: TestClient, session: Session, key: str,
                                                                  encoding: str) -> None:
    # json.loads (and so FastAPI's fallback) reads these encodings, where the escape is not b"u0000".
    body = json.dumps(purchase_body(1, 250_000) | {"transaction_id": "T\x00X"}).encode(encoding)
    response = client.post("/v1/transactions", content=body,
                           headers={**auth(key), "content-type": "application/json"})
    _assert_refused(response, "transaction_id")
    assert count(session, Transaction) == 0


def test_a_nul_in_a_header_is_refused(client: TestClient, session: Session, key: str) -> None:
    response = client.post("/v1/transactions", json=purchase_body(1, 250_000),
                           headers={**auth(key), "Idempotency-Key": "k\x00y"})
    _assert_refused(response, "header.idempotency-key")
    assert count(session, Transaction) == 0


@pytest.mark.parametrize(("body", "found"), [
    (b'{"a": "x"}', []),
    (b'{"a": "\\u0000"}', [("body", "a")]),
    (b'{"a": "\\\\u0000"}', []),  # an escaped backslash, then the text u0000
    (b'{"a": "\\\\\\u0000"}', [("body", "a")]),  # an escaped backslash, then a NUL
    (b'{"a\\u0000": 1}', [("body", "a\x00")]),
    (b'{"a": [{"b": 1}, {"b": "\\u0000"}]}', [("body", "a", 1, "b")]),
    (b'not json \\u0000', []),
    ('{"a": "\\u0000"}'.encode("utf-16"), [("body", "a")]),
    ('{"a": "x"}'.encode("utf-32"), []),
])
def test_body_nul_errors_finds_each_field(body: bytes, found: list[tuple[Any, ...]]) -> None:
    assert [e["loc"] for e in body_nul_errors(body)] == found
