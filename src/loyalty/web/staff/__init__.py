"""The owner and staff screens at /staff: log in, home, customers, service, analytics, program."""

from __future__ import annotations

from loyalty.web import errors
from loyalty.web.routing import web_router

router = web_router("/staff")
errors.login_pages["/staff"] = "/staff/login"

# Each module adds its pages to `router` when imported.
from loyalty.web.staff import home, login  # noqa: E402, F401
