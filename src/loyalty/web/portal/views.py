"""Rendering a portal page in the member's language (the helpers every portal view uses)."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse

from loyalty.web.portal.member import translator
from loyalty.web.templating import render


def N_(message: str) -> str:
    """Marks a message for the catalog where it is defined; it is translated when shown (t.gettext)."""
    return message


# Titles and details the foundation's error pages show on portal paths (portal/error.html translates them).
ERROR_TEXTS = [
    N_("Not found"), N_("Page not found"), N_("Not allowed"), N_("Not allowed here"), N_("This form has expired"),
    N_("the page was open too long or came from elsewhere; reload it and try again"), N_("no such voucher"),
    N_("no such ticket"), N_("Something went wrong"), N_("an unexpected error occurred; it was logged"),
    N_("The form is not valid"), N_("The database is busy"), N_("try again in a moment"), N_("Conflict"),
    N_("someone changed the same data at the same time; try again"), N_("Please log in"),
]


def page(request: Request, template: str, status: int = 200, headers: dict[str, str] | None = None,
         **context: Any) -> HTMLResponse:
    t = translator(request)
    return render(request, template, status=status, headers=headers, t=t, _=t.gettext, lang=t.lang,
                  member=getattr(request.state, "member", None), **context)
