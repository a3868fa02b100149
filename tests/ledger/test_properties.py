"""Random sequences of everything a member can do never break the ledger's invariants."""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from loyalty.errors import Conflict, HoldNotActive, InsufficientPoints, NotFound, ValidationFailed
from loyalty.ledger import service
from loyalty.ledger.verify import verify
from loyalty.models import Hold, MemberBalance, Transaction
from loyalty.programs.schemas import parse_program
from loyalty.programs.service import apply_program, default_program, program_at
from loyalty.transactions.schemas import PurchaseIn, ReturnIn
from loyalty.transactions.service import record_purchase, record_return
from tests.factories import make_customer, make_store, purchase_body

EXPECTED = (InsufficientPoints, ValidationFailed, HoldNotActive, Conflict, NotFound)
MEMBERS = 3
_ids = itertools.count(1)

member = st.integers(0, MEMBERS - 1)
# Points asked for are a share of what the member has, up to 120%, so most requests can succeed and some cannot.
share = st.integers(0, 120)
# (customer or anonymous, amount, days ago, store, share of the balance paying)
buy = st.tuples(st.just("buy"), st.one_of(st.none(), member), st.integers(0, 3_000_000), st.integers(0, 420),
                st.sampled_from(["HN01", "OUT1"]), st.one_of(st.just(0), share))
operation = st.one_of(
    buy,
    st.tuples(st.just("return"), st.integers(0, 50), st.integers(1, 100)),
    st.tuples(st.just("hold"), member, share),
    st.tuples(st.just("capture"), st.integers(0, 20), st.one_of(st.none(), st.integers(1, 300))),
    st.tuples(st.just("void"), st.integers(0, 20)),
    st.tuples(st.just("pay_with_hold"), st.integers(0, 20), st.integers(0, 2_000_000)),
    st.tuples(st.just("adjust"), member, st.integers(-120, 300).filter(bool)),
    st.tuples(st.just("time_passes"), st.integers(1, 200)),
)
# Every member starts with one purchase, so there are points to hold, redeem, return and expire.
opening = st.lists(st.tuples(st.integers(100_000, 3_000_000), st.integers(0, 420)),
                   min_size=MEMBERS, max_size=MEMBERS).map(
    lambda buys: [("buy", n, amount, days, "HN01", 0) for n, (amount, days) in enumerate(buys)])


@dataclass
class World:
    """What an example has done so far: its members, purchases, holds, and how far its clock has moved."""

    session: Session
    members: list[int]
    purchases: list[tuple[int, int]] = field(default_factory=list)  # (id, amount)
    holds: list[int] = field(default_factory=list)
    days_ahead: int = 0

    @property
    def now(self) -> datetime:
        return datetime.now(UTC) + timedelta(days=self.days_ahead)

    def run(self, op: tuple[Any, ...]) -> None:
        getattr(self, "_" + op[0])(*op[1:])

    def _share(self, who: int, percent: int) -> int:
        balance = self.session.get(MemberBalance, self.members[who])
        assert balance is not None
        return max(1, balance.available * percent // 100)

    def _buy(self, who: int | None, amount: int, days_ago: int, store: str, percent: int) -> None:
        customer = None if who is None else self.members[who]
        redeem = self._share(who, percent) if who is not None and percent else 0
        data = PurchaseIn.model_validate(purchase_body(
            customer, amount, store_id=store, pos_id=f"P{next(_ids)}",
            occurred_at=datetime.now(UTC) - timedelta(days=days_ago), redeem_points=redeem))
        body = record_purchase(self.session, data, actor="property").body
        self.purchases.append((body.id, amount))

    def _return(self, pick: int, percent: int) -> None:
        if not self.purchases:
            return
        purchase_id, amount = self.purchases[pick % len(self.purchases)]
        returned = max(1, amount * percent // 100)
        record_return(self.session, purchase_id, ReturnIn(transaction_id=f"R{next(_ids)}",
                                                          occurred_at=datetime.now(UTC), amount=returned),
                      actor="property")

    def _hold(self, who: int, percent: int) -> None:
        points = self._share(who, percent)
        hold = service.create_hold(self.session, customer_id=self.members[who], points=points, store_id="HN01",
                                   reference=None, timeout=timedelta(days=3), actor="property", now=self.now)
        self.holds.append(hold.id)

    def _capture(self, pick: int, points: int | None) -> None:
        if self.holds:
            service.capture_hold(self.session, self.holds[pick % len(self.holds)], points=points,
                                 actor="property", now=self.now)

    def _void(self, pick: int) -> None:
        if self.holds:
            service.void_hold(self.session, self.holds[pick % len(self.holds)], actor="property", now=self.now)

    def _pay_with_hold(self, pick: int, amount: int) -> None:
        if not self.holds:
            return
        hold_id = self.holds[pick % len(self.holds)]
        hold = self.session.get(Hold, hold_id)
        assert hold is not None
        data = PurchaseIn.model_validate(purchase_body(hold.customer_id, amount, pos_id=f"P{next(_ids)}",
                                                       hold_id=hold_id))
        body = record_purchase(self.session, data, actor="property").body
        self.purchases.append((body.id, amount))

    def _adjust(self, who: int, points: int) -> None:
        if points < 0:
            points = -self._share(who, -points)
        service.adjust(self.session, program_at(self.session), customer_id=self.members[who], points=points,
                       reason="property test", actor="property", source_id=f"A{next(_ids)}", now=self.now)

    def _time_passes(self, days: int) -> None:
        self.days_ahead += days
        service.lapse_holds(self.session, self.now)
        service.release_pending(self.session, self.now)
        service.expire_due(self.session, self.now)


def _check(session: Session, members: list[int]) -> None:
    failed = [(r.name, r.examples) for r in verify(session) if not r.ok]
    assert failed == []
    rows = session.execute(select(MemberBalance).where(MemberBalance.customer_id.in_(members))).scalars().all()
    for row in rows:
        assert min(row.available, row.pending, row.held) >= 0 and row.owed <= 0
        # Points earned net of returns, recomputed from the transactions themselves.
        purchases = session.scalar(select(func.coalesce(func.sum(Transaction.points_earned), 0))
                                   .where(Transaction.customer_id == row.customer_id,
                                          Transaction.kind == "purchase"))
        reversed_points = session.scalar(select(func.coalesce(func.sum(Transaction.points_reversed), 0))
                                         .where(Transaction.customer_id == row.customer_id,
                                                Transaction.kind == "return"))
        assert row.earned_total == int(purchases or 0) - int(reversed_points or 0)
    session.rollback()


def _play(session: Session, ops: list[tuple[Any, ...]]) -> None:
    try:
        make_store(session)
        make_store(session, "OUT1", kind="outlet")
        world = World(session, [make_customer(session).id for _ in range(MEMBERS)])
        for op in ops:
            try:
                world.run(op)
                session.commit()
            except EXPECTED:
                session.rollback()
                if op[0] == "time_passes":
                    raise  # jobs have no business failing
            _check(session, world.members)
    except BaseException:
        session.rollback()  # so the next example, and shrinking, start from a usable session
        raise


# 40 keeps the suite fast; LOYALTY_PROPERTY_EXAMPLES=2000 for a deeper hunt.
PROPERTY = settings(max_examples=int(os.environ.get("LOYALTY_PROPERTY_EXAMPLES", "40")), deadline=None,
                    database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


SEQUENCES = st.tuples(opening, st.lists(operation, min_size=1, max_size=25)).map(lambda parts: parts[0] + parts[1])


@PROPERTY
@given(ops=SEQUENCES)
def test_any_sequence_keeps_the_ledger_sound(session: Session, ops: list[tuple[Any, ...]]) -> None:
    _play(session, ops)


@pytest.fixture
def pending_program(session: Session) -> None:
    definition = default_program().definition.model_dump()
    definition["pending_days"] = 7
    apply_program(session, parse_program(definition), "test", actor="test",
                  effective_from=datetime(2000, 1, 1, tzinfo=UTC))
    session.commit()


@PROPERTY
@given(ops=SEQUENCES)
def test_with_a_pending_period_too(session: Session, pending_program: None, ops: list[tuple[Any, ...]]) -> None:
    _play(session, ops)
