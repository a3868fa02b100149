"""Streams a CSV file through the bulk importer, one committed transaction per batch."""

from __future__ import annotations

import csv
from collections.abc import Callable, Collection, Iterator, Sequence
from functools import partial
from pathlib import Path
from typing import TypeVar

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from loyalty.bulk import refresh_statistics
from loyalty.db import run_in_transaction, session_scope
from loyalty.errors import LoyaltyError
from loyalty.imports import history
from loyalty.imports import rows as csvrows
from loyalty.imports.service import BatchReport, import_customers, import_transactions
from loyalty.programs.service import program_at
from loyalty.tiers import service as tiers
from loyalty.timeutil import utcnow

Row = TypeVar("Row")
# Told after each committed batch: rows done so far, rows in the file (the CLI's bar, the web page's task).
OnRows = Callable[[int, int], None]
# (required, known) header columns of each kind of file.
COLUMNS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "customers": ((), csvrows.CUSTOMER_COLUMNS),
    "transactions": (csvrows.TRANSACTION_REQUIRED, csvrows.TRANSACTION_REQUIRED + csvrows.TRANSACTION_OPTIONAL),
}


def count_lines(path: Path) -> int:
    count = 0
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            count += chunk.count(b"\n")
    return max(count - 1, 0)


def _batches(path: Path, required: tuple[str, ...], known: tuple[str, ...],
             parser: Callable[[Sequence[str]], Callable[[int, Sequence[str]], Row]],
             size: int) -> Iterator[list[Row]]:
    header, lines = csvrows.read_rows(path)
    csvrows.check_header(header, required, known)
    parse = parser(header)  # reads each row's values by column position, not through a dict
    batch: list[Row] = []
    for line, row in lines:
        batch.append(parse(line, row))
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _run(engine: Engine, path: Path, batches: Iterator[list[Row]],
         work: Callable[[Session, list[Row]], BatchReport], on_rows: OnRows | None) -> BatchReport:
    total = BatchReport()
    rows_in_file = count_lines(path) if on_rows else 0
    done = 0
    grown = False  # since the statistics were last refreshed
    for number, batch in enumerate(batches, start=1):
        # Each batch commits on its own: memory stays constant, and a re-run skips what is done.
        report = run_in_transaction(engine, partial(work, batch=batch))  # type: ignore[call-arg]
        total.add(report)
        grown = grown or bool(report.imported or report.created_customers)
        # Batches 1, 2, 4, 8, ...: statistics keep up with growth (a file imported again grows nothing).
        if number & (number - 1) == 0 and grown:
            run_in_transaction(engine, refresh_statistics)
            grown = False
        done += len(batch)
        if on_rows is not None:
            on_rows(done, max(rows_in_file, done))
    return total


def import_transaction_file(engine: Engine, path: Path, *, create_customers: bool = False,
                            batch_size: int = 10_000, on_rows: OnRows | None = None) -> BatchReport:
    with session_scope(engine) as session:
        tz = program_at(session).tz
    batches = _batches(path, *COLUMNS["transactions"], partial(csvrows.TransactionParser, tz=tz), batch_size)

    def work(session: Session, batch: list[csvrows.TransactionRow | csvrows.RowError]) -> BatchReport:
        return import_transactions(session, batch, create_customers=create_customers)
    report = _run(engine, path, batches, work, on_rows)
    with session_scope(engine) as session:
        # Imported purchases count toward tiers like live ones: upgrades for the window ending now,
        # set-based (the review handles downgrades, as for live sales).
        now = utcnow()
        tiers.recompute_all(session, program_at(session, now), now, actor="import")
    return report


def import_customer_file(engine: Engine, path: Path, *, batch_size: int = 5000,
                         on_rows: OnRows | None = None) -> BatchReport:
    with session_scope(engine) as session:
        tz = program_at(session).tz
    batches = _batches(path, *COLUMNS["customers"], partial(csvrows.customer_parser, tz=tz), batch_size)

    def work(session: Session, batch: list[csvrows.CustomerRow | csvrows.RowError]) -> BatchReport:
        return import_customers(session, batch)
    return _run(engine, path, batches, work, on_rows)


# --- checked up front, recorded in the import history ------------------------------------------

def check_file(path: Path, kind: str) -> list[str]:
    """The file's header, checked as the import will check it, before anything is imported.

    Raises CsvHeaderError (422) for an empty file, a wrong header or a header without rows, and
    CsvFileError (422) when the header or first row is not UTF-8 CSV.
    """
    required, known = COLUMNS[kind]
    try:
        header, lines = csvrows.read_rows(path)
        try:
            csvrows.check_header(header, required, known)
            if next(lines, None) is None:
                raise csvrows.CsvHeaderError("the file has a header but no rows")
        finally:
            lines.close()
    except csvrows.CsvHeaderError as exc:
        # read_rows names the file by its path, which for an upload is a temporary file's.
        raise csvrows.CsvHeaderError(exc.detail.replace(f"{path}: ", "")) from None
    return list(header)


def original_rows(path: Path, lines: Collection[int]) -> tuple[list[str], dict[int, list[str]]]:
    """The header and the fields of the rows at `lines` (line numbers as the importer counts them), in one pass."""
    found: dict[int, list[str]] = {}
    wanted = set(lines)
    with path.open(newline="", encoding="utf-8-sig", errors="replace") as handle:
        reader = csv.reader(handle)
        header = next(reader, [])
        last = max(wanted, default=0)
        for row in reader if wanted else ():
            if reader.line_num in wanted:
                found[reader.line_num] = row
            if reader.line_num >= last:
                break
    return header, found


def run_recorded(engine: Engine, run_id: int, kind: str, path: Path, *, create_customers: bool = False,
                 batch_size: int | None = None, on_rows: OnRows | None = None) -> BatchReport:
    """Imports `path` for the run `run_id` (history.start_run, committed), recording its progress after each
    batch and how it ended: counts and rejected rows with their original fields, or why it failed."""
    def progress(done: int, total: int) -> None:
        run_in_transaction(engine, partial(_progress, run_id=run_id, done=done, total=total))
        if on_rows is not None:
            on_rows(done, total)

    sizes = {} if batch_size is None else {"batch_size": batch_size}
    try:
        if kind == "customers":
            report = import_customer_file(engine, path, on_rows=progress, **sizes)
        else:
            report = import_transaction_file(engine, path, create_customers=create_customers, on_rows=progress,
                                             **sizes)
    except BaseException as exc:  # Ctrl-C in the CLI too: the run must not stay "running" for ever
        detail = (exc.detail if isinstance(exc, LoyaltyError) else "interrupted" if isinstance(exc, KeyboardInterrupt)
                  else f"{type(exc).__name__}: {exc}")
        run_in_transaction(engine, partial(_fail, run_id=run_id, error=detail))
        raise
    columns, fields = original_rows(path, [e.line for e in report.errors])
    rejections = [history.Rejection(e.line, e.message, fields.get(e.line)) for e in report.errors]
    run_in_transaction(engine, partial(_finish, run_id=run_id, report=report, rejections=rejections,
                                       columns=columns))
    return report


def _progress(session: Session, *, run_id: int, done: int, total: int) -> None:
    history.record_progress(session, run_id, done, total)


def _fail(session: Session, *, run_id: int, error: str) -> None:
    history.fail_run(session, run_id, error)


def _finish(session: Session, *, run_id: int, report: BatchReport, rejections: list[history.Rejection],
            columns: list[str]) -> None:
    history.finish_run(session, run_id, report, rejections, columns=columns)
