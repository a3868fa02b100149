"""The home dashboard."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response

from loyalty.web.auth import Staff
from loyalty.web.staff import router
from loyalty.web.templating import render


@router.get("/")
def home(request: Request, user: Staff) -> Response:
    return render(request, "staff/home.html")
