"""A counter with members, rewards and keys, for reward and voucher tests."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlalchemy.orm import Session

from loyalty.ledger import service as ledger
from loyalty.models.rewards import Voucher
from loyalty.programs.service import program_at
from loyalty.timeutil import utcnow
from tests.factories import auth, make_customer, make_key, make_store
from tests.readers import balance_of

PROBLEM = "application/problem+json"


def give_points(session: Session, customer_id: int, points: int) -> None:
    now = utcnow()
    ledger.adjust(session, program_at(session, now), customer_id=customer_id, points=points,
                  reason="opening balance", actor="test", source_id=uuid.uuid4().hex, now=now)
    session.commit()


def reward_body(code: str = "COFFEE", **overrides: Any) -> dict[str, Any]:
    return {"code": code, "name": f"Reward {code}", "kind": "item", "points_cost": 100, **overrides}


def slug(response: Any) -> str:
    assert response.headers["content-type"] == PROBLEM, response.text
    return str(response.json()["type"]).rsplit("/", 1)[-1]


class Counter:
    """A store HN01, an admin key, a store key and helpers that talk to the API."""

    def __init__(self, client: TestClient, session: Session) -> None:
        make_store(session)
        self.client, self.session = client, session
        self.admin = make_key(session)
        self.store_key = make_key(session, role="store", store_id="HN01")

    def member(self, points: int = 1000) -> int:
        customer_id = make_customer(self.session).id
        if points:
            give_points(self.session, customer_id, points)
        return customer_id

    def reward(self, code: str = "COFFEE", **overrides: Any) -> dict[str, Any]:
        response = self.client.post("/v1/rewards", json=reward_body(code, **overrides), headers=auth(self.admin))
        assert response.status_code == 201, response.text
        return dict(response.json())

    def issue(self, customer_id: int, reward_code: str = "COFFEE", key: str | None = None,
              idempotency_key: str | None = None) -> Any:
        return self.client.post(f"/v1/customers/{customer_id}/vouchers", json={"reward_code": reward_code},
                                headers=auth(key or self.admin, idempotency_key))

    def issued(self, customer_id: int, reward_code: str = "COFFEE") -> dict[str, Any]:
        response = self.issue(customer_id, reward_code)
        assert response.status_code == 201, response.text
        return dict(response.json())

    def redeem(self, code: str, key: str | None = None, idempotency_key: str | None = None, **body: Any) -> Any:
        body.setdefault("store_id", "HN01")
        return self.client.post(f"/v1/vouchers/{code}/redeem", json=body,
                                headers=auth(key or self.store_key, idempotency_key))

    def cancel(self, code: str, key: str | None = None) -> Any:
        return self.client.post(f"/v1/vouchers/{code}/cancel", headers=auth(key or self.admin))

    def get(self, code: str) -> Any:
        return self.client.get(f"/v1/vouchers/{code}", headers=auth(self.store_key))

    def stock(self, code: str = "COFFEE") -> int | None:
        response = self.client.get(f"/v1/rewards/{code}", headers=auth(self.store_key))
        assert response.status_code == 200, response.text
        stock: int | None = response.json()["stock"]
        return stock

    def available(self, customer_id: int) -> int:
        return balance_of(self.session, customer_id)[0]

    def age_voucher(self, code: str, days: int) -> None:
        """Moves a voucher's expiry `days` into the past, as if it had been issued long ago."""
        from datetime import timedelta
        self.session.execute(update(Voucher).where(Voucher.code == code)
                             .values(expires_at=utcnow() - timedelta(days=days)))
        self.session.commit()
