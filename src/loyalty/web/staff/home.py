"""The home dashboard: the owner's figures with their 12-month trends (loaded after the page, by htmx)."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response

from loyalty.analytics.kpis import monthly_kpis
from loyalty.timeutil import utcnow
from loyalty.web.auth import Staff
from loyalty.web.staff import router
from loyalty.web.staff.charts import GREEN, RED, sparkline
from loyalty.web.staff.common import reading, tz
from loyalty.web.templating import render


@router.get("/")
def home(request: Request, user: Staff) -> Response:
    return render(request, "staff/home.html")


@router.get("/home/figures")
def home_figures(request: Request, user: Staff) -> Response:
    with reading(request) as session:
        kpis = monthly_kpis(session, utcnow(), tz())
    cards = []
    for kpi in kpis.figures:
        known = [v for v in kpi.series if v is not None]
        change = (known[-1] - known[-2]) if len(known) >= 2 else None
        good = None if not change else (change > 0) == kpi.good_when_up
        cards.append({"kpi": kpi, "change": change, "good": good,
                      "chart": sparkline(kpis.months, kpi.series,
                                         GREEN if kpi.good_when_up else RED)})
    return render(request, "staff/_home_figures.html", cards=cards, months=kpis.months)
