"""The staff screens over HTTP: what each page shows and what each action changes (through the services)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from loyalty.ledger.repository import read_balance
from loyalty.ledger.verify import verify
from loyalty.models import LedgerEntry, ProgramVersion
from loyalty.models.service import Interaction, Ticket, TicketEvent
from loyalty.programs.schemas import parse_program
from loyalty.programs.service import apply_program, default_program
from loyalty.web import tasks
from tests.factories import make_purchase
from tests.web.conftest import client_login
from tests.web.helpers import ADMIN, AGENT, MANAGER, Desk, make_desk, make_history


@pytest.fixture
def desk(session: Session) -> Iterator[Desk]:
    tasks.clear()
    yield make_desk(session)
    tasks.clear()


def _flash(html: str) -> str:
    return " | ".join(re.findall(r'class="flash[^"]*" role="status">([^<]*)<', html))


def test_home_shows_every_figure_with_a_trend(web_client: TestClient, desk: Desk) -> None:
    client_login(web_client, ADMIN)
    assert 'hx-get="/staff/home/figures"' in web_client.get("/staff/").text
    figures = web_client.get("/staff/home/figures").text
    for key in ("members", "active", "revenue", "liability", "redemption", "nps", "open_tickets",
                "breached_tickets"):
        assert f'data-kpi="{key}"' in figures
    assert figures.count("data-chart=") == 8


def test_search_by_name_phone_email_and_card(web_client: TestClient, session: Session, desk: Desk) -> None:
    client_login(web_client, AGENT)
    for q in ("mai", "Nguyễn Thị", "mai@example.vn"):
        page = web_client.get("/staff/customers", params={"q": q}).text
        assert f"/staff/customers/{desk.customer_id}" in page, q
    assert "Nobody matches" in web_client.get("/staff/customers", params={"q": "zzzz"}).text
    assert "at least 2 characters" in web_client.get("/staff/customers", params={"q": "a"}).text


def test_the_customer_page_shows_the_whole_customer(web_client: TestClient, desk: Desk) -> None:
    client_login(web_client, MANAGER)
    page = web_client.get(f"/staff/customers/{desk.customer_id}").text
    for section in ("profile", "points", "scores", "actions", "ledger", "vouchers", "stamps-badges", "tickets",
                    "timeline"):
        assert f'id="{section}"' in page
    assert "Nguyễn Thị Mai" in page and "mai@example.vn" in page
    assert web_client.get("/staff/customers/999999").status_code == 404


def test_the_customer_page_shows_stamp_cards_badges_and_the_next_goal(web_client: TestClient, session: Session,
                                                                     desk: Desk) -> None:
    data = default_program().definition.model_dump(mode="json", exclude_none=True)
    data["stamp_cards"] = [{"id": "coffee", "name": "Coffee card", "counts": {"skus": ["CF"]},
                            "stamps_to_complete": 6, "reward": "NONE-NEEDED"}]
    data["goals"] = [{"id": "regular", "name": "Regular", "metric": "purchases", "target": 1,
                      "badge": {"name": "First visit"}},
                     {"id": "ten", "name": "Ten", "metric": "purchases", "target": 10, "badge": {"name": "Loyal"}}]
    apply_program(session, parse_program(data), "test", actor="test", effective_from=datetime(2001, 1, 1, tzinfo=UTC))
    session.commit()
    make_purchase(session, desk.customer_id, 90_000, pos_id="CF-1",
                  lines=[{"sku": "CF", "quantity": 3, "unit_price": 30_000}])
    client_login(web_client, MANAGER)
    page = web_client.get(f"/staff/customers/{desk.customer_id}").text
    section = page[page.index('id="stamps-badges"'):page.index('id="tickets"')]
    assert "Coffee card: 3 / 6 stamps" in section and "First visit" in section
    assert re.search(r"Next goal: \d+ more purchases? to Loyal", section), section


def test_adjusting_points_goes_through_the_ledger_once_per_form(web_client: TestClient, session: Session,
                                                                 desk: Desk) -> None:
    token = client_login(web_client, MANAGER)
    before = read_balance(session, desk.customer_id).available
    session.rollback()
    form = {"points": "150", "reason": "apology for the late delivery", "nonce": "form-nonce-1", "csrf_token": token}
    first = web_client.post(f"/staff/customers/{desk.customer_id}/points", data=form)
    assert first.status_code == 303
    assert "+150 points recorded" in _flash(web_client.get(first.headers["location"]).text)
    again = web_client.post(f"/staff/customers/{desk.customer_id}/points", data=form)  # a double click
    assert "already recorded" in _flash(web_client.get(again.headers["location"]).text)
    assert read_balance(session, desk.customer_id).available == before + 150
    entry = session.scalars(select(LedgerEntry).where(LedgerEntry.source_type == "adjustment")).one()
    assert entry.reason == "apology for the late delivery" and entry.actor.startswith("staff:")
    # no reason, zero points or too many taken away: refused, nothing changes
    for bad in ({"points": "5", "reason": " "}, {"points": "0", "reason": "x"},
                {"points": str(-(before + 1000)), "reason": "too much"}):
        response = web_client.post(f"/staff/customers/{desk.customer_id}/points",
                                   data={**bad, "nonce": f"nonce-{bad['points']}-xx", "csrf_token": token})
        assert response.status_code == 303, (bad, response.text[-600:])
        assert "flash-error" in web_client.get(response.headers["location"]).text
    assert web_client.post(f"/staff/customers/{desk.customer_id}/points",
                           data={"points": "abc", "reason": "x", "nonce": "n-abc-xxxx", "csrf_token": token},
                           ).status_code == 422
    session.rollback()
    assert read_balance(session, desk.customer_id).available == before + 150
    assert all(result.ok for result in verify(session))


def test_issuing_an_unknown_reward_is_refused_with_a_message(web_client: TestClient, session: Session,
                                                             desk: Desk) -> None:
    token = client_login(web_client, ADMIN)
    response = web_client.post(f"/staff/customers/{desk.customer_id}/voucher",
                               data={"reward": "NOPE", "csrf_token": token})
    assert response.status_code == 303
    assert "flash-error" in web_client.get(response.headers["location"]).text


def test_opening_a_ticket_and_recording_a_call(web_client: TestClient, session: Session, desk: Desk) -> None:
    token = client_login(web_client, AGENT)
    response = web_client.post(f"/staff/customers/{desk.customer_id}/ticket", data={
        "subject": "Voucher không dùng được", "description": "Khách gọi lúc 9h", "category": "points",
        "priority": "high", "store_id": "HN01", "csrf_token": token})
    assert response.status_code == 303
    ticket_id = int(response.headers["location"].rsplit("/", 1)[1])
    ticket = session.get(Ticket, ticket_id)
    assert ticket is not None and ticket.store_id == "HN01" and ticket.priority == "high"
    assert ticket.created_by.startswith("staff:")
    # an agent cannot open a ticket for a store they do not cover
    other = web_client.post(f"/staff/customers/{desk.customer_id}/ticket", data={
        "subject": "x", "description": "y", "store_id": "HCM01", "csrf_token": token})
    assert "flash-error" in web_client.get(other.headers["location"]).text
    empty = web_client.post(f"/staff/customers/{desk.customer_id}/ticket", data={
        "subject": "", "description": "y", "store_id": "HN01", "csrf_token": token})
    assert "subject" in _flash(web_client.get(empty.headers["location"]).text)
    call = web_client.post(f"/staff/customers/{desk.customer_id}/call",
                           data={"note": "gọi lại cho khách", "direction": "outbound", "csrf_token": token})
    assert call.status_code == 303
    session.rollback()
    recorded = session.scalars(select(Interaction).where(Interaction.customer_id == desk.customer_id)).one()
    assert (recorded.kind, recorded.direction, recorded.note, recorded.staff_id) == \
        ("call", "outbound", "gọi lại cho khách", desk.agent_id)
    assert "gọi lại cho khách" in web_client.get(f"/staff/customers/{desk.customer_id}").text


def test_the_queue_highlights_breaches_and_the_agent_answers(web_client: TestClient, session: Session,
                                                             desk: Desk) -> None:
    token = client_login(web_client, AGENT)
    queue = web_client.get("/staff/service").text
    row = re.search(rf'<tr class="([^"]*)" data-ticket="{desk.hn_ticket}">', queue)
    assert row is not None and row.group(1) == "breached"
    assert "late by" in queue
    assert web_client.get("/staff/service?breached=1").text.count("data-ticket=") == 1
    page = web_client.get(f"/staff/tickets/{desk.hn_ticket}").text
    assert "breached" in page and 'id="history"' in page
    empty = web_client.post(f"/staff/tickets/{desk.hn_ticket}/respond", data={"message": " ", "csrf_token": token})
    assert "flash-error" in web_client.get(empty.headers["location"]).text
    answered = web_client.post(f"/staff/tickets/{desk.hn_ticket}/respond",
                               data={"message": "Đã cộng lại 50 điểm cho chị.", "csrf_token": token})
    assert answered.status_code == 303
    resolved = web_client.post(f"/staff/tickets/{desk.hn_ticket}/status",
                               data={"status": "resolved", "note": "done", "csrf_token": token})
    assert "ticket is now resolved" in _flash(web_client.get(resolved.headers["location"]).text)
    session.rollback()
    ticket = session.get(Ticket, desk.hn_ticket)
    assert ticket is not None and ticket.status == "resolved" and ticket.first_response_at is not None
    kinds = session.scalars(select(TicketEvent.kind).where(TicketEvent.ticket_id == desk.hn_ticket)).all()
    assert "response" in kinds
    bogus = web_client.post(f"/staff/tickets/{desk.hn_ticket}/status", data={"status": "flying",
                                                                           "csrf_token": token})
    assert "unknown status" in _flash(web_client.get(bogus.headers["location"]).text)


def test_quality_page_shows_scores_and_the_weekly_review(web_client: TestClient, desk: Desk) -> None:
    client_login(web_client, MANAGER)
    page = web_client.get("/staff/service/quality").text
    assert 'id="nps"' in page and 'id="csat"' in page and 'id="weekly"' in page


def _wait_for(client: TestClient, path: str, marker: str, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while True:
        text = client.get(path).text
        if marker in text:
            return text
        assert 'role="progressbar"' in text, text[:500]
        assert time.monotonic() < deadline, "the background work did not finish"
        time.sleep(0.3)


def test_analytics_show_progress_then_results_and_export(web_client: TestClient, session: Session,
                                                         desk: Desk) -> None:
    make_history(session)
    client_login(web_client, MANAGER)
    assert web_client.get("/staff/analytics/winback.csv").status_code == 409  # not computed yet
    panel = _wait_for(web_client, "/staff/analytics/panel", 'id="rfm"')
    for section in ("pareto", "cohorts", "lifecycle", "clv", "winback", "program-results"):
        assert f'id="{section}"' in panel, panel[:400]
    csv = web_client.get("/staff/analytics/winback.csv")
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    assert csv.text.splitlines()[0].startswith("customer,")
    scores = web_client.get(f"/staff/customers/{desk.customer_id}/scores").text
    assert 'id="segment"' in scores or "No purchases" in scores


def test_program_draft_errors_simulation_and_apply(web_client: TestClient, session: Session, desk: Desk) -> None:
    token = client_login(web_client, ADMIN)
    page = web_client.get("/staff/program").text
    for section in ("tiers", "earning", "rules", "rewards", "stamp-cards", "upload"):
        assert f'id="{section}"' in page
    bad = b"name: Broken\nearn:\n  - store_kinds: [retail]\n    points: -1\n    per_amount: 0\n"
    refused = web_client.post("/staff/program/drafts", data={"csrf_token": token},
                              files={"file": ("broken.yaml", bad, "text/yaml")})
    assert refused.status_code == 422
    assert "earn[0].points" in refused.text and "earn[0].per_amount" in refused.text
    not_yaml = web_client.post("/staff/program/drafts", data={"csrf_token": token},
                               files={"file": ("x.yaml", b"name: [unclosed\n", "text/yaml")})
    assert not_yaml.status_code == 422 and "line" in not_yaml.text
    binary = web_client.post("/staff/program/drafts", data={"csrf_token": token},
                             files={"file": ("x.yaml", b"\xff\xfe\x00", "text/yaml")})
    assert binary.status_code == 422 and "UTF-8" in binary.text
    versions = session.scalar(select(func.count()).select_from(ProgramVersion))
    good = b"name: Double points\nearn:\n  - store_kinds: [retail, online]\n    points: 20\n    per_amount: 100000\n"
    uploaded = web_client.post("/staff/program/drafts", data={"csrf_token": token},
                               files={"file": ("double.yaml", good, "text/yaml")})
    assert uploaded.status_code == 303
    draft_path = uploaded.headers["location"]
    assert 'hx-get="' + draft_path + '/simulation"' in web_client.get(draft_path).text
    comparison = _wait_for(web_client, draft_path + "/simulation", 'id="comparison"')
    assert "points earned" in comparison
    session.rollback()
    assert session.scalar(select(func.count()).select_from(ProgramVersion)) == versions  # nothing applied yet
    applied = web_client.post(draft_path + "/apply", data={"csrf_token": token})
    assert applied.status_code == 303
    assert "Double points applied as version" in _flash(web_client.get("/staff/program").text)
    assert web_client.post(draft_path + "/apply", data={"csrf_token": token}).status_code == 404  # once only
    session.rollback()
    assert session.scalar(select(func.count()).select_from(ProgramVersion)) == (versions or 0) + 1


def test_a_nul_character_in_a_form_is_refused_on_both_databases(web_client: TestClient, session: Session,
                                                                desk: Desk) -> None:
    token = client_login(web_client, AGENT)
    tickets = session.scalar(select(func.count()).select_from(Ticket))
    session.rollback()
    response = web_client.post(f"/staff/customers/{desk.customer_id}/ticket", data={
        "subject": "Voucher\x00", "description": "y", "category": "points", "store_id": "HN01",
        "csrf_token": token})
    assert response.status_code == 422
    assert "The form is not valid" in response.text and "subject: must not contain the NUL character" in response.text
    session.rollback()
    assert session.scalar(select(func.count()).select_from(Ticket)) == tickets
    session.rollback()
    # The same form without it goes through.
    fine = web_client.post(f"/staff/customers/{desk.customer_id}/ticket", data={
        "subject": "Voucher", "description": "y", "category": "points", "store_id": "HN01", "csrf_token": token})
    assert fine.status_code == 303
