"""Schemathesis against the OpenAPI document: no input makes the server fail, responses match the schema."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import APIOperation, Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance
from sqlalchemy.orm import Session

from loyalty.app import create_app
from loyalty.db import make_engine, session_factory
from tests.factories import auth, make_customer, make_key, make_purchase, make_store, purchase_body

MAX_EXAMPLES = 25
CHECKS = [not_a_server_error, response_schema_conformance]
BIGINT_MAX = 2**63 - 1

# The schema is read once, at collection; each test points the app at its own fresh database.
_PLACEHOLDER = make_engine(f"sqlite:///{Path(tempfile.gettempdir()) / 'loyalty-openapi-placeholder.db'}")
APP = create_app(_PLACEHOLDER)
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)
OPERATIONS = [result.ok() for result in schema.get_all_operations()]


@pytest.fixture
def admin_headers(sqlite_template: Path, tmp_path: Path) -> Iterator[dict[str, str]]:
    """A fresh SQLite database with a store, a member with points and a purchase (so ids 1 resolve)."""
    path = tmp_path / "fuzz.db"
    shutil.copy(sqlite_template, path)
    engine = make_engine(f"sqlite:///{path}", pool_size=5)
    with session_factory(engine)() as session:
        make_store(session)
        customer = make_customer(session, email="an@example.vn", card="8800000001")
        make_purchase(session, customer.id, 2_500_000)
        key = make_key(session)
    APP.state.engine = engine
    try:
        yield auth(key)
    finally:
        APP.state.engine = _PLACEHOLDER
        engine.dispose()


@pytest.mark.parametrize("operation", OPERATIONS, ids=[op.label for op in OPERATIONS])
def test_no_server_errors_and_responses_match_the_schema(
    operation: APIOperation, admin_headers: dict[str, str],
) -> None:
    """Valid and invalid requests alike get a 4xx or a documented answer, never a 5xx."""
    cases = st.one_of(operation.as_strategy(GenerationMode.POSITIVE), operation.as_strategy(GenerationMode.NEGATIVE))

    # No shrinking: a failure is reported with its curl line at once, and the run stays bounded.
    @given(case=cases)
    @settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None,
              phases=[Phase.explicit, Phase.generate])
    def check(case: Case) -> None:
        case.call_and_validate(headers=admin_headers, checks=CHECKS)

    check()


BIG = BIGINT_MAX + 1
OUT_OF_RANGE = [
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
    ("POST", f"/v1/transactions/{BIG}/returns",
     {"transaction_id": "R1", "occurred_at": "2025-01-01T00:00:00Z", "amount": 1}),
    ("POST", "/v1/adjustments", {"customer_id": BIG, "points": 1, "reason": "abc"}),
    ("POST", "/v1/transactions", purchase_body(BIG, 100, pos_id="BIG-CUSTOMER")),
    ("POST", "/v1/transactions", purchase_body(1, 100_000, pos_id="BIG-HOLD", hold_id=BIG)),
]
EXTREME_DATES = [
    ("POST", "/v1/transactions", purchase_body(1, 100, pos_id="D1") | {"occurred_at": "0001-01-01T00:00:00+01:00"}),
    ("POST", "/v1/transactions", purchase_body(1, 100, pos_id="D2") | {"occurred_at": "9999-12-31T23:59:59-01:00"}),
    ("POST", "/v1/transactions", purchase_body(1, 1_000_000, pos_id="D3") | {"occurred_at": "9999-06-30T00:00:00Z"}),
    ("POST", "/v1/transactions/1/returns",
     {"transaction_id": "R0", "occurred_at": "0001-01-01T00:00:00+01:00", "amount": 1}),
    ("POST", "/v1/customers", {"phone": "0912000111", "enrolled_at": "0001-01-01T00:00:00+01:00"}),
]


class TestFoundByFuzzing:
    """Each of these answered 500 when schemathesis first ran here; now pinned on both databases."""

    @pytest.fixture
    def api(self, client: TestClient, session: Session) -> TestClient:
        make_store(session)
        customer = make_customer(session)
        assert customer.id == 1
        make_purchase(session, customer.id, 2_500_000)
        client.headers.update(auth(make_key(session)))
        session.close()
        return client

    @pytest.mark.parametrize(("method", "path", "body"), OUT_OF_RANGE, ids=[f"{m} {p}" for m, p, _ in OUT_OF_RANGE])
    def test_ids_beyond_64_bits_are_a_4xx(
        self, api: TestClient, method: str, path: str, body: dict[str, object] | None,
    ) -> None:
        response = api.request(method, path, json=body)
        assert 400 <= response.status_code < 500, response.text
        assert response.headers["content-type"].startswith("application/problem+json")

    @pytest.mark.parametrize(("method", "path", "body"), EXTREME_DATES, ids=[str(i) for i in range(len(EXTREME_DATES))])
    def test_dates_at_the_ends_of_the_calendar_are_a_4xx(
        self, api: TestClient, method: str, path: str, body: dict[str, object],
    ) -> None:
        response = api.request(method, path, json=body)
        assert 400 <= response.status_code < 500, response.text

    @pytest.mark.parametrize("second", ["void", "capture", "purchase"])
    def test_a_closed_hold_is_a_409(self, api: TestClient, second: str) -> None:
        hold = api.post("/v1/customers/1/holds", json={"points": 5})
        assert hold.status_code == 201, hold.text
        hold_id = hold.json()["id"]
        assert api.post(f"/v1/holds/{hold_id}/void").status_code == 200
        if second == "purchase":
            response = api.post("/v1/transactions", json=purchase_body(1, 100_000, hold_id=hold_id))
        else:
            response = api.post(f"/v1/holds/{hold_id}/{second}", json={} if second == "capture" else None)
        assert response.status_code == 409, response.text
        assert response.json()["type"].endswith("/hold-not-active")
        assert response.json()["status"] == 409
