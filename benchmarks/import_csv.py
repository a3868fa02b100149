"""CSV import throughput: customers then transactions, points computed, on SQLite or PostgreSQL.

    python benchmarks/import_csv.py [--database-url URL] [--customers 20000] [--purchases 500000]

Generates a file with the demo generator (fixed seed), imports it into a fresh database with
the same pipeline as `loyalty import`, imports it a second time (must change nothing), verifies
the ledger, and prints for each step rows/s (wall clock) and rows per CPU-second: this
process's CPU (time.process_time) plus, on PostgreSQL, the CPU of the benchmark database's
server backends (utime + stime from /proc/<pid>/stat, so the server must run on this machine).
The machine is shared, so rows per CPU-second is the figure to compare between runs.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from sqlalchemy import Engine, text

from loyalty.db import make_engine, session_scope
from loyalty.demo.generator import generate, write_csv
from loyalty.imports import service as import_service
from loyalty.imports.pipeline import import_customer_file, import_transaction_file
from loyalty.ledger.verify import verify
from loyalty.migrations.runner import upgrade_to_head
from loyalty.models import Base
from loyalty.programs.service import DEFAULT_PROGRAM_FILE, ProgramCache, apply_program, load_program_file
from loyalty.stores.service import StoreIn, create_store


def fresh_database(url: str) -> None:
    if url.startswith("postgresql"):
        name = make_engine(url).url.database or ""
        if "bench" not in name:
            raise SystemExit(f"refusing to empty database {name!r}: a benchmark database's name must contain 'bench'")
        engine = make_engine(url)
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        engine.dispose()
    upgrade_to_head(url)


_TICKS = os.sysconf("SC_CLK_TCK")


def backend_cpu(engine: Engine) -> dict[int, float]:
    """CPU seconds so far of each server process connected to the benchmark database (PostgreSQL)."""
    if engine.dialect.name != "postgresql":
        return {}
    with engine.connect() as conn:
        pids = conn.execute(text("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")).scalars()
        seconds: dict[int, float] = {}
        for pid in pids:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue  # not on this machine, or gone
            seconds[pid] = (int(fields[11]) + int(fields[12])) / _TICKS
    return seconds


def server_seconds(before: dict[int, float], after: dict[int, float]) -> float:
    return sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--purchases", type=int, default=500_000)
    parser.add_argument("--batch-size", type=int, default=10_000)
    parser.add_argument("--no-bulk-load", action="store_true",
                        help="keep per-row foreign-key checks even for batches that qualify for bulk-load mode")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    if args.no_bulk_load:
        import_service.BULK_LOAD_MIN_ROWS = 2**62
    workdir = Path(tempfile.mkdtemp(prefix="loyalty-import-"))
    atexit.register(shutil.rmtree, workdir, True)  # the generated files and the SQLite database
    url = args.database_url or f"sqlite:///{workdir / 'bench.db'}"
    fresh_database(url)
    engine = make_engine(url)
    ProgramCache.clear()

    started = time.perf_counter()
    data = generate(customers=args.customers, target_purchases=args.purchases)
    customers_csv, transactions_csv = write_csv(data, workdir)
    print(f"generated {len(data.customers):,} customers, {len(data.transactions):,} transactions "
          f"in {time.perf_counter() - started:.1f} s")
    with session_scope(engine) as session:
        definition, source = load_program_file(DEFAULT_PROGRAM_FILE)
        apply_program(session, definition, source, actor="bench",
                      effective_from=min(t.occurred_at for t in data.transactions))
        for store in data.stores:
            create_store(session, StoreIn(id=store.id, name=store.name, kind=store.kind, city=store.city))
    results: dict[str, float] = {}
    for label, run in (
        ("customers", lambda: import_customer_file(engine, customers_csv)),
        ("transactions", lambda: import_transaction_file(engine, transactions_csv, batch_size=args.batch_size)),
        ("transactions again", lambda: import_transaction_file(engine, transactions_csv,
                                                               batch_size=args.batch_size)),
    ):
        server_before = backend_cpu(engine)
        cpu_started = time.process_time()
        started = time.perf_counter()
        report = run()
        seconds = time.perf_counter() - started
        client_cpu = time.process_time() - cpu_started
        server_cpu = server_seconds(server_before, backend_cpu(engine))
        cpu = client_cpu + server_cpu
        results[f"{label} rows/s"] = report.rows / seconds
        results[f"{label} rows/cpu-s"] = report.rows / cpu
        results[f"{label} client cpu-s"] = client_cpu
        results[f"{label} server cpu-s"] = server_cpu
        print(f"{label:20s} {report.rows:>10,} rows in {seconds:6.1f} s = {report.rows / seconds:>9,.0f} rows/s; "
              f"CPU {client_cpu:.1f} s here + {server_cpu:.1f} s server = {report.rows / cpu:>9,.0f} rows/CPU-s "
              f"({report.imported:,} imported, {report.skipped:,} skipped, {report.rejected:,} rejected)")
    with session_scope(engine) as session:
        ok = all(r.ok for r in verify(session))
    print(f"ledger verify: {'ok' if ok else 'FAILED'}  database: {engine.url.get_backend_name()}  "
          f"tables: {len(Base.metadata.tables)}")
    if args.json:
        args.json.write_text(json.dumps({"database": engine.url.get_backend_name(), **results, "verify": ok}))


if __name__ == "__main__":
    main()
