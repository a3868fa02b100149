"""The home page's figures: monthly series computed by the database, in the business time zone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from loyalty.analytics.kpis import month_labels, monthly_kpis
from tests.factories import make_customer, make_purchase, make_store

TZ = ZoneInfo("Asia/Ho_Chi_Minh")


def test_month_labels_end_with_the_current_local_month() -> None:
    # 2026-01-31 20:00 UTC is already February 1st in Hà Nội.
    labels, start = month_labels(datetime(2026, 1, 31, 20, 0, tzinfo=UTC), TZ, 12)
    assert labels[0] == "2025-03" and labels[-1] == "2026-02" and len(labels) == 12
    assert start == datetime(2025, 3, 1, tzinfo=TZ).astimezone(UTC)


def test_members_revenue_and_points_by_month(session: Session) -> None:
    make_store(session, "HN01")
    now = datetime.now(UTC)
    buyer = make_customer(session)
    make_customer(session)  # a member who never bought
    make_purchase(session, buyer.id, 1_000_000, store_id="HN01", occurred_at=now - timedelta(minutes=5))
    make_purchase(session, None, 5_000_000, store_id="HN01", occurred_at=now - timedelta(minutes=4))  # no member
    session.rollback()
    kpis = monthly_kpis(session, now, TZ)
    assert len(kpis.months) == 12
    assert kpis.get("members").value == 2
    assert kpis.get("active").value == 1
    assert kpis.get("revenue").value == 1_000_000  # members' revenue only
    earned = kpis.get("liability").value
    assert earned is not None and earned > 0
    assert kpis.get("redemption").value == 0
    assert kpis.get("nps").value is None and kpis.get("nps").note == "no answers yet"
    assert kpis.get("open_tickets").value == 0
    for kpi in kpis.figures:
        assert len(kpi.series) == 12


def test_an_empty_base_gives_zeros_not_errors(session: Session) -> None:
    kpis = monthly_kpis(session, datetime.now(UTC), TZ)
    assert kpis.get("members").value == 0
    assert kpis.get("redemption").value is None
