"""The FastAPI application: /v1 API, problem responses, a plain front page."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from anyio import to_thread
from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from sqlalchemy import Engine

from loyalty import __version__
from loyalty.api import openapi, problems
from loyalty.api.router import build_router
from loyalty.api.text import RefuseNul
from loyalty.config import get_settings
from loyalty.db import get_engine
from loyalty.service.web import router as survey_pages
from loyalty.web.mount import install as install_web

FRONT_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>loyalty</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem;color:#222}
a{color:#0a58ca}</style></head><body><h1>loyalty</h1>
<p>Customer loyalty and retention platform: one customer database, an exactly-once points ledger.</p>
<ul><li><a href="/docs">API documentation (OpenAPI)</a></li><li><a href="/openapi.json">openapi.json</a></li>
<li><a href="/v1/health">health</a></li>
<li><a href="/staff/">Owner and staff screens</a></li></ul></body></html>"""


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    # As many request threads as pooled connections (FastAPI's default is 40 threads).
    to_thread.current_default_thread_limiter().total_tokens = get_settings().db_pool_size
    yield


def create_app(engine: Engine | None = None) -> FastAPI:
    app = FastAPI(
        lifespan=_lifespan,
        title="loyalty",
        version=__version__,
        description="Customers, purchases, points, holds and adjustments. Authenticate with an API key "
                    "(`Authorization: Bearer lk_...`); send `Idempotency-Key` on writes to retry safely.",
    )
    app.state.engine = engine or get_engine()
    problems.install(app)
    app.add_middleware(RefuseNul)  # NUL characters in /v1 requests: the same 422 on both databases
    openapi.install(app)  # error answers in /openapi.json: problem+json, per route
    app.include_router(build_router())
    app.include_router(survey_pages)
    install_web(app, app.state.engine)  # the web screens (/staff, /static): HTML, sessions, CSRF

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def front_page() -> str:
        return FRONT_PAGE

    return app
