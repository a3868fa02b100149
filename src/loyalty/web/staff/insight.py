"""The analytics bundle: every analytics report over one load of the base, computed in the background.

Built with the same functions as `loyalty analytics` and GET /v1/analytics/{report}
(analytics.reports.run on one Dataset), once per database for 10 minutes; the analytics pages and the
customer page's RFM segment, probability alive and lifetime value read it when it is ready and show
its progress until then.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import polars as pl
from fastapi import Request

from loyalty.analytics.loader import load_database
from loyalty.analytics.report import Report
from loyalty.analytics.reports import Options, run
from loyalty.db import read_only_engine, session_factory
from loyalty.timeutil import utcnow
from loyalty.web import tasks
from loyalty.web.staff.common import db_key, engine_of

REPORTS = ("rfm", "pareto", "cohorts", "lifecycle", "clv", "churn", "program")


@dataclass(frozen=True, slots=True)
class Bundle:
    computed_at: datetime
    reports: dict[str, Report]
    failed: dict[str, str]

    def customer(self, customer_id: int) -> dict[str, Any]:
        """RFM segment, probability alive and lifetime value of one customer (empty when unknown)."""
        out: dict[str, Any] = {}
        for name, columns in (("rfm", ("segment", "recency_days", "frequency", "monetary")),
                              ("clv", ("p_alive", "clv", "expected_purchases"))):
            report = self.reports.get(name)
            if report is None or "customer" not in report.table.columns:
                continue
            row = report.table.filter(pl.col("customer") == customer_id).select(
                [c for c in columns if c in report.table.columns])
            if row.height:
                out.update(row.row(0, named=True))
        return out


def key_of(request: Request) -> str:
    return f"analytics:{db_key(request)}"


def start(request: Request, *, fresh: bool = False) -> tasks.Task:
    engine = engine_of(request)

    def work(task: tasks.Task) -> Bundle:
        session = session_factory(read_only_engine(engine))()
        try:
            task.progress(0.05, "loading purchases and members")
            data = load_database(session)
            reports: dict[str, Report] = {}
            failed: dict[str, str] = {}
            for i, name in enumerate(REPORTS):
                task.progress(0.2 + 0.8 * i / len(REPORTS), f"computing {name} ({i + 1} of {len(REPORTS)})")
                try:
                    reports[name] = run(name, data, Options(), session)
                except Exception as exc:  # one report's failure (too little data) leaves the others
                    failed[name] = getattr(exc, "detail", None) or "could not be computed"
            return Bundle(utcnow(), reports, failed)
        finally:
            session.rollback()
            session.close()

    return tasks.start(key_of(request), "analytics", work, fresh=fresh)


def ready(request: Request) -> Bundle | None:
    task = tasks.find(key_of(request))
    if task is None or not task.done or task.failed:
        return None
    bundle: Bundle = task.result
    return bundle
