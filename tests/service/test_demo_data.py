"""The demo's service desk data: staff, answers, tickets with breaches, goodwill through the ledger."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, or_
from sqlalchemy.orm import Session

from loyalty.demo.service_data import build_service_data
from loyalty.models.service import Interaction, StaffMember, SurveyResponse, Ticket
from tests.factories import make_customer, make_purchase, make_store
from tests.readers import assert_ledger_ok, count


def test_builds_a_consistent_service_desk(engine: Engine, session: Session) -> None:
    for store in ("HN01", "WEB"):
        make_store(session, store, kind="online" if store == "WEB" else "retail")
    start = datetime.now(UTC) - timedelta(days=300)
    for i in range(60):
        customer = make_customer(session).id
        for j in range(5):
            make_purchase(session, customer, 300_000, store_id=("HN01", "WEB")[(i + j) % 2],
                          occurred_at=start + timedelta(days=i * 4 + j))
    summary = build_service_data(engine, seed=7, now=datetime.now(UTC))
    assert summary.staff == count(session, StaffMember) > 0
    assert summary.tickets == count(session, Ticket) > 900
    assert summary.answers == count(session, SurveyResponse)
    breached = count(session, Ticket, or_(Ticket.breached_at.is_not(None), Ticket.resolution_breached_at.is_not(None)))
    assert summary.breached > 0 and breached == summary.breached
    assert count(session, Ticket, Ticket.breached_at.is_not(None)) > 0
    assert count(session, Interaction) == 4000
    assert_ledger_ok(session)
