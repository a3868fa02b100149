"""Schemathesis against the OpenAPI document: no input makes the server fail, and every answer (its status,
content type and body) is one the document describes."""

from __future__ import annotations

import json
import re
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
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy.orm import Session

from loyalty.api.problems import MEDIA_TYPE as PROBLEM_MEDIA_TYPE
from loyalty.app import create_app
from loyalty.db import make_engine, session_factory
from tests.factories import auth, make_customer, make_key, make_purchase, make_store, purchase_body

MAX_EXAMPLES = 25
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
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
def test_no_server_errors_and_every_answer_is_documented(
    operation: APIOperation, admin_headers: dict[str, str],
) -> None:
    """Valid and invalid requests alike get a documented answer (status, content type, body), never a 500."""
    cases = st.one_of(operation.as_strategy(GenerationMode.POSITIVE), operation.as_strategy(GenerationMode.NEGATIVE))

    # No shrinking: a failure is reported with its curl line at once, and the run stays bounded.
    @given(case=cases)
    @settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None,
              phases=[Phase.explicit, Phase.generate])
    def check(case: Case) -> None:
        case.call_and_validate(headers=admin_headers, checks=CHECKS)

    check()


@pytest.fixture
def refused_headers(admin_headers: dict[str, str]) -> dict[str, dict[str, str]]:
    """Callers that some operations refuse: no key, a read-only key, a store's key."""
    with session_factory(APP.state.engine)() as session:
        return {"no key": {}, "readonly": auth(make_key(session, "readonly")),
                "store": auth(make_key(session, "store", store_id="HN01"))}


DOCUMENTED = [(method.upper(), path, set(operation["responses"]))
              for path, operations in APP.openapi()["paths"].items() for method, operation in operations.items()]


@pytest.mark.parametrize(("method", "path", "statuses"), DOCUMENTED, ids=[f"{m} {p}" for m, p, _ in DOCUMENTED])
def test_refused_callers_get_documented_answers(
    method: str, path: str, statuses: set[str], refused_headers: dict[str, dict[str, str]],
) -> None:
    """The fuzz test sends an admin key; here the key is missing or its role may be refused (401, 403)."""
    client = TestClient(APP, raise_server_exceptions=False)
    url = re.sub(r"\{[^}]+\}", "1", path)
    for caller, headers in refused_headers.items():
        response = client.request(method, url, headers=headers)
        assert str(response.status_code) in statuses, f"{caller}: {response.status_code} {response.text}"
        if response.status_code >= 400:
            assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
        if caller == "no key":  # 401 exactly where the document says a key is needed
            assert (response.status_code == 401) == ("401" in statuses), response.text


class TestTheDocumentDescribesErrors:
    """Errors are documented as they are sent: application/problem+json with the Problem schema."""

    DOCUMENT = APP.openapi()
    PROBLEM_REF = "#/components/schemas/Problem"

    @pytest.mark.parametrize(("method", "path"), [
        ("post", "/v1/transactions"), ("get", "/v1/customers/{customer_id}"), ("post", "/v1/adjustments")])
    def test_error_statuses_are_problems(self, method: str, path: str) -> None:
        responses = self.DOCUMENT["paths"][path][method]["responses"]
        expected = {"401", "403", "404", "422", "503"} | ({"400", "409"} if method == "post" else set())
        assert expected <= set(responses), sorted(responses)
        for status in expected:
            assert responses[status]["content"] == {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": self.PROBLEM_REF}}}
            assert responses[status]["description"]
        assert responses["401"]["headers"]["WWW-Authenticate"]
        if method == "get":  # a read does not write: no Idempotency-Key, no conflict
            assert "409" not in responses and "400" not in responses

    def test_the_problem_schema_allows_extension_members_and_describes_validation_errors(self) -> None:
        schemas = self.DOCUMENT["components"]["schemas"]
        problem = schemas["Problem"]
        assert {"type", "title", "status", "detail", "instance"} <= set(problem["required"])
        assert problem.get("additionalProperties", True) is not False
        errors = problem["properties"]["errors"]["anyOf"]
        assert {"type": "array", "items": {"$ref": "#/components/schemas/FieldError"}} in errors
        assert set(schemas["FieldError"]["required"]) == {"field", "message"}

    def test_no_fastapi_validation_error_is_left(self) -> None:
        text = json.dumps(self.DOCUMENT)
        assert "HTTPValidationError" not in text
        assert "ValidationError" not in self.DOCUMENT["components"]["schemas"]

    def test_statuses_follow_the_route(self) -> None:
        paths = self.DOCUMENT["paths"]
        assert set(paths["/v1/health"]["get"]["responses"]) == {"200"}  # no key, no input, no database
        answer = paths["/v1/survey-answers"]["post"]["responses"]  # the link's token is the permission
        assert "401" not in answer and "403" not in answer and {"404", "409", "410"} <= set(answer)
        assert "410" in paths["/v1/customer-tickets/{token}"]["get"]["responses"]
        assert "403" in paths["/v1/customers/{customer_id}"]["get"]["responses"]  # agent/manager keys are refused
        assert "429" not in json.dumps(paths)  # nothing under /v1 is rate limited

    def test_only_the_api_is_documented(self) -> None:
        assert all(path.startswith("/v1/") for path in self.DOCUMENT["paths"])

    def test_every_error_response_is_a_problem(self) -> None:
        for path, operations in self.DOCUMENT["paths"].items():
            for method, operation in operations.items():
                for status, response in operation["responses"].items():
                    if int(status) >= 400:
                        assert list(response["content"]) == [PROBLEM_MEDIA_TYPE], f"{method} {path} {status}"


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
