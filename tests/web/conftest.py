"""Fixtures for the web screens: a live server in a thread, a real Chromium through Playwright,
an HTTPS TestClient (the session cookie is Secure), logging in, and screenshots for the README.

The portal's tests reuse these (see docs/web.md).
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi.testclient import TestClient
from playwright.sync_api import Browser, Page, Playwright, sync_playwright
from sqlalchemy import Engine

from loyalty.app import create_app
from loyalty.web.auth import address_limiter

ROOT = Path(__file__).resolve().parents[2]
# The README's screenshots are rewritten only when asked (`make screenshots`): every run renders new
# timestamps, so writing them on each test run left the checkout modified. Tests that read a
# screenshot back (the vouchers' QR codes) get it from a temporary directory otherwise.
if os.environ.get("LOYALTY_WRITE_SCREENSHOTS") == "1":
    SCREENSHOTS = ROOT / "docs" / "screenshots"
else:
    SCREENSHOTS = Path(tempfile.mkdtemp(prefix="loyalty-screenshots-"))
    atexit.register(shutil.rmtree, SCREENSHOTS, ignore_errors=True)  # one per test process, gone after it
CHROMIUM = os.environ.get("LOYALTY_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-quic", "--no-first-run", "--disable-component-update", "--disable-sync"]
PASSWORD = "correct horse 42"  # tests.factories.make_staff's default


@dataclass
class WebServer:
    base_url: str
    app: Any

    def url(self, path: str) -> str:
        return self.base_url + path


@pytest.fixture
def web_server(engine: Engine) -> Iterator[WebServer]:
    """create_app(engine) served by uvicorn on 127.0.0.1 (a free port) in a daemon thread of this
    process, against the test's database; it stops at the end of the test."""
    app = create_app(engine)
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", access_log=False,
                            lifespan="on", timeout_graceful_shutdown=2)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="web-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the web server did not start")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield WebServer(f"http://127.0.0.1:{port}", app)
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="session")
def playwright_instance() -> Iterator[Playwright]:
    with sync_playwright() as playwright:
        yield playwright


@pytest.fixture(scope="session")
def browser(playwright_instance: Playwright) -> Iterator[Browser]:
    """Debian's Chromium; a browser that cannot start fails the tests (never skips them)."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium (or set LOYALTY_CHROMIUM)")
    browser = playwright_instance.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
    yield browser
    browser.close()


@pytest.fixture
def page(browser: Browser, web_server: WebServer) -> Iterator[Page]:
    """A fresh browser context (no cookies) on the live server; `page.goto("/staff/")` works."""
    context = browser.new_context(base_url=web_server.base_url, viewport={"width": 1280, "height": 900},
                                  locale="en-GB", timezone_id="Asia/Ho_Chi_Minh")
    context.set_default_timeout(15_000)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def phone_page(browser: Browser, web_server: WebServer) -> Iterator[Page]:
    """The same on a phone-sized, touch screen."""
    context = browser.new_context(base_url=web_server.base_url, viewport={"width": 390, "height": 844},
                                  is_mobile=True, has_touch=True, device_scale_factor=2)
    context.set_default_timeout(15_000)
    page = context.new_page()
    yield page
    context.close()


def screenshot(page: Page, name: str, *, full_page: bool = True) -> Path:
    """Saves <name>.png: into docs/screenshots (the README shows them) with LOYALTY_WRITE_SCREENSHOTS=1."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page, animations="disabled")
    return path


def browser_login(page: Page, email: str, password: str = PASSWORD, *, then: str = "/staff/") -> None:
    """Logs in through the staff login form and waits for the page it leads to."""
    page.goto(f"/staff/login?next={then}")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_load_state("load")


@pytest.fixture(autouse=True)
def _fresh_login_limits() -> Iterator[None]:
    address_limiter.clear()
    yield
    address_limiter.clear()


# --- plain HTTP -------------------------------------------------------------------------------

@pytest.fixture
def web_client(engine: Engine) -> Iterator[TestClient]:
    """A TestClient on https://testserver (the session cookie is Secure), not following redirects."""
    with TestClient(create_app(engine), base_url="https://testserver", raise_server_exceptions=False,
                    follow_redirects=False) as client:
        yield client


CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(client: TestClient, path: str = "/staff/login") -> str:
    """The CSRF token of the client's session, read from a page's form."""
    response = client.get(path)
    found = CSRF_RE.search(response.text)
    assert found, f"no CSRF field on {path}: {response.status_code}"
    return found.group(1)


def client_login(client: TestClient, email: str, password: str = PASSWORD) -> str:
    """Logs the client in; returns the session's CSRF token (rotated at login)."""
    token = csrf_of(client)
    response = client.post("/staff/login", data={"email": email, "password": password, "csrf_token": token})
    assert response.status_code == 303, response.text
    return csrf_of(client, "/staff/")


LoginClient = Callable[[str], str]
