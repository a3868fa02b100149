"""POST /v1/transactions has its own lean route (transactions/endpoints.py PurchaseRoute): it must
answer every request as FastAPI's standard handling of the same endpoint does, and its sales must
read back as recorded."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from loyalty.api import problems
from loyalty.api.deps import Writer
from loyalty.app import create_app
from loyalty.config import get_settings
from loyalty.models import IdempotencyRecord, Transaction
from loyalty.programs.schemas import parse_program
from loyalty.programs.service import apply_program, default_program
from loyalty.transactions import endpoints
from loyalty.transactions.endpoints import PurchaseRoute, create_purchase
from loyalty.transactions.schemas import PurchaseOut
from tests.factories import auth, make_customer, make_key, make_store, purchase_body
from tests.readers import count, reading
from tests.tiers.helpers import program_data


@pytest.fixture
def standard(engine: Engine) -> Iterator[TestClient]:
    """The same endpoint behind FastAPI's own route class: the reference for every answer."""
    app = FastAPI()
    app.state.engine = engine
    problems.install(app)
    api = APIRouter(prefix="/v1")
    api.add_api_route("/transactions", create_purchase, methods=["POST"], status_code=201, response_model=PurchaseOut)
    app.include_router(api)
    assert not any(isinstance(route, PurchaseRoute) for route in app.routes)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def keys(session: Session) -> dict[str, str]:
    make_store(session, "HN01")
    make_store(session, "HN02")
    return {"admin": make_key(session), "store": make_key(session, "store", "HN01"),
            "readonly": make_key(session, "readonly")}


def _odd_requests(customer_id: int, keys: dict[str, str]) -> list[tuple[str, bytes, dict[str, str]]]:
    valid = json.dumps(purchase_body(customer_id, 250_000)).encode()
    wrong = json.dumps(purchase_body(customer_id, -5, extra_field=1, currency="vnd")).encode()
    mismatch = json.dumps(purchase_body(customer_id, 5, lines=[{"sku": "A", "quantity": 1, "unit_price": 4}])).encode()
    other_store = json.dumps(purchase_body(customer_id, 250_000, store_id="HN02")).encode()
    as_json = {"Content-Type": "application/json"}
    admin, store, readonly = (auth(keys[k]) | as_json for k in ("admin", "store", "readonly"))
    return [
        ("broken JSON", b'{"store_id": ', admin),
        ("broken JSON, no key", b'{"store_id": ', as_json),
        ("empty body", b"", admin),
        ("null", b"null", admin),
        ("a list", b"[]", admin),
        ("text/plain", valid, auth(keys["admin"]) | {"Content-Type": "text/plain"}),
        ("no content type", valid, auth(keys["admin"])),
        ("+json content type", wrong, auth(keys["admin"]) | {"Content-Type": "application/merge-patch+json"}),
        ("charset", wrong, auth(keys["admin"]) | {"Content-Type": "application/json; charset=utf-8"}),
        ("not UTF-8", b'{"store_id": "\xff\xfe"}', admin),
        ("invalid fields", wrong, admin),
        ("lines not adding up", mismatch, admin),
        ("invalid fields, no key", wrong, as_json),
        ("invalid fields, bad key", wrong, auth("lk_nope_nope") | as_json),
        ("invalid fields, X-API-Key", wrong, {"X-API-Key": keys["admin"]} | as_json),
        ("invalid fields, read-only key", wrong, readonly),
        ("invalid fields, overlong Idempotency-Key", wrong, admin | {"Idempotency-Key": "x" * 256}),
        ("empty Idempotency-Key", valid, admin | {"Idempotency-Key": ""}),
        ("another store's sale", other_store, store),
        ("unknown store", json.dumps(purchase_body(customer_id, 5, store_id="NOPE")).encode(), admin),
        ("unknown member", json.dumps(purchase_body(10**9, 5)).encode(), admin),
    ]


def test_odd_requests_get_the_answers_fastapi_gives(client: TestClient, standard: TestClient, session: Session,
                                                    keys: dict[str, str]) -> None:
    customer_id = make_customer(session).id
    for name, body, headers in _odd_requests(customer_id, keys):
        lean = client.post("/v1/transactions", content=body, headers=headers)
        reference = standard.post("/v1/transactions", content=body, headers=headers)
        assert lean.status_code == reference.status_code, (name, lean.text, reference.text)
        assert 400 <= lean.status_code < 500, (name, lean.text)
        assert lean.headers["content-type"] == reference.headers["content-type"] == "application/problem+json", name
        assert lean.json() == reference.json(), name
        assert lean.headers.get("www-authenticate") == reference.headers.get("www-authenticate"), name
    assert count(session, Transaction) == 0


def _recorded(client: TestClient, key: str, response: Any) -> dict[str, Any]:
    location = response.headers["location"]
    assert location == f"/v1/transactions/{response.json()['id']}"
    stored = client.get(location, headers=auth(key))
    assert stored.status_code == 200
    result: dict[str, Any] = stored.json()
    return result


@pytest.mark.parametrize("lines", [False, True])
def test_a_sale_answers_what_is_recorded_and_a_retry_gets_it_again(client: TestClient, session: Session,
                                                                   keys: dict[str, str], lines: bool) -> None:
    customer_id = make_customer(session).id
    extra: dict[str, Any] = {"lines": [{"sku": "KEM", "category": "ice cream", "quantity": 3, "unit_price": 100_000}]}
    body = purchase_body(customer_id, 300_000, **(extra if lines else {}))
    headers = auth(keys["store"], "till-1-sale-1")
    first = client.post("/v1/transactions", json=body, headers=headers)
    assert first.status_code == 201, first.text
    assert first.headers["content-type"] == "application/json"
    assert first.json() == _recorded(client, keys["store"], first)
    assert first.json()["points_earned"] == 30 and first.json()["balance"]["available"] == 30
    again = client.post("/v1/transactions", json=body, headers=headers)
    assert (again.status_code, again.headers["idempotent-replayed"]) == (201, "true")
    assert again.json() == first.json()
    with reading(session) as reader:
        record = reader.scalars(select(IdempotencyRecord)).one()
        assert json.loads(record.response_body) == first.json()
    reused = client.post("/v1/transactions", json={**body, "transaction_id": "another sale"}, headers=headers)
    assert reused.status_code == 409
    assert reused.json()["type"].endswith("/idempotency-key-reused")
    same_pos_id = client.post("/v1/transactions", json=body, headers=auth(keys["store"]))
    assert (same_pos_id.status_code, same_pos_id.headers["idempotent-replayed"]) == (200, "true")
    assert same_pos_id.json() == first.json()
    assert count(session, Transaction) == 1


def test_postgresql_writes_a_common_sale_at_once(client: TestClient, session: Session, engine: Engine,
                                                 keys: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """On PostgreSQL the general path is not needed for a member's plain sale (SQLite always takes it)."""
    customer_id = make_customer(session).id

    def general_path(*args: object, **kwargs: object) -> None:
        raise AssertionError("the general path was taken")

    monkeypatch.setattr("loyalty.transactions.service.record_purchase", general_path)
    response = client.post("/v1/transactions", json=purchase_body(customer_id, 500_000),
                           headers=auth(keys["store"], "k"))
    if engine.dialect.name == "postgresql":
        assert response.status_code == 201, response.text
        assert response.json() == _recorded(client, keys["store"], response)
        assert count(session, Transaction) == 1
    else:
        assert response.status_code == 500
        assert count(session, Transaction) == 0


def test_sales_are_tried_at_once_only_while_the_program_allows_it(
        client: TestClient, session: Session, engine: Engine, keys: dict[str, str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Under a program with tiers no sale can be written at once: after the first such sale the endpoint
    stops trying (the try costs a session); the first sale under a program without them tries again."""
    customer_id = make_customer(session).id
    tried: list[str] = []
    run_at_once = Writer.run_at_once

    def counted(writer: Writer, *args: Any) -> Any:
        tried.append(writer.idempotency_key or "")
        return run_at_once(writer, *args)

    monkeypatch.setattr(Writer, "run_at_once", counted)

    def sell(name: str) -> None:
        response = client.post("/v1/transactions", json=purchase_body(customer_id, 500_000, pos_id=name),
                               headers=auth(keys["store"], name))
        assert response.status_code == 201, response.text

    start = datetime(2000, 1, 1, tzinfo=UTC)
    tiered = default_program().definition.model_dump(mode="json") | {"tiers": program_data()["tiers"]}
    apply_program(session, parse_program(tiered), "test", actor="test", effective_from=start)
    session.commit()
    sell("tiered-1")
    sell("tiered-2")
    assert tried == ["tiered-1"]
    apply_program(session, default_program().definition, "test", actor="test", effective_from=start)
    session.commit()
    sell("plain-1")  # the hint still says no: this one takes the general path and corrects it
    sell("plain-2")
    assert tried == ["tiered-1", "plain-2"]
    assert count(session, Transaction) == 4


def test_purchases_beyond_the_setting_wait_their_turn(engine: Engine, session: Session, keys: dict[str, str],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """LOYALTY_PURCHASE_CONCURRENCY caps the sales a process runs at once; the others queue, none fails."""
    monkeypatch.setenv("LOYALTY_PURCHASE_CONCURRENCY", "2")
    get_settings.cache_clear()
    customer_ids = [make_customer(session).id for _ in range(8)]
    running, most_at_once, lock, two_running = 0, 0, threading.Lock(), threading.Event()
    record = endpoints._purchase

    def counted(*args: Any) -> Any:
        nonlocal running, most_at_once
        with lock:
            running += 1
            most_at_once = max(most_at_once, running)
            if running == 2:
                two_running.set()
        try:
            # The first sale waits for a second to run beside it (however slow the machine), then both
            # stay long enough for the other requests to arrive and, were the cap broken, run too.
            two_running.wait(timeout=10)
            time.sleep(0.05)
            return record(*args)
        finally:
            with lock:
                running -= 1

    monkeypatch.setattr(endpoints, "_purchase", counted)
    try:
        with TestClient(create_app(engine), raise_server_exceptions=False) as client, \
                ThreadPoolExecutor(max_workers=8) as pool:
            answers = list(pool.map(
                lambda customer_id: client.post("/v1/transactions", json=purchase_body(customer_id, 100_000),
                                                headers=auth(keys["store"])),
                customer_ids))
    finally:
        get_settings.cache_clear()
    assert [answer.status_code for answer in answers] == [201] * 8, [answer.text for answer in answers]
    assert most_at_once == 2
    assert count(session, Transaction) == 8
