"""The member portal at /portal: one-time-code login, balance, tier, rewards, vouchers with QR, history, tickets.

Mounted by loyalty.web.mount like every web area (docs/web.md): its router checks CSRF on every
unsafe method, its templates extend the shared base.html, errors on its paths are HTML pages
in the member's language, and a visitor who is not logged in is sent to /portal/login.
"""

from __future__ import annotations

from pathlib import Path

from loyalty.web import errors
from loyalty.web.portal.member import template_translator
from loyalty.web.routing import web_router
from loyalty.web.templating import add_templates, env

router = web_router("/portal")
add_templates(Path(__file__).parent / "templates")
env.globals["portal_translator"] = template_translator
errors.login_pages["/portal"] = "/portal/login"
errors.error_templates["/portal"] = "portal/error.html"

from loyalty.web.portal import login, pages  # noqa: E402,F401  (register the routes on `router`)
