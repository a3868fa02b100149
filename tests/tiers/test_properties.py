"""recompute_all (set-based, for everyone) agrees with on_purchase (one member) on any history."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from loyalty.models import Customer
from loyalty.models.tiers import MemberTier, TierHistory
from loyalty.programs.schemas import parse_program
from loyalty.programs.service import default_program
from loyalty.tiers.service import current_window, on_purchase, recompute_all
from tests.factories import make_customer, make_store
from tests.tiers.helpers import add_purchase, program_data, use_tiers, vn

START = vn(2025, 1, 1, 0, 0)
AT = vn(2026, 7, 15, 18, 0)
TIERS = (None, "MEMBER", "SILVER", "GOLD", "RETIRED")

purchase = st.tuples(
    st.integers(0, 3),                                       # which member
    st.integers(0, (AT - START).days * 24 * 60 + 18 * 60),   # minutes after START, up to AT
    st.integers(0, 12_000_000),                              # amount
    st.integers(0, 100),                                     # percent returned
    st.integers(0, 1_500),                                   # points earned
)


def snapshot(session: Session) -> tuple[list[Any], list[Any]]:
    rows = session.execute(select(MemberTier.customer_id, MemberTier.tier, MemberTier.since,
                                  MemberTier.qualified_value).order_by(MemberTier.customer_id)).all()
    changes = session.execute(select(TierHistory.customer_id, TierHistory.from_tier, TierHistory.to_tier,
                                     TierHistory.reason, TierHistory.at).order_by(TierHistory.customer_id)).all()
    return [tuple(r) for r in rows], [tuple(c) for c in changes]


def reset(session: Session, members: list[int], before: list[str | None]) -> None:
    session.execute(delete(TierHistory))
    session.execute(delete(MemberTier))
    rows = [{"customer_id": c, "tier": t, "since": START, "qualified_value": 0}
            for c, t in zip(members, before, strict=True) if t is not None]
    if rows:
        session.execute(insert(MemberTier), rows)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    metric=st.sampled_from(["spend", "points_earned", "purchases"]),
    window=st.sampled_from(["calendar_year", {"rolling_months": 12}, {"rolling_months": 3}]),
    purchases=st.lists(purchase, max_size=30),
    before=st.lists(st.sampled_from(TIERS), min_size=4, max_size=4),
)
def test_recompute_all_equals_on_purchase_per_member(
    session: Session, metric: str, window: Any, purchases: list[tuple[int, int, int, int, int]],
    before: list[str | None],
) -> None:
    # Built in memory: a program version per example would make the test slow, not better.
    definition = parse_program(program_data(metric=metric, window=window,
                                            thresholds=[0, 3, 8] if metric == "purchases" else None))
    program = replace(default_program(), definition=definition)
    make_store(session)
    members = list(session.scalars(select(Customer.id).order_by(Customer.id).limit(4)))
    members += [make_customer(session).id for _ in range(4 - len(members))]
    start, _ = current_window(program, definition.tiers, AT)  # type: ignore[arg-type]
    for who, minutes, amount, percent, points in purchases:
        reversed_points = points * percent // 100
        add_purchase(session, members[who], amount, START + timedelta(minutes=minutes),
                     returned=amount * percent // 100, points=points, reversed_points=reversed_points)
    # on_purchase runs after a purchase, so for members with one in the window.
    bought = sorted({members[who] for who, minutes, *_ in purchases if START + timedelta(minutes=minutes) >= start})

    reset(session, members, before)
    for customer_id in bought:
        on_purchase(session, program, customer_id, AT, actor="job:tier-recompute")
    one_by_one = snapshot(session)

    reset(session, members, before)
    recompute_all(session, program, AT)
    all_at_once = snapshot(session)
    session.rollback()  # the purchases and tiers of this example go; the members stay

    assert all_at_once == one_by_one


def test_recompute_all_counts_and_is_idempotent(session: Session) -> None:
    make_store(session)
    program = use_tiers(session)
    a, b, c = (make_customer(session).id for _ in range(3))
    add_purchase(session, a, 6_000_000, vn(2026, 3, 1))
    add_purchase(session, b, 25_000_000, vn(2026, 3, 1))
    add_purchase(session, c, 1_000, vn(2026, 3, 1))
    assert recompute_all(session, program, AT) == 2
    assert recompute_all(session, program, AT) == 0
    session.commit()
    tiers = dict(session.execute(select(MemberTier.customer_id, MemberTier.tier)).all())
    assert tiers == {a: "SILVER", b: "GOLD", c: "MEMBER"}


