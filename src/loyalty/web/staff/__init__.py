"""The owner and staff screens at /staff: log in, home, customers, service, analytics, program, imports."""

from __future__ import annotations

from loyalty.web import errors
from loyalty.web.routing import web_router
from loyalty.web.staff.common import local
from loyalty.web.templating import env

router = web_router("/staff")
errors.login_pages["/staff"] = "/staff/login"
env.filters["local"] = local

# Each module adds its pages to `router` when imported.
from loyalty.web.staff import analytics, customers, home, imports, login, program, service  # noqa: E402, F401
