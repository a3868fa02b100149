"""Import history: start, follow and finish a run, list recent runs and a run's rejected rows (never commits)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from loyalty.errors import NotFound
from loyalty.imports.service import BatchReport
from loyalty.models.imports import IMPORT_KINDS, ImportRejection, ImportRun
from loyalty.timeutil import utcnow

CLI = "cli"  # started_by of imports run from the command line


@dataclass(frozen=True, slots=True)
class Rejection:
    line: int
    reason: str
    fields: list[str] | None  # the row as it was in the file, in header order; None if not kept


def start_run(session: Session, *, kind: str, file_name: str, size_bytes: int, started_by: str,
              create_customers: bool = False, now: datetime | None = None) -> ImportRun:
    if kind not in IMPORT_KINDS:
        raise ValueError(f"unknown import kind {kind!r}")
    run = ImportRun(kind=kind, file_name=file_name[:255], size_bytes=size_bytes, started_by=started_by[:100],
                    create_customers=create_customers, started_at=now or utcnow(), status="running",
                    rows_total=0, rows_done=0, imported=0, skipped=0, rejected=0, created_customers=0, points=0)
    session.add(run)
    session.flush()
    return run


def record_progress(session: Session, run_id: int, done: int, total: int) -> None:
    session.execute(update(ImportRun).where(ImportRun.id == run_id, ImportRun.status == "running")
                    .values(rows_done=done, rows_total=total))


def finish_run(session: Session, run_id: int, report: BatchReport, rejections: Iterable[Rejection] = (),
               *, columns: Sequence[str] | None = None, now: datetime | None = None) -> None:
    """Records the counts and the rejected rows (one executemany): the run is done."""
    extra = {} if columns is None else {"columns": json.dumps(list(columns), ensure_ascii=False)}
    session.execute(update(ImportRun).where(ImportRun.id == run_id).values(
        status="done", finished_at=now or utcnow(), rows_done=report.rows, **extra,
        imported=report.imported, skipped=report.skipped, rejected=report.rejected,
        created_customers=report.created_customers, points=report.points))
    rows = [{"run_id": run_id, "line": r.line, "reason": r.reason,
             "fields": json.dumps(r.fields, ensure_ascii=False) if r.fields is not None else None}
            for r in rejections]
    if rows:
        session.execute(insert(ImportRejection), rows)


def fail_run(session: Session, run_id: int, error: str, *, now: datetime | None = None) -> None:
    session.execute(update(ImportRun).where(ImportRun.id == run_id).values(
        status="failed", finished_at=now or utcnow(), error=error[:2000]))


def get_run(session: Session, run_id: int) -> ImportRun:
    run = session.get(ImportRun, run_id)
    if run is None:
        raise NotFound(f"there is no import {run_id}")
    return run


def recent_runs(session: Session, limit: int = 20) -> list[ImportRun]:
    return list(session.scalars(select(ImportRun).order_by(ImportRun.started_at.desc(), ImportRun.id.desc())
                                .limit(limit)))


def columns_of(run: ImportRun) -> list[str]:
    return list(json.loads(run.columns)) if run.columns else []


def rejections_of(session: Session, run_id: int, limit: int | None = None) -> Iterator[Rejection]:
    """The run's rejected rows in file order (streamed: a large list is never all in memory)."""
    query = (select(ImportRejection.line, ImportRejection.reason, ImportRejection.fields)
             .where(ImportRejection.run_id == run_id).order_by(ImportRejection.line, ImportRejection.id))
    if limit is not None:
        query = query.limit(limit)
    for line, reason, fields in session.execute(query.execution_options(yield_per=2000)):
        yield Rejection(line, reason, json.loads(fields) if fields is not None else None)
