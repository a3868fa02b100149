"""The portal's reads and writes for one member: catalogue, redeem once per form, own vouchers and tickets only."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from loyalty.db import run_in_transaction, session_factory
from loyalty.errors import InsufficientPoints, NotFound, ValidationFailed
from loyalty.ledger.verify import verify
from loyalty.models.portal import PortalRedemption
from loyalty.models.rewards import Voucher
from loyalty.portal import service
from loyalty.rewards.schemas import RewardDefinition
from loyalty.rewards.service import create_reward
from loyalty.timeutil import utcnow
from tests.factories import make_customer, make_store
from tests.readers import balance_of
from tests.rewards.helpers import give_points


@pytest.fixture
def writer(engine: Engine) -> Iterator[Session]:
    session = session_factory(engine)()
    yield session
    session.rollback()
    session.close()


def add_reward(session: Session, code: str, points_cost: int, **fields: object) -> None:
    create_reward(session, RewardDefinition.model_validate(
        {"code": code, "name": f"Reward {code}", "kind": "item", "points_cost": points_cost, **fields}), utcnow())
    session.commit()


def member(session: Session, points: int) -> int:
    customer_id = make_customer(session).id
    if points:
        give_points(session, customer_id, points)
    return customer_id


def key() -> str:
    return uuid.uuid4().hex


class TestCatalogue:
    def test_offered_rewards_with_what_is_affordable(self, session: Session, writer: Session) -> None:
        customer_id = member(session, 300)
        add_reward(writer, "CAKE", 500)
        add_reward(writer, "COFFEE", 100)
        add_reward(writer, "GONE", 50, stock=0)
        add_reward(writer, "LATER", 50, valid_from=(utcnow() + timedelta(days=1)).isoformat())
        add_reward(writer, "OVER", 50, valid_until=(utcnow() - timedelta(days=1)).isoformat(),
                   valid_from=(utcnow() - timedelta(days=9)).isoformat())
        add_reward(writer, "GOLDONLY", 50, min_tier="GOLD")
        items = service.catalogue(session, customer_id, utcnow())
        assert [(i.code, i.affordable, i.points_missing) for i in items] == [("COFFEE", True, 0), ("CAKE", False, 200)]

    def test_a_reward_at_its_per_member_limit_is_left_out(self, session: Session, writer: Session) -> None:
        customer_id = member(session, 300)
        add_reward(writer, "ONCE", 100, per_member_limit=1)
        service.redeem(writer, customer_id, "ONCE", key(), utcnow())
        writer.commit()
        assert service.catalogue(session, customer_id, utcnow()) == []
        with pytest.raises(NotFound):
            service.reward(session, customer_id, "ONCE", utcnow())


class TestRedeem:
    def test_issues_a_voucher_for_points(self, session: Session, writer: Session) -> None:
        customer_id = member(session, 300)
        add_reward(writer, "COFFEE", 100)
        voucher, first = service.redeem(writer, customer_id, "COFFEE", key(), utcnow())
        writer.commit()
        assert first and voucher.customer_id == customer_id and voucher.issued_by == f"member:{customer_id}"
        assert balance_of(session, customer_id)[0] == 200
        assert service.voucher(session, customer_id, voucher.code.lower().replace("-", ""), utcnow()).code == \
            voucher.code

    def test_the_same_form_twice_gives_one_voucher(self, session: Session, writer: Session) -> None:
        customer_id = member(session, 300)
        add_reward(writer, "COFFEE", 100)
        form = key()
        first, new = service.redeem(writer, customer_id, "COFFEE", form, utcnow())
        writer.commit()
        again, new_again = service.redeem(writer, customer_id, "COFFEE", form, utcnow())
        writer.commit()
        assert (new, new_again, again.id) == (True, False, first.id)
        assert balance_of(session, customer_id)[0] == 200

    def test_racing_copies_of_one_form_give_one_voucher(self, session: Session, engine: Engine) -> None:
        customer_id = member(session, 1000)
        add_reward(session, "COFFEE", 100)
        form = key()
        barrier = threading.Barrier(4)
        outcomes: list[str] = []

        def click() -> None:
            barrier.wait()
            try:
                voucher, _ = run_in_transaction(engine, lambda s: service.redeem(s, customer_id, "COFFEE", form,
                                                                                  utcnow()))
                outcomes.append(voucher.code)
            except IntegrityError:
                # The loser rolled back whole (points too); the view then shows the winner's voucher.
                with session_factory(engine)() as reader:
                    found = service.existing_redemption(reader, customer_id, form)
                    assert found is not None
                    outcomes.append(found.code)

        threads = [threading.Thread(target=click) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(outcomes) == 4 and len(set(outcomes)) == 1
        session.expire_all()
        assert session.scalar(select(func.count()).select_from(Voucher)) == 1
        assert session.scalar(select(func.count()).select_from(PortalRedemption)) == 1
        assert balance_of(session, customer_id)[0] == 900
        assert all(check.ok for check in verify(session))

    def test_not_enough_points_changes_nothing(self, session: Session, writer: Session) -> None:
        customer_id = member(session, 50)
        add_reward(writer, "COFFEE", 100)
        with pytest.raises(InsufficientPoints):
            service.redeem(writer, customer_id, "COFFEE", key(), utcnow())
        writer.rollback()
        assert session.scalar(select(func.count()).select_from(PortalRedemption)) == 0

    @pytest.mark.parametrize("form", ["", "short", "x" * 65, "not-alnum-but-long-enough!!"])
    def test_a_bad_form_key_is_refused(self, session: Session, writer: Session, form: str) -> None:
        customer_id = member(session, 300)
        add_reward(writer, "COFFEE", 100)
        with pytest.raises(ValidationFailed):
            service.redeem(writer, customer_id, "COFFEE", form, utcnow())


class TestOwnership:
    def test_another_members_voucher_is_not_found(self, session: Session, writer: Session) -> None:
        mine, theirs = member(session, 300), member(session, 300)
        add_reward(writer, "COFFEE", 100)
        voucher, _ = service.redeem(writer, theirs, "COFFEE", key(), utcnow())
        writer.commit()
        with pytest.raises(NotFound):
            service.voucher(session, mine, voucher.code, utcnow())
        with pytest.raises(NotFound):
            service.voucher(session, mine, "not a code", utcnow())
        assert service.vouchers(session, mine, utcnow()) == []

    def test_tickets_are_the_members_own(self, session: Session, writer: Session) -> None:
        make_store(session)
        mine, theirs = member(session, 0), member(session, 0)
        ticket = service.open_ticket(writer, theirs, kind="complaint", category="service", subject="Slow",
                                     description="Waited 20 minutes", store_id="HN01", now=utcnow())
        writer.commit()
        assert (ticket.priority, ticket.channel, ticket.created_by) == ("normal", "web", f"member:{theirs}")
        with pytest.raises(NotFound):
            service.member_ticket(session, mine, ticket.id)
        assert service.member_tickets(session, mine) == []
        assert service.member_ticket(session, theirs, ticket.id).subject == "Slow"

    def test_feedback_is_a_low_priority_ticket(self, session: Session, writer: Session) -> None:
        customer_id = member(session, 0)
        ticket = service.open_ticket(writer, customer_id, kind="feedback", category="product", subject="Great cake",
                                     description="More flavours please", store_id=None, now=utcnow())
        writer.commit()
        assert ticket.priority == "low"

    @pytest.mark.parametrize(("kind", "category", "subject", "store"), [
        ("praise", "product", "x", None), ("complaint", "weather", "x", None), ("complaint", "product", "", None),
        ("complaint", "product", "x" * 201, None)])
    def test_bad_ticket_input_is_refused(self, session: Session, writer: Session, kind: str, category: str,
                                         subject: str, store: str | None) -> None:
        customer_id = member(session, 0)
        with pytest.raises((ValidationFailed, ValueError)):
            service.open_ticket(writer, customer_id, kind=kind, category=category, subject=subject,
                                description="text", store_id=store, now=utcnow())

    def test_unknown_store_is_not_found(self, session: Session, writer: Session) -> None:
        customer_id = member(session, 0)
        with pytest.raises(NotFound):
            service.open_ticket(writer, customer_id, kind="complaint", category="store", subject="x",
                                description="text", store_id="NOPE", now=utcnow())


class TestHistory:
    def test_pages_newest_first(self, session: Session) -> None:
        customer_id = member(session, 0)
        for _ in range(service.HISTORY_PAGE + 2):
            give_points(session, customer_id, 10)
        first, before = service.history(session, customer_id, before=None)
        assert len(first) == service.HISTORY_PAGE and before == first[-1].entry_id
        rest, end = service.history(session, customer_id, before=before)
        assert len(rest) == 2 and end is None
        assert first[0].created_at >= rest[-1].created_at
        assert datetime.now(UTC) - first[0].created_at < timedelta(minutes=5)
