"""Points expire 12 months after earning, by the business calendar; spending uses the soonest first."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from loyalty.errors import InsufficientPoints
from loyalty.ledger import service
from loyalty.models import LedgerEntry, PointLot
from loyalty.programs.schemas import parse_program
from loyalty.programs.service import apply_program, default_program, program_at
from loyalty.timeutil import add_months
from tests.factories import auth, make_customer, make_key, make_purchase, make_store, purchase_body
from tests.readers import assert_ledger_ok, balance_of, count, reading
from tests.tiers.helpers import use_tiers

NOW = datetime.now(UTC)


def _lots(session: Session, customer_id: int) -> list[tuple[int, int, datetime | None]]:
    """(points, remaining, expires_at) of each lot, in the order they were earned."""
    with reading(session) as reader:
        rows = reader.execute(select(PointLot.points, PointLot.remaining, PointLot.expires_at)
                              .where(PointLot.customer_id == customer_id).order_by(PointLot.id)).all()
        return [(p, r, e) for p, r, e in rows]


@pytest.fixture
def customer_id(session: Session) -> int:
    make_store(session)
    return make_customer(session).id


class TestExpiryDate:
    @pytest.mark.parametrize(("earned", "expires"), [
        # 20:00 UTC is already 03:00 the next day in Hồ Chí Minh City: the business day decides.
        ("2025-03-15T20:00:00+00:00", "2026-03-16T17:00:00+00:00"),
        ("2025-03-15T16:59:59+00:00", "2026-03-15T17:00:00+00:00"),
        ("2025-03-16T02:00:00+07:00", "2026-03-16T17:00:00+00:00"),
        # Earned on 29 February: the last day a year later is 28 February.
        ("2024-02-29T05:00:00+00:00", "2025-02-28T17:00:00+00:00"),
    ])
    def test_end_of_the_business_day_twelve_months_later(self, session: Session, customer_id: int, earned: str,
                                                         expires: str) -> None:
        make_purchase(session, customer_id, 100_000, occurred_at=datetime.fromisoformat(earned))
        [(_, _, expires_at)] = _lots(session, customer_id)
        assert expires_at == datetime.fromisoformat(expires)

    def test_end_of_next_calendar_year_when_the_program_says_so(self, session: Session, customer_id: int) -> None:
        definition = default_program().definition.model_dump()
        definition["expiry"] = {"months_after_earning": None, "end_of_next_calendar_year": True}
        apply_program(session, parse_program(definition), "test", actor="test",
                      effective_from=datetime(2000, 1, 1, tzinfo=UTC))
        session.commit()
        make_purchase(session, customer_id, 100_000, occurred_at=datetime(2025, 6, 10, 12, tzinfo=UTC))
        [(_, _, expires_at)] = _lots(session, customer_id)
        assert expires_at == datetime(2026, 12, 31, 17, tzinfo=UTC)  # 1 January 2027, 00:00 in Hồ Chí Minh City

    def test_add_months_clamps_to_the_end_of_shorter_months(self) -> None:
        assert add_months(datetime(2025, 1, 31).date(), 1) == datetime(2025, 2, 28).date()
        assert add_months(datetime(2025, 12, 15).date(), 12) == datetime(2026, 12, 15).date()
        assert add_months(datetime(2025, 11, 30).date(), 3) == datetime(2026, 2, 28).date()


class TestExpireDue:
    def test_expires_exactly_at_the_expiry_moment(self, session: Session, customer_id: int) -> None:
        make_purchase(session, customer_id, 300_000, occurred_at=NOW - timedelta(days=300))
        make_purchase(session, customer_id, 200_000, occurred_at=NOW - timedelta(days=10))
        [(_, _, first), _] = _lots(session, customer_id)
        assert first is not None
        assert service.expire_due(session, first - timedelta(microseconds=1)) == 0
        assert service.expire_due(session, first) == 30
        session.commit()
        assert balance_of(session, customer_id) == (20, 0, 0, 0)
        assert [remaining for _, remaining, _ in _lots(session, customer_id)] == [0, 20]
        assert_ledger_ok(session)

    def test_is_idempotent(self, session: Session, customer_id: int) -> None:
        make_purchase(session, customer_id, 300_000, occurred_at=NOW - timedelta(days=300))
        later = NOW + timedelta(days=90)
        assert service.expire_due(session, later) == 30
        session.commit()
        entries = count(session, LedgerEntry)
        assert service.expire_due(session, later) == 0
        assert service.expire_due(session, later + timedelta(days=1)) == 0
        session.commit()
        assert count(session, LedgerEntry) == entries
        assert balance_of(session, customer_id) == (0, 0, 0, 0)
        assert_ledger_ok(session)

    def test_only_what_is_left_of_a_lot_expires(self, session: Session, customer_id: int) -> None:
        make_purchase(session, customer_id, 500_000, occurred_at=NOW - timedelta(days=300))
        make_purchase(session, customer_id, 200_000, redeem_points=30)  # takes 30 of the old lot's 50
        assert service.expire_due(session, NOW + timedelta(days=90)) == 20
        session.commit()
        assert balance_of(session, customer_id) == (10, 0, 0, 0)  # earned on the 170,000 VND paid in money
        assert_ledger_ok(session)

    def test_many_members_in_one_run(self, session: Session) -> None:
        make_store(session)
        ids = [make_customer(session).id for _ in range(5)]
        for n, cid in enumerate(ids, start=1):
            make_purchase(session, cid, n * 100_000, occurred_at=NOW - timedelta(days=300))
            make_purchase(session, cid, 100_000)
        assert service.expire_due(session, NOW + timedelta(days=90), batch=2) == sum(n * 10 for n in range(1, 6))
        session.commit()
        assert [balance_of(session, cid)[0] for cid in ids] == [10] * 5
        assert_ledger_ok(session)

    def test_expired_points_cannot_be_spent_before_the_job_runs(self, session: Session, customer_id: int) -> None:
        make_purchase(session, customer_id, 300_000, occurred_at=NOW - timedelta(days=400))  # already past expiry
        make_purchase(session, customer_id, 100_000)
        with pytest.raises(InsufficientPoints):
            service.spend(session, customer_id=customer_id, points=11, kind="redeem", to_account="redeemed",
                          source_type="test", source_id="1", event="redeem", reason="test", actor="test",
                          now=datetime.now(UTC), spend_type="test", spend_id=1)
        session.rollback()
        assert balance_of(session, customer_id) == (40, 0, 0, 0)  # the job has not swept the old lot yet


class TestSoonestExpiringFirst:
    def test_spending_takes_the_oldest_lot_first_whatever_order_they_were_recorded(
        self, session: Session, customer_id: int,
    ) -> None:
        make_purchase(session, customer_id, 500_000, occurred_at=NOW - timedelta(days=100))  # lot 1
        make_purchase(session, customer_id, 500_000, occurred_at=NOW - timedelta(days=300))  # lot 2, expires first
        program = program_at(session)
        service.adjust(session, program, customer_id=customer_id, points=50, reason="welcome gift", actor="test",
                       source_id="gift", now=NOW)  # lot 3, expires last
        session.commit()
        make_purchase(session, customer_id, 200_000, redeem_points=70)
        remaining = [r for _, r, _ in _lots(session, customer_id)]
        assert remaining[:3] == [30, 0, 50]
        assert_ledger_ok(session)

    def test_a_hold_takes_the_oldest_too_and_a_void_puts_them_back(self, session: Session,
                                                                  customer_id: int) -> None:
        make_purchase(session, customer_id, 500_000, occurred_at=NOW - timedelta(days=10))
        make_purchase(session, customer_id, 500_000, occurred_at=NOW - timedelta(days=300))
        hold = service.create_hold(session, customer_id=customer_id, points=60, store_id=None, reference=None,
                                   timeout=timedelta(minutes=5), actor="test", now=NOW)
        session.commit()
        assert [r for _, r, _ in _lots(session, customer_id)] == [40, 0]
        service.void_hold(session, hold.id, actor="test", now=NOW)
        session.commit()
        assert [r for _, r, _ in _lots(session, customer_id)] == [50, 50]
        assert_ledger_ok(session)


class TestBalanceEndpoint:
    def test_shows_points_expiring_in_30_60_and_90_days(self, client: TestClient, session: Session,
                                                       customer_id: int) -> None:
        # Twelve months after these dates fall roughly 20, 50 and 80 days from now.
        for days_ago, amount in ((345, 100_000), (315, 200_000), (285, 400_000), (0, 800_000)):
            make_purchase(session, customer_id, amount, occurred_at=NOW - timedelta(days=days_ago))
        response = client.get(f"/v1/customers/{customer_id}/balance", headers=auth(make_key(session, "readonly")))
        assert response.status_code == 200
        assert response.json() == {"customer_id": customer_id, "available": 150, "pending": 0, "held": 0,
                                   "owed": 0, "expiring_30_days": 10, "expiring_60_days": 30,
                                   "expiring_90_days": 70}

    def test_points_past_expiry_are_not_shown_as_available(self, client: TestClient, session: Session,
                                                           customer_id: int) -> None:
        make_purchase(session, customer_id, 300_000, occurred_at=NOW - timedelta(days=400))
        make_purchase(session, customer_id, 100_000)
        body = client.get(f"/v1/customers/{customer_id}/balance", headers=auth(make_key(session))).json()
        assert (body["available"], body["expiring_30_days"]) == (10, 0)

    def test_a_store_key_can_read_it(self, client: TestClient, session: Session, customer_id: int) -> None:
        make_purchase(session, customer_id, 300_000)
        response = client.get(f"/v1/customers/{customer_id}/balance", headers=auth(make_key(session, "store", "HN01")))
        assert response.status_code == 200
        assert response.json()["available"] == 30

    def test_unknown_customer_is_404(self, client: TestClient, session: Session) -> None:
        assert client.get("/v1/customers/4242/balance", headers=auth(make_key(session))).status_code == 404

    def test_a_purchase_expiring_soon_is_listed_after_it_is_recorded_over_http(
        self, client: TestClient, session: Session, customer_id: int,
    ) -> None:
        key = make_key(session)
        body = purchase_body(customer_id, 500_000, occurred_at=NOW - timedelta(days=350))
        assert client.post("/v1/transactions", json=body, headers=auth(key)).status_code == 201
        balance = client.get(f"/v1/customers/{customer_id}/balance", headers=auth(key)).json()
        assert balance["expiring_30_days"] == 50


class TestWriteResponses:
    """Every write's response shows the balance GET /balance shows: points past their expiry that
    the expiry job has not swept yet are not available, whichever path wrote the sale."""

    @pytest.mark.parametrize("program", ["default", "tiers", "pending"])
    def test_show_what_the_balance_endpoint_shows(self, client: TestClient, session: Session, customer_id: int,
                                                  program: str) -> None:
        if program == "tiers":  # the sale's statement also stores the tier metric (PostgreSQL)
            use_tiers(session)
        elif program == "pending":  # a pending period sends every sale through the general path
            definition = default_program().definition.model_dump(mode="json")
            apply_program(session, parse_program(definition | {"pending_days": 3}), "test", actor="test",
                          effective_from=datetime(2000, 1, 1, tzinfo=UTC))
            session.commit()
        key = make_key(session)

        def shown() -> int:
            response = client.get(f"/v1/customers/{customer_id}/balance", headers=auth(key))
            assert response.status_code == 200
            return int(response.json()["available"])

        def post(path: str, body: dict[str, object]) -> dict[str, Any]:
            response = client.post(path, json=body, headers=auth(key))
            assert response.status_code in (200, 201), response.text
            assert response.json()["balance"]["available"] == shown(), path
            return dict(response.json())

        # Earned 400 days ago: past its 12 months at once, and never swept by the job here.
        old = post("/v1/transactions", purchase_body(customer_id, 3_000_000, occurred_at=NOW - timedelta(days=400)))
        assert old["points_earned"] == 300
        assert old["balance"]["available"] == 0
        sale = post("/v1/transactions", purchase_body(customer_id, 1_100_000))
        pending = program == "pending"  # the new points, adjustments too, are not spendable yet
        assert sale["balance"]["available"] == (0 if pending else 110)
        assert post("/v1/adjustments", {"customer_id": customer_id, "points": 40, "reason": "goodwill"})[
            "balance"]["available"] == (0 if pending else 150)
        post(f"/v1/transactions/{sale['id']}/returns",
             {"transaction_id": "R-1", "occurred_at": NOW.isoformat(), "amount": 500_000})
        # A replayed sale answers with today's balance too.
        again = client.post("/v1/transactions", json=purchase_body(
            customer_id, 3_000_000, pos_id=old["transaction_id"], occurred_at=datetime.fromisoformat(
                old["occurred_at"])), headers=auth(key))
        assert again.status_code in (200, 201) and again.json()["balance"]["available"] == shown()
        if not pending:
            hold = post(f"/v1/customers/{customer_id}/holds", {"points": 10})
            post(f"/v1/holds/{hold['id']}/void", {})
        assert_ledger_ok(session)
