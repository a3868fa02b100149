"""Errors on web pages as HTML pages; the API keeps its problem+json (api/problems.py).

The handlers registered by api/problems.install stay in charge of API paths: the ones here wrap
them and answer only for paths of a web area (loyalty.web.areas).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.exc import DataError, IntegrityError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from loyalty.errors import LoyaltyError, Unauthenticated
from loyalty.web import areas
from loyalty.web.templating import render

log = logging.getLogger("loyalty.web")
Handler = Callable[[Request, Any], Awaitable[Response]]

# Where each area sends someone who is not logged in (an area registers its own login page), and
# the template its error pages use (default error.html; it gets title, detail and status).
login_pages: dict[str, str] = {}
error_templates: dict[str, str] = {}


def _for_path(table: dict[str, str], path: str) -> str | None:
    for prefix, value in table.items():
        if path == prefix or path.startswith(prefix.rstrip("/") + "/"):
            return value
    return None


def _login_page(path: str) -> str | None:
    return _for_path(login_pages, path)


def _page(request: Request, status: int, title: str, detail: str) -> Response:
    if "session" in request.scope and "staff_id" not in request.session:
        request.state.staff = None
    template = _for_path(error_templates, request.url.path) or "error.html"
    return render(request, template, status=status, title=title, detail=detail)


def html_error(request: Request, exc: Exception) -> Response:
    if isinstance(exc, Unauthenticated) and exc.type_slug == "login-required":
        page = _login_page(request.url.path)
        if page is not None:
            target = f"{page}?next={quote(request.url.path)}"
            if request.headers.get("hx-request"):
                return Response(status_code=204, headers={"HX-Redirect": target})
            return RedirectResponse(target, status_code=303)
    if isinstance(exc, LoyaltyError):
        return _page(request, exc.status, exc.title, exc.detail)
    if isinstance(exc, RequestValidationError):
        fields = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ()) if p not in ('body', 'query', 'form'))}: "
                           f"{str(e.get('msg', '')).removeprefix('Value error, ')}" for e in exc.errors()[:5])
        return _page(request, 422, "The form is not valid", fields)
    if isinstance(exc, StarletteHTTPException):
        title = {404: "Page not found", 405: "Not allowed here"}.get(exc.status_code, str(exc.detail))
        return _page(request, exc.status_code, title, str(exc.detail))
    if isinstance(exc, IntegrityError):
        return _page(request, 409, "Conflict", "someone changed the same data at the same time; try again")
    if isinstance(exc, DataError):
        return _page(request, 422, "The form is not valid", "a value is out of range or has an invalid character")
    if isinstance(exc, OperationalError):
        return _page(request, 503, "The database is busy", "try again in a moment")
    log.exception("unexpected error on %s", request.url.path, exc_info=exc)
    return _page(request, 500, "Something went wrong", "an unexpected error occurred; it was logged")


def install(app: FastAPI) -> None:
    """Wraps the API's exception handlers: web paths get HTML, every other path what it got before."""
    for cls in (LoyaltyError, RequestValidationError, StarletteHTTPException, IntegrityError, DataError,
                OperationalError, Exception):
        original: Handler | None = app.exception_handlers.get(cls)  # type: ignore[assignment]

        def make(original: Handler | None) -> Handler:
            async def handler(request: Request, exc: Any) -> Response:
                if areas.is_web(request.url.path) or original is None:
                    return html_error(request, exc)
                return await original(request, exc)
            return handler

        app.add_exception_handler(cls, make(original))
