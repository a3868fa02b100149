"""Random sequences of sales, returns and voucher burns keep every member's stamps consistent and the
ledger sound: stamps on a member's cards == the sum of their stamp events, one open card per id,
a completed card holds exactly its target and a live voucher, and `ledger verify` stays green."""

from __future__ import annotations

import itertools
import os
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from loyalty.errors import Conflict, ValidationFailed
from loyalty.ledger.verify import verify
from loyalty.models import Transaction
from loyalty.models.rewards import Voucher
from loyalty.models.stamps import MemberStampCard, StampEvent
from loyalty.rewards.service import redeem_voucher
from loyalty.transactions.schemas import PurchaseIn, ReturnIn
from loyalty.transactions.service import record_purchase, record_return
from tests.factories import make_customer, make_store
from tests.stamps.helpers import DOZEN, ICE_CREAM, cone, cup, stamps_consistent, use_cards, water

MEMBERS = 2
_ids = itertools.count(1)
START = datetime(2026, 3, 9, 5, 0, tzinfo=UTC)  # a Monday, noon in Hồ Chí Minh City

sale = st.tuples(st.just("buy"), st.integers(0, MEMBERS - 1), st.integers(0, 4), st.integers(0, 3),
                 st.integers(0, 2), st.integers(0, 6))
give_back = st.tuples(st.just("return"), st.integers(0, 30), st.integers(0, 4), st.integers(1, 100))
burn = st.tuples(st.just("burn"), st.integers(0, 30))
SEQUENCES = st.lists(st.one_of(sale, sale, give_back, burn), min_size=1, max_size=25)

PROPERTY = settings(max_examples=int(os.environ.get("LOYALTY_PROPERTY_EXAMPLES", "30")), deadline=None,
                    database=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


class World:
    def __init__(self, session: Session) -> None:
        self.session = session
        make_store(session)
        self.members = [make_customer(session).id for _ in range(MEMBERS)]
        self.sales: list[tuple[int, int, int]] = []  # (id, amount, cones)

    def buy(self, who: int, cones: int, cups: int, waters: int, day: int) -> None:
        lines = [line for n, line in ((cones, cone(cones)), (cups, cup(cups)), (waters, water(waters))) if n]
        amount = sum(li["quantity"] * li["unit_price"] for li in lines)
        body = PurchaseIn.model_validate({
            "store_id": "HN01", "transaction_id": f"P{next(_ids)}", "customer_id": self.members[who],
            "occurred_at": (START + timedelta(days=day)).isoformat(), "amount": amount, "lines": lines})
        self.sales.append((record_purchase(self.session, body, actor="property").body.id, amount, cones))

    def give_back(self, pick: int, cones: int, percent: int) -> None:
        if not self.sales:
            return
        purchase_id, amount, _ = self.sales[pick % len(self.sales)]
        tx = self.session.get(Transaction, purchase_id)
        assert tx is not None
        left = amount - tx.returned_amount
        lines = [cone(cones)] if cones else []
        returned = cones * 25_000 if cones else max(1, left * percent // 100)
        if not left or returned > left:
            return
        record_return(self.session, purchase_id, ReturnIn.model_validate({
            "transaction_id": f"R{next(_ids)}", "occurred_at": START.isoformat(), "amount": returned,
            "lines": lines}), actor="property")

    def burn(self, pick: int) -> None:
        codes = self.session.scalars(select(Voucher.code).where(Voucher.status == "issued").order_by(Voucher.id)).all()
        if codes:
            redeem_voucher(self.session, codes[pick % len(codes)], store_id="HN01", reference=None,
                           now=datetime.now(UTC))


def check(session: Session, world: World) -> None:
    assert [r.name for r in verify(session) if not r.ok] == []
    for member in world.members:
        stamps_consistent(session, member)
    # Each completed card's voucher is live (issued or used), and every live granted voucher is a card's.
    completed = session.scalar(select(func.count()).select_from(MemberStampCard)
                               .where(MemberStampCard.completed_at.is_not(None)))
    live = session.scalar(select(func.count()).select_from(Voucher)
                          .where(Voucher.points_spent == 0, Voucher.status != "cancelled"))
    assert completed == live
    # A return never takes more off a card than its sale gave.
    given = dict(session.execute(select(StampEvent.purchase_id.concat(StampEvent.card_id), func.sum(StampEvent.stamps))
                                 .where(StampEvent.kind == "purchase")
                                 .group_by(StampEvent.purchase_id, StampEvent.card_id)).all())
    for key, taken in session.execute(select(StampEvent.purchase_id.concat(StampEvent.card_id),
                                             func.sum(StampEvent.stamps))
                                      .where(StampEvent.kind == "return")
                                      .group_by(StampEvent.purchase_id, StampEvent.card_id)):
        assert 0 <= -taken <= given[key]
    session.rollback()


@pytest.fixture
def shop(session: Session) -> None:
    limited = [{"code": "FREE-CONE", "name": "Free cone", "kind": "free_product", "sku": "KEM-CONE",
                "points_cost": 30, "stock": 6},
               {"code": "DOUBLE-SUNDAE", "name": "Double sundae", "kind": "free_product", "sku": "KEM-SUNDAE-2",
                "points_cost": 90}]
    use_cards(session, [{**ICE_CREAM, "stamps_to_complete": 3}, {**DOZEN, "per": "purchase", "stamps_to_complete": 2}],
              rules=[{"id": "tue", "name": "Tuesday x2", "when": {"weekdays": ["tue"]},
                      "give": {"stamp": {"card": "ice-cream", "times": 2}}},
                     {"id": "big", "name": "Big basket", "when": {"min_spend": 150_000},
                      "give": {"stamp": {"card": "dozen", "extra": 1}}}],
              rewards=limited)


@PROPERTY
@given(ops=SEQUENCES)
def test_any_sequence_keeps_stamps_consistent(session: Session, shop: None, ops: list[tuple[Any, ...]]) -> None:
    try:
        world = World(session)
        for op in ops:
            try:
                getattr(world, "give_back" if op[0] == "return" else op[0])(*op[1:])
                session.commit()
            except (ValidationFailed, Conflict):
                session.rollback()
            check(session, world)
    except BaseException:
        session.rollback()
        raise
