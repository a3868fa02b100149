"""Mounts the web layer on the application made by loyalty.app.create_app."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from sqlalchemy import Engine

from loyalty.web import errors
from loyalty.web.sessions import WebSessions
from loyalty.web.templating import STATIC_DIR


def install(app: FastAPI, engine: Engine) -> None:
    """Static files at /static, the web areas' routers, HTML errors on web paths, cookie sessions.

    Call after api/problems.install (the HTML handlers wrap the API's)."""
    from loyalty.web.portal import router as portal
    from loyalty.web.staff import router as staff

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.include_router(staff)
    app.include_router(portal)  # the member portal, /portal
    errors.install(app)
    app.add_middleware(WebSessions, engine=engine)
