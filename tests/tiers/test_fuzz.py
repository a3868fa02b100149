"""The tier endpoints under schemathesis with tiers configured: any input is a 2xx or a documented 4xx."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import APIOperation, Case, GenerationMode

from loyalty.db import make_engine, session_factory
from tests.api.test_openapi import _PLACEHOLDER, APP, CHECKS, OPERATIONS
from tests.factories import auth, make_customer, make_key, make_store
from tests.tiers.helpers import add_purchase, use_tiers, vn

TIER_OPERATIONS = [op for op in OPERATIONS if "tier" in op.path]


@pytest.fixture
def admin_headers(sqlite_template: Path, tmp_path: Path) -> Iterator[dict[str, str]]:
    path = tmp_path / "fuzz.db"
    shutil.copy(sqlite_template, path)
    engine = make_engine(f"sqlite:///{path}", pool_size=5)
    with session_factory(engine)() as session:
        make_store(session)
        use_tiers(session, window={"rolling_months": 12})
        customer_id = make_customer(session).id
        add_purchase(session, customer_id, 6_000_000, vn(2026, 3, 1))
        session.commit()
        key = make_key(session)
    APP.state.engine = engine
    try:
        yield auth(key)
    finally:
        APP.state.engine = _PLACEHOLDER
        engine.dispose()


@pytest.mark.parametrize("operation", TIER_OPERATIONS, ids=[op.label for op in TIER_OPERATIONS])
def test_no_server_errors(operation: APIOperation, admin_headers: dict[str, str]) -> None:
    assert len(TIER_OPERATIONS) == 5
    cases = st.one_of(operation.as_strategy(GenerationMode.POSITIVE), operation.as_strategy(GenerationMode.NEGATIVE))

    @given(case=cases)
    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None,
              phases=[Phase.explicit, Phase.generate])
    def check(case: Case) -> None:
        case.call_and_validate(headers=admin_headers, checks=CHECKS)

    check()
