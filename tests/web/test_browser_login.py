"""Staff login in a real Chromium: wrong password, CSRF refusal, logging in and out, a phone screen."""

from __future__ import annotations

from playwright.sync_api import Page, expect
from sqlalchemy.orm import Session

from tests.factories import make_staff
from tests.web.conftest import PASSWORD, browser_login, screenshot


def test_login_wrong_password_then_right_then_logout(page: Page, session: Session) -> None:
    make_staff(session, role="admin", email="owner@shop.vn", name="Chị Lan")
    page.goto("/staff/")
    assert page.url.endswith("/staff/login?next=/staff/")
    page.fill("input[name=email]", "owner@shop.vn")
    page.fill("input[name=password]", "not my password")
    page.click("button[type=submit]")
    expect(page.get_by_role("alert")).to_contain_text("wrong e-mail or password")
    screenshot(page, "login")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator(".who")).to_contain_text("Chị Lan")
    page.click("text=Log out")
    assert page.url.endswith("/staff/login")
    page.goto("/staff/")
    assert "/staff/login" in page.url


def test_a_form_with_a_tampered_csrf_token_is_refused(page: Page, session: Session) -> None:
    make_staff(session, role="agent", email="a@shop.vn")
    page.goto("/staff/login")
    page.fill("input[name=email]", "a@shop.vn")
    page.fill("input[name=password]", PASSWORD)
    page.eval_on_selector("input[name=csrf_token]", "el => el.value = 'forged-token-forged-token-forged-token'")
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_have_text("This form has expired")
    page.goto("/staff/")
    assert "/staff/login" in page.url  # not logged in


def test_a_post_from_another_site_carries_no_session(page: Page, session: Session) -> None:
    """SameSite=Lax and the token: a cross-site form post to logout leaves the session alone."""
    make_staff(session, role="agent", email="a@shop.vn")
    browser_login(page, "a@shop.vn")
    assert page.url.endswith("/staff/")
    base = page.url.removesuffix("/staff/")
    page.set_content(f'<form method="post" action="{base}/staff/logout"><button>go</button></form>')
    page.click("button")
    page.wait_for_load_state("load")
    expect(page.locator("h1")).to_have_text("This form has expired")
    page.goto("/staff/")
    expect(page.locator(".who")).to_be_visible()


def test_the_layout_works_on_a_phone(phone_page: Page, session: Session) -> None:
    make_staff(session, role="manager", email="m@shop.vn", name="Anh Minh")
    browser_login(phone_page, "m@shop.vn")
    expect(phone_page.locator(".nav")).to_be_hidden()
    phone_page.click(".nav-burger")
    expect(phone_page.locator(".nav")).to_be_visible()
    width = phone_page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390
