"""The real-server fixture of tests/api, for the stamp card races."""

from tests.api.conftest import live_server

__all__ = ["live_server"]
