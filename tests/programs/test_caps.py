"""Earn rules capped per member per day and in total (budgets): counted in the database, live and imported."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from loyalty.db import run_in_transaction
from loyalty.imports.rows import TransactionRow
from loyalty.imports.service import import_transactions
from loyalty.models.rule_caps import RuleCapCounter
from loyalty.models.transactions import TransactionAward
from loyalty.programs import caps
from loyalty.programs.rules import Award, Earned, RuleEngine
from loyalty.programs.schemas import parse_program
from loyalty.programs.service import apply_program
from loyalty.programs.simulate import _cap_running, load_history, simulate
from loyalty.transactions.schemas import PurchaseIn
from loyalty.transactions.service import record_purchase
from tests.factories import auth, make_customer, make_key, make_store, purchase_body
from tests.readers import assert_ledger_ok, reading

BASE: dict[str, Any] = {"name": "Caps", "earn": [{"store_kinds": ["retail"], "points": 10, "per_amount": 100_000}]}


def capped_program(**cap: int) -> dict[str, Any]:
    return {**BASE, "rules": [{"id": "gift", "name": "Gift", "give": {"bonus": 40}, "cap": cap}]}


def apply(session: Session, data: dict[str, Any]) -> None:
    apply_program(session, parse_program(data), "test", actor="test", effective_from=datetime(2000, 1, 1, tzinfo=UTC))
    session.commit()


def at(day: int, hour: int = 3) -> datetime:
    """Day `day` of a fixed recent month, `hour` UTC (10:00 in Hanoi at the default hour)."""
    start = (datetime.now(UTC) - timedelta(days=20)).replace(hour=hour, minute=0, second=0, microsecond=0)
    return start + timedelta(days=day)


def gift(body: dict[str, Any]) -> int:
    return sum(a["points"] for a in body["points_breakdown"] if a["rule_id"] == "gift")


def stored_gift(session: Session) -> int:
    with reading(session) as reader:
        return int(reader.scalar(select(func.coalesce(func.sum(TransactionAward.points), 0))
                                 .where(TransactionAward.rule_id == "gift")) or 0)


def counters(session: Session) -> dict[tuple[int, date], int]:
    with reading(session) as reader:
        return {(c, d): u for c, d, u in reader.execute(
            select(RuleCapCounter.customer_id, RuleCapCounter.day, RuleCapCounter.used))}


@pytest.mark.parametrize("hot_path", [True, False])
class TestPerMemberPerDay:
    def test_a_member_gets_at_most_the_cap_per_business_day(self, session: Session, hot_path: bool) -> None:
        apply(session, capped_program(per_member_per_day=90))
        make_store(session)
        anna, binh = make_customer(session).id, make_customer(session).id
        given_ = []
        for customer, moment in ((anna, at(1)), (anna, at(1, 5)), (anna, at(1, 9)), (binh, at(1)), (anna, at(2))):
            result = record_purchase(session, PurchaseIn.model_validate(purchase_body(customer, 200_000,
                                                                                       occurred_at=moment)),
                                     actor="test", hot_path=hot_path)
            session.commit()
            given_.append((gift(result.body.model_dump()), result.body.points_earned))
        # 40, 40, then the 10 left that day (a partial award); another member and the next day start afresh.
        assert given_ == [(40, 60), (40, 60), (10, 30), (40, 60), (40, 60)]
        assert stored_gift(session) == 170
        assert_ledger_ok(session)

    def test_the_business_day_is_the_programs_time_zone(self, session: Session, hot_path: bool) -> None:
        apply(session, capped_program(per_member_per_day=40))
        make_store(session)
        anna = make_customer(session).id
        # 16:30 and 17:30 UTC are 23:30 and 00:30 in Hanoi: two business days.
        for hour in (16, 17):
            moment = at(1, hour).replace(minute=30)
            result = record_purchase(session, PurchaseIn.model_validate(purchase_body(anna, 100_000,
                                                                                       occurred_at=moment)),
                                     actor="test", hot_path=hot_path)
            session.commit()
            assert gift(result.body.model_dump()) == 40


class TestBudget:
    def test_the_budget_runs_out_with_a_partial_award(self, client: TestClient, session: Session) -> None:
        apply(session, capped_program(total=100))
        make_store(session)
        key = make_key(session)
        answers = []
        for _ in range(4):
            member = make_customer(session).id
            answer = client.post("/v1/transactions", json=purchase_body(member, 100_000, occurred_at=at(3)),
                                 headers=auth(key))
            assert answer.status_code == 201, answer.text
            answers.append(gift(answer.json()))
        assert answers == [40, 40, 20, 0]
        assert stored_gift(session) == 100
        assert counters(session) == {(0, date(1970, 1, 1)): 100}

    def test_a_retried_sale_claims_nothing_more(self, client: TestClient, session: Session) -> None:
        apply(session, capped_program(total=100, per_member_per_day=60))
        make_store(session)
        key = make_key(session)
        member = make_customer(session).id
        body = purchase_body(member, 100_000, occurred_at=at(3))
        first = client.post("/v1/transactions", json=body, headers=auth(key))
        again = client.post("/v1/transactions", json=body, headers=auth(key))  # no Idempotency-Key: POS id replay
        assert first.status_code == 201 and again.status_code in (200, 201)
        assert gift(first.json()) == gift(again.json()) == 40
        assert sorted(counters(session).values()) == [40, 40]

    def test_day_cap_and_budget_together(self, session: Session) -> None:
        apply(session, capped_program(total=70, per_member_per_day=50))
        make_store(session)
        anna, binh = make_customer(session).id, make_customer(session).id
        got = []
        for customer in (anna, anna, binh):
            result = record_purchase(session, PurchaseIn.model_validate(
                purchase_body(customer, 100_000, occurred_at=at(4))), actor="test")
            session.commit()
            got.append(gift(result.body.model_dump()))
        assert got == [40, 10, 20]
        day = counters(session)
        assert day[(0, date(1970, 1, 1))] == 70
        assert day[(binh, next(d for c, d in day if c == binh))] == 20  # what the budget refused went back

    def test_never_overspent_under_concurrency(self, engine: Engine, session: Session) -> None:
        apply(session, capped_program(total=1000))
        make_store(session)
        members = [make_customer(session).id for _ in range(40)]
        barrier = threading.Barrier(len(members))
        errors: list[BaseException] = []

        def sell(customer: int) -> None:
            try:
                barrier.wait(timeout=60)
                run_in_transaction(engine, lambda s: record_purchase(
                    s, PurchaseIn.model_validate(purchase_body(customer, 100_000, occurred_at=at(5))), actor="t"))
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=sell, args=(m,)) for m in members]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        assert errors == []
        assert stored_gift(session) == 1000  # 25 full gifts; the other 15 sales got none
        assert counters(session) == {(0, date(1970, 1, 1)): 1000}
        assert_ledger_ok(session)


class TestImports:
    def rows(self, phones: list[str], start: int = 0) -> list[TransactionRow]:
        return [TransactionRow(line=n + 2, transaction_id=f"I{start + n}", store_id="HN01", customer=phone,
                               occurred_at=at(6), amount=100_000, currency="VND", type="purchase",
                               original_transaction_id=None) for n, phone in enumerate(phones)]

    def test_imports_count_against_the_same_caps_and_only_once(self, session: Session) -> None:
        apply(session, capped_program(per_member_per_day=60, total=150))
        make_store(session)
        make_customer(session, phone="0912000001")
        make_customer(session, phone="0912000002")
        phones = ["0912000001", "0912000001", "0912000002", "0912000002", "0912000001"]
        report = import_transactions(session, self.rows(phones))
        session.commit()
        assert report.errors == [] and report.imported == 5
        # Day caps: 40 + 20 for each member; the budget of 150 stops nothing yet; the 5th sale gets 0.
        assert stored_gift(session) == 120
        again = import_transactions(session, self.rows(phones))
        session.commit()
        assert again.skipped == 5 and stored_gift(session) == 120
        more = import_transactions(session, self.rows(["0912000003"] * 2, start=10), create_customers=True)
        session.commit()
        assert more.imported == 2 and stored_gift(session) == 150  # the budget's last 30
        assert counters(session)[(0, date(1970, 1, 1))] == 150
        assert_ledger_ok(session)


class TestSimulator:
    def test_replays_caps_like_the_live_path(self, session: Session) -> None:
        data = capped_program(per_member_per_day=50, total=200)
        apply(session, data)
        make_store(session)
        members = [make_customer(session).id for _ in range(3)]
        for n in range(12):
            record_purchase(session, PurchaseIn.model_validate(purchase_body(
                members[n % 3], 100_000, occurred_at=at(1 + n // 4, n % 4 + 1))), actor="test")
            session.commit()
        definition = parse_program(data)
        report = simulate(load_history(session, [definition]), definition, parse_program(BASE))
        assert report.draft.points_by_rule["gift"] == stored_gift(session) == 200
        assert report.draft.points_capped == 12 * 40 - 200
        assert report.difference["points_issued"] == 200


class TestProperties:
    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 2), st.integers(1, 90)), max_size=25),
           st.integers(1, 120), st.integers(1, 400))
    def test_live_counters_match_a_greedy_reference(
        self, session: Session, sales: list[tuple[int, int, int]], day_cap: int, budget: int,
    ) -> None:
        engine = RuleEngine(parse_program({**BASE, "rules": [
            {"id": "gift", "name": "Gift", "give": {"bonus": 1}, "cap": {"per_member_per_day": day_cap,
                                                                        "total": budget}}]}))
        day_used: dict[tuple[int, int], int] = {}
        spent = 0
        try:
            for customer, day, points in sales:
                earned = Earned(points, (Award("gift", "Gift", points),))
                got, _ = caps.apply(session, engine, earned, customer_id=customer + 1, occurred_at=at(day))
                left_day = day_cap - day_used.get((customer, day), 0)
                expected = min(points, left_day, budget - spent)
                assert got.points == expected
                day_used[(customer, day)] = day_used.get((customer, day), 0) + expected
                spent += expected
            assert spent <= budget and all(v <= day_cap for v in day_used.values())
        finally:
            session.rollback()

    @given(st.lists(st.integers(0, 50), max_size=40), st.lists(st.integers(0, 3), min_size=40, max_size=40),
           st.integers(1, 120))
    def test_the_simulators_running_cap_is_greedy_in_order(self, points: list[int], groups: list[int],
                                                           cap: int) -> None:
        values = np.array(points, dtype=np.int64)
        keys = np.array(groups[:len(points)], dtype=np.int64)
        capped = _cap_running(values, keys, cap)
        used: dict[int, int] = {}
        for value, group, got in zip(points, keys.tolist(), capped.tolist(), strict=True):
            assert got == min(value, cap - used.get(group, 0))
            used[group] = used.get(group, 0) + got
        overall = _cap_running(values, None, cap)
        assert int(overall.sum()) == min(sum(points), cap) and (overall <= values).all()
