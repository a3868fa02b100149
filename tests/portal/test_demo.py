"""The demo's way into the portal: codes in the log, and which member to log in as."""

from __future__ import annotations

import os

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from loyalty.portal import demo
from loyalty.portal.settings import get_portal_settings
from tests.factories import make_customer
from tests.rewards.helpers import give_points


def test_demo_turns_code_logging_on_unless_told_otherwise(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LOYALTY_PORTAL_LOG_CODES", raising=False)
    demo.enable_demo_codes()
    assert os.environ["LOYALTY_PORTAL_LOG_CODES"] == "true" and get_portal_settings().log_codes
    monkeypatch.setenv("LOYALTY_PORTAL_LOG_CODES", "false")
    demo.enable_demo_codes()
    assert not get_portal_settings().log_codes
    get_portal_settings.cache_clear()


def test_hint_names_the_richest_member(session: Session, engine: Engine) -> None:
    assert "log in with" not in demo.hint(engine, "http://127.0.0.1:8000")
    poor = make_customer(session, phone="0912000001").id
    rich = make_customer(session, phone="0912000002").id
    give_points(session, poor, 10)
    give_points(session, rich, 900)
    text = demo.hint(engine, "http://127.0.0.1:8000")
    assert "http://127.0.0.1:8000/portal/" in text and "+84912000002" in text
