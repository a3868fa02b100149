"""Streams a CSV file through the bulk importer, one committed transaction per batch."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import TypeVar

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from loyalty.bulk import refresh_statistics
from loyalty.db import run_in_transaction, session_scope
from loyalty.imports import rows as csvrows
from loyalty.imports.service import BatchReport, import_customers, import_transactions
from loyalty.programs.service import program_at
from loyalty.tiers import service as tiers
from loyalty.timeutil import utcnow

Row = TypeVar("Row")
# Told after each committed batch: rows done so far, rows in the file (the CLI's bar, the web page's task).
OnRows = Callable[[int, int], None]


def count_lines(path: Path) -> int:
    count = 0
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            count += chunk.count(b"\n")
    return max(count - 1, 0)


def _batches(path: Path, required: tuple[str, ...], known: tuple[str, ...],
             parse: Callable[[int, dict[str, str]], Row], size: int) -> Iterator[list[Row]]:
    lines = csvrows.read_csv(path)
    _, header = next(lines)
    csvrows.check_header(header, required, known)
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
    for number, batch in enumerate(batches, start=1):
        # Each batch commits on its own: memory stays constant, and a re-run skips what is done.
        total.add(run_in_transaction(engine, partial(work, batch=batch)))  # type: ignore[call-arg]
        if number & (number - 1) == 0:  # batches 1, 2, 4, 8, ...: statistics keep up with growth
            run_in_transaction(engine, refresh_statistics)
        done += len(batch)
        if on_rows is not None:
            on_rows(done, max(rows_in_file, done))
    return total


def import_transaction_file(engine: Engine, path: Path, *, create_customers: bool = False,
                            batch_size: int = 10_000, on_rows: OnRows | None = None) -> BatchReport:
    with session_scope(engine) as session:
        tz = program_at(session).tz
    batches = _batches(path, csvrows.TRANSACTION_REQUIRED,
                       csvrows.TRANSACTION_REQUIRED + csvrows.TRANSACTION_OPTIONAL,
                       partial(csvrows.parse_transaction, tz=tz), batch_size)

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
    batches = _batches(path, (), csvrows.CUSTOMER_COLUMNS, partial(csvrows.parse_customer, tz=tz), batch_size)

    def work(session: Session, batch: list[csvrows.CustomerRow | csvrows.RowError]) -> BatchReport:
        return import_customers(session, batch)
    return _run(engine, path, batches, work, on_rows)
