"""Staff log in and log out."""

from __future__ import annotations

from typing import Annotated

from fastapi import Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from loyalty.db import run_in_transaction
from loyalty.errors import LoyaltyError
from loyalty.timeutil import utcnow
from loyalty.web import auth, csrf
from loyalty.web.staff import router
from loyalty.web.templating import render

HOME = "/staff/"


def safe_next(target: str | None) -> str:
    """Only a page of the staff area: never another site (//evil.example) or another area."""
    if not target or not target.startswith("/staff") or target.startswith("//") or "\\" in target:
        return HOME
    return target


@router.get("/login")
def login_page(request: Request, next: str | None = None) -> Response:
    if auth.optional_staff(request) is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    return render(request, "staff/login.html", next=safe_next(next), email="", error=None)


@router.post("/login")
def login_submit(request: Request, email: Annotated[str, Form(max_length=200)] = "",
                 password: Annotated[str, Form(max_length=400)] = "",
                 next: Annotated[str, Form(max_length=500)] = HOME) -> Response:
    address = request.client.host if request.client else "unknown"

    def work(session: Session) -> tuple[int, str | None] | LoyaltyError:
        try:
            member = auth.log_in(session, email, password, address, utcnow())
        except LoyaltyError as exc:
            return exc  # committed all the same: the failure counts towards the account's lock
        return member.id, member.password_hash

    outcome = run_in_transaction(request.app.state.engine, work)
    if isinstance(outcome, LoyaltyError):
        return render(request, "staff/login.html", status=outcome.status, next=safe_next(next), email=email[:200],
                      error=outcome.detail)
    staff_id, password_hash = outcome
    request.session.clear()
    request.session["staff_id"] = staff_id
    request.session["staff_pw"] = auth.fingerprint(password_hash)
    csrf.rotate(request)
    return RedirectResponse(safe_next(next), status_code=303)


@router.post("/logout")
def logout(request: Request) -> Response:
    request.session.clear()
    csrf.rotate(request)
    return RedirectResponse("/staff/login", status_code=303)
