"""The report catalogue: one entry point that the CLI and the API share."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from sqlalchemy.orm import Session

from loyalty.analytics.catalogue import REPORTS
from loyalty.analytics.churn import WinBackOptions, churn_report
from loyalty.analytics.clv import ClvOptions, clv_report
from loyalty.analytics.cohorts import cohorts_report
from loyalty.analytics.lifecycle import lifecycle_report
from loyalty.analytics.loader import Dataset, load_database
from loyalty.analytics.pareto import pareto_report
from loyalty.analytics.report import Report
from loyalty.analytics.rfm import rfm_report
from loyalty.errors import NotFound, ValidationFailed
from loyalty.programs.service import program_at

DATABASE_ONLY = ("program",)


@dataclass(frozen=True, slots=True)
class Options:
    clv: ClvOptions = field(default_factory=ClvOptions)
    winback: WinBackOptions = field(default_factory=WinBackOptions)
    period_days: int = 30
    lapsed_after_days: int | None = None
    lost_after_days: int | None = None
    loyal_min_purchases: int | None = None


def check_name(name: str) -> None:
    if name not in REPORTS:
        raise NotFound(f"no report {name!r}; the reports are {', '.join(REPORTS)}")


def run(name: str, data: Dataset, options: Options, session: Session | None = None) -> Report:
    check_name(name)
    check_dates(data.as_of, options.clv.calibration_end)
    if name == "rfm":
        return rfm_report(data)
    if name == "pareto":
        return pareto_report(data)
    if name == "cohorts":
        return cohorts_report(data)
    if name == "clv":
        return clv_report(data, options.clv)
    if name == "lifecycle":
        if not 1 <= options.period_days <= 3660:
            raise ValidationFailed("period must be 1 to 3660 days")
        # The request's thresholds first, then the program file's, then ones derived from the data.
        configured = program_at(session).definition.lifecycle if session is not None else None
        lapsed = options.lapsed_after_days or (configured.lapsed_after_days if configured else None)
        lost = options.lost_after_days or (configured.lost_after_days if configured else None)
        if lapsed is not None and lost is not None and lost <= lapsed:
            raise ValidationFailed(f"a customer is lost after {lost} days but lapses only after {lapsed}: "
                                   "lost must come after lapsed")
        return lifecycle_report(data, options.period_days, lapsed, lost,
                                options.loyal_min_purchases or (configured.loyal_min_purchases if configured else None))
    if name == "churn":
        from loyalty.analytics.loader import load_categories

        lines = load_categories(session, data) if session is not None else None
        return churn_report(data, options.clv, options.winback, lines)
    if session is None and name in DATABASE_ONLY:
        raise ValidationFailed(f"the {name} report needs the loyalty database (points, enrolment); "
                                   "it cannot run on a transactions file")
    from loyalty.analytics.program import profitability_report, program_report

    if name == "program":
        assert session is not None
        return program_report(session, data)
    return profitability_report(data, session)


def check_dates(*days: date | None) -> None:
    for day in days:
        if day is not None and not date(1900, 1, 1) <= day <= date(2999, 12, 31):
            raise ValidationFailed(f"date {day.isoformat()} is out of range (1900-01-01 to 2999-12-31)")


def run_on_database(session: Session, name: str, options: Options, as_of: date | None = None) -> Report:
    check_name(name)
    check_dates(as_of, options.clv.calibration_end)
    return run(name, load_database(session, as_of), options, session)
