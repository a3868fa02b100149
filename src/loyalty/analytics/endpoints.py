"""GET /v1/analytics/{report}: the same reports as the CLI, on the database, for staff keys."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse

from loyalty.analytics.catalogue import REPORTS
from loyalty.api.deps import ReadSession, StaffKey

router = APIRouter(tags=["analytics"])


@router.get("/analytics/{report}", response_model=dict[str, Any],
            description="Reports: " + "; ".join(f"`{k}`: {v}" for k, v in REPORTS.items()))
def get_report(
    session: ReadSession, _: StaffKey,
    report: Annotated[str, Path(max_length=40, description=", ".join(REPORTS))],
    as_of: Annotated[date | None, Query(description="compute as if today were this date")] = None,
    limit: Annotated[int, Query(ge=1, le=10_000, description="rows of the main table")] = 100,
    model: Annotated[str, Query(pattern="^(bgnbd|pareto-nbd)$")] = "bgnbd",
    time_unit: Annotated[str, Query(pattern="^[DWM]$")] = "W",
    horizon_months: Annotated[int, Query(ge=1, le=600)] = 12,
    discount_rate: Annotated[float, Query(ge=0, lt=10)] = 0.10,
    calibration_end: Annotated[date | None, Query()] = None,
    period_days: Annotated[int, Query(ge=1, le=3660)] = 30,
    lapsed_after_days: Annotated[int | None, Query(ge=1, le=36600)] = None,
    lost_after_days: Annotated[int | None, Query(ge=1, le=36600)] = None,
    loyal_min_purchases: Annotated[int | None, Query(ge=2, le=100_000)] = None,
    value_quantile: Annotated[float, Query(ge=0, lt=1)] = 0.8,
    max_p_alive: Annotated[float, Query(gt=0, le=1)] = 0.5,
) -> JSONResponse:
    # Loaded on first use: the API starts without Polars and SciPy.
    from loyalty.analytics.churn import WinBackOptions
    from loyalty.analytics.clv import ClvOptions
    from loyalty.analytics.report import jsonable
    from loyalty.analytics.reports import Options, run_on_database

    options = Options(ClvOptions(model, time_unit, horizon_months, discount_rate, calibration_end),
                      WinBackOptions(value_quantile, max_p_alive), period_days, lapsed_after_days, lost_after_days,
                      loyal_min_purchases)
    result = run_on_database(session, report, options, as_of)
    return JSONResponse(jsonable(result.to_json(limit)))
