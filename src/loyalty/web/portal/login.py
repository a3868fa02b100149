"""Member login with a one-time code (phone or e-mail, then the code), log out, and the language switch."""

from __future__ import annotations

from typing import Annotated

from fastapi import Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from loyalty.config import get_settings
from loyalty.db import run_in_transaction
from loyalty.errors import LoyaltyError
from loyalty.portal import login as codes
from loyalty.portal.i18n import LANGUAGES
from loyalty.portal.settings import get_portal_settings
from loyalty.timeutil import utcnow
from loyalty.web.portal import router
from loyalty.web.portal.member import LANG_KEY, ReadDb, log_in, log_out, optional_member, safe_next, translator
from loyalty.web.portal.views import N_, page

REFUSALS = {
    "wrong": N_("That code is not right. Check it and try again."),
    "expired": N_("That code has expired. Ask for a new one."),
    "used": N_("That code was already used. Ask for a new one."),
    "locked": N_("Too many wrong tries for that code. Ask for a new one."),
    "no-code": N_("Ask for a code first."),
}
BAD_IDENTITY = N_("Enter the phone number or e-mail address you gave us.")
TOO_MANY = N_("Too many codes were asked for. Try again in %(minutes)s minutes.")

Text = Annotated[str, Form(max_length=200)]


def _identity_page(request: Request, status: int, identity: str, next: str, error: str | None) -> Response:
    return page(request, "portal/login.html", status=status, step="identity", identity=identity[:200],
                next=safe_next(next), error=error)


def _code_page(request: Request, status: int, identity: str, next: str, error: str | None) -> Response:
    return page(request, "portal/login.html", status=status, step="code", identity=identity[:200],
                next=safe_next(next), error=error, demo=get_portal_settings().log_codes,
                minutes=get_portal_settings().code_ttl_seconds // 60)


@router.get("/login")
def login_page(request: Request, db: ReadDb, next: str | None = None) -> Response:
    if optional_member(request, db) is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    return _identity_page(request, 200, "", next or "", None)


@router.post("/login")
def ask_for_code(request: Request, identity: Text = "", next: Text = "") -> Response:
    """Step 1: a code for the member behind this phone or e-mail (the same answer for anyone else)."""
    portal = get_portal_settings()

    def work(session: Session) -> codes.CodeRequest | LoyaltyError:
        try:
            return codes.request_code(session, identity, utcnow(), portal)
        except LoyaltyError as exc:
            return exc

    outcome = run_in_transaction(request.app.state.engine, work)
    t = translator(request)
    if isinstance(outcome, codes.TooManyCodes):
        minutes = max(1, (int(outcome.extra.get("retry_after", 60)) + 59) // 60)
        return _identity_page(request, 429, identity, next, t.gettext(TOO_MANY, minutes=minutes))
    if isinstance(outcome, LoyaltyError):
        return _identity_page(request, 422, identity, next, t.gettext(BAD_IDENTITY))
    codes.deliver(outcome, get_settings(), portal)  # after the commit: the code exists before anyone can type it
    return _code_page(request, 200, identity, next, None)


@router.post("/login/verify")
def check_code(request: Request, identity: Text = "", code: Annotated[str, Form(max_length=20)] = "",
               next: Text = "") -> Response:
    """Step 2: the code; a wrong guess is committed (it counts), a right one starts the member's session."""
    portal = get_portal_settings()

    def work(session: Session) -> codes.LoginResult | LoyaltyError:
        try:
            return codes.verify_code(session, identity, code, utcnow(), portal)
        except LoyaltyError as exc:
            return exc

    outcome = run_in_transaction(request.app.state.engine, work)
    t = translator(request)
    if isinstance(outcome, LoyaltyError):
        return _identity_page(request, 422, identity, next, t.gettext(BAD_IDENTITY))
    if outcome.customer_id is None:
        assert outcome.refusal is not None
        return _code_page(request, 401, identity, next, t.gettext(REFUSALS[outcome.refusal]))
    log_in(request, outcome.customer_id)
    return RedirectResponse(safe_next(next), status_code=303)


@router.post("/logout")
def logout(request: Request) -> Response:
    log_out(request)
    return RedirectResponse("/portal/login", status_code=303)


@router.post("/lang")
def switch_language(request: Request, lang: Annotated[str, Form(max_length=5)] = "",
                    next: Annotated[str, Form(max_length=500)] = "") -> Response:
    """Vietnamese or English, kept in the session; back to the page the member was on."""
    if lang in LANGUAGES:
        request.session[LANG_KEY] = lang
    on_login = next == "/portal/login" or next.startswith("/portal/login?")
    target = next if on_login and "//" not in next and "\\" not in next else safe_next(next)
    return RedirectResponse(target, status_code=303)
