"""Service-desk tests start with no cached survey-link secret."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from loyalty.service import tokens


@pytest.fixture(autouse=True)
def _fresh_secrets() -> Iterator[None]:
    tokens.clear_cache()
    yield
    tokens.clear_cache()
