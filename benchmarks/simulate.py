"""`program simulate` on the demo's 100,000 purchases: load the history, replay it under two programs.

    python benchmarks/simulate.py [--database-url URL] [--repeat 3] [--json FILE]

Without --database-url it builds the demo business (`loyalty demo`: seed 20261123, 3,200
customers, ~105,000 purchases, demo/program.yaml) into a temporary SQLite file first; with one it
uses that database as it is (build it once with `loyalty demo --database-url URL`). Then, each
repeated: the database's history replayed under a draft (every earn rate doubled, point value
halved) beside the demo program, timed in two parts (reading the history, scoring both programs),
and the same from the demo's transactions CSV (`loyalty demo --export-transactions`). Target: under
10 s for the whole `program simulate` (issue: program engine).
"""

from __future__ import annotations

import argparse
import atexit
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from rich.console import Console

from loyalty.db import make_engine
from loyalty.demo.build import DEMO_PROGRAM_FILE, build_demo
from loyalty.demo.export import export_transactions
from loyalty.migrations.runner import upgrade_to_head
from loyalty.programs.schemas import ProgramDefinition
from loyalty.programs.service import ProgramCache, program_at
from loyalty.programs.simulate import history_from_csv, load_history, read_only_session, simulate


def draft_of(active: ProgramDefinition) -> ProgramDefinition:
    data = active.model_dump(mode="json")
    data["name"] = "Double points, half the value"
    for rate in data["earn"]:
        rate["points"] *= 2
    data["redemption"]["point_value"] //= 2
    return ProgramDefinition.model_validate(data)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="loyalty-simulate-"))
    atexit.register(shutil.rmtree, workdir, True)  # the generated files and the SQLite database
    url = args.database_url or f"sqlite:///{workdir / 'demo.db'}"
    engine = make_engine(url)
    ProgramCache.clear()
    if args.database_url is None:
        upgrade_to_head(url)
        started = time.perf_counter()
        build_demo(engine, seed=20261123, customers=3200, purchases=105_000, console=Console(quiet=True))
        print(f"built the demo in {time.perf_counter() - started:.1f} s")
    csv = workdir / "transactions.csv"
    export_transactions(csv, seed=20261123, customers=3200, purchases=105_000)
    results: dict[str, list[float]] = {"database: read history s": [], "database: score both s": [],
                                       "database: total s": [], "csv: read history s": [], "csv: score both s": [],
                                       "csv: total s": []}
    purchases = 0
    for _ in range(args.repeat):
        for source in ("database", "csv"):
            started = time.perf_counter()
            with read_only_session(engine) as session:
                active = program_at(session).definition
                draft = draft_of(active)
                if source == "database":
                    history = load_history(session, [draft, active])
                else:
                    history = history_from_csv(session, csv, [draft, active])
            loaded = time.perf_counter()
            report = simulate(history, draft, active)
            done = time.perf_counter()
            purchases = report.purchases
            results[f"{source}: read history s"].append(loaded - started)
            results[f"{source}: score both s"].append(done - loaded)
            results[f"{source}: total s"].append(done - started)
            print(f"{source:8s} {report.purchases:,} purchases ({report.member_purchases:,} by members), "
                  f"read {loaded - started:5.2f} s, scored both programs {done - loaded:5.2f} s, "
                  f"total {done - started:5.2f} s; issued {report.draft.points_issued:,} vs "
                  f"{report.active.points_issued:,}")
    summary = {name: round(statistics.median(values), 3) for name, values in results.items()}
    print(json.dumps(summary, indent=2))
    if args.json:
        args.json.write_text(json.dumps({"database": engine.url.get_backend_name(), "purchases": purchases,
                                         "program": str(DEMO_PROGRAM_FILE.name), **summary}))


if __name__ == "__main__":
    main()
