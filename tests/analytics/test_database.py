"""Analytics on the loyalty database: purchases net of returns, --as-of, the program report, the API."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from loyalty.analytics.churn import WinBackOptions
from loyalty.analytics.loader import load_database
from loyalty.analytics.reports import Options, run_on_database
from loyalty.errors import ConfigError, ValidationFailed
from loyalty.models import Transaction
from loyalty.programs.schemas import parse_program
from loyalty.programs.service import apply_program, default_program
from loyalty.transactions.schemas import ReturnIn
from loyalty.transactions.service import record_return
from tests.factories import auth, make_customer, make_key, make_purchase, make_store

PROBLEM = "application/problem+json"


def when(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def give_back(session: Session, pos_id: str, amount: int, at: str) -> None:
    purchase = session.scalar(select(Transaction.id).where(Transaction.pos_transaction_id == pos_id))
    assert purchase is not None
    record_return(session, purchase, ReturnIn(transaction_id=f"R-{pos_id}", occurred_at=when(at), amount=amount),
                  actor="test")
    session.commit()


class Shop:
    """A: two purchases (the second partly returned), B: one purchase returned in full, C: enrolled only,
    and one anonymous sale."""

    def __init__(self, session: Session) -> None:
        make_store(session)
        enrolled = when("2025-01-01T00:00:00")
        self.a = make_customer(session, enrolled_at=enrolled).id
        self.b = make_customer(session, enrolled_at=enrolled).id
        self.c = make_customer(session, enrolled_at=enrolled).id
        lines = [{"sku": "MILK", "category": "dairy", "quantity": 3, "unit_price": 100_000},
                 {"sku": "BREAD", "category": "bakery", "quantity": 1, "unit_price": 200_000}]
        # 20:00 UTC is 03:00 the next day in Hồ Chí Minh City: the business date is the 11th.
        make_purchase(session, self.a, 500_000, pos_id="A1", occurred_at=when("2025-01-10T20:00:00"), lines=lines)
        make_purchase(session, self.a, 1_000_000, pos_id="A2", occurred_at=when("2025-02-10T03:00:00"))
        give_back(session, "A2", 400_000, "2025-02-12T03:00:00")
        make_purchase(session, self.b, 200_000, pos_id="B1", occurred_at=when("2025-01-15T03:00:00"))
        give_back(session, "B1", 200_000, "2025-01-16T03:00:00")
        make_purchase(session, None, 100_000, pos_id="X1", occurred_at=when("2025-01-20T03:00:00"))


@pytest.fixture
def shop(session: Session) -> Shop:
    return Shop(session)


class TestLoadDatabase:
    def test_purchases_net_of_returns_members_only(self, session: Session, shop: Shop) -> None:
        data = load_database(session, date(2025, 3, 1))
        rows = data.transactions.select("customer", "day", "amount").sort("day").rows()
        assert rows == [(shop.a, date(2025, 1, 11), 500_000), (shop.a, date(2025, 2, 10), 600_000)]
        assert data.customers is not None and data.customers.height == 3

    def test_as_of_sees_only_what_had_happened(self, session: Session, shop: Shop) -> None:
        before_return = load_database(session, date(2025, 2, 11)).transactions
        assert sorted(before_return["amount"].to_list()) == [500_000, 1_000_000]
        assert load_database(session, date(2025, 1, 31)).transactions["amount"].to_list() == [500_000]
        # B's purchase counted until it was returned in full.
        assert sorted(load_database(session, date(2025, 1, 15)).transactions["customer"]) == [shop.a, shop.b]


class TestDatabaseReports:
    def test_program_report(self, session: Session, shop: Shop) -> None:
        report = run_on_database(session, "program", Options(), date(2025, 3, 1))
        s = report.summary
        assert s["members"] == 3
        assert s["member_share_of_transactions"] == pytest.approx(3 / 4)
        assert s["member_share_of_revenue"] == pytest.approx(1_100_000 / 1_200_000)
        # 50 + 100 points earned, 40 taken back by the return; nothing redeemed or expired.
        assert s["points"] == {"issued": 110, "redeemed": 0, "expired": 0, "adjusted": 0, "outstanding": 110}
        assert s["outstanding_liability"] == 110 * 1000
        assert s["redemption_rate"] == 0 and s["breakage"] == 0
        assert s["uplift"]["estimate"] is None and s["uplift"]["reason"]

    def test_lifecycle_sees_prospects(self, session: Session, shop: Shop) -> None:
        report = run_on_database(session, "lifecycle", Options(), date(2025, 3, 1))
        stages = dict(report.table.select("customer", "stage").rows())
        assert stages[shop.c] == "prospect" and stages[shop.b] == "prospect"
        assert stages[shop.a] == "repeat"

    def test_lifecycle_thresholds_come_from_the_program_file_unless_asked(self, session: Session,
                                                                         shop: Shop) -> None:
        derived = run_on_database(session, "lifecycle", Options(), date(2025, 3, 1)).summary["thresholds"]
        definition = default_program().definition.model_dump(mode="json")
        definition["lifecycle"] = {"lapsed_after_days": 45, "lost_after_days": 120}
        apply_program(session, parse_program(definition), "test", actor="test",
                      effective_from=datetime(2000, 1, 1, tzinfo=UTC))
        session.commit()
        configured = run_on_database(session, "lifecycle", Options(), date(2025, 3, 1)).summary["thresholds"]
        assert (configured["lapsed_after_days"], configured["lost_after_days"]) == (45, 120)
        assert configured["loyal_min_purchases"] == derived["loyal_min_purchases"]  # not in the file: derived
        asked = run_on_database(session, "lifecycle", Options(lapsed_after_days=30), date(2025, 3, 1))
        assert (asked.summary["thresholds"]["lapsed_after_days"], asked.summary["thresholds"]["lost_after_days"]) \
            == (30, 120)
        with pytest.raises(ValidationFailed, match="lost must come after lapsed"):
            run_on_database(session, "lifecycle", Options(lapsed_after_days=200), date(2025, 3, 1))
        definition["lifecycle"] = {"lapsed_after_days": 90, "lost_after_days": 60}
        with pytest.raises(ConfigError, match=r"lifecycle: lost_after_days \(60\) must be greater than"):
            parse_program(definition)

    def test_profitability_by_dimension(self, session: Session, shop: Shop) -> None:
        report = run_on_database(session, "profitability", Options(), date(2025, 3, 1))
        rows = {(d, k): (rev, cost) for d, k, rev, cost in
                report.table.select("dimension", "key", "revenue", "points_cost").rows()}
        assert rows[("customer", str(shop.a))] == (1_100_000, 110 * 1000)
        assert rows[("category", "dairy")] == (300_000, 30 * 1000)
        assert rows[("product", "BREAD")] == (200_000, 20 * 1000)


@pytest.fixture
def staff_key(session: Session) -> Iterator[str]:
    yield make_key(session, "admin")


class TestApi:
    def test_clv_with_a_model_and_a_calibration_period(self, client: TestClient, session: Session,
                                                      staff_key: str) -> None:
        regulars(session)
        response = client.get("/v1/analytics/clv?as_of=2024-12-31&model=pareto-nbd&calibration_end=2024-09-30"
                              "&time_unit=D&limit=2", headers=auth(staff_key))
        assert response.status_code == 200, response.text
        body = response.json()
        assert set(body["pareto_nbd"]) >= {"r", "alpha", "s", "beta", "log_likelihood"}
        # The three who kept buying: visits 21-24 (days 281-327 of 2024) fall after September.
        assert body["holdout"]["actual"] == 3 * 4
        assert len(body["rows"]) == 2 and body["total_rows"] == 6

    def test_rfm_for_staff(self, client: TestClient, session: Session, shop: Shop, staff_key: str) -> None:
        response = client.get("/v1/analytics/rfm?as_of=2025-03-01", headers=auth(staff_key))
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["report"] == "rfm" and body["as_of"] == "2025-03-01" and body["total_rows"] == 1
        assert body["rows"][0]["customer"] == shop.a

    def test_every_report_answers_on_an_empty_database(self, client: TestClient, session: Session,
                                                       staff_key: str) -> None:
        for name in ("rfm", "pareto", "cohorts", "lifecycle", "program", "profitability", "clv", "churn"):
            response = client.get(f"/v1/analytics/{name}", headers=auth(staff_key))
            assert response.status_code in (200, 422), (name, response.text)
            if response.status_code == 422:
                assert response.headers["content-type"] == PROBLEM
                assert "model-fit-failed" in response.json()["type"]

    def test_unknown_report_is_404(self, client: TestClient, session: Session, staff_key: str) -> None:
        response = client.get("/v1/analytics/horoscope", headers=auth(staff_key))
        assert response.status_code == 404
        assert "rfm" in response.json()["detail"]

    def test_store_keys_cannot_read_analytics(self, client: TestClient, session: Session) -> None:
        make_store(session)
        key = make_key(session, "store", store_id="HN01")
        assert client.get("/v1/analytics/rfm", headers=auth(key)).status_code == 403

    def test_clv_that_cannot_be_fitted_says_why(self, client: TestClient, session: Session, shop: Shop,
                                                staff_key: str) -> None:
        response = client.get("/v1/analytics/clv?as_of=2025-03-01", headers=auth(staff_key))
        assert response.status_code == 422
        assert "at least two customers" in response.json()["detail"]

    def test_dates_at_the_ends_of_the_calendar_are_a_422(self, client: TestClient, session: Session,
                                                          staff_key: str) -> None:
        for query in ("as_of=9999-12-31", "as_of=0001-01-01", "calibration_end=9999-12-31"):
            response = client.get(f"/v1/analytics/clv?{query}", headers=auth(staff_key))
            assert response.status_code == 422, (query, response.text)


def regulars(session: Session) -> list[int]:
    """Six members who bought every fortnight in 2024; three stopped in April, three kept buying."""
    make_store(session)
    make_store(session, "HCM1")
    members = []
    for index in range(6):
        customer = make_customer(session, enrolled_at=when("2024-01-01T00:00:00"), consents={"sms": index == 0}).id
        members.append(customer)
        stops = 8 if index < 3 else 24
        for visit in range(stops):
            day = datetime(2024, 1, 2, 3, tzinfo=UTC) + timedelta(days=14 * visit + index)
            lines = [{"sku": "SKU1", "category": "dairy" if visit % 3 else "snacks", "quantity": 1,
                      "unit_price": 100_000 * (index + 1)}]
            make_purchase(session, customer, 100_000 * (index + 1), occurred_at=day, lines=lines,
                          store_id="HCM1" if visit == stops - 1 else "HN01")
    return members


class TestChurnOnTheDatabase:
    def test_winback_list_has_store_categories_and_consent(self, session: Session) -> None:
        members = regulars(session)
        options = Options(winback=WinBackOptions(value_quantile=0.0, max_p_alive=0.5))
        report = run_on_database(session, "churn", options, date(2024, 12, 31))
        winback = {row["customer"]: row for row in report.table.to_dicts()}
        assert set(winback) == set(members[:3])
        first = winback[members[0]]
        assert first["last_store"] == "HCM1"
        assert first["favourite_categories"] == "dairy, snacks"
        assert first["contactable"] is True and first["consent_sms"] is True
        assert winback[members[1]]["contactable"] is False
        values = report.table["expected_value_recovered"].to_list()
        assert values == sorted(values, reverse=True)
