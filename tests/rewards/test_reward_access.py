"""A reward listed under a tier's `reward_access` is only redeemable by members of that tier or higher."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from loyalty.models.rewards import Voucher
from loyalty.programs.service import program_at
from loyalty.tiers import service as tiers
from loyalty.timeutil import utcnow
from tests.factories import auth
from tests.readers import count
from tests.rewards.helpers import Counter, slug
from tests.tiers.helpers import use_tiers  # MEMBER < SILVER < GOLD; GOLD's perks: reward_access [LOUNGE]


@pytest.fixture
def counter(client: TestClient, session: Session) -> Counter:
    return Counter(client, session)


def _override(counter: Counter, member: int, tier: str) -> None:
    until = (utcnow() + timedelta(days=30)).isoformat()
    response = counter.client.post(f"/v1/customers/{member}/tier-override", headers=auth(counter.admin),
                                   json={"tier": tier, "reason": "test", "until": until})
    assert response.status_code in (200, 201), response.text


def test_reward_access_keeps_a_reward_for_its_tier_and_above(counter: Counter) -> None:
    use_tiers(counter.session)
    counter.session.rollback()
    counter.reward("LOUNGE", points_cost=100)  # no min_tier of its own: GOLD's reward_access restricts it
    base, silver, gold = counter.member(), counter.member(), counter.member()
    _override(counter, silver, "SILVER")
    _override(counter, gold, "GOLD")
    for member in (base, silver):
        refused = counter.issue(member, "LOUNGE")
        assert refused.status_code == 409 and slug(refused) == "tier-required"
        assert refused.json()["min_tier"] == "GOLD"
    assert count(counter.session, Voucher) == 0
    assert counter.issue(gold, "LOUNGE").status_code == 201


def test_the_higher_of_min_tier_and_reward_access_wins(counter: Counter) -> None:
    program = use_tiers(counter.session)
    counter.session.rollback()
    assert tiers.required_tier(program, "LOUNGE", None) == "GOLD"
    assert tiers.required_tier(program, "LOUNGE", "SILVER") == "GOLD"
    assert tiers.required_tier(program, "OTHER", "SILVER") == "SILVER"
    assert tiers.required_tier(program, "OTHER", None) is None
    assert tiers.access_restricted_above(program, "SILVER") == ["LOUNGE"]
    assert tiers.access_restricted_above(program, "GOLD") == []
    assert tiers.access_restricted_above(program_at(counter.session, None), "UNKNOWN") == ["LOUNGE"]


def test_the_member_summary_does_not_offer_a_reward_kept_for_higher_tiers(counter: Counter) -> None:
    use_tiers(counter.session)
    counter.session.rollback()
    counter.reward("LOUNGE", points_cost=500)
    counter.reward("COFFEE", points_cost=100)
    silver, gold = counter.member(), counter.member()
    _override(counter, silver, "SILVER")
    _override(counter, gold, "GOLD")
    best = {member: counter.client.get(f"/v1/customers/{member}/summary", headers=auth(counter.admin))
            .json()["best_next_reward"]["code"] for member in (silver, gold)}
    assert best == {silver: "COFFEE", gold: "LOUNGE"}  # the dearest affordable one each may redeem
