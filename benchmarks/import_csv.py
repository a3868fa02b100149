"""CSV import throughput: customers then transactions, points computed, on SQLite or PostgreSQL.

    python benchmarks/import_csv.py [--database-url URL] [--customers 20000] [--purchases 500000]

Generates a file with the demo generator (fixed seed), imports it into a fresh database with
the same pipeline as `loyalty import`, imports it a second time (must change nothing), verifies
the ledger, and prints rows/s for each step.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from sqlalchemy import text

from loyalty.db import make_engine, session_scope
from loyalty.demo.generator import generate, write_csv
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--purchases", type=int, default=500_000)
    parser.add_argument("--batch-size", type=int, default=10_000)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="loyalty-import-"))
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
        started = time.perf_counter()
        report = run()
        seconds = time.perf_counter() - started
        results[f"{label} rows/s"] = report.rows / seconds
        print(f"{label:20s} {report.rows:>10,} rows in {seconds:6.1f} s = {report.rows / seconds:>9,.0f} rows/s "
              f"({report.imported:,} imported, {report.skipped:,} skipped, {report.rejected:,} rejected)")
    with session_scope(engine) as session:
        ok = all(r.ok for r in verify(session))
    print(f"ledger verify: {'ok' if ok else 'FAILED'}  database: {engine.url.get_backend_name()}  "
          f"tables: {len(Base.metadata.tables)}")
    if args.json:
        args.json.write_text(json.dumps({"database": engine.url.get_backend_name(), **results, "verify": ok}))


if __name__ == "__main__":
    main()
