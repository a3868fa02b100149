"""Programs with bonuses and referrals, and a counter that talks to the API, for bonus and referral tests."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from loyalty.db import run_in_transaction
from loyalty.models.bonuses import MemberBonus
from loyalty.programs.schemas import parse_program
from loyalty.programs.service import apply_program, default_program
from tests.factories import auth, make_key, make_store, purchase_body
from tests.readers import reading

VN = ZoneInfo("Asia/Ho_Chi_Minh")
T = TypeVar("T")

REWARDS = [
    {"code": "WELCOME-COFFEE", "name": "Welcome coffee", "kind": "free_product", "sku": "COFFEE", "points_cost": 50},
    {"code": "BIRTHDAY-CAKE", "name": "Birthday cake", "kind": "free_product", "sku": "CAKE", "points_cost": 300},
    {"code": "NEXT-50K", "name": "50,000 off", "kind": "voucher_amount", "amount": 50000, "points_cost": 50},
    {"code": "ONE-LEFT", "name": "Last one", "kind": "item", "points_cost": 10, "stock": 1},
]


def vn(year: int, month: int, day: int, hour: int = 12) -> datetime:
    """A business time in Hà Nội, as UTC."""
    return datetime(year, month, day, hour, tzinfo=VN).astimezone(UTC)


def program_data(**sections: Any) -> dict[str, Any]:
    data = default_program().definition.model_dump(mode="json", exclude_none=True)
    data["expiry"] = {"months_after_earning": 120}  # sales dated years back keep their points
    data["rewards"] = REWARDS
    data.update(sections)
    return data


def use_program(session: Session, **sections: Any) -> None:
    apply_program(session, parse_program(program_data(**sections)), "test", actor="test",
                  effective_from=datetime(2000, 1, 1, tzinfo=UTC))
    session.commit()


def bonus_keys(session: Session, customer_id: int) -> list[str]:
    with reading(session) as reader:
        return list(reader.scalars(select(MemberBonus.once_key).where(MemberBonus.customer_id == customer_id)
                                   .order_by(MemberBonus.id)))


class Counter:
    """A store HN01, an admin key and helpers for the API."""

    def __init__(self, client: TestClient, session: Session) -> None:
        make_store(session)
        self.client, self.session = client, session
        self.admin = make_key(session)

    def enrol(self, expect: int = 201, **fields: Any) -> dict[str, Any]:
        response = self.client.post("/v1/customers", json={"name": "Trần Thị Bình", **fields},
                                    headers=auth(self.admin))
        assert response.status_code == expect, response.text
        return dict(response.json())

    def buy(self, customer_id: int, amount: int, expect: int = 201, idempotency_key: str | None = None,
            **extra: Any) -> dict[str, Any]:
        response = self.client.post("/v1/transactions", json=purchase_body(customer_id, amount, **extra),
                                    headers=auth(self.admin, idempotency_key))
        assert response.status_code == expect, response.text
        return dict(response.json())

    def post(self, body: dict[str, Any], idempotency_key: str | None = None) -> dict[str, Any]:
        response = self.client.post("/v1/transactions", json=body, headers=auth(self.admin, idempotency_key))
        assert response.status_code in (200, 201), response.text
        return dict(response.json())


def sources(body: dict[str, Any]) -> list[tuple[str, str, int]]:
    """(kind, source, points) of a purchase's instant rewards."""
    return [(r["kind"], r["source"], r["points"]) for r in body["instant_rewards"]]


def race(engine: Engine, works: list[Callable[[Session], T]]) -> list[T | BaseException]:
    """Runs each work in its own thread and transaction, released together by a barrier."""
    barrier = threading.Barrier(len(works))
    results: list[T | BaseException] = [RuntimeError("not run")] * len(works)

    def run(index: int, work: Callable[[Session], T]) -> None:
        try:
            barrier.wait(timeout=30)
            results[index] = run_in_transaction(engine, work, attempts=10)
        except BaseException as exc:
            results[index] = exc

    threads = [threading.Thread(target=run, args=(i, w), daemon=True) for i, w in enumerate(works)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return results
