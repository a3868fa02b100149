"""Runs every benchmark on SQLite and on PostgreSQL (`make bench`); results go to benchmarks/results/.

    .venv/bin/python benchmarks/run_all.py [--postgres-url URL] [--skip-postgres]

PostgreSQL runs use a database named "bench" (dropped and re-created by each benchmark) on the
local server unless --postgres-url names another; `createdb -h 127.0.0.1 -U postgres bench` once.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/bench"


def run(script: str, name: str, extra: list[str], results: Path) -> int:
    command = [sys.executable, str(HERE / script), "--json", str(results / f"{name}.json"), *extra]
    print(f"\n## {name}: {' '.join(command[1:])}\n", flush=True)
    return subprocess.run(command, check=False).returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES)
    parser.add_argument("--skip-postgres", action="store_true")
    args = parser.parse_args(argv)
    results = HERE / "results"
    results.mkdir(exist_ok=True)
    databases = [("sqlite", [])] + ([] if args.skip_postgres else [("postgres", ["--database-url", args.postgres_url])])
    failures = 0
    for db, extra in databases:
        failures += run("earn_http.py", f"earn_http_{db}", extra, results) != 0
        if (HERE / "import_csv.py").exists():
            failures += run("import_csv.py", f"import_csv_{db}", extra, results) != 0
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
