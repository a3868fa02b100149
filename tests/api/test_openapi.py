"""Schemathesis against the OpenAPI document: no input makes the server fail, responses match the schema."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import APIOperation, Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from loyalty.app import create_app
from loyalty.db import make_engine, session_factory
from tests.factories import auth, make_customer, make_key, make_purchase, make_store

MAX_EXAMPLES = 25
CHECKS = [not_a_server_error, response_schema_conformance]

# The schema is read once, at collection; each test points the app at its own fresh database.
_PLACEHOLDER = make_engine(f"sqlite:///{Path(tempfile.gettempdir()) / 'loyalty-openapi-placeholder.db'}")
APP = create_app(_PLACEHOLDER)
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


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


OPERATIONS = [result.ok() for result in schema.get_all_operations()]


@pytest.mark.parametrize("operation", OPERATIONS, ids=[op.label for op in OPERATIONS])
def test_no_server_errors_and_responses_match_the_schema(
    operation: APIOperation, admin_headers: dict[str, str],
) -> None:
    """Valid and invalid requests alike get a documented answer, never a 5xx."""
    cases = st.one_of(operation.as_strategy(GenerationMode.POSITIVE), operation.as_strategy(GenerationMode.NEGATIVE))

    @given(case=cases)
    @settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def check(case: Case) -> None:
        case.call_and_validate(headers=admin_headers, checks=CHECKS)

    check()
