"""Jinja2 for every web area: one environment, the shared layout, `render()` with the usual context."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import BaseLoader, ChoiceLoader, Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from loyalty import __version__
from loyalty.web import csrf

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
_loaders: list[BaseLoader] = [FileSystemLoader(HERE / "templates")]
_loader = ChoiceLoader(_loaders)
env = Environment(loader=_loader, autoescape=select_autoescape(default=True, default_for_string=True),
                  auto_reload=False, trim_blocks=True, lstrip_blocks=True)


def add_templates(directory: Path) -> None:
    """An area's own template folder (searched after the shared one): call once at import."""
    if not any(isinstance(loader, FileSystemLoader) and str(directory) in loader.searchpath for loader in _loaders):
        _loaders.append(FileSystemLoader(directory))


def static_url(path: str) -> str:
    return f"/static/{path}?v={__version__}"


def _number(value: Any, digits: int = 0) -> str:
    if value is None:
        return "–"
    if isinstance(value, int) or digits == 0:
        return f"{round(value):,}"
    return f"{value:,.{digits}f}"


def _percent(value: Any, digits: int = 1) -> str:
    return "–" if value is None else f"{value * 100:.{digits}f}%"


def _tojson_attr(value: Any) -> str:
    return json.dumps(value, default=str, separators=(",", ":"))


env.filters["number"] = _number
env.filters["percent"] = _percent
env.filters["json"] = _tojson_attr
env.globals["static"] = static_url
env.globals["version"] = __version__


def render(request: Request, template: str, status: int = 200, headers: dict[str, str] | None = None,
           **context: Any) -> HTMLResponse:
    """Renders `template` with request, user (the logged-in staff member or None), csrf_token,
    csrf_field() and flash messages besides `context`."""
    token = csrf.token(request) if "session" in request.scope else ""
    flashes = request.session.pop("flash", []) if "session" in request.scope else []
    values: dict[str, Any] = {
        "request": request, "user": getattr(request.state, "staff", None), "csrf_token": token,
        "csrf_field": lambda: Markup(f'<input type="hidden" name="{csrf.FIELD}" value="{token}">'),
        "flashes": flashes, **context,
    }
    html = env.get_template(template).render(values)
    return HTMLResponse(html, status_code=status,
                        headers={"Cache-Control": "no-store", **(headers or {})})


def flash(request: Request, message: str, kind: str = "ok") -> None:
    """A message shown once on the next page rendered for this session (after a redirect)."""
    messages = list(request.session.get("flash", []))
    messages.append({"kind": kind, "text": message})
    request.session["flash"] = messages[-5:]
