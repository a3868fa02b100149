"""For random programs and purchases, the vectorised evaluator (imports) gives what the scalar one (API) gives."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loyalty.models.customers import STORE_KINDS
from loyalty.programs.rules import MemberFacts, RuleEngine
from loyalty.programs.schemas import WEEKDAYS, parse_program

STORES = ["HN01", "HN02", "OUT1", "WEB"]
CUSTOMERS = [1, 2, 3, 4]
START = date(2026, 1, 1)


def _day(offset: int) -> str:
    return (START + timedelta(days=offset)).isoformat()


conditions = st.fixed_dictionaries({}, optional={
    "store_ids": st.lists(st.sampled_from(STORES), min_size=1, max_size=2, unique=True),
    "store_kinds": st.lists(st.sampled_from(STORE_KINDS[:3]), min_size=1, max_size=2, unique=True),
    "skus": st.just(["KEM-01"]),
    "min_spend": st.integers(0, 400_000),
    "date_from": st.integers(0, 20).map(_day),
    "date_to": st.integers(20, 40).map(_day),
    "weekdays": st.lists(st.sampled_from(WEEKDAYS), min_size=1, max_size=3, unique=True),
    "hours": st.tuples(st.integers(0, 23), st.integers(0, 23)).filter(lambda h: h[0] != h[1])
                .map(lambda h: f"{h[0]:02d}:00-{h[1]:02d}:30"),
    "birthday_month": st.just(True),
    "first_purchase": st.just(True),
    "segments": st.just(["vip"]),
    "tiers": st.just(["gold"]),
})
effects = st.one_of(
    st.builds(lambda p, a: {"points_per": {"points": p, "per_amount": a}},
              st.integers(0, 20), st.sampled_from([1, 1_000, 50_000, 100_000])),
    st.builds(lambda m: {"multiplier": f"{m / 100:.2f}"}, st.integers(101, 400)),
    st.builds(lambda b: {"bonus": b}, st.integers(1, 500)),
)


@st.composite
def programs(draw: st.DrawFn) -> RuleEngine:
    rules: list[dict[str, Any]] = []
    for index in range(draw(st.integers(0, 8))):
        rule: dict[str, Any] = {"id": f"r{index}", "name": f"rule {index}", "priority": draw(st.integers(-2, 2)),
                                "exclusive": draw(st.booleans()), "when": draw(conditions), "give": draw(effects)}
        if draw(st.booleans()):
            rule["cap"] = {"per_transaction": draw(st.integers(1, 100))}
        rules.append(rule)
    earn = draw(st.sampled_from([[], [{"store_kinds": ["retail", "online"], "points": 10, "per_amount": 100_000},
                                      {"store_kinds": ["outlet"], "points": 5, "per_amount": 100_000}]]))
    tiers = {"qualification": {"metric": "spend", "window": {"rolling_months": 12}},
             "levels": [{"code": "member", "name": "Member", "threshold": 0},
                        {"code": "gold", "name": "Gold", "threshold": 100,
                         "perks": {"earn_multiplier": draw(st.sampled_from(["1", "1.5", "2.25"]))}}]}
    return RuleEngine(parse_program({"name": "random", "earn": earn, "rules": rules, "segments": {"vip": [1, 3]},
                                     "tiers": tiers}))


purchases = st.lists(st.tuples(
    st.integers(-5, 600_000),  # paid amount
    st.sampled_from(list(zip(STORES, ["retail", "retail", "outlet", "online"], strict=True))),
    st.datetimes(min_value=datetime(2025, 12, 25), max_value=datetime(2026, 2, 20), timezones=st.just(UTC)),
    st.sampled_from(CUSTOMERS),
    st.integers(0, 12),  # birthday month, 0: unknown
    st.booleans(),  # first purchase
    st.sampled_from(["member", "gold"]),  # the member's tier
), min_size=1, max_size=30)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(programs(), purchases)
def test_vectorised_equals_scalar(engine: RuleEngine, batch: list[Any]) -> None:
    scalar = [engine.evaluate(store_id=store, store_kind=kind, amount=amount, paid=amount, occurred_at=at,
                              customer_id=customer, member=MemberFacts(month or None, first, tier))
              for amount, (store, kind), at, customer, month, first, tier in batch]
    tiers = np.array([b[6] for b in batch], dtype=np.str_)
    totals, per_rule = engine.evaluate_many(
        amounts=np.array([b[0] for b in batch], dtype=np.int64),
        store_kinds=np.array([b[1][1] for b in batch]), store_ids=np.array([b[1][0] for b in batch]),
        local_times=np.array([b[2].astimezone(engine.tz).replace(tzinfo=None) for b in batch],
                             dtype="datetime64[m]"),
        customer_ids=np.array([b[3] for b in batch], dtype=np.int64),
        birthday_months=np.array([b[4] for b in batch], dtype=np.int64),
        first_purchase=np.array([b[5] for b in batch], dtype=bool), tiers=tiers)
    extra = engine.tier_perks_many(per_rule, tiers)
    assert (totals + extra).tolist() == [result.points for result in scalar]
    ids = [rule.id for rule in engine.rules]
    for column, result in enumerate(scalar):
        vectorised = [(ids[i], int(per_rule[i, column])) for i in np.flatnonzero(per_rule[:, column])]
        if extra[column]:
            vectorised.append((f"tier:{tiers[column]}", int(extra[column])))
        assert vectorised == [(award.rule_id, award.points) for award in result.breakdown]
