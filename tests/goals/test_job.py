"""The evaluation job: goals added later and imported history get their badges, as a purchase would give them."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, insert, update
from sqlalchemy.orm import Session

from loyalty.goals.service import evaluate_all
from loyalty.jobs import run_jobs
from loyalty.ledger.repository import read_balance
from loyalty.models import MemberBalance
from loyalty.models.goals import MemberBadge
from loyalty.programs.service import program_at
from tests.factories import make_customer, make_store
from tests.goals.helpers import all_badges, assert_ledger_ok, badges, buy, goal, goal_entries, use_goals, vn

STORES = ("HN01", "HN02", "HN03")
# Lifetime goals: a sale and the job judge the same whole history. (Windowed goals are judged at the
# sale's time on purchase and at the job's run time by the job: see TestWindowsAtRunTime.)
GOALS = [
    goal("first", "purchases", 1),
    goal("regular", "purchases", 4, points=10),
    goal("spender", "spend", 500_000, points=20),
    goal("explorer", "categories", 3, points=5),
    goal("travel", "stores", 2),
    goal("streak", "streak_months", 3, points=30),
    goal("ambassador", "referrals", 1, points=99),
]


def history(rng: random.Random, now: datetime) -> list[tuple[int, datetime, str, list[str | None]]]:
    """A few random sales over the last 20 months: (amount, when, store, line categories)."""
    sales = []
    for _ in range(rng.randint(0, 7)):
        when = now - timedelta(days=rng.randint(1, 600), hours=rng.randint(0, 23))
        categories = rng.sample(["dairy", "bakery", "fruit", "tea", None], rng.randint(0, 2))
        sales.append((rng.choice([0, 50_000, 100_000, 150_000]), when, rng.choice(STORES), categories))
    return sorted(sales, key=lambda s: s[1])


def replay(session: Session, customer_id: int, sales: list[tuple[int, datetime, str, list[str | None]]]) -> None:
    for amount, when, store, categories in sales:
        buy(session, customer_id, amount, when, store_id=store, categories=categories or None)


class TestJobAgreesWithPurchases:
    def test_same_histories_same_badges(self, session: Session) -> None:
        for store in STORES:
            make_store(session, store)
        now = datetime.now(UTC)
        rng = random.Random(20261123)
        histories = [history(rng, now) for _ in range(12)]
        # Before the program has goals: imported history, as far as goals know.
        use_goals(session, [])
        before = [make_customer(session).id for _ in histories]
        for customer_id, sales in zip(before, histories, strict=True):
            replay(session, customer_id, sales)
        # Then goals arrive; the same histories again, badges given on purchase.
        use_goals(session, GOALS)
        after = [make_customer(session).id for _ in histories]
        for customer_id, sales in zip(after, histories, strict=True):
            replay(session, customer_id, sales)
        on_purchase = {i: badges(session, customer_id) for i, customer_id in enumerate(after)}
        assert all(b == [] for b in (badges(session, c) for c in before))

        awarded = evaluate_all(session, now)
        session.commit()
        by_job = {i: badges(session, customer_id) for i, customer_id in enumerate(before)}
        assert by_job == on_purchase
        assert awarded == sum(len(b) for b in by_job.values()) > 0
        assert len({tuple(b) for b in by_job.values()}) > 3  # histories that reach different goals
        assert all("ambassador" not in b for b in by_job.values())
        # Points: the same for both, through the ledger once each.
        for a, b in zip(before, after, strict=True):
            assert read_balance(session, a).available == read_balance(session, b).available
        assert evaluate_all(session, now) == 0  # idempotent
        session.commit()
        assert_ledger_ok(session)


class TestWindowsAtRunTime:
    def test_the_job_counts_the_window_that_holds_now(self, session: Session) -> None:
        make_store(session)
        use_goals(session, [])
        now = datetime.now(UTC)
        recent, long_ago = make_customer(session).id, make_customer(session).id
        for days in (10, 40, 70):
            buy(session, recent, 100_000, now - timedelta(days=days))
            buy(session, long_ago, 100_000, now - timedelta(days=800 + days))
        use_goals(session, [goal("regular", "purchases", 3, window={"rolling_months": 6})])
        assert evaluate_all(session, now) == 1
        session.commit()
        # Three purchases within six months two years ago would have earned it on purchase then; the job
        # judges the window at its run, as a goal added today is about what members do now.
        assert all_badges(session) == [(recent, "regular")]


class TestGoalsAddedLater:
    def test_members_who_already_reached_a_new_goal_get_it_once_with_points(self, session: Session) -> None:
        make_store(session)
        use_goals(session, [])
        done, halfway, nothing = (make_customer(session).id for _ in range(3))
        for _ in range(3):
            buy(session, done, 100_000)
        buy(session, halfway, 100_000)
        use_goals(session, [goal("three", "purchases", 3, points=25)])
        assert all_badges(session) == []
        assert evaluate_all(session, datetime.now(UTC)) == 1
        session.commit()
        assert all_badges(session) == [(done, "three")]
        assert goal_entries(session) == [(f"three:{done}", "award")]
        assert read_balance(session, done).available == 30 + 25
        assert read_balance(session, nothing).available == 0
        # A later purchase of the member gives nothing twice.
        buy(session, done, 100_000)
        assert goal_entries(session) == [(f"three:{done}", "award")]
        assert_ledger_ok(session)

    def test_a_member_who_owes_points_settles_the_debt_first(self, session: Session) -> None:
        make_store(session)
        use_goals(session, [])
        owing, fine = make_customer(session).id, make_customer(session).id
        for customer_id in (owing, fine):
            buy(session, customer_id, 100_000)
        use_goals(session, [goal("one", "purchases", 1, points=25)])
        # A debt from an earlier return of spent points, written as the ledger would leave it.
        session.rollback()
        session.execute(update(MemberBalance).where(MemberBalance.customer_id == owing).values(owed=-5))
        session.commit()
        program = program_at(session)
        assert program.definition.goals
        assert evaluate_all(session, datetime.now(UTC)) == 2
        session.commit()
        assert read_balance(session, owing).owed_points == 0
        assert read_balance(session, owing).available == 10 + 20
        assert read_balance(session, fine).available == 10 + 25

    def test_a_badge_given_meanwhile_is_skipped(self, session: Session) -> None:
        make_store(session)
        use_goals(session, [])
        customer_id = make_customer(session).id
        buy(session, customer_id, 100_000)
        use_goals(session, [goal("one", "purchases", 1, points=25)])
        session.rollback()
        session.execute(insert(MemberBadge).values(customer_id=customer_id, goal_id="one", name="x", metric="purchases",
                                                   target=1, points=25, earned_at=vn(2026, 1, 1), actor="other"))
        session.commit()
        assert evaluate_all(session, datetime.now(UTC)) == 0
        session.commit()
        assert goal_entries(session) == []


class TestJobRunner:
    def test_run_jobs_awards_goals(self, engine: Engine, session: Session) -> None:
        make_store(session)
        use_goals(session, [])
        customer_id = make_customer(session).id
        buy(session, customer_id, 100_000)
        use_goals(session, [goal("one", "purchases", 1)])
        session.rollback()
        results = {r.name: (r.count, r.unit) for r in run_jobs(engine, datetime.now(UTC))}
        assert results["award goals"] == (1, "badges")
        assert {r.name: r.count for r in run_jobs(engine, datetime.now(UTC))}["award goals"] == 0
        assert badges(session, customer_id) == ["one"]
