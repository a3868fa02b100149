"""grant_voucher: a reward's voucher given free of points (bonuses, stamp cards)."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from loyalty.models.rewards import Reward, Voucher
from loyalty.rewards import service
from loyalty.rewards.schemas import RewardDefinition
from loyalty.timeutil import utcnow
from tests.factories import make_customer
from tests.readers import assert_ledger_ok, balance_of, reading


def _reward(session: Session, code: str, **fields: object) -> None:
    service.create_reward(session, RewardDefinition.model_validate(
        {"code": code, "name": code, "kind": "item", "points_cost": 100, **fields}), utcnow())
    session.commit()


def test_a_grant_spends_no_points_takes_one_unit_and_ignores_limits(session: Session) -> None:
    member = make_customer(session).id
    _reward(session, "CAKE", stock=2, per_member_limit=1, min_tier="GOLD")
    now = utcnow()
    granted = service.grant_voucher(session, customer_id=member, reward_code="CAKE", actor="bonus:birthday", now=now)
    second = service.grant_voucher(session, customer_id=member, reward_code="CAKE", actor="stamp_card:coffee",
                                   now=now)
    session.commit()
    first = session.get(Voucher, granted.voucher_id)
    assert first is not None
    assert (first.points_spent, first.spend_entry_id, first.issued_by, first.status) == (0, None, "bonus:birthday",
                                                                                       "issued")
    assert (granted.code, granted.reward_name) == (first.code, "CAKE")
    assert second.code != first.code
    with reading(session) as reader:
        assert reader.scalar(Reward.__table__.select().with_only_columns(Reward.stock)) == 0
    with pytest.raises(service.RewardUnavailable, match="out of stock"):
        service.grant_voucher(session, customer_id=member, reward_code="CAKE", actor="bonus:birthday", now=now)
    session.rollback()
    assert balance_of(session, member) == (0, 0, 0, 0)
    cancelled = service.cancel_voucher(session, first.code, actor="test", now=utcnow())
    session.commit()
    assert (cancelled.status, cancelled.refund_entry_id) == ("cancelled", None)
    assert_ledger_ok(session)


def test_unknown_or_withdrawn_rewards_are_refused(session: Session) -> None:
    member = make_customer(session).id
    with pytest.raises(service.RewardUnavailable, match="not in the catalogue"):
        service.grant_voucher(session, customer_id=member, reward_code="NOPE", actor="bonus:signup", now=utcnow())
    _reward(session, "OLD")
    reward = session.query(Reward).filter_by(code="OLD").one()
    reward.active = False
    session.commit()
    with pytest.raises(service.RewardUnavailable):
        service.grant_voucher(session, customer_id=member, reward_code="OLD", actor="bonus:signup", now=utcnow())
