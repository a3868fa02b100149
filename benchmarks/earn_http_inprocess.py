"""What a purchase costs the server beyond the no-op endpoint: CPU ms per request, in-process.

    .venv/bin/python benchmarks/earn_http_inprocess.py                  # SQLite file in a temp directory
    .venv/bin/python benchmarks/earn_http_inprocess.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/bench

The same database set-up as benchmarks/earn_http.py (fresh database, the program, a retail store,
10,000 members, a store key), then the ASGI app is called directly — no network, no HTTP parsing,
no client — one request at a time: rounds of GET /v1/health and POST /v1/transactions alternate,
and each reports CPU per request: this process's (time.process_time: the event loop and the
thread pool) and, on PostgreSQL, the benchmark database's backends' (from /proc). The purchase's
cost beyond the no-op is the figure to compare between code versions: unlike requests/s through
HTTP it hardly depends on what else the machine runs. Then `ledger verify`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from earn_http import (  # the sibling benchmark's set-up (this directory is on sys.path)
    STORE_ID,
    Fixture,
    analyze,
    code_version,
    cpu_ticks,
    database_version,
    fresh_database,
    populate,
    postgres_pids,
    verify_database,
)

from loyalty.app import create_app
from loyalty.db import make_engine
from loyalty.migrations.runner import upgrade_to_head
from loyalty.programs.service import DEFAULT_PROGRAM_FILE

CATEGORIES = ["dairy", "bakery", "ice cream", "drinks", "snacks"]


class Client:
    """Calls an ASGI app directly, as uvicorn would, one request at a time."""

    def __init__(self, app: Any, fixture: Fixture, *, idempotency: bool, lines: bool) -> None:
        self.app, self.fixture, self.idempotency, self.lines = app, fixture, idempotency, lines
        self.tag, self.counter = uuid.uuid4().hex[:8], 0
        self.occurred_at = datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
        self.random = random.Random(7)

    async def call(self, method: str, path: str, headers: list[tuple[bytes, bytes]], body: bytes = b"") -> int:
        scope = {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": "1.1",
                 "method": method, "scheme": "http", "path": path, "raw_path": path.encode(), "root_path": "",
                 "query_string": b"", "headers": headers, "client": ("127.0.0.1", 40000),
                 "server": ("127.0.0.1", 8000), "state": {}}
        delivered = False
        status = 0

        async def receive() -> dict[str, Any]:
            nonlocal delivered
            if delivered:
                return {"type": "http.disconnect"}
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]

        await self.app(scope, receive, send)
        return status

    def purchase(self) -> tuple[list[tuple[bytes, bytes]], bytes]:
        """A body like earn_http.lua's: a random member and amount, a new POS id, lines on every third."""
        self.counter += 1
        pos_id = f"{self.tag}-{self.counter}"
        headers = [(b"authorization", f"Bearer {self.fixture.token}".encode()),
                   (b"content-type", b"application/json")]
        if self.idempotency:
            headers.append((b"idempotency-key", pos_id.encode()))
        rnd = self.random
        body: dict[str, Any] = {"store_id": STORE_ID, "transaction_id": pos_id,
                                "customer_id": rnd.randint(self.fixture.min_customer, self.fixture.max_customer),
                                "occurred_at": self.occurred_at, "amount": rnd.randint(50_000, 2_000_000),
                                "currency": "VND"}
        if self.lines and self.counter % 3 == 0:
            lines: list[dict[str, Any]] = [
                {"sku": f"SKU-{rnd.randint(0, 199):03d}", "category": rnd.choice(CATEGORIES),
                 "quantity": rnd.randint(1, 3), "unit_price": rnd.choice([25_000, 60_000, 120_000])}
                for _ in range(rnd.randint(1, 3))]
            body["lines"] = lines
            body["amount"] = sum(x["quantity"] * x["unit_price"] for x in lines)
        return headers, json.dumps(body).encode()

    async def round(self, mode: str, requests: int) -> dict[str, float]:
        health_headers = [(b"authorization", f"Bearer {self.fixture.token}".encode())]
        statuses: dict[int, int] = {}
        backends = postgres_pids(self.fixture.database)
        pg_before = cpu_ticks(backends)
        cpu_before, wall_before = time.process_time(), time.perf_counter()
        for _ in range(requests):
            if mode == "health":
                status = await self.call("GET", "/v1/health", health_headers)
            else:
                headers, body = self.purchase()
                status = await self.call("POST", "/v1/transactions", headers, body)
            statuses[status] = statuses.get(status, 0) + 1
        cpu, wall = time.process_time() - cpu_before, time.perf_counter() - wall_before
        pg_after = cpu_ticks(postgres_pids(self.fixture.database))
        pg = sum(t - pg_before.get(pid, 0) for pid, t in pg_after.items()) / os.sysconf("SC_CLK_TCK")
        expected = 200 if mode == "health" else 201
        if statuses.get(expected, 0) != requests:
            raise RuntimeError(f"{mode}: statuses {statuses}")
        return {"server_cpu_ms": cpu * 1000 / requests, "postgres_cpu_ms": pg * 1000 / requests,
                "wall_ms": wall * 1000 / requests}


async def measure(app: Any, fixture: Fixture, args: argparse.Namespace) -> dict[str, list[dict[str, float]]]:
    client = Client(app, fixture, idempotency=args.idempotency, lines=args.lines)
    await client.round("purchase", args.warmup)  # caches, prepared statements, pools
    analyze(args.url)  # statistics with sales in them, as in earn_http.py
    await client.round("health", args.warmup)
    rounds: dict[str, list[dict[str, float]]] = {"health": [], "purchase": []}
    for _ in range(args.rounds):
        rounds["health"].append(await client.round("health", args.requests))
        rounds["purchase"].append(await client.round("purchase", args.requests))
    return rounds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default=None, help="default: a SQLite file in a temporary directory")
    parser.add_argument("--members", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=2000, help="requests per round")
    parser.add_argument("--rounds", type=int, default=3, help="health/purchase rounds, alternated")
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--program", type=Path, default=DEFAULT_PROGRAM_FILE)
    parser.add_argument("--lines", action="store_true", help="a third of the purchases carry 1-3 lines")
    parser.add_argument("--no-idempotency-key", dest="idempotency", action="store_false")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="loyalty-earn-inproc-"))
    try:
        url = fresh_database(args.database_url or f"sqlite:///{workdir / 'earn.db'}", workdir)
        upgrade_to_head(url)
        fixture = populate(url, args.members, args.program)
        args.url = url
        engine = make_engine(url)
        app = create_app(engine)
        rounds = asyncio.run(measure(app, fixture, args))
        engine.dispose()

        def summary(key: str, mode: str) -> list[float]:
            return [round(r[key], 3) for r in rounds[mode]]

        beyond = [round(p["server_cpu_ms"] - h["server_cpu_ms"], 3)
                  for h, p in zip(rounds["health"], rounds["purchase"], strict=True)]
        result = {
            "benchmark": "earn_http_inprocess", "when": datetime.now(UTC).isoformat(timespec="seconds"),
            "code": code_version(), "database": database_version(url), "program": str(args.program),
            "lines": args.lines, "idempotency_key": args.idempotency, "requests_per_round": args.requests,
            "loadavg": os.getloadavg()[0],
            "health_server_cpu_ms": summary("server_cpu_ms", "health"),
            "purchase_server_cpu_ms": summary("server_cpu_ms", "purchase"),
            "purchase_beyond_noop_server_cpu_ms": beyond,
            "purchase_postgres_cpu_ms": summary("postgres_cpu_ms", "purchase"),
            "purchase_wall_ms": summary("wall_ms", "purchase"),
            "verify": verify_database(url),
        }
        print(json.dumps(result, indent=2))
        print(f"\nPurchase beyond no-op: {statistics.median(beyond):.2f} ms server CPU (rounds {beyond}); "
              f"PostgreSQL {statistics.median(result['purchase_postgres_cpu_ms']):.2f} ms per purchase; "
              f"{result['database']}; ledger verify {'ok' if result['verify']['ok'] else 'FAILED'}")
        if args.json:
            args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        return 0 if result["verify"]["ok"] else 1
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
