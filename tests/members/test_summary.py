"""GET /v1/customers/{id}/summary: balance, expiring points, tier, vouchers and the best next reward."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlalchemy.orm import Session

from loyalty.models import PointLot
from loyalty.models.rewards import Reward
from loyalty.programs.service import program_at
from loyalty.tiers.service import on_purchase
from tests.factories import auth, make_key
from tests.rewards.helpers import Counter
from tests.tiers.helpers import add_purchase, use_tiers


def summary(counter: Counter, customer_id: int, key: str | None = None) -> dict[str, Any]:
    response = counter.client.get(f"/v1/customers/{customer_id}/summary", headers=auth(key or counter.admin))
    assert response.status_code == 200, response.text
    return dict(response.json())


def silver_member(counter: Counter, points: int) -> int:
    """A member who spent 6,000,000 this year (SILVER of use_tiers' levels) and holds `points`."""
    customer_id = counter.member(points)
    when = datetime.now(UTC) - timedelta(minutes=5)
    add_purchase(counter.session, customer_id, 6_000_000, when)
    on_purchase(counter.session, program_at(counter.session, when), customer_id, when)
    counter.session.commit()
    return customer_id


class TestSummary:
    def test_points_tier_and_vouchers(self, client: TestClient, session: Session) -> None:
        counter = Counter(client, session)
        use_tiers(session)
        customer_id = silver_member(counter, 1000)
        counter.reward("COFFEE", points_cost=100)
        counter.reward("TENK", kind="voucher_amount", amount=10_000, points_cost=200, voucher_valid_days=5)
        counter.reward("TENPC", kind="voucher_percent", percent=10, points_cost=150)
        coffee = counter.issued(customer_id, "COFFEE")
        tenk = counter.issued(customer_id, "TENK")
        tenpc = counter.issued(customer_id, "TENPC")
        old = counter.issued(customer_id, "COFFEE")
        counter.age_voucher(old["code"], 1)  # past its time, the expiry job not run yet
        used = counter.issued(customer_id, "COFFEE")
        assert counter.redeem(used["code"]).status_code == 200

        body = summary(counter, customer_id)
        assert body["customer_id"] == customer_id
        assert body["balance"] == {"available": 1000 - 100 - 200 - 150 - 100 - 100, "pending": 0, "held": 0,
                                   "owed": 0}
        assert body["expiring"] == {"within_30_days": 0, "within_60_days": 0, "within_90_days": 0}
        tier = body["tier"]
        assert (tier["tier"], tier["value"], tier["next"]["code"], tier["next"]["missing"]) == (
            "SILVER", 6_000_000, "GOLD", 14_000_000)
        assert [(v["code"], v["reward_name"], v["kind"], v["value"]) for v in body["vouchers"]] == [
            (tenk["code"], "Reward TENK", "voucher_amount", 10_000),
            (coffee["code"], "Reward COFFEE", "item", None),
            (tenpc["code"], "Reward TENPC", "voucher_percent", 10),
        ]
        assert body["vouchers"][0]["expires_at"] == tenk["expires_at"]
        assert (body["stamp_cards"], body["badges"], body["next_goal"]) == ([], [], None)

    def test_points_expiring_come_from_the_balance_view(self, client: TestClient, session: Session) -> None:
        counter = Counter(client, session)
        customer_id = counter.member(500)
        session.execute(update(PointLot).where(PointLot.customer_id == customer_id)
                        .values(expires_at=datetime.now(UTC) + timedelta(days=45)))
        session.commit()
        balance = client.get(f"/v1/customers/{customer_id}/balance", headers=auth(counter.admin)).json()
        body = summary(counter, customer_id)
        assert body["balance"]["available"] == balance["available"] == 500
        assert [body["expiring"][f"within_{d}_days"] for d in (30, 60, 90)] == [
            balance[f"expiring_{d}_days"] for d in (30, 60, 90)] == [0, 500, 500]

    def test_no_tiers_means_a_null_tier(self, client: TestClient, session: Session) -> None:
        counter = Counter(client, session)
        body = summary(counter, counter.member(0))
        assert body["tier"] is None
        assert body["vouchers"] == [] and body["best_next_reward"] is None

    def test_unknown_customer_is_a_404_problem(self, client: TestClient, session: Session) -> None:
        counter = Counter(client, session)
        response = client.get("/v1/customers/999999/summary", headers=auth(counter.admin))
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/problem+json"

    def test_store_and_readonly_keys_may_read_it(self, client: TestClient, session: Session) -> None:
        counter = Counter(client, session)
        customer_id = counter.member(300)
        for key in (counter.store_key, make_key(session, role="readonly")):
            assert summary(counter, customer_id, key)["balance"]["available"] == 300
        assert client.get(f"/v1/customers/{customer_id}/summary").status_code == 401


class TestBestNextReward:
    def test_the_dearest_affordable_reward(self, client: TestClient, session: Session) -> None:
        counter = Counter(client, session)
        customer_id = counter.member(500)
        counter.reward("SMALL", points_cost=100)
        counter.reward("MIDDLE", points_cost=450)
        counter.reward("EXACT", points_cost=500)
        counter.reward("DEAR", points_cost=900)
        assert summary(counter, customer_id)["best_next_reward"] == {
            "code": "EXACT", "name": "Reward EXACT", "points_cost": 500, "affordable": True, "points_missing": 0}

    def test_none_affordable_gives_the_cheapest_and_the_points_missing(
            self, client: TestClient, session: Session) -> None:
        counter = Counter(client, session)
        customer_id = counter.member(120)
        counter.reward("DEAR", points_cost=900)
        counter.reward("CHEAPEST", points_cost=300)
        counter.reward("MIDDLE", points_cost=450)
        assert summary(counter, customer_id)["best_next_reward"] == {
            "code": "CHEAPEST", "name": "Reward CHEAPEST", "points_cost": 300, "affordable": False,
            "points_missing": 180}

    def test_rewards_the_member_cannot_redeem_are_left_out(self, client: TestClient, session: Session) -> None:
        counter = Counter(client, session)
        use_tiers(session)
        customer_id = silver_member(counter, 1000)
        now = datetime.now(UTC)
        counter.reward("OK", points_cost=100)
        counter.reward("SILVERDAY", points_cost=200, min_tier="MEMBER")
        counter.reward("GOLDONLY", points_cost=900, min_tier="GOLD")
        counter.reward("GONE", points_cost=800, stock=0)
        counter.reward("RETIRED", points_cost=800)
        counter.reward("LATER", points_cost=800, valid_from=(now + timedelta(days=1)).isoformat())
        counter.reward("OVER", points_cost=800, valid_from=(now - timedelta(days=9)).isoformat(),
                       valid_until=(now - timedelta(days=1)).isoformat())
        session.execute(update(Reward).where(Reward.code == "RETIRED").values(active=False))
        session.commit()
        best = summary(counter, customer_id)["best_next_reward"]
        assert (best["code"], best["affordable"]) == ("SILVERDAY", True)

    def test_a_reward_for_the_members_tier_counts(self, client: TestClient, session: Session) -> None:
        counter = Counter(client, session)
        use_tiers(session)
        customer_id = silver_member(counter, 1000)
        counter.reward("SILVERDAY", points_cost=600, min_tier="SILVER")
        counter.reward("OK", points_cost=100)
        assert summary(counter, customer_id)["best_next_reward"]["code"] == "SILVERDAY"
        # A member of the base tier, with the same points, is offered what they may redeem.
        base = counter.member(1000)
        assert summary(counter, base)["best_next_reward"]["code"] == "OK"

    def test_a_reward_held_up_to_its_limit_is_left_out(self, client: TestClient, session: Session) -> None:
        counter = Counter(client, session)
        customer_id = counter.member(1000)
        counter.reward("ONCE", points_cost=300, per_member_limit=1)
        counter.reward("OK", points_cost=100)
        assert summary(counter, customer_id)["best_next_reward"]["code"] == "ONCE"
        counter.issued(customer_id, "ONCE")
        assert summary(counter, customer_id)["best_next_reward"]["code"] == "OK"
