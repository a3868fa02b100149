"""The portal in a real browser (Debian's Chromium through Playwright): log in with the code from the log,
redeem a reward and see the voucher with its QR code, switch language, and be refused another member's voucher.
Saves the screenshots the README shows (docs/screenshots/portal-*.png)."""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib.image
import numpy as np
import zxingcpp
from playwright.sync_api import Page, expect
from sqlalchemy import select
from sqlalchemy.orm import Session

from loyalty.models.rewards import Voucher
from loyalty.portal.i18n import Translator
from tests.web.conftest import screenshot
from tests.web.portal.conftest import CodeCatcher, Shop


def codes_on_screen(path: Path) -> list[str]:
    """The QR codes a scanner reads off a screenshot (zxing-cpp, the library behind many POS scanners' apps)."""
    pixels = matplotlib.image.imread(str(path))
    grey = (pixels[..., :3].mean(axis=2) * 255).astype(np.uint8)
    return [found.text for found in zxingcpp.read_barcodes(grey)]


def log_in(page: Page, codes: CodeCatcher, identity: str = "0912 000 001", logged: str = "phone:+84912000001",
           *, shot: str | None = None) -> None:
    page.goto("/portal/")  # not logged in: sent to the login page
    expect(page).to_have_url(re.compile(r"/portal/login\?next="))
    page.fill("input[name=identity]", identity)
    page.click("button[type=submit]")
    expect(page.locator("input[name=code]")).to_be_visible()
    if shot:
        screenshot(page, shot)
    page.fill("input[name=code]", codes.code_for(logged))
    page.locator("form[action='/portal/login/verify'] button[type=submit]").click()
    expect(page).to_have_url(re.compile(r"/portal/$"))


class TestMemberJourney:
    def test_log_in_redeem_and_see_the_voucher(self, page: Page, shop: Shop, codes: CodeCatcher,
                                               session: Session) -> None:
        log_in(page, codes, shot="portal-login-code")
        expect(page.locator(".balance")).to_have_text("1.500")
        expect(page.locator("#next-reward")).to_contain_text("Phiếu mua hàng 250.000 ₫")
        expect(page.locator("#tier h2")).to_have_text("Hạng của bạn: Bạc")
        expect(page.locator("#tier")).to_contain_text("Mua thêm 14.000.000 ₫ để lên hạng Vàng.")
        expect(page.locator("#tier [role=progressbar]")).to_have_attribute("aria-valuenow", "30")
        screenshot(page, "portal-home")

        page.click("nav.nav >> text=Đổi quà")
        expect(page.locator("#affordable")).to_contain_text("Cà phê sữa đá")
        expect(page.locator("#within-reach")).to_contain_text("Bánh kem sinh nhật")
        screenshot(page, "portal-rewards")

        page.click("#affordable a[data-reward=VND250K]")
        expect(page.locator("#confirm-redeem")).to_contain_text("1.000")
        page.click("#confirm-redeem")
        expect(page).to_have_url(re.compile(r"/portal/vouchers/[A-Z0-9-]{14}\?new=1$"))
        voucher = session.scalars(select(Voucher)).one()
        expect(page.locator("#voucher-code")).to_have_text(voucher.code)
        expect(page.locator("#voucher-qr svg")).to_be_visible()
        expect(page.locator("#voucher")).to_contain_text("Giảm 250.000 ₫ cho đơn hàng")
        expect(page.locator("#voucher .expires")).to_have_text(Translator("vi").date(voucher.expires_at))
        assert codes_on_screen(screenshot(page, "portal-voucher")) == [voucher.code]

        page.click("nav.nav >> text=Trang chủ")
        expect(page.locator(".balance")).to_have_text("500")
        expect(page.locator("#vouchers")).to_contain_text("Phiếu mua hàng 250.000 ₫")

    def test_switch_language(self, page: Page, shop: Shop, codes: CodeCatcher, session: Session) -> None:
        log_in(page, codes)
        page.goto("/portal/rewards/VND250K")
        page.click("#confirm-redeem")
        expect(page.locator("#voucher-code")).to_be_visible()
        voucher = session.scalars(select(Voucher)).one()
        expect(page.locator("#voucher")).to_contain_text("250.000 ₫")
        expect(page.locator("#voucher .expires")).to_have_text(re.compile(r"^\d{2}/\d{2}/\d{4}$"))

        page.click("button[name=lang][value=en]")
        expect(page.locator("html")).to_have_attribute("lang", "en")
        expect(page.locator("#voucher")).to_contain_text("₫250,000 off your purchase")
        expect(page.locator("#voucher .expires")).to_have_text(Translator("en").date(voucher.expires_at))
        page.click("nav.nav >> text=Home")
        expect(page.locator(".balance")).to_have_text("500")
        screenshot(page, "portal-home-en")

        page.click("button[name=lang][value=vi]")
        expect(page.locator("html")).to_have_attribute("lang", "vi")
        expect(page.locator("h1")).to_contain_text("Xin chào")

    def test_another_members_voucher_by_direct_url(self, page: Page, shop: Shop, codes: CodeCatcher,
                                                   session: Session) -> None:
        log_in(page, codes, "0912000002", "phone:+84912000002")  # Bình redeems a coffee
        page.goto("/portal/rewards/COFFEE")
        page.click("#confirm-redeem")
        expect(page.locator("#voucher-code")).to_be_visible()
        code = session.scalars(select(Voucher)).one().code
        page.locator("form[action='/portal/logout'] button").click()
        expect(page).to_have_url(re.compile(r"/portal/login$"))

        log_in(page, codes)  # An types Bình's voucher address
        response = page.goto(f"/portal/vouchers/{code}")
        assert response is not None and response.status == 404
        expect(page.locator("body")).not_to_contain_text(code)
        expect(page.locator("h1")).to_contain_text("Không tìm thấy")

    def test_wrong_code_in_the_browser(self, page: Page, shop: Shop, codes: CodeCatcher) -> None:
        page.goto("/portal/login")
        page.fill("input[name=identity]", "an@example.vn")
        page.click("button[type=submit]")
        right = codes.code_for("email:an@example.vn")
        page.fill("input[name=code]", f"{(int(right) + 1) % 10**6:06d}")
        page.locator("form[action='/portal/login/verify'] button[type=submit]").click()
        expect(page.locator("[role=alert]")).to_contain_text("Mã không đúng")
        page.fill("input[name=code]", right)
        page.locator("form[action='/portal/login/verify'] button[type=submit]").click()
        expect(page.locator(".balance")).to_have_text("1.500")


class TestPhone:
    def test_phone_sized_pages(self, phone_page: Page, shop: Shop, codes: CodeCatcher) -> None:
        log_in(phone_page, codes)
        tabs = phone_page.locator("nav.tabs")
        expect(tabs).to_be_visible()
        expect(phone_page.locator("nav.nav")).to_be_hidden()
        width = phone_page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"the page is {width}px wide on a 390px screen"
        screenshot(phone_page, "portal-phone-home")
        tabs.locator("text=Đổi quà").click()
        phone_page.click("#affordable a[data-reward=COFFEE]")
        phone_page.click("#confirm-redeem")
        expect(phone_page.locator("#voucher-qr svg")).to_be_visible()
        assert phone_page.evaluate("document.documentElement.scrollWidth") <= 390
        code = phone_page.locator("#voucher-code").inner_text()
        assert codes_on_screen(screenshot(phone_page, "portal-phone-voucher", full_page=False)) == [code]
