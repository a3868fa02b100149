"""The simulator: replaying history under a draft beside the program in force, writing nothing."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from loyalty.models import LedgerEntry, Transaction
from loyalty.programs.schemas import ProgramDefinition, parse_program
from loyalty.programs.service import apply_program, program_at
from loyalty.programs.simulate import (
    CONTRIBUTORS,
    History,
    Scored,
    history_from_csv,
    load_history,
    read_only_session,
    simulate,
    simulate_database,
)
from loyalty.rewards import service as rewards
from loyalty.rewards.schemas import RewardDefinition
from tests.factories import auth, make_customer, make_key, make_purchase, make_store

BASE: dict[str, Any] = {
    "name": "Base",
    "earn": [{"store_kinds": ["retail", "online"], "points": 10, "per_amount": 100_000},
             {"store_kinds": ["outlet"], "points": 5, "per_amount": 100_000}],
}


def program(**changes: Any) -> ProgramDefinition:
    return parse_program({**BASE, **changes})


def apply(session: Session, definition: ProgramDefinition) -> None:
    apply_program(session, definition, "test", actor="test", effective_from=datetime(2000, 1, 1, tzinfo=UTC))
    session.commit()


def recorded_points(session: Session) -> int:
    return int(session.scalar(select(func.coalesce(func.sum(Transaction.points_earned), 0))
                              .where(Transaction.kind == "purchase")) or 0)


def _ago(days: float, hour: int = 10) -> datetime:
    moment = datetime.now(UTC) - timedelta(days=days)
    return moment.replace(hour=hour, minute=0, second=0, microsecond=0)


RULES: list[dict[str, Any]] = [
    {"id": "mornings", "name": "Mornings x2", "when": {"hours": "07:00-12:00"}, "give": {"multiplier": "2"},
     "cap": {"per_transaction": 30}},
    {"id": "big", "name": "Big basket", "when": {"min_spend": 500_000}, "give": {"bonus": 25}},
    {"id": "milk", "name": "Milk", "when": {"categories": ["dairy"]},
     "give": {"points_per": {"points": 3, "per_amount": 10_000}}},
    {"id": "outlet-only", "name": "Outlet exclusive", "priority": 5, "exclusive": True,
     "when": {"store_kinds": ["outlet"]}, "give": {"points_per": {"points": 1, "per_amount": 100_000}}},
]


def _shop(session: Session) -> list[int]:
    make_store(session, "HN01", "retail")
    make_store(session, "OUT1", "outlet")
    members = [make_customer(session).id for _ in range(4)]
    lines = [{"sku": "SUA-1", "category": "dairy", "quantity": 2, "unit_price": 60_000},
             {"sku": "GAO-5", "category": "rice", "quantity": 1, "unit_price": 180_000}]
    for n in range(12):
        member = members[n % 4]
        store = "OUT1" if n % 5 == 0 else "HN01"
        extra: dict[str, Any] = {"lines": lines} if n % 3 == 0 else {}
        amount = 300_000 if extra else 150_000 + 90_000 * n
        make_purchase(session, member, amount, store_id=store, occurred_at=_ago(20 - n, hour=n), **extra)
    make_purchase(session, None, 500_000, occurred_at=_ago(3))  # anonymous: earns nothing anywhere
    return members


class TestFidelity:
    """Under the program that recorded the history, the simulator gives what the live path gave."""

    def test_same_points_as_recorded_with_rules(self, session: Session) -> None:
        definition = program(rules=RULES)
        apply(session, definition)
        _shop(session)
        history = load_history(session, [definition])
        report = simulate(history, definition, definition)
        assert report.draft.points_earned == recorded_points(session) > 0
        assert report.difference["points_issued"] == 0
        assert report.purchases == 13 and report.member_purchases == 12 and report.members == 4
        assert set(report.draft.points_by_rule) >= {"mornings", "big", "milk", "outlet-only", "earn[0]"}

    def test_same_points_with_tier_rules_and_perks(self, session: Session) -> None:
        tiers = {"qualification": {"metric": "spend", "window": {"rolling_months": 12}},
                 "levels": [{"code": "M", "name": "Member", "threshold": 0},
                            {"code": "S", "name": "Silver", "threshold": 600_000,
                             "perks": {"earn_multiplier": "1.5"}},
                            {"code": "G", "name": "Gold", "threshold": 800_000}]}
        rules = [{"id": "gold-bonus", "name": "Gold bonus", "when": {"tiers": ["G"]}, "give": {"bonus": 7}}]
        definition = program(tiers=tiers, rules=rules)
        apply(session, definition)
        _shop(session)
        report = simulate(load_history(session, [definition]), definition, definition)
        assert report.draft.points_earned == recorded_points(session)
        assert "tier:S" in report.draft.points_by_rule and "gold-bonus" in report.draft.points_by_rule
        assert sum(t.members for t in report.draft.members_per_tier) == 4


class TestDraftAgainstActive:
    def test_double_rates_double_the_cost(self, session: Session) -> None:
        apply(session, program())
        _shop(session)
        draft = program(name="Double", earn=[{"store_kinds": ["retail", "online", "outlet"], "points": 20,
                                             "per_amount": 100_000}],
                        redemption={"point_value": 500})
        report = simulate_database(session, draft)
        assert report.active.name == "Base" and report.draft.name == "Double"
        assert report.active.points_issued == recorded_points(session)
        assert report.draft.points_issued > 2 * report.active.points_issued
        assert report.draft.cost == report.draft.points_issued * 500
        assert report.active.cost == report.active.points_issued * 1000
        assert report.difference["points_issued"] == report.draft.points_issued - report.active.points_issued

    def test_returns_take_points_back(self, session: Session, client: TestClient) -> None:
        apply(session, program())
        make_store(session)
        member = make_customer(session).id
        key = make_key(session)
        body = {"store_id": "HN01", "transaction_id": "P1", "customer_id": member, "amount": 1_000_000,
                "currency": "VND", "occurred_at": _ago(2).isoformat()}
        purchase = client.post("/v1/transactions", json=body, headers=auth(key)).json()
        answer = client.post(f"/v1/transactions/{purchase['id']}/returns", headers=auth(key), json={
            "transaction_id": "R1", "amount": 250_000, "occurred_at": _ago(1).isoformat()})
        assert answer.status_code in (200, 201), answer.text
        report = simulate_database(session, program())
        assert report.returns == 1
        assert report.active.points_earned == 100 and report.active.points_reversed == 25
        assert report.active.points_issued == 75 == report.active.net_liability_points

    def test_date_range(self, session: Session) -> None:
        apply(session, program())
        _shop(session)
        everything = simulate_database(session, program())
        first_days = simulate_database(session, program(), date_to=_ago(15).date())
        assert 0 < first_days.member_purchases < everything.member_purchases
        with pytest.raises(Exception, match="after"):
            simulate_database(session, program(), date_from=date(2026, 5, 2), date_to=date(2026, 5, 1))

    def test_redemptions_and_rewards_unlocked(self, session: Session) -> None:
        apply(session, program())
        make_store(session)
        rich, poor = make_customer(session).id, make_customer(session).id
        make_purchase(session, rich, 3_000_000, occurred_at=_ago(10))  # 300 points
        make_purchase(session, poor, 300_000, occurred_at=_ago(10))  # 30 points
        now = datetime.now(UTC)
        rewards.create_reward(session, RewardDefinition(code="CF", name="Coffee", kind="item", points_cost=30),
                              now - timedelta(days=30))
        rewards.create_reward(session, RewardDefinition(code="BIG", name="Big", kind="item", points_cost=200),
                              now - timedelta(days=30))
        rewards.issue_voucher(session, customer_id=rich, reward_code="BIG", actor="test", now=now - timedelta(days=5))
        session.commit()
        report = simulate_database(session, program())
        assert report.active.points_redeemed == 200 and report.active.redemptions == 1
        assert report.active.net_liability_points == 130
        unlocked = {r.code: r.members for r in report.active.rewards_unlocked}
        assert unlocked == {"CF": 2, "BIG": 0}  # rich has 100 left, poor 30
        # Half the rates: the rich member no longer has the points for the voucher.
        half = program(earn=[{"store_kinds": ["retail"], "points": 5, "per_amount": 100_000}])
        report = simulate_database(session, half)
        assert report.draft.points_redeemed == 0 and report.draft.redemptions == 0
        assert {r.code: r.members for r in report.draft.rewards_unlocked} == {"CF": 1, "BIG": 0}


class TestNothingWritten:
    def test_read_only_session_and_unchanged_counts(self, engine: Engine, session: Session) -> None:
        apply(session, program())
        _shop(session)
        entries = session.scalar(select(func.count()).select_from(LedgerEntry))
        session.rollback()
        with read_only_session(engine) as reader:
            simulate_database(reader, program(name="Draft"))
            if engine.dialect.name == "postgresql":
                with pytest.raises(Exception, match="read-only"):
                    reader.execute(select(func.count()).select_from(LedgerEntry)).scalar()
                    reader.connection().exec_driver_sql("DELETE FROM ledger_postings")
        assert session.scalar(select(func.count()).select_from(LedgerEntry)) == entries


class TestCsv:
    def test_csv_history_matches_the_database(self, session: Session, tmp_path: Path) -> None:
        definition = program()
        apply(session, definition)
        make_store(session)
        make_store(session, "OUT1", "outlet")
        known = make_customer(session, phone="0912000111")
        path = tmp_path / "tx.csv"
        path.write_text(
            "transaction_id,store_id,customer,occurred_at,amount,type,original_transaction_id\n"
            "A1,HN01,0912000111,2026-03-01T10:00:00,1000000,,\n"  # local time
            "A2,HN01,0912 999 888,2026-03-02T10:00:00+07:00,500000,purchase,\n"  # unknown: a new member
            "A3,OUT1,,2026-03-02T11:00:00Z,900000,,\n"  # anonymous
            "A4,XX99,0912000111,2026-03-03T10:00:00,900000,,\n"  # unknown store: left out
            "R1,HN01,0912000111,2026-03-04T10:00:00,500000,return,A1\n"
            "A5,HN01,0912000111,not a time,1,,\n", encoding="utf-8")
        history = history_from_csv(session, path, [definition])
        report = simulate(history, definition, definition)
        assert report.purchases == 3 and report.member_purchases == 2 and report.returns == 1
        assert report.members == 2
        assert report.active.points_earned == 150 and report.active.points_reversed == 50
        assert any("unknown store" in note for note in report.notes)
        assert any("new members" in note for note in report.notes)
        assert any("unreadable" in note for note in report.notes)
        assert known.id in history.purchases["customer_id"].to_list()

    def test_bad_header_is_a_clear_error(self, session: Session, tmp_path: Path) -> None:
        path = tmp_path / "bad.csv"
        path.write_text("id,store\n1,HN01\n", encoding="utf-8")
        with pytest.raises(Exception, match="header lacks"):
            history_from_csv(session, path, [program()])


class TestContributors:
    def test_a_feature_adds_its_figures(self, session: Session) -> None:
        apply(session, program())
        _shop(session)

        class Stamps:
            name = "stamp cards"

            def figures(self, history: History, scored: Scored) -> dict[str, int]:
                return {"cards completed": int(scored.points.sum() > 0) + len(scored.definition.name)}

        report = simulate(load_history(session, [program()]), program(name="Draft"), program(),
                          contributors=[Stamps()])
        assert report.draft.contributions == {"stamp cards": {"cards completed": 6}}
        assert ("stamp cards: cards completed", 6, 5) in report.rows()
        assert CONTRIBUTORS == []


class TestEmptyHistory:
    def test_no_purchases_gives_zeros(self, session: Session) -> None:
        report = simulate_database(session, program())
        assert report.purchases == 0 and report.draft.points_issued == 0
        assert report.to_dict()["difference"]["cost"] == 0
        assert program_at(session).definition.name  # the bundled default is the baseline


class TestApi:
    def test_admin_simulates_a_draft(self, client: TestClient, session: Session) -> None:
        apply(session, program())
        _shop(session)
        key = make_key(session)
        draft = "name: Draft\nearn:\n  - store_kinds: [retail, outlet]\n    points: 20\n    per_amount: 100000\n"
        answer = client.post("/v1/program/simulate", json={"program": draft}, headers=auth(key))
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["draft"]["name"] == "Draft" and body["active"]["name"] == "Base"
        assert body["difference"]["points_issued"] > 0

    def test_invalid_draft_is_a_422_with_paths(self, client: TestClient, session: Session) -> None:
        key = make_key(session)
        answer = client.post("/v1/program/simulate", json={"program": "name: x\nearn: [{points: 1}]\n"},
                             headers=auth(key))
        assert answer.status_code == 422 and "earn[0]" in answer.text
        answer = client.post("/v1/program/simulate", json={"program": "name: [\n"}, headers=auth(key))
        assert answer.status_code == 422 and "line" in answer.text

    def test_only_admins(self, client: TestClient, session: Session) -> None:
        make_store(session)
        key = make_key(session, "store", "HN01")
        answer = client.post("/v1/program/simulate", json={"program": "name: x\n"}, headers=auth(key))
        assert answer.status_code == 403


def test_polars_frame_shape(session: Session) -> None:
    history = load_history(session, [program()])
    assert isinstance(history.purchases, pl.DataFrame) and history.purchases.height == 0
