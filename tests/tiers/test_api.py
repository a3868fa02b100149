"""GET /v1/tiers with counts, a member's tier and progress, and admin overrides over HTTP."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from loyalty.models.tiers import MemberTier, TierHistory
from loyalty.programs.service import program_at
from loyalty.tiers.service import on_purchase
from tests.factories import auth, make_customer, make_key, make_store
from tests.tiers.helpers import add_purchase, history, use_tiers

PROBLEM = "application/problem+json"


def member_with(session: Session, amount: int) -> int:
    customer_id = make_customer(session).id
    when = datetime.now(UTC) - timedelta(minutes=5)
    add_purchase(session, customer_id, amount, when)
    on_purchase(session, program_at(session, when), customer_id, when)
    session.commit()
    return customer_id


def future(days: int = 30) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).isoformat()


class TestListTiers:
    def test_levels_with_perks_and_member_counts(self, client: TestClient, session: Session) -> None:
        make_store(session)
        use_tiers(session)
        key = make_key(session, role="readonly")
        make_customer(session)
        member_with(session, 6_000_000)
        member_with(session, 7_000_000)
        member_with(session, 21_000_000)
        response = client.get("/v1/tiers", headers=auth(key))
        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["metric"], body["window"], body["review_every"], body["grace_days"]) == (
            "spend", "calendar_year", "year", 30)
        assert [(level["code"], level["threshold"], level["members"]) for level in body["levels"]] == [
            ("MEMBER", 0, 1), ("SILVER", 5_000_000, 2), ("GOLD", 20_000_000, 1)]
        assert body["levels"][2]["perks"] == {"earn_multiplier": "1.5", "earn_multiplier_percent": 150,
                                              "discount_percent": 5, "free_shipping": True,
                                              "reward_access": ["LOUNGE"]}

    def test_no_tiers_is_a_404_problem(self, client: TestClient, session: Session) -> None:
        response = client.get("/v1/tiers", headers=auth(make_key(session)))
        assert response.status_code == 404 and response.headers["content-type"] == PROBLEM
        assert "no tiers" in response.json()["detail"]


class TestMemberTier:
    def test_tier_and_progress(self, client: TestClient, session: Session) -> None:
        make_store(session)
        use_tiers(session)
        customer_id = member_with(session, 3_750_000)
        response = client.get(f"/v1/customers/{customer_id}/tier", headers=auth(make_key(session, role="store",
                                                                                          store_id="HN01")))
        assert response.status_code == 200, response.text
        body = response.json()
        year = datetime.now(UTC).year  # (a test run at New Year's Eve in Hà Nội would see the next year)
        assert (body["tier"], body["value"], body["override"]) == ("MEMBER", 3_750_000, None)
        assert body["next"]["code"] == "SILVER" and body["next"]["missing"] == 1_250_000
        assert body["next"]["deadline"] in (f"{year}-12-31", f"{year + 1}-12-31")

    def test_unknown_customer(self, client: TestClient, session: Session) -> None:
        use_tiers(session)
        response = client.get("/v1/customers/424242/tier", headers=auth(make_key(session)))
        assert response.status_code == 404 and response.headers["content-type"] == PROBLEM


class TestOverride:
    def test_admin_sets_and_ends_an_override(self, client: TestClient, session: Session) -> None:
        make_store(session)
        use_tiers(session)
        admin = make_key(session)
        customer_id = member_with(session, 6_000_000)
        response = client.post(f"/v1/customers/{customer_id}/tier-override", headers=auth(admin, "k1"),
                               json={"tier": "GOLD", "reason": "flagship opening guest", "until": future()})
        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["tier"], body["earned_tier"], body["override"]["reason"]) == ("GOLD", "SILVER",
                                                                                   "flagship opening guest")
        assert client.get("/v1/tiers", headers=auth(admin)).json()["levels"][2]["members"] == 1
        ended = client.post(f"/v1/customers/{customer_id}/tier-override/end", headers=auth(admin))
        assert ended.status_code == 200 and ended.json()["tier"] == "SILVER" and ended.json()["override"] is None
        again = client.post(f"/v1/customers/{customer_id}/tier-override/end", headers=auth(admin))
        assert again.status_code == 409 and again.headers["content-type"] == PROBLEM
        assert history(session, customer_id) == [("MEMBER", "SILVER", "upgrade"), ("SILVER", "GOLD", "override"),
                                                 ("GOLD", "SILVER", "override_end")]
        listed = client.get(f"/v1/customers/{customer_id}/tier/history?limit=2", headers=auth(admin)).json()
        assert [(item["from_tier"], item["to_tier"], item["reason"]) for item in listed] == [
            ("GOLD", "SILVER", "override_end"), ("SILVER", "GOLD", "override")]
        assert all(item["actor"].startswith("key:") and item["actor"].endswith(":test-admin") for item in listed)
        assert listed[1]["note"].startswith("flagship opening guest (until ")
        assert client.get("/v1/customers/424242/tier/history", headers=auth(admin)).status_code == 404

    def test_only_admins(self, client: TestClient, session: Session) -> None:
        make_store(session)
        use_tiers(session)
        customer_id = make_customer(session).id
        for key in (make_key(session, role="readonly"), make_key(session, role="store", store_id="HN01")):
            response = client.post(f"/v1/customers/{customer_id}/tier-override", headers=auth(key),
                                   json={"tier": "GOLD", "reason": "x", "until": future()})
            assert response.status_code == 403

    def test_bad_input_is_a_422_and_writes_nothing(self, client: TestClient, session: Session) -> None:
        make_store(session)
        use_tiers(session)
        admin = make_key(session)
        customer_id = make_customer(session).id
        past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
        for body, field in [
            ({"tier": "GOLD", "until": future()}, "reason"),
            ({"tier": "GOLD", "reason": "", "until": future()}, "reason"),
            ({"tier": "GOLD", "reason": "  ", "until": future()}, "reason"),
            ({"tier": "GOLD", "reason": "x"}, "until"),
            ({"tier": "GOLD", "reason": "x", "until": past}, "until"),
            ({"tier": "GOLD", "reason": "x", "until": "2030-01-01T00:00:00"}, "until"),  # no offset
            ({"tier": "GOLD", "reason": "x", "until": "9999-12-31T23:59:59-01:00"}, "until"),
            ({"tier": "GOLD", "reason": "x", "until": "0001-01-01T00:00:00+01:00"}, "until"),
            ({"tier": "PLATINUM", "reason": "x", "until": future()}, "tier"),
            ({"tier": "GOLD", "reason": "x", "until": future(), "points": 5}, "points"),
        ]:
            response = client.post(f"/v1/customers/{customer_id}/tier-override", headers=auth(admin), json=body)
            assert response.status_code == 422, (body, response.text)
            assert response.headers["content-type"] == PROBLEM and field in response.json()["detail"], response.text
        missing = client.post("/v1/customers/424242/tier-override", headers=auth(admin),
                              json={"tier": "GOLD", "reason": "x", "until": future()})
        assert missing.status_code == 404
        assert session.scalar(select(func.count()).select_from(MemberTier)) == 0
        assert session.scalar(select(func.count()).select_from(TierHistory)) == 0
