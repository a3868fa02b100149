"""Analytics pages: RFM grid, Pareto curve, cohort retention, lifecycle flow, CLV distribution, win-back list
(with a CSV export) and the program's results with uplift; computed in the background (insight.py)."""

from __future__ import annotations

from typing import Annotated, Any

import numpy as np
import polars as pl
from fastapi import Depends, Request
from fastapi.responses import Response

from loyalty.analytics.report import jsonable
from loyalty.errors import Conflict
from loyalty.web.auth import StaffUser, require
from loyalty.web.staff import charts, insight, router
from loyalty.web.staff.common import local
from loyalty.web.templating import render

Analyst = Annotated[StaffUser, Depends(require("analyse"))]
WINBACK_SHOWN = 50


def _heat(value: float | None, top: float) -> str:
    if value is None or top <= 0:
        return "transparent"
    alpha = 0.08 + 0.85 * max(0.0, min(1.0, value / top))
    return f"rgba(11, 92, 213, {alpha:.2f})"


def _sections(bundle: insight.Bundle) -> dict[str, Any]:
    out: dict[str, Any] = {"failed": bundle.failed, "computed_at": local(bundle.computed_at)}
    reports = bundle.reports
    if "rfm" in reports:
        grid = reports["rfm"].sections.get("grid")
        cells: dict[tuple[int, int], int] = {}
        if grid is not None:
            cells = {(int(r["r"]), int(r["f"])): int(r["customers"]) for r in grid.to_dicts()}
        top = max(cells.values(), default=0)
        out["rfm"] = {
            "rows": [[{"n": cells.get((r, f), 0), "bg": _heat(cells.get((r, f), 0), top)} for f in range(1, 6)]
                     for r in range(5, 0, -1)],
            "segments": reports["rfm"].sections.get("segments", pl.DataFrame()).to_dicts()}
    if "pareto" in reports:
        curve = reports["pareto"].sections["curve"]
        summary = reports["pareto"].summary
        out["pareto"] = {"summary": summary, "chart": charts.line(
            [round(x * 100) for x in curve["customer_share"].to_list()],
            {"share of revenue (%)": [round(y * 100, 1) for y in curve["revenue_share"].to_list()]},
            x_title="top customers (%)", y_title="revenue (%)", y_max=100)}
    if "cohorts" in reports:
        retention = reports["cohorts"].sections["retention"]
        periods = [c for c in retention.columns if c != "cohort"]
        out["cohorts"] = {"periods": periods, "rows": [
            {"cohort": row["cohort"], "cells": [{"v": row[p], "bg": _heat(row[p], 1.0)} for p in periods]}
            for row in retention.to_dicts()]}
    if "lifecycle" in reports:
        report = reports["lifecycle"]
        flows = report.sections["flows"].filter(pl.col("from") != pl.col("to")).sort("customers", descending=True)
        stages = report.sections["stages"]
        out["lifecycle"] = {"flows": flows.to_dicts(), "summary": report.summary, "chart": charts.bars(
            stages["stage"].to_list(), {"customers": stages["customers"].to_list()})}
    if "clv" in reports:
        values = reports["clv"].table["clv"].drop_nulls().to_numpy()
        if values.size:
            upper = float(np.quantile(values, 0.99)) or 1.0
            counts, edges = np.histogram(np.clip(values, 0, upper), bins=20, range=(0, upper))
            labels = [f"{edges[i] / 1e6:,.1f}–{edges[i + 1] / 1e6:,.1f}M" for i in range(len(counts))]
            out["clv"] = {"summary": jsonable(reports["clv"].summary),
                          "chart": charts.bars(labels, {"customers": counts.tolist()}, y_title="customers")}
    if "churn" in reports:
        report = reports["churn"]
        out["winback"] = {"summary": report.summary, "rows": report.table.head(WINBACK_SHOWN).to_dicts(),
                          "total": report.table.height}
    if "program" in reports:
        out["program"] = {"summary": reports["program"].summary,
                          "table": reports["program"].table.to_dicts()}
    return out


@router.get("/analytics")
def analytics(request: Request, user: Analyst) -> Response:
    return render(request, "staff/analytics.html")


@router.get("/analytics/panel")
def analytics_panel(request: Request, user: Analyst, refresh: bool = False) -> Response:
    """The results when ready, else the progress (polled every 2 s by htmx until done)."""
    bundle = None if refresh else insight.ready(request)
    if bundle is None:
        task = insight.start(request, fresh=refresh)
        if task.done and not task.failed:
            bundle = task.result
        else:
            return render(request, "staff/_progress.html", task=task, poll="/staff/analytics/panel")
    return render(request, "staff/_analytics_panel.html", s=_sections(bundle))


@router.get("/analytics/winback.csv")
def winback_csv(request: Request, user: Analyst) -> Response:
    bundle = insight.ready(request)
    if bundle is None or "churn" not in bundle.reports:
        raise Conflict("the win-back list is still being computed; open Analytics and wait for it")
    table = bundle.reports["churn"].table
    return Response(table.write_csv(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": 'attachment; filename="winback.csv"',
                             "Cache-Control": "no-store"})
