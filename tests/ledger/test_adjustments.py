"""Manual adjustments: admin only, always with a reason, never below zero; the history shows why."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from loyalty.models import LedgerEntry, MemberBalance
from tests.factories import auth, make_customer, make_key, make_purchase, make_store
from tests.readers import assert_ledger_ok, balance_of, count, reading

PROBLEM = "application/problem+json"


@pytest.fixture
def customer_id(session: Session) -> int:
    make_store(session)
    cid = make_customer(session).id
    make_purchase(session, cid, 500_000)  # 50 points
    return cid


def _adjust(client: TestClient, key: str, customer_id: int, points: int,
            reason: Any = "goodwill: late delivery") -> Any:
    body: dict[str, Any] = {"customer_id": customer_id, "points": points}
    if reason is not None:
        body["reason"] = reason
    return client.post("/v1/adjustments", json=body, headers=auth(key))


class TestAdjust:
    def test_adds_points_with_the_reason_and_who_did_it(self, client: TestClient, session: Session,
                                                        customer_id: int) -> None:
        response = _adjust(client, make_key(session), customer_id, 30)
        assert response.status_code == 201, response.text
        body = response.json()
        assert (body["points"], body["reason"]) == (30, "goodwill: late delivery")
        assert body["balance"] == {"available": 80, "pending": 0, "held": 0, "owed": 0}
        with reading(session) as reader:
            entry = reader.get(LedgerEntry, body["entry_id"])
            assert entry is not None
            assert (entry.kind, entry.reason) == ("adjust", "goodwill: late delivery")
            assert entry.actor.startswith("key:")
        assert_ledger_ok(session)

    def test_an_added_point_is_not_an_earned_point(self, client: TestClient, session: Session,
                                                   customer_id: int) -> None:
        _adjust(client, make_key(session), customer_id, 30)
        with reading(session) as reader:
            earned = reader.scalar(select(MemberBalance.earned_total).where(MemberBalance.customer_id == customer_id))
        assert earned == 50  # tiers qualify on points earned, not on gifts

    def test_removes_points_within_the_balance(self, client: TestClient, session: Session,
                                               customer_id: int) -> None:
        response = _adjust(client, make_key(session), customer_id, -50, reason="points issued by mistake")
        assert response.status_code == 201
        assert balance_of(session, customer_id) == (0, 0, 0, 0)
        assert_ledger_ok(session)

    def test_removing_more_than_the_balance_is_409_and_changes_nothing(self, client: TestClient, session: Session,
                                                                      customer_id: int) -> None:
        entries = count(session, LedgerEntry)
        response = _adjust(client, make_key(session), customer_id, -51, reason="points issued by mistake")
        assert response.status_code == 409
        assert response.headers["content-type"] == PROBLEM
        assert response.json()["type"].endswith("/insufficient-points")
        assert balance_of(session, customer_id) == (50, 0, 0, 0)
        assert count(session, LedgerEntry) == entries

    def test_held_points_cannot_be_removed(self, client: TestClient, session: Session, customer_id: int) -> None:
        key = make_key(session)
        client.post(f"/v1/customers/{customer_id}/holds", json={"points": 40}, headers=auth(key))
        assert _adjust(client, key, customer_id, -11, reason="correction").status_code == 409
        assert balance_of(session, customer_id) == (10, 0, 40, 0)

    @pytest.mark.parametrize("reason", [None, "", "  ", "   ", "ab", "x" * 501])
    def test_a_reason_is_required(self, client: TestClient, session: Session, customer_id: int,
                                  reason: str | None) -> None:
        response = _adjust(client, make_key(session), customer_id, 10, reason=reason)
        assert response.status_code == 422
        assert response.headers["content-type"] == PROBLEM
        assert balance_of(session, customer_id) == (50, 0, 0, 0)

    def test_zero_points_is_422(self, client: TestClient, session: Session, customer_id: int) -> None:
        assert _adjust(client, make_key(session), customer_id, 0).status_code == 422

    def test_unknown_customer_is_404(self, client: TestClient, session: Session, customer_id: int) -> None:
        key = make_key(session)
        assert _adjust(client, key, 987654, 10).status_code == 404
        assert _adjust(client, key, 987654, -10).status_code == 404

    @pytest.mark.parametrize("role", ["store", "readonly"])
    def test_admin_only(self, client: TestClient, session: Session, customer_id: int, role: str) -> None:
        key = make_key(session, role, "HN01" if role == "store" else None)
        response = _adjust(client, key, customer_id, 1000)
        assert response.status_code == 403
        assert response.headers["content-type"] == PROBLEM
        assert balance_of(session, customer_id) == (50, 0, 0, 0)


class TestHistory:
    def test_shows_each_entry_with_its_reason_newest_first(self, client: TestClient, session: Session,
                                                           customer_id: int) -> None:
        key = make_key(session)
        _adjust(client, key, customer_id, 7, reason="birthday gift")
        _adjust(client, key, customer_id, -3, reason="correction of a typo")
        response = client.get(f"/v1/customers/{customer_id}/ledger", headers=auth(key))
        assert response.status_code == 200
        items = response.json()["items"]
        assert [(i["kind"], i["reason"], i["changes"]) for i in items] == [
            ("adjust", "correction of a typo", {"available": -3}),
            ("adjust", "birthday gift", {"available": 7}),
            ("earn", items[2]["reason"], {"available": 50}),
        ]
        assert "HN01" in items[2]["reason"]
        assert items[2]["transaction_id"] is not None

    def test_pages_through_everything_once(self, client: TestClient, session: Session, customer_id: int) -> None:
        key = make_key(session)
        for n in range(6):
            _adjust(client, key, customer_id, n + 1, reason=f"gift number {n}")
        seen: list[int] = []
        before: int | None = None
        while True:
            params = {"limit": 3, **({"before": before} if before else {})}
            page = client.get(f"/v1/customers/{customer_id}/ledger", params=params, headers=auth(key)).json()
            seen += [item["entry_id"] for item in page["items"]]
            before = page["next_before"]
            if before is None:
                break
        assert len(seen) == 7 and len(set(seen)) == 7 and seen == sorted(seen, reverse=True)

    def test_a_store_key_cannot_read_it(self, client: TestClient, session: Session, customer_id: int) -> None:
        response = client.get(f"/v1/customers/{customer_id}/ledger", headers=auth(make_key(session, "store", "HN01")))
        assert response.status_code == 403

    def test_unknown_customer_is_404(self, client: TestClient, session: Session, customer_id: int) -> None:
        assert client.get("/v1/customers/987654/ledger", headers=auth(make_key(session))).status_code == 404
