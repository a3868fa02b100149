"""Portal fixtures: demo mode on (codes in the log), a catcher for those codes, members with points and rewards."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from loyalty.ledger import service as ledger
from loyalty.portal.settings import get_portal_settings
from loyalty.programs.service import program_at
from loyalty.rewards.schemas import RewardDefinition
from loyalty.rewards.service import create_reward
from loyalty.tiers.service import on_purchase
from loyalty.timeutil import utcnow
from tests.factories import make_customer, make_store
from tests.tiers.helpers import add_purchase, use_tiers
from tests.web.conftest import CSRF_RE

CODE_LINE = re.compile(r"DEMO login code for (\S+) \(customer (\d+)\): (\d{6})")


class CodeCatcher(logging.Handler):
    """Reads the login codes the portal writes to the server log in demo mode (the live server runs in this process)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.codes: dict[str, str] = {}

    def emit(self, record: logging.LogRecord) -> None:
        found = CODE_LINE.search(record.getMessage())
        if found:
            self.codes[found.group(1)] = found.group(3)

    def code_for(self, identity: str) -> str:
        assert identity in self.codes, f"no code was logged for {identity}: {sorted(self.codes)}"
        return self.codes[identity]


@pytest.fixture(autouse=True)
def demo_mode(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("LOYALTY_PORTAL_LOG_CODES", "true")
    monkeypatch.setenv("LOYALTY_PORTAL_MIN_INTERVAL_SECONDS", "0")
    get_portal_settings.cache_clear()
    yield
    get_portal_settings.cache_clear()


@pytest.fixture
def codes() -> Iterator[CodeCatcher]:
    catcher = CodeCatcher()
    logger = logging.getLogger("loyalty.portal.login")
    logger.addHandler(catcher)
    yield catcher
    logger.removeHandler(catcher)


@dataclass
class Shop:
    """A store, two members with points (An is SILVER), and rewards: a coffee, a 250.000 ₫ voucher, a cake nobody
    can afford."""

    session: Session
    an: int
    binh: int
    an_phone: str = "phone:+84912000001"
    binh_phone: str = "phone:+84912000002"

    def give(self, customer_id: int, points: int) -> None:
        now = utcnow()
        ledger.adjust(self.session, program_at(self.session, now), customer_id=customer_id, points=points,
                      reason="welcome points", actor="test", source_id=uuid.uuid4().hex, now=now)
        self.session.commit()


def add_reward(session: Session, code: str, name: str, points_cost: int, **fields: object) -> None:
    create_reward(session, RewardDefinition.model_validate(
        {"code": code, "name": name, "kind": "item", "points_cost": points_cost, **fields}), utcnow())
    session.commit()


@pytest.fixture
def shop(session: Session) -> Shop:
    make_store(session, name="Cửa hàng Hoàn Kiếm")
    an = make_customer(session, phone="0912000001", email="an@example.vn", name="Nguyễn Văn An").id
    binh = make_customer(session, phone="0912000002", name="Trần Thị Bình").id
    shop = Shop(session, an, binh)
    shop.give(an, 1500)
    shop.give(binh, 800)
    # Tiers by yearly spend (MEMBER, SILVER from 5.000.000 ₫, GOLD from 20.000.000 ₫): An bought for 6.000.000 ₫.
    use_tiers(session)
    when = utcnow() - timedelta(minutes=5)
    add_purchase(session, an, 6_000_000, when)
    on_purchase(session, program_at(session, when), an, when)
    session.commit()
    add_reward(session, "COFFEE", "Cà phê sữa đá", 300, description="Một ly cà phê sữa đá size M")
    add_reward(session, "VND250K", "Phiếu mua hàng 250.000 ₫", 1000, kind="voucher_amount", amount=250_000)
    add_reward(session, "CAKE", "Bánh kem sinh nhật", 5000)
    return shop


def csrf(client: TestClient, path: str = "/portal/login") -> str:
    response = client.get(path)
    found = CSRF_RE.search(response.text)
    assert found, f"no CSRF field on {path}: {response.status_code} {response.text[:300]}"
    return found.group(1)


def http_login(client: TestClient, codes: CodeCatcher, identity: str = "0912000001",
               logged: str = "phone:+84912000001") -> str:
    """Logs the client in as a member through both steps; returns the session's (rotated) CSRF token."""
    token = csrf(client)
    asked = client.post("/portal/login", data={"identity": identity, "csrf_token": token})
    assert asked.status_code == 200, asked.text
    done = client.post("/portal/login/verify", data={"identity": identity, "code": codes.code_for(logged),
                                                     "csrf_token": token})
    assert done.status_code == 303 and done.headers["location"] == "/portal/", done.text
    return csrf(client, "/portal/")
