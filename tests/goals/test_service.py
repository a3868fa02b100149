"""Goals as stories: each metric reaches its badge on the sale that crosses the target, once only."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, event, select
from sqlalchemy.orm import Session

from loyalty.db import session_factory
from loyalty.goals import service as goals
from loyalty.goals.service import member_badges
from loyalty.ledger.repository import read_balance
from loyalty.models.goals import MemberBadge
from loyalty.transactions import effects
from loyalty.transactions.schemas import Line, PurchaseIn, ReturnIn
from loyalty.transactions.service import record_purchase, record_return
from tests.factories import make_customer, make_store, purchase_body
from tests.goals.helpers import (
    assert_ledger_ok,
    badges,
    buy,
    goal,
    goal_entries,
    rewards,
    use_goals,
    vn,
)

NOW = datetime.now(UTC)


@pytest.fixture
def customer_id(session: Session) -> int:
    for store in ("HN01", "HN02", "HN03"):
        make_store(session, store)
    return make_customer(session).id


def give_back(session: Session, purchase_id: int, amount: int, at: datetime | None = None) -> None:
    record_return(session, purchase_id, ReturnIn(transaction_id=f"R-{purchase_id}-{amount}",
                                                 occurred_at=at or datetime.now(UTC), amount=amount), actor="test")
    session.commit()


def progress(session: Session, customer_id: int, now: datetime | None = None) -> dict[str, tuple[int, int, str]]:
    view = member_badges(session, customer_id, now or datetime.now(UTC))
    return {p.goal_id: (p.current, p.missing, p.text) for p in view.progress}


class TestPurchases:
    def test_the_sale_that_reaches_the_target_gives_badge_and_points_once(self, session: Session,
                                                                          customer_id: int) -> None:
        use_goals(session, [goal("regular", "purchases", 2, points=50)])
        assert rewards(buy(session, customer_id, 100_000)) == []
        assert progress(session, customer_id)["regular"] == (1, 1, "1 more purchase to Regular badge")
        second = buy(session, customer_id, 100_000)
        assert rewards(second) == [("badge", "goal:regular", 0), ("points", "goal:regular", 50)]
        assert second.instant_rewards[0].name == "Regular badge"
        assert rewards(buy(session, customer_id, 100_000)) == []
        assert badges(session, customer_id) == ["regular"]
        assert goal_entries(session) == [(f"regular:{customer_id}", "award")]
        view = member_badges(session, customer_id, datetime.now(UTC))
        assert [(b.goal_id, b.name, b.points) for b in view.badges] == [("regular", "Regular badge", 50)]
        assert view.progress == []
        # 3 sales of 10 points each, plus the badge's 50 (the sale's answer shows its balance before the badge)
        assert read_balance(session, customer_id).available == 30 + 50
        assert_ledger_ok(session)

    def test_a_replayed_sale_prints_the_same_badge_and_gives_nothing_more(self, session: Session,
                                                                           customer_id: int) -> None:
        use_goals(session, [goal("first", "purchases", 1, points=5)])
        body = PurchaseIn.model_validate(purchase_body(customer_id, 100_000, pos_id="SAME"))
        first = record_purchase(session, body, actor="test")
        session.commit()
        again = record_purchase(session, body, actor="test")
        session.commit()
        assert again.replayed and not first.replayed
        assert again.body.instant_rewards == first.body.instant_rewards
        assert rewards(again.body) == [("badge", "goal:first", 0), ("points", "goal:first", 5)]
        assert goal_entries(session) == [(f"first:{customer_id}", "award")]
        assert_ledger_ok(session)

    def test_wholly_returned_and_free_sales_do_not_count(self, session: Session, customer_id: int) -> None:
        use_goals(session, [goal("regular", "purchases", 3)])
        kept = buy(session, customer_id, 100_000)
        gone = buy(session, customer_id, 100_000)
        give_back(session, gone.id, 100_000)
        buy(session, customer_id, 0)
        assert badges(session, customer_id) == []
        assert progress(session, customer_id)["regular"][:2] == (1, 2)
        give_back(session, kept.id, 40_000)  # partly returned: still a purchase
        buy(session, customer_id, 100_000)
        assert badges(session, customer_id) == []
        assert rewards(buy(session, customer_id, 100_000)) == [("badge", "goal:regular", 0)]

    def test_a_badge_stays_after_a_return_and_progress_is_net(self, session: Session, customer_id: int) -> None:
        use_goals(session, [goal("two", "purchases", 2), goal("three", "purchases", 3)])
        first = buy(session, customer_id, 100_000)
        buy(session, customer_id, 100_000)
        assert badges(session, customer_id) == ["two"]
        give_back(session, first.id, 100_000)
        assert badges(session, customer_id) == ["two"]
        assert progress(session, customer_id) == {"three": (1, 2, "2 more purchases to Three badge")}


class TestSpend:
    def test_spend_is_net_of_returns(self, session: Session, customer_id: int) -> None:
        use_goals(session, [goal("big", "spend", 1_000_000, points=20)])
        first = buy(session, customer_id, 600_000)
        give_back(session, first.id, 300_000)
        buy(session, customer_id, 600_000)
        assert badges(session, customer_id) == []
        assert progress(session, customer_id)["big"] == (900_000, 100_000, "100,000 VND more to Big badge")
        assert rewards(buy(session, customer_id, 100_000)) == [("badge", "goal:big", 0), ("points", "goal:big", 20)]

    def test_calendar_year_window_starts_on_january_first_in_business_time(self, session: Session,
                                                                           customer_id: int) -> None:
        use_goals(session, [goal("year", "spend", 1_000, window="calendar_year")])
        buy(session, customer_id, 900, vn(2025, 12, 31, 23, 30))   # 2025 in Hà Nội (16:30 UTC)
        buy(session, customer_id, 600, vn(2026, 1, 1, 0, 30))      # 2026 in Hà Nội, still 2025 in UTC
        assert badges(session, customer_id) == []
        buy(session, customer_id, 400, vn(2026, 1, 2))
        assert badges(session, customer_id) == ["year"]

    def test_rolling_window_drops_old_purchases(self, session: Session, customer_id: int) -> None:
        use_goals(session, [goal("twice", "purchases", 2, window={"rolling_months": 12})])
        buy(session, customer_id, 100_000, vn(2025, 1, 10))
        buy(session, customer_id, 100_000, vn(2026, 1, 10))  # the window starts on 2025-01-11
        assert badges(session, customer_id) == []
        buy(session, customer_id, 100_000, vn(2026, 2, 1))
        assert badges(session, customer_id) == ["twice"]


class TestCategoriesAndStores:
    def test_categories_come_from_the_lines(self, session: Session, customer_id: int) -> None:
        use_goals(session, [goal("explorer", "categories", 3)])
        buy(session, customer_id, 200_000, categories=["dairy", "bakery"])
        buy(session, customer_id, 200_000, categories=["dairy", None])
        buy(session, customer_id, 200_000)  # no lines
        assert badges(session, customer_id) == []
        assert progress(session, customer_id)["explorer"] == (2, 1, "1 more category to Explorer badge")
        assert rewards(buy(session, customer_id, 100_000, categories=["fruit"])) == [("badge", "goal:explorer", 0)]

    def test_categories_of_a_wholly_returned_sale_do_not_count(self, session: Session, customer_id: int) -> None:
        use_goals(session, [goal("explorer", "categories", 2)])
        sale = buy(session, customer_id, 100_000, categories=["dairy"])
        give_back(session, sale.id, 100_000)
        buy(session, customer_id, 100_000, categories=["fruit"])
        assert badges(session, customer_id) == []

    def test_different_stores(self, session: Session, customer_id: int) -> None:
        use_goals(session, [goal("travel", "stores", 3)])
        buy(session, customer_id, 100_000, store_id="HN01")
        buy(session, customer_id, 100_000, store_id="HN01")
        buy(session, customer_id, 100_000, store_id="HN02")
        assert progress(session, customer_id)["travel"][:2] == (2, 1)
        assert badges(session, customer_id) == []
        buy(session, customer_id, 100_000, store_id="HN03")
        assert badges(session, customer_id) == ["travel"]


class TestStreak:
    def test_three_months_across_a_year_end(self, session: Session, customer_id: int) -> None:
        use_goals(session, [goal("streak", "streak_months", 3, points=100)])
        buy(session, customer_id, 100_000, vn(2025, 11, 30))
        buy(session, customer_id, 100_000, vn(2025, 12, 1))
        assert badges(session, customer_id) == []
        assert rewards(buy(session, customer_id, 100_000, vn(2026, 1, 15))) == [
            ("badge", "goal:streak", 0), ("points", "goal:streak", 100)]

    def test_months_are_business_months(self, session: Session, customer_id: int) -> None:
        use_goals(session, [goal("streak", "streak_months", 3)])
        buy(session, customer_id, 100_000, vn(2025, 12, 15))
        buy(session, customer_id, 100_000, vn(2026, 1, 31, 23, 30))
        # February 1st, 00:30 in Hà Nội is still January 31st in UTC: it is the third month.
        buy(session, customer_id, 100_000, vn(2026, 2, 1, 0, 30))
        assert badges(session, customer_id) == ["streak"]

    def test_a_gap_breaks_the_streak_and_a_late_upload_fills_it(self, session: Session, customer_id: int) -> None:
        use_goals(session, [goal("streak", "streak_months", 3)])
        buy(session, customer_id, 100_000, vn(2025, 10, 5))
        buy(session, customer_id, 100_000, vn(2025, 12, 5))
        buy(session, customer_id, 100_000, vn(2026, 1, 5))
        assert badges(session, customer_id) == []
        buy(session, customer_id, 100_000, vn(2025, 11, 20))  # an offline till uploads November's sale late
        assert badges(session, customer_id) == ["streak"]

    def test_progress_shows_the_running_streak(self, session: Session, customer_id: int) -> None:
        use_goals(session, [goal("streak", "streak_months", 4)])
        now = vn(2026, 3, 10)
        for at in (vn(2025, 6, 1), vn(2025, 7, 1), vn(2025, 8, 1), vn(2026, 2, 1), vn(2026, 3, 1)):
            buy(session, customer_id, 100_000, at)
        assert badges(session, customer_id) == []
        assert progress(session, customer_id, now)["streak"] == (2, 2, "2 more months in a row to Streak badge")
        # Nothing in April: by May the streak is over.
        assert progress(session, customer_id, vn(2026, 5, 2))["streak"][:2] == (0, 4)


class TestWhatASaleCannotMove:
    def test_no_query_when_the_sale_moves_no_goal(self, session: Session, engine: Engine,
                                                  customer_id: int) -> None:
        program = use_goals(session, [goal("explorer", "categories", 1), goal("ambassador", "referrals", 1)])
        statements: list[str] = []

        def count(*args: Any) -> None:
            statements.append(str(args[2]))

        sale = effects.Sale(transaction_id=1, pos_transaction_id="X", store_id="HN01", store_kind="retail",
                            customer_id=customer_id, occurred_at=NOW, amount=100_000,
                            lines=[Line(sku="A", category=None, quantity=1, unit_price=100_000)], points_earned=0,
                            actor="test", now=NOW)
        event.listen(engine, "before_cursor_execute", count)
        try:
            with session_factory(engine)() as other:
                assert goals.on_purchase(other, program, sale) == []
        finally:
            event.remove(engine, "before_cursor_execute", count)
        assert statements == []

    def test_a_sale_does_not_move_a_referrals_goal(self, session: Session, customer_id: int) -> None:
        # Referral goals move when a referred member qualifies (tests/referrals), not on one's own sales.
        use_goals(session, [goal("ambassador", "referrals", 1), goal("first", "purchases", 1)])
        buy(session, customer_id, 100_000)
        assert badges(session, customer_id) == ["first"]
        assert {goal_id: missing for goal_id, (_, missing, _) in progress(session, customer_id).items()} == {
            "ambassador": 1}
        assert goals.evaluate_all(session, datetime.now(UTC)) == 0


class TestConcurrentSales:
    @pytest.mark.parametrize("amount", [50_000, 100_000])  # earning nothing, and earning points
    def test_two_tills_reaching_the_target_together_give_one_badge(self, engine: Engine, session: Session,
                                                                   customer_id: int, amount: int) -> None:
        use_goals(session, [goal("two", "purchases", 2, points=7), goal("one", "purchases", 1, points=3)])
        factory = session_factory(engine)
        first, second = factory(), factory()
        outcome: dict[str, Any] = {}

        def other_till() -> None:
            body = PurchaseIn.model_validate(purchase_body(customer_id, amount, pos_id="till-2"))
            outcome["body"] = record_purchase(second, body, actor="pos").body
            second.commit()

        try:
            mine = record_purchase(first, PurchaseIn.model_validate(purchase_body(customer_id, amount,
                                                                                  pos_id="till-1")), actor="pos").body
            thread = threading.Thread(target=other_till)
            thread.start()
            thread.join(timeout=0.5)
            assert thread.is_alive(), "the second till must wait for the first"
            first.commit()
            thread.join(timeout=30)
        finally:
            first.close()
            second.close()
        assert rewards(mine) == [("badge", "goal:one", 0), ("points", "goal:one", 3)]
        assert rewards(outcome["body"]) == [("badge", "goal:two", 0), ("points", "goal:two", 7)]
        assert badges(session, customer_id) == ["one", "two"]
        assert goal_entries(session) == [(f"one:{customer_id}", "award"), (f"two:{customer_id}", "award")]
        assert_ledger_ok(session)

    def test_a_badge_inserted_meanwhile_is_not_given_twice(self, session: Session, customer_id: int) -> None:
        program = use_goals(session, [goal("one", "purchases", 1, points=3)])
        now = datetime.now(UTC)
        assert [r.kind for r in goals.award(session, program, customer_id, program.definition.goals, now=now,
                                            transaction_id=None, actor="a")] == ["badge", "points"]
        assert goals.award(session, program, customer_id, program.definition.goals, now=now + timedelta(1),
                           transaction_id=None, actor="b") == []
        session.commit()
        assert session.scalar(select(MemberBadge.actor)) == "a"
        assert_ledger_ok(session)
