"""Signed-cookie sessions for the web pages only (Starlette's SessionMiddleware, itsdangerous-signed).

The cookie is HttpOnly, SameSite=Lax and Secure (browsers keep Secure cookies on http://127.0.0.1 and
localhost, so the demo works; LOYALTY_WEB_SECURE_COOKIES=false serves plain http on a LAN). The signing
secret is LOYALTY_SECRET_KEY or, unset, a random one generated once and kept in the database (like the
survey links'), so every worker agrees and sessions survive restarts. API requests never pass through it.
"""

from __future__ import annotations

import secrets
import threading

from anyio import to_thread
from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError
from starlette.middleware.sessions import SessionMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from loyalty.config import get_settings
from loyalty.db import session_factory
from loyalty.models.service import ServiceSecret
from loyalty.timeutil import utcnow
from loyalty.web import areas

COOKIE = "loyalty_session"
SECRET_NAME = "web-session"
MAX_AGE = 12 * 3600  # a working day; the login page comes back after it


def session_secret(engine: Engine) -> str:
    configured = get_settings().secret_key
    if configured is not None:
        return "web-session:" + configured.get_secret_value()
    with session_factory(engine)() as session:
        value = session.scalar(select(ServiceSecret.value).where(ServiceSecret.name == SECRET_NAME))
        if value is None:
            try:
                session.add(ServiceSecret(name=SECRET_NAME, value=secrets.token_urlsafe(48), created_at=utcnow()))
                session.commit()
            except IntegrityError:
                session.rollback()  # another process created it first: use theirs
            value = session.scalar(select(ServiceSecret.value).where(ServiceSecret.name == SECRET_NAME))
        assert value is not None
        return value


class WebSessions:
    """SessionMiddleware on web paths; the secret is read on the first web request, not at import."""

    def __init__(self, app: ASGIApp, engine: Engine) -> None:
        self.app = app
        self.engine = engine
        self._inner: SessionMiddleware | None = None
        self._lock = threading.Lock()

    def _build(self) -> SessionMiddleware:
        with self._lock:
            if self._inner is None:
                self._inner = SessionMiddleware(
                    self.app, secret_key=session_secret(self.engine), session_cookie=COOKIE, max_age=MAX_AGE,
                    same_site="lax", https_only=get_settings().web_secure_cookies)
            return self._inner

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not areas.is_web(scope["path"]) or scope["path"].startswith("/static/"):
            await self.app(scope, receive, send)
            return
        inner = self._inner
        if inner is None:
            inner = await to_thread.run_sync(self._build)
        await inner(scope, receive, send)
