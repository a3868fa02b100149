"""The router every web area uses: HTML pages, CSRF checked on every unsafe method."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from loyalty.web import areas
from loyalty.web.csrf import check_csrf


def web_router(prefix: str) -> APIRouter:
    """An APIRouter for a web area at `prefix` (e.g. "/staff"): not in the OpenAPI schema, sessions
    and HTML errors on its paths, and every POST/PUT/PATCH/DELETE refused without the CSRF token."""
    areas.register(prefix)
    return APIRouter(prefix=prefix, include_in_schema=False, dependencies=[Depends(check_csrf)])
