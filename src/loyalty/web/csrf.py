"""CSRF protection for every state-changing web request: a per-session synchronizer token.

The token is random, lives in the signed session cookie, is put in every form (``{{ csrf_field() }}``)
and in htmx's requests (the base layout sets ``hx-headers``), and is compared in constant time by
``check_csrf``, which every web router runs as a router-level dependency. Chosen over a
double-submit-cookie middleware (starlette-csrf) because the session already carries a signed,
HttpOnly place for it, the check stays in one dependency that only web routers use (the API, which
authenticates with bearer keys and sends no cookies, is untouched), and it is a dozen lines.
"""

from __future__ import annotations

import hmac
import secrets

from fastapi import Request
from fastapi.exceptions import RequestValidationError

from loyalty.api.text import MESSAGE
from loyalty.errors import Forbidden

SESSION_KEY = "csrf"
FIELD = "csrf_token"
HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class CsrfRefused(Forbidden):
    type_slug = "csrf-refused"
    title = "This form has expired"


def token(request: Request) -> str:
    """This session's token, created on first use."""
    value = request.session.get(SESSION_KEY)
    if not isinstance(value, str) or len(value) < 32:
        value = secrets.token_urlsafe(32)
        request.session[SESSION_KEY] = value
    return value


def rotate(request: Request) -> str:
    """A fresh token (at login and logout), so one seen before login is useless after it."""
    request.session[SESSION_KEY] = secrets.token_urlsafe(32)
    return str(request.session[SESSION_KEY])


async def check_csrf(request: Request) -> None:
    """Router dependency: unsafe methods need the session's token in the header or the form."""
    if request.method in SAFE_METHODS:
        return
    expected = request.session.get(SESSION_KEY)
    presented = request.headers.get(HEADER)
    if presented is None:
        content_type = request.headers.get("content-type", "")
        if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            form = await request.form()  # Starlette keeps it: the endpoint reads the same form
            field = form.get(FIELD)
            presented = field if isinstance(field, str) else None
    if not isinstance(expected, str) or not presented or not hmac.compare_digest(expected, presented):
        raise CsrfRefused("the page was open too long or came from elsewhere; reload it and try again")
    await _refuse_nul(request)


_FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")


async def _refuse_nul(request: Request) -> None:
    """A NUL character in a form's text field is refused, as on the API (api/text.py): PostgreSQL
    cannot store it and SQLite would. Uploaded files are the importer's to check, line by line."""
    if not request.headers.get("content-type", "").startswith(_FORMS):
        return
    form = await request.form()
    errors = [{"type": "string_nul", "loc": ("form", name), "msg": MESSAGE, "input": None}
              for name, value in form.multi_items() if isinstance(value, str) and "\x00" in value]
    if errors:
        raise RequestValidationError(errors)
