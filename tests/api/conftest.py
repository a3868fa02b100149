"""Fixtures for tests that talk to a real server over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.server import LiveServer


@pytest.fixture
def live_server(database_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    """A uvicorn subprocess on a free 127.0.0.1 port, serving the test database; stopped after the test."""
    server = LiveServer(database_url, tmp_path / "server.log").start()
    try:
        yield server
    finally:
        server.stop()
