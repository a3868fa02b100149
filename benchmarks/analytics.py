"""Analytics benchmark: a seeded BG/NBD transaction generator, end-to-end reports from a CSV, and the
BG/NBD fit on a CDNOW-sized sample.

    .venv/bin/python benchmarks/analytics.py                      # 1,000,000 customers, ~10,000,000 rows
    .venv/bin/python benchmarks/analytics.py --customers 100000   # a quick run
    .venv/bin/python benchmarks/analytics.py --fit-only           # only the 2,357-customer fit timing

Prints a Markdown table for docs/benchmarks.md. The CSV goes to a temporary directory and is deleted.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from loyalty.analytics import models
from loyalty.analytics.clv import ClvOptions, clv_report
from loyalty.analytics.cohorts import cohorts_report
from loyalty.analytics.lifecycle import lifecycle_report
from loyalty.analytics.loader import load_csv
from loyalty.analytics.pareto import pareto_report
from loyalty.analytics.rfm import rfm_report

START = date(2024, 1, 1)
WEEKS = 104  # two years of trading


def generate(customers: int, seed: int, r: float = 3.3, alpha: float = 12.0, a: float = 0.8,
             b: float = 6.0) -> pl.DataFrame:
    """BG/NBD purchases without a loop: per customer, the repeat count x and last time t_x are drawn
    exactly (see tests/analytics/simulate.py), and given them the other x - 1 repeat purchases of a
    Poisson process are uniform on [0, t_x]. Rates are per week; spends are Gamma-Gamma."""
    rng = np.random.default_rng(seed)
    first = rng.uniform(0, WEEKS * 0.75, customers)
    T = WEEKS - first
    lam = rng.gamma(r, 1.0 / alpha, customers)
    p = rng.beta(a, b, customers)
    arrivals = rng.poisson(lam * T)
    x = np.minimum(arrivals, rng.geometric(p))
    t_x = np.where(x > 0, T * rng.beta(np.maximum(x, 1), np.maximum(arrivals - x + 1, 1)), 0.0)
    counts = 1 + x  # the first purchase, then x repeats
    who = np.repeat(np.arange(customers), counts)
    # Offsets: 0 for the first purchase, t_x for the last repeat, uniform on [0, t_x] in between.
    position = np.arange(who.size) - np.repeat(np.cumsum(counts) - counts, counts)
    offset = rng.uniform(0, 1, who.size) * t_x[who]
    offset = np.where(position == 0, 0.0, np.where(position == counts[who] - 1, t_x[who], offset))
    day = np.floor((first[who] + offset) * 7).astype(np.int64)
    nu = rng.gamma(3.74, 1.0 / 15.44, customers)
    amount = np.maximum(np.round(rng.gamma(6.25, 1.0 / nu[who]) * 1000), 1000).astype(np.int64)
    return pl.DataFrame({"customer": who + 1, "days": day, "amount": amount,
                         "store": rng.integers(1, 10, who.size)}).select(
        "customer", date=pl.lit(START) + pl.duration(days=pl.col("days")), amount="amount",
        store=pl.format("S{}", pl.col("store")))


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(label: str, work: Callable[[], Any], results: list[tuple[str, float, float]]) -> Any:
    started = time.perf_counter()
    value = work()
    elapsed = time.perf_counter() - started
    results.append((label, elapsed, rss_mb()))
    print(f"  {label:<42} {elapsed:7.2f} s   peak RSS {rss_mb():7.0f} MB", file=sys.stderr)
    return value


def cli_run(path: Path, out: Path) -> tuple[float, float]:
    """The CLI as an analyst runs it: a fresh process, CSV in, CSV out; wall time and its own peak RSS
    (GNU time's %M: getrusage on children would report the forking parent's high-water mark)."""
    command = [str(Path(sys.executable).with_name("loyalty")), "analytics", "clv", "--transactions", str(path),
               "--out", str(out), "--limit", "3"]
    started = time.perf_counter()
    done = subprocess.run(["/usr/bin/time", "-f", "%M", *command], check=True, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - started
    peak = int(done.stderr.strip().splitlines()[-1]) / 1024
    print(f"  {'CLI: loyalty analytics clv (own process)':<42} {elapsed:7.2f} s   peak RSS {peak:7.0f} MB",
          file=sys.stderr)
    return elapsed, peak


def end_to_end(customers: int, seed: int) -> None:
    load_before = f"{os.getloadavg()[0]:.2f}"
    results: list[tuple[str, float, float]] = []
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "transactions.csv"
        frame = timed("generate (not counted)", lambda: generate(customers, seed), [])
        rows = frame.height
        frame.write_csv(path)
        size = path.stat().st_size / 1e6
        del frame
        print(f"{customers:,} customers, {rows:,} transactions, {size:,.0f} MB CSV", file=sys.stderr)
        started = time.perf_counter()
        data = timed("load CSV (parse, check, convert)", lambda: load_csv(path), results)
        rfm = timed("rfm", lambda: rfm_report(data), results)
        timed("pareto", lambda: pareto_report(data), results)
        clv = timed("clv: BG/NBD + Gamma-Gamma fit and scoring", lambda: clv_report(data, ClvOptions()), results)
        timed("cohorts", lambda: cohorts_report(data), results)
        timed("lifecycle (stages now and 30 days ago)", lambda: lifecycle_report(data), results)
        total = time.perf_counter() - started
        scored = rfm.table.height
        # Free the in-process frames before the CLI runs, so its memory is its own.
        data.transactions, data.summaries, rfm = data.transactions.clear(), {}, None
        cli = cli_run(path, Path(folder) / "clv.csv")
    print("\n| step | seconds | peak RSS (MB) |\n|---|---:|---:|")
    for label, seconds, rss in results:
        print(f"| {label} | {seconds:.2f} | {rss:,.0f} |")
    print(f"| **total, end to end** | **{total:.2f}** | **{rss_mb():,.0f}** |")
    print(f"| `loyalty analytics clv --transactions FILE --out clv.csv` (own process) | {cli[0]:.2f} | {cli[1]:,.0f} |")
    print(f"\nload average before/after: {load_before} / {os.getloadavg()[0]:.2f}")
    print(f"\n{customers:,} customers, {rows:,} transactions ({size:,.0f} MB CSV); "
          f"{scored:,} customers scored; BG/NBD {clv.summary['bgnbd']}, "
          f"Gamma-Gamma {clv.summary['gamma_gamma']}")


def cdnow_fit(seed: int, repeats: int = 30) -> None:
    """2,357 customers, CDNOW's published parameters, first purchases in the first 12 weeks of a
    39-week calibration period, times at daily resolution (as in the CDNOW sample)."""
    rng = np.random.default_rng(seed)
    n = 2357
    T = np.floor(rng.uniform(0, 84, n)) / 7
    T = 39.0 - T
    lam = rng.gamma(0.243, 1.0 / 4.414, n)
    p = rng.beta(0.793, 2.426, n)
    arrivals = rng.poisson(lam * T)
    x = np.minimum(arrivals, rng.geometric(p)).astype(np.float64)
    t_x = np.where(x > 0, np.floor(T * rng.beta(np.maximum(x, 1), np.maximum(arrivals - x + 1, 1)) * 7) / 7, 0.0)
    timings, fit = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        fit = models.fit_bgnbd(x, t_x, T)
        timings.append(time.perf_counter() - started)
    assert fit is not None
    rows = np.unique(np.column_stack([x, t_x, T]), axis=0).shape[0]
    print(f"\nBG/NBD fit, 2,357 customers ({rows:,} distinct (x, t_x, T) rows), {repeats} runs: "
          f"median {1000 * statistics.median(timings):.1f} ms, min {1000 * min(timings):.1f} ms, "
          f"max {1000 * max(timings):.1f} ms; {fit.iterations} iterations; estimates "
          + ", ".join(f"{k}={v:.3f}" for k, v in fit.params.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=20261123)
    parser.add_argument("--fit-only", action="store_true")
    args = parser.parse_args()
    print(f"Python {platform.python_version()}, {os.cpu_count()} CPUs, polars {pl.__version__}, "
          f"numpy {np.__version__}", file=sys.stderr)
    cdnow_fit(args.seed)
    if not args.fit_only:
        end_to_end(args.customers, args.seed)


if __name__ == "__main__":
    main()
