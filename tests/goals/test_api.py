"""Badges over HTTP: the receipt's instant_rewards, GET /v1/customers/{id}/badges and the member summary."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.factories import auth, make_customer, make_key, make_store, purchase_body
from tests.goals.helpers import assert_ledger_ok, goal, use_goals

GOALS = [
    goal("regular", "purchases", 3, name="Regular", badge={"name": "Regular", "description": "Three visits",
                                                              "icon": "star"}, points=50),
    goal("explorer", "categories", 2, name="Explorer", badge={"name": "Explorer"}),
    goal("big", "spend", 1_000_000, name="Big", badge={"name": "Big spender"}, window="calendar_year"),
    goal("ambassador", "referrals", 1),
]


def sell(client: TestClient, key: str, customer_id: int, amount: int, **extra: Any) -> dict[str, Any]:
    response = client.post("/v1/transactions", json=purchase_body(customer_id, amount, **extra), headers=auth(key))
    assert response.status_code in (200, 201), response.text
    return dict(response.json())


def get(client: TestClient, key: str, path: str) -> dict[str, Any]:
    response = client.get(path, headers=auth(key))
    assert response.status_code == 200, response.text
    return dict(response.json())


class TestBadgesOverHttp:
    def test_receipt_badges_progress_and_summary(self, client: TestClient, session: Session) -> None:
        make_store(session)
        admin = make_key(session)
        store_key = make_key(session, role="store", store_id="HN01")
        use_goals(session, GOALS)
        customer_id = make_customer(session).id

        assert sell(client, store_key, customer_id, 100_000)["instant_rewards"] == []
        body = get(client, store_key, f"/v1/customers/{customer_id}/badges")
        assert body["badges"] == []
        assert [(p["goal_id"], p["current"], p["missing"], p["text"]) for p in body["progress"]] == [
            ("regular", 1, 2, "2 more purchases to Regular"),
            ("big", 100_000, 900_000, "900,000 VND more to Big spender"),
            ("ambassador", 0, 1, "1 more referral to Ambassador badge"),
            ("explorer", 0, 2, "2 more categories to Explorer"),
        ]
        summary = get(client, admin, f"/v1/customers/{customer_id}/summary")
        assert summary["badges"] == [] and summary["next_goal"]["text"] == "2 more purchases to Regular"

        sell(client, store_key, customer_id, 100_000)
        receipt = sell(client, store_key, customer_id, 100_000, pos_id="THIRD")
        assert [(r["kind"], r["source"], r["name"], r["points"]) for r in receipt["instant_rewards"]] == [
            ("badge", "goal:regular", "Regular", 0), ("points", "goal:regular", "Regular", 50)]
        # The POS retries: the same receipt, nothing given twice.
        again = client.post("/v1/transactions", json=purchase_body(customer_id, 100_000, pos_id="THIRD",
                                                                   occurred_at=None) | {
            "occurred_at": receipt["occurred_at"]}, headers=auth(store_key))
        assert again.status_code == 200, again.text
        assert again.json()["instant_rewards"] == receipt["instant_rewards"]

        body = get(client, admin, f"/v1/customers/{customer_id}/badges")
        [badge] = body["badges"]
        assert (badge["goal_id"], badge["name"], badge["description"], badge["icon"], badge["points"]) == (
            "regular", "Regular", "Three visits", "star", 50)
        assert badge["earned_at"]
        assert [p["goal_id"] for p in body["progress"]] == ["big", "ambassador", "explorer"]
        summary = get(client, admin, f"/v1/customers/{customer_id}/summary")
        assert [b["goal_id"] for b in summary["badges"]] == ["regular"]
        assert summary["next_goal"]["goal_id"] == "big" and summary["next_goal"]["missing"] == 700_000
        assert summary["balance"]["available"] == 30 + 50
        assert_ledger_ok(session)

    def test_without_goals_the_summary_stays_empty(self, client: TestClient, session: Session) -> None:
        make_store(session)
        admin = make_key(session)
        customer_id = make_customer(session).id
        sell(client, admin, customer_id, 100_000)
        assert get(client, admin, f"/v1/customers/{customer_id}/badges") == {
            "customer_id": customer_id, "badges": [], "progress": []}
        summary = get(client, admin, f"/v1/customers/{customer_id}/summary")
        assert (summary["badges"], summary["next_goal"]) == ([], None)

    def test_unknown_customer_is_a_404_problem(self, client: TestClient, session: Session) -> None:
        admin = make_key(session)
        response = client.get("/v1/customers/999999/badges", headers=auth(admin))
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/problem+json"
        assert client.get("/v1/customers/0/badges", headers=auth(admin)).status_code == 422

    def test_a_key_is_required(self, client: TestClient, session: Session) -> None:
        customer_id = make_customer(session).id
        assert client.get(f"/v1/customers/{customer_id}/badges").status_code == 401
