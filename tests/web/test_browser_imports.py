"""The Imports page in a real Chromium: the owner uploads a transactions file, watches its progress, sees the
result with its rejected lines and the import in the history; a screenshot for the README."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from loyalty.models import Transaction
from loyalty.web import tasks
from tests.web.conftest import browser_login, screenshot
from tests.web.helpers import ADMIN, Desk, make_desk
from tests.web.test_staff_imports import slowed


@pytest.fixture
def desk(session: Session) -> Iterator[Desk]:
    tasks.clear()
    yield make_desk(session)
    tasks.clear()


def sales(n: int) -> bytes:
    rows = [f"S{i},HN01,0915{i:06d},2026-11-{1 + i % 28:02d}T10:00:00+07:00,{(i % 9 + 1) * 50_000}" for i in range(n)]
    rows[10] = "S10,HN01,0915000010,last tuesday,150000"       # line 12
    rows[41] = "S41,HN9,0915000041,2026-11-14T10:00:00+07:00,1"  # line 43
    return ("transaction_id,store_id,customer,occurred_at,amount\n" + "\n".join(rows) + "\n").encode()


def test_the_owner_imports_sales_and_follows_the_progress(page: Page, session: Session, desk: Desk,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    slowed(monkeypatch, batch_size=20, pause=0.4)
    browser_login(page, ADMIN, then="/staff/imports")
    expect(page.locator("h1")).to_have_text("Imports")
    page.check("input[value=transactions]")
    page.check("input[name=create_customers]")
    page.set_input_files("input[type=file]", {"name": "ban-hang-thang-11.csv", "mimeType": "text/csv",
                                              "buffer": sales(120)})
    page.click("#upload button")
    expect(page.locator("h1")).to_contain_text("ban-hang-thang-11.csv")
    expect(page.locator("#rows-done")).to_be_visible()
    expect(page.locator("#eta")).to_contain_text("left")
    expect(page.locator("#import-result")).to_be_visible(timeout=60_000)
    expect(page.locator("#imported")).to_have_text("118")
    expect(page.locator("#rejected")).to_have_text("2")
    expect(page.locator("#rejections tr[data-line]")).to_have_count(2)
    expect(page.locator('#rejections tr[data-line="12"]')).to_contain_text("ISO 8601")
    expect(page.locator('#rejections tr[data-line="43"]')).to_contain_text("HN9")
    screenshot(page, "staff-imports")
    with page.expect_download() as download:
        page.click("#rejected-csv")
    assert download.value.suggested_filename.endswith("-rejected.csv")
    page.click("text=← Imports")
    expect(page.locator("#history tr[data-run]")).to_have_count(1)
    expect(page.locator("#history")).to_contain_text("ban-hang-thang-11.csv")
    session.rollback()
    assert session.scalar(select(func.count()).select_from(Transaction)) == 1 + 118
