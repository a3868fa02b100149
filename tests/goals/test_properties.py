"""Metrics in SQL equal a plain Python count on any history, for everyone at once and for one member."""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session

from loyalty.goals import repository
from loyalty.models import Customer
from tests.factories import make_customer, make_store
from tests.goals.helpers import VN, vn
from tests.tiers.helpers import add_purchase

START = vn(2024, 10, 1, 0, 0)
NOW = vn(2026, 3, 31, 23, 0)
MINUTES = int((NOW - START).total_seconds() // 60)

purchase = st.tuples(
    st.integers(0, 2),            # which member
    st.integers(0, MINUTES),      # minutes after START, in UTC: month ends fall either side in Hà Nội
    st.integers(0, 3),            # amount: 0 is not a purchase
    st.booleans(),                # wholly returned
    st.sampled_from(["HN01", "HN02"]),
)


def runs(months: set[int]) -> list[tuple[int, int]]:
    """(length, last month) of each run of consecutive months."""
    found: list[tuple[int, int]] = []
    for month in sorted(months):
        if found and found[-1][1] == month - 1:
            found[-1] = (found[-1][0] + 1, month)
        else:
            found.append((1, month))
    return found


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(purchases=st.lists(purchase, max_size=25))
def test_streaks_purchases_and_stores_match_python(session: Session,
                                                   purchases: list[tuple[int, int, int, bool, str]]) -> None:
    make_store(session, "HN01")
    make_store(session, "HN02")
    members = list(session.scalars(select(Customer.id).order_by(Customer.id)))
    while len(members) < 3:
        members.append(make_customer(session).id)
    months: dict[int, set[int]] = defaultdict(set)
    counts: dict[int, int] = defaultdict(int)
    stores: dict[int, set[str]] = defaultdict(set)
    for who, minutes, amount, returned, store in purchases:
        at = START + timedelta(minutes=minutes)
        add_purchase(session, members[who], amount, at, returned=amount if returned else 0, store_id=store)
        if amount and not returned:
            months[who].add(repository.business_month(at, VN))
            counts[who] += 1
            stores[who].add(store)
    dialect = repository.prepare(session)
    tz = "Asia/Ho_Chi_Minh"
    current = repository.business_month(NOW, VN)
    longest = dict(session.execute(repository.streak_values(dialect, tz)).all())
    running = dict(session.execute(repository.streak_values(dialect, tz, alive_from=current - 1)).all())
    bought = dict(session.execute(repository.metric_values("purchases", None, None)).all())
    visited = dict(session.execute(repository.metric_values("stores", None, None)).all())
    for who, customer_id in enumerate(members[:3]):
        member_runs = runs(months[who])
        expected_longest = max((length for length, _ in member_runs), default=0)
        expected_running = max((length for length, last in member_runs if last >= current - 1), default=0)
        assert longest.get(customer_id, 0) == expected_longest
        assert running.get(customer_id, 0) == expected_running
        assert bought.get(customer_id, 0) == counts[who]
        assert visited.get(customer_id, 0) == len(stores[who])
        one = session.execute(select(repository.one_value(repository.streak_values(dialect, tz, customer_id))))
        assert one.scalar_one() == expected_longest
    session.rollback()
