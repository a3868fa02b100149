"""Who is logged in to the portal and in which language: the signed session cookie holds the customer id only.

Session keys (see docs/web.md): ``member_id`` (int, set only by a successful one-time-code login),
``portal_lang`` ("vi" or "en"). A customer id never comes from a URL or a form: every page reads
the member from here, and everything a URL names (a voucher, a ticket) is checked to be theirs.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from loyalty.config import get_settings
from loyalty.db import read_only_engine, session_factory
from loyalty.models import Customer
from loyalty.portal.i18n import Translator, pick_language
from loyalty.portal.settings import get_portal_settings
from loyalty.web.auth import LoginRequired

MEMBER_KEY = "member_id"
LANG_KEY = "portal_lang"
HOME = "/portal/"


@dataclass(frozen=True, slots=True)
class PortalMember:
    id: int
    name: str | None


def language(request: Request) -> str:
    chosen = request.session.get(LANG_KEY) if "session" in request.scope else None
    return pick_language(chosen if isinstance(chosen, str) else None, get_portal_settings().default_locale)


def translator(request: Request) -> Translator:
    """The page's language (the session's choice, else the portal's default) and the business's time zone."""
    return Translator(language(request), get_settings().tz)


def template_translator(request: Any) -> Translator:
    """For templates rendered without one (the foundation's error pages): the same choice."""
    return translator(request) if isinstance(request, Request) else Translator("vi", get_settings().tz)


def read_session(request: Request) -> Iterator[Session]:
    session = session_factory(read_only_engine(request.app.state.engine))()
    try:
        yield session
    finally:
        session.rollback()
        session.close()


ReadDb = Annotated[Session, Depends(read_session)]


def current_member(request: Request, db: ReadDb) -> PortalMember:
    """The logged-in member, re-read on every request (a removed customer is logged out)."""
    cached = getattr(request.state, "member", None)
    if isinstance(cached, PortalMember):
        return cached
    member_id = request.session.get(MEMBER_KEY)
    customer = db.get(Customer, member_id) if isinstance(member_id, int) and not isinstance(member_id, bool) else None
    if customer is None:
        request.session.pop(MEMBER_KEY, None)
        raise LoginRequired("log in to see your account")
    member = PortalMember(customer.id, customer.name)
    request.state.member = member
    return member


Member = Annotated[PortalMember, Depends(current_member)]


def optional_member(request: Request, db: ReadDb) -> PortalMember | None:
    try:
        return current_member(request, db)
    except LoginRequired:
        return None


def log_in(request: Request, customer_id: int) -> None:
    """Starts the member's session: their id only; the CSRF token is renewed so a token seen before login is
    useless after it. The staff keys of a shared browser session are left alone."""
    from loyalty.web import csrf

    request.session[MEMBER_KEY] = customer_id
    csrf.rotate(request)


def log_out(request: Request) -> None:
    from loyalty.web import csrf

    request.session.pop(MEMBER_KEY, None)
    request.state.member = None
    csrf.rotate(request)


def safe_next(target: str | None) -> str:
    """Only a page of the portal: never another site (//evil.example, /\\evil) or another area."""
    if not target or not target.startswith("/portal") or target.startswith("//") or "\\" in target:
        return HOME
    if target.startswith("/portal/login") or target.startswith("/portal/logout"):
        return HOME
    return target
