"""The staff screens in a real Chromium: an agent answers a breached ticket, is refused another store's
ticket, the owner takes a program draft through validation and simulation to applying it; screenshots
of the main pages for the README (docs/screenshots/)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from loyalty.models import ProgramVersion
from loyalty.models.service import Ticket
from loyalty.web import tasks
from tests.web.conftest import browser_login, screenshot
from tests.web.helpers import ADMIN, AGENT, Desk, make_desk, make_history

GOOD_DRAFT = b"""name: Double points weekend
earn:
  - store_kinds: [retail, online]
    points: 20
    per_amount: 100000
"""
BAD_DRAFT = b"""name: Broken draft
earn:
  - store_kinds: [retail]
    points: -5
    per_amount: 0
"""


@pytest.fixture
def desk(session: Session) -> Iterator[Desk]:
    tasks.clear()
    yield make_desk(session)
    tasks.clear()


def test_an_agent_answers_a_breached_ticket(page: Page, session: Session, desk: Desk) -> None:
    browser_login(page, AGENT, then="/staff/service")
    row = page.locator(f'tr[data-ticket="{desk.hn_ticket}"]')
    expect(row).to_have_class("breached")
    expect(row).to_contain_text("late by")
    expect(page.locator(f'tr[data-ticket="{desk.hcm_ticket}"]')).to_have_count(0)  # another store's
    screenshot(page, "queue")
    row.locator("a").click()
    expect(page.locator("#sla")).to_contain_text("breached")
    page.fill("textarea[name=message]", "Chào chị Mai, chúng tôi đã cộng lại 200 điểm. Xin lỗi chị!")
    screenshot(page, "ticket")
    page.click("text=Send answer")
    expect(page.locator(".flash")).to_contain_text("answer recorded")
    expect(page.locator("#history")).to_contain_text("Chào chị Mai")
    session.rollback()
    ticket = session.get(Ticket, desk.hn_ticket)
    assert ticket is not None and ticket.first_response_at is not None and ticket.owner_id == desk.agent_id


def test_an_agent_is_refused_another_stores_ticket_by_url(page: Page, desk: Desk) -> None:
    browser_login(page, AGENT)
    response = page.goto(f"/staff/tickets/{desk.hcm_ticket}")
    assert response is not None and response.status == 404
    expect(page.locator("h1")).to_have_text("Not found")
    expect(page.locator("body")).not_to_contain_text("Nhân viên chậm")


def test_the_owner_uploads_a_draft_sees_the_simulation_and_applies_it(page: Page, session: Session,
                                                                      desk: Desk) -> None:
    versions = session.scalar(select(func.count()).select_from(ProgramVersion)) or 0
    session.rollback()
    browser_login(page, ADMIN, then="/staff/program")
    screenshot(page, "program")
    page.set_input_files("input[type=file]", {"name": "broken.yaml", "mimeType": "text/yaml", "buffer": BAD_DRAFT})
    page.click("text=Check and simulate")
    errors = page.locator("#errors")
    expect(errors).to_contain_text("earn[0].points")
    expect(errors).to_contain_text("earn[0].per_amount")
    page.set_input_files("input[type=file]", {"name": "double.yaml", "mimeType": "text/yaml", "buffer": GOOD_DRAFT})
    page.click("text=Check and simulate")
    expect(page.locator("h1")).to_contain_text("Double points weekend")
    expect(page.locator("#comparison")).to_contain_text("points earned", timeout=60_000)
    screenshot(page, "simulation")
    assert session.scalar(select(func.count()).select_from(ProgramVersion)) == versions
    session.rollback()
    page.click("#apply")
    expect(page.locator(".flash")).to_contain_text("Double points weekend applied as version")
    expect(page.locator("h1")).to_contain_text("Double points weekend")
    assert session.scalar(select(func.count()).select_from(ProgramVersion)) == versions + 1


def test_screenshots_of_home_customer_and_analytics(page: Page, session: Session, desk: Desk) -> None:
    make_history(session, also=(desk.customer_id,))
    browser_login(page, ADMIN)
    expect(page.locator('[data-kpi="breached_tickets"]')).to_be_visible()
    page.wait_for_function("document.querySelectorAll('canvas[data-drawn]').length === 8")
    screenshot(page, "home")
    page.goto("/staff/analytics")
    expect(page.locator("#winback")).to_be_visible(timeout=60_000)
    page.wait_for_function("document.querySelectorAll('canvas[data-drawn]').length >= 3")
    screenshot(page, "analytics")
    with page.expect_download() as download:
        page.click("text=Export CSV")
    assert download.value.suggested_filename == "winback.csv"
    page.goto("/staff/customers")
    page.fill("input[name=q]", "Mai")
    page.press("input[name=q]", "Enter")
    page.click("#results a")
    expect(page.locator("#segment")).to_be_visible()
    page.click("text=Adjust points")
    screenshot(page, "customer")
