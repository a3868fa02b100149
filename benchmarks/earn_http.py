"""Earn through HTTP: purchases/s and latency of a real server, beside its no-op /v1/health rate.

    .venv/bin/python benchmarks/earn_http.py                       # SQLite file in a temp directory
    .venv/bin/python benchmarks/earn_http.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/bench

Creates the database afresh (a PostgreSQL database is dropped and re-created: its name must contain
"bench"), migrates it, adds a retail store, 10,000 members and a store API key, starts uvicorn on
127.0.0.1 and drives it with wrk (C, event-driven, keep-alive; a Lua script makes every purchase
body unique), 32 connections by default. Phases, each bounded in time: warm-up (then ANALYZE on
PostgreSQL), GET /v1/health, POST /v1/transactions, optionally a paced purchase phase (`--pace RATE`:
latency below saturation) and a profiled one (py-spy on one worker). Then `ledger verify`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, insert, select, text
from sqlalchemy.engine import make_url

from loyalty.auth.service import create_key
from loyalty.db import make_engine, session_factory
from loyalty.ledger.verify import verify
from loyalty.migrations.runner import upgrade_to_head
from loyalty.models import Customer, CustomerIdentity, MemberBalance, Transaction
from loyalty.models.tiers import MemberTier
from loyalty.programs.service import DEFAULT_PROGRAM_FILE, apply_program, load_program_file
from loyalty.referrals.service import give_codes
from loyalty.stores.service import StoreIn, create_store

HERE = Path(__file__).resolve().parent
LUA = HERE / "earn_http.lua"
HOST = "127.0.0.1"
STORE_ID = "BENCH01"
TARGET_RATE = 1200
TARGET_P99_MS = 50.0
TARGET_SHARE = 0.40


# --- database -------------------------------------------------------------------------------

def fresh_database(url: str, workdir: Path) -> str:
    """A new empty database: a new SQLite file, or a dropped and re-created PostgreSQL database."""
    if url.startswith("sqlite"):
        path = Path(make_url(url).database or workdir / "earn.db")
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{path}"
    parsed = make_url(url)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    name = parsed.database or ""
    if "bench" not in name:
        sys.exit(f"refusing to drop database {name!r}: a benchmark database's name must contain 'bench'")
    admin = make_engine(parsed.set(database="postgres").render_as_string(hide_password=False))
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return parsed.render_as_string(hide_password=False)


@dataclass
class Fixture:
    token: str
    min_customer: int
    max_customer: int
    database: str | None = None  # PostgreSQL database name, to find its backends' CPU use


def populate(url: str, members: int, program_file: Path = DEFAULT_PROGRAM_FILE) -> Fixture:
    """The program (default: the articles'), a retail store, `members` members (bulk insert) and a store key.
    Under a program with tiers every member starts with a base-tier row, as in a business that has
    run the program for a while (otherwise the measured phase pays for first-time tier rows)."""
    engine = make_engine(url)
    now = datetime.now(UTC)
    with session_factory(engine)() as session:
        definition, source = load_program_file(program_file)
        apply_program(session, definition, source, actor="benchmark", effective_from=datetime(2000, 1, 1, tzinfo=UTC))
        create_store(session, StoreIn(id=STORE_ID, name="Benchmark store", kind="retail", city="Hà Nội"))
        session.execute(insert(Customer), [
            {"name": f"Thành viên {i}", "enrolled_store_id": STORE_ID, "enrolled_at": now, "created_at": now,
             "updated_at": now, "consent_email": False, "consent_sms": False, "consent_zalo": False,
             "consent_phone": False}
            for i in range(members)
        ])
        low, high, count = session.execute(select(func.min(Customer.id), func.max(Customer.id), func.count())).one()
        assert count == members and high - low + 1 == members, (low, high, count)
        session.execute(insert(CustomerIdentity), [
            {"customer_id": cid, "kind": "phone", "namespace": "", "value": f"+8491{cid:07d}", "created_at": now}
            for cid in range(low, high + 1)
        ])
        session.execute(insert(MemberBalance), [
            {"customer_id": cid, "available": 0, "pending": 0, "held": 0, "owed": 0, "earned_total": 0}
            for cid in range(low, high + 1)
        ])
        give_codes(session, list(range(low, high + 1)), now)  # as every enrolment path does
        if definition.tiers is not None:
            session.execute(insert(MemberTier), [
                {"customer_id": cid, "tier": definition.tiers.levels[0].code, "since": now, "qualified_value": 0}
                for cid in range(low, high + 1)
            ])
        _, token = create_key(session, role="store", store_id=STORE_ID, name="benchmark POS")
        session.commit()
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
    database = engine.url.database if engine.dialect.name == "postgresql" else None
    engine.dispose()
    return Fixture(token, low, high, database)


def analyze(url: str) -> None:
    """ANALYZE on PostgreSQL, as autovacuum does in a running business: the fixture's VACUUM ANALYZE
    ran with no sales yet, and with statistics saying `transactions` is empty the planner chose
    sequential scans for the foreign-key checks of every row a sale writes — each reading the whole,
    growing table (pg_stat_user_tables: ~22 scans of `transactions` per sale under the 50-rule program)."""
    engine = make_engine(url)
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("ANALYZE"))
    engine.dispose()


def verify_database(url: str) -> dict[str, Any]:
    engine = make_engine(url)
    with session_factory(engine)() as session:
        results = verify(session)
        purchases = session.scalar(select(func.count()).select_from(Transaction)) or 0
        session.rollback()
    engine.dispose()
    return {"ok": all(r.ok for r in results), "purchases_recorded": int(purchases),
            "failed_checks": {r.name: r.violations for r in results if not r.ok}}


# --- server ---------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def server(url: str, workers: int, log_path: Path, app: str = "loyalty.app:create_app",
           ) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = free_port()
    env = {**os.environ, "LOYALTY_DATABASE_URL": url}
    # loyalty.server, as `loyalty serve`: one listening socket per worker (SO_REUSEPORT).
    command = [sys.executable, "-m", "loyalty.server", "--factory", app, "--host", HOST,
               "--port", str(port), "--workers", str(workers), "--no-access-log", "--log-level", "warning",
               "--backlog", "4096"]
    with log_path.open("ab") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://{HOST}:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the server did not start; see {log_path}")
            try:
                if httpx.get(f"{base}/v1/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        # With several workers each must have started: wait until every child answers health.
        deadline = time.monotonic() + 60
        while len(worker_pids(process.pid, workers)) < workers and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1.0)
        yield base, process
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def worker_pids(pid: int, workers: int) -> list[int]:
    """uvicorn serves in the process itself (1 worker) or in spawned children (not its resource tracker)."""
    if workers == 1:
        return [pid]
    try:
        children = [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []
    workers_found = []
    for child in children:
        try:
            if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
                workers_found.append(child)
        except OSError:
            continue
    return workers_found


def cpu_ticks(pids: list[int]) -> dict[int, int]:
    """utime + stime of each process, in clock ticks."""
    ticks = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks[pid] = int(fields[11]) + int(fields[12])
    return ticks


def postgres_pids(database: str | None) -> list[int]:
    """Backends serving `database` (their process title names it), not other users of the server."""
    if not database:
        return []
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                title = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if title.startswith("postgres: ") and f" {database} " in title:
                pids.append(int(entry.name))
    return pids


def machine_busy_ticks() -> int:
    """Busy CPU ticks of the whole machine (all processes, ours or not)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields[:8]) - idle


@dataclass
class CpuMeter:
    """CPU used during a phase, as a share of the whole machine (1.0 = every core busy all along)."""

    server_pids: list[int]
    database: str | None = None
    started: float = 0.0
    server: dict[int, int] = field(default_factory=dict)
    postgres: dict[int, int] = field(default_factory=dict)
    busy: int = 0
    children: float = 0.0

    def start(self) -> None:
        self.server, self.postgres = cpu_ticks(self.server_pids), cpu_ticks(postgres_pids(self.database))
        self.busy, self.children = machine_busy_ticks(), self._children()
        self.started = time.monotonic()

    @staticmethod
    def _children() -> float:
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        return usage.ru_utime + usage.ru_stime

    def stop(self) -> dict[str, float]:
        wall = time.monotonic() - self.started
        tick, cores = os.sysconf("SC_CLK_TCK"), os.cpu_count() or 1
        server_now, postgres_now = cpu_ticks(self.server_pids), cpu_ticks(postgres_pids(self.database))
        server = sum(t - self.server.get(pid, 0) for pid, t in server_now.items())
        # Backends started during the phase count from zero; ones that ended are lost (few: a pool).
        postgres = sum(t - self.postgres.get(pid, 0) for pid, t in postgres_now.items())
        busy = machine_busy_ticks() - self.busy
        load = self._children() - self.children  # wrk, reaped by subprocess.run

        def share(seconds: float) -> float:
            return round(max(0.0, seconds) / (wall * cores), 3)

        return {"server": share(server / tick), "postgres": share(postgres / tick), "wrk": share(load),
                "machine": share(busy / tick), "server_seconds": round(server / tick, 2),
                "postgres_seconds": round(postgres / tick, 2)}


# --- load -----------------------------------------------------------------------------------

@dataclass
class Phase:
    name: str
    requests: int
    seconds: float
    rate: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    ok: int
    errors: int
    statuses: dict[str, int]
    socket_errors: dict[str, int]
    cpu: dict[str, float] = field(default_factory=dict)
    server_cpu_ms_per_request: float = 0.0
    postgres_cpu_ms_per_request: float = 0.0


def run_wrk(base: str, mode: str, fixture: Fixture, seconds: float, connections: int, threads: int,
            tag: str, server_pids: list[int], timeout_s: int = 10, idempotency: bool = True,
            lines: bool = False, pace_ms: float = 0.0, name: str | None = None) -> Phase:
    """One bounded wrk run (`seconds` long, requests time out after `timeout_s`); with `pace_ms`
    each connection waits about that long between a response and its next request."""
    occurred_at = datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", f"--timeout={timeout_s}s",
               "-s", str(LUA), base, "--", mode, fixture.token, STORE_ID, str(fixture.min_customer),
               str(fixture.max_customer), occurred_at, tag, "yes" if idempotency else "no",
               "yes" if lines else "no", str(round(pace_ms))]
    meter = CpuMeter(server_pids, fixture.database)
    meter.start()
    completed = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60, check=False)
    cpu = meter.stop()
    line = next((x for x in completed.stdout.splitlines() if x.startswith("WRK_JSON ")), None)
    if completed.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({completed.returncode}): {completed.stdout}\n{completed.stderr}")
    data = json.loads(line.removeprefix("WRK_JSON "))
    duration = data["duration_us"] / 1e6
    statuses = {str(k): int(v) for k, v in data["statuses"].items()}
    expected = "201" if mode == "purchase" else "200"
    ok = statuses.get(expected, 0)
    socket_errors = {k: int(v) for k, v in data["socket_errors"].items()}
    lat = data["latency_us"]
    return Phase(
        name=name or mode, requests=data["requests"], seconds=round(duration, 2), rate=round(ok / duration, 1),
        p50_ms=lat["p50"] / 1000, p90_ms=lat["p90"] / 1000, p99_ms=lat["p99"] / 1000, max_ms=lat["max"] / 1000,
        ok=ok, errors=data["requests"] - ok + sum(socket_errors.values()), statuses=statuses,
        socket_errors=socket_errors, cpu=cpu,
        server_cpu_ms_per_request=round(cpu["server_seconds"] * 1000 / max(1, data["requests"]), 2),
        postgres_cpu_ms_per_request=round(cpu["postgres_seconds"] * 1000 / max(1, data["requests"]), 2),
    )


def purchase_latency_ms(phase: Phase) -> float:
    """A paced request's latency, roughly: the unloaded p50 is well below the saturated one."""
    return min(phase.p50_ms, 10.0)


def profile_worker(pid: int, seconds: int, out: Path) -> subprocess.Popen[bytes]:
    py_spy = Path(sys.executable).with_name("py-spy")
    if not py_spy.exists():
        found = shutil.which("py-spy")
        if not found:
            sys.exit("--profile needs py-spy: .venv/bin/pip install py-spy")
        py_spy = Path(found)
    # --gil samples only the thread holding the GIL: the Python work that bounds one worker process.
    return subprocess.Popen([str(py_spy), "record", "--pid", str(pid), "--duration", str(seconds), "--rate", "200",
                             "--format", "raw", "--output", str(out), "--nonblocking", "--gil"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)


# --- report ---------------------------------------------------------------------------------

def machine() -> dict[str, Any]:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = re.search(r"model name\s*:\s*(.+)", cpuinfo)
    return {"nproc": os.cpu_count(), "cpu": model.group(1).strip() if model else platform.processor(),
            "python": platform.python_version(), "platform": platform.platform(),
            "loadavg_before": os.getloadavg()[0]}


def code_version() -> str:
    """The commit measured, and whether the work tree had changes on top of it."""
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                cwd=HERE, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "src"], capture_output=True, text=True,
                               cwd=HERE, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{commit}{' + uncommitted changes in src/' if dirty else ''}"


def database_version(url: str) -> str:
    engine = make_engine(url)
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            version = str(conn.execute(text("SHOW server_version")).scalar())
            result = f"PostgreSQL {version}"
        else:
            result = f"SQLite {conn.execute(text('select sqlite_version()')).scalar()}"
    engine.dispose()
    return result


def markdown(result: dict[str, Any]) -> str:
    health, purchase = result["phases"]["health"], result["phases"]["purchase"]
    rows = [
        "| endpoint | requests/s | p50 ms | p99 ms | max ms | requests | errors | server CPU ms/req "
        "| PostgreSQL CPU ms/req | CPU server / PG / wrk / all |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    shown = [("GET /v1/health (no-op)", health), ("POST /v1/transactions (earn)", purchase)]
    if "paced_purchase" in result["phases"]:
        shown.append(("POST /v1/transactions, paced", result["phases"]["paced_purchase"]))
    for label, phase in shown:
        cpu = phase["cpu"]
        rows.append(f"| {label} | {phase['rate']:,.0f} | {phase['p50_ms']:.1f} | {phase['p99_ms']:.1f} | "
                    f"{phase['max_ms']:.0f} | {phase['requests']:,} | {phase['errors']} | "
                    f"{phase['server_cpu_ms_per_request']:.2f} | {phase['postgres_cpu_ms_per_request']:.2f} | "
                    f"{cpu['server']:.0%} / {cpu['postgres']:.0%} / {cpu['wrk']:.0%} / {cpu['machine']:.0%} |")
    for label, phase in (("health", health), ("purchase", purchase)):
        if phase["errors"]:
            rows.append(f"\n{label}: {phase['errors']} errors; statuses {phase['statuses']}, "
                        f"socket errors {phase['socket_errors']}")
    share = result["earn_share_of_noop"]
    targets = result["targets"]
    rows += [
        "",
        f"{result['database']}, {result['workers']} uvicorn worker(s), {result['connections']} keep-alive connections, "
        f"{result['duration_s']} s per phase after a {result['warmup_s']} s warm-up; "
        f"Idempotency-Key {'sent' if result['idempotency_key'] else 'not sent'}; earn = {share:.0%} of no-op; "
        f"load average before the run {result['machine']['loadavg_before']:.2f}.",
        f"Targets: >= {TARGET_RATE:,} purchases/s: {'met' if targets['rate'] else 'NOT met'}; "
        f"p99 < {TARGET_P99_MS:.0f} ms: {'met' if targets['p99'] else 'NOT met'}; "
        f">= {TARGET_SHARE:.0%} of no-op: {'met' if targets['share'] else 'NOT met'}. "
        f"Ledger verify: {'all ok' if result['verify']['ok'] else 'FAILED ' + str(result['verify'])}, "
        f"{result['verify']['purchases_recorded']:,} purchases recorded, {result['purchases_answered_201']:,} "
        "answered 201 to wrk (the difference: requests in flight when wrk stopped).",
    ]
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default=None, help="default: a SQLite file in a temporary directory")
    parser.add_argument("--members", type=int, default=10_000)
    parser.add_argument("--app", default="loyalty.app:create_app", help="uvicorn app factory (for experiments)")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes (default 2)")
    parser.add_argument("--connections", type=int, default=32, help="concurrent keep-alive clients (>= 32)")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--duration", type=int, default=20, help="seconds per measured phase")
    parser.add_argument("--warmup", type=int, default=5, help="seconds of purchases before measuring")
    parser.add_argument("--profile", type=Path, default=None,
                        help="after measuring, run one more purchase phase with py-spy on a worker; "
                             "collapsed stacks go to this file")
    parser.add_argument("--no-idempotency-key", dest="idempotency", action="store_false",
                        help="send purchases without an Idempotency-Key header (only the POS id dedupes)")
    parser.add_argument("--program", type=Path, default=DEFAULT_PROGRAM_FILE,
                        help="program file to apply (default: the articles' program); e.g. the one "
                             "`benchmarks/rules.py --write-program` writes, for the rule engine's cost")
    parser.add_argument("--lines", action="store_true",
                        help="a third of the purchases carry 1-3 lines (sku, category), as in benchmarks/rules.py")
    parser.add_argument("--pace", type=float, default=None, metavar="RATE",
                        help="one more purchase phase at about RATE purchases/s (below saturation): its "
                             "p50/p99 are the service's latency, where p99 at saturation is mostly queueing")
    parser.add_argument("--json", type=Path, default=None, help="write the results as JSON here")
    parser.add_argument("--keep", action="store_true", help="keep the temporary SQLite directory")
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed: apt-get install -y wrk")
    if args.connections < 32:
        sys.exit("use at least 32 connections")

    workdir = Path(tempfile.mkdtemp(prefix="loyalty-earn-"))
    try:
        info = machine()
        url = fresh_database(args.database_url or f"sqlite:///{workdir / 'earn.db'}", workdir)
        started = time.monotonic()
        upgrade_to_head(url)
        fixture = populate(url, args.members, args.program)
        setup_s = round(time.monotonic() - started, 1)
        tag = uuid.uuid4().hex[:8]
        phases: dict[str, Phase] = {}
        with server(url, args.workers, workdir / "server.log", args.app) as (base, process):
            pids = worker_pids(process.pid, args.workers)
            every = [process.pid, *pids] if args.workers > 1 else pids
            phases["warmup_purchase"] = run_wrk(base, "purchase", fixture, args.warmup, args.connections,
                                                args.threads, f"{tag}w", every, idempotency=args.idempotency,
                                                lines=args.lines)
            analyze(url)
            phases["warmup_health"] = run_wrk(base, "health", fixture, max(2, args.warmup // 2), args.connections,
                                              args.threads, tag, every)
            phases["health"] = run_wrk(base, "health", fixture, args.duration, args.connections, args.threads,
                                       tag, every)
            phases["purchase"] = run_wrk(base, "purchase", fixture, args.duration, args.connections, args.threads,
                                         f"{tag}m", every, idempotency=args.idempotency, lines=args.lines)
            if args.pace:
                # Each connection's cycle is its latency plus the pause: pause = connections / rate.
                pace_ms = max(1.0, args.connections / args.pace * 1000 - purchase_latency_ms(phases["purchase"]))
                phases["paced_purchase"] = run_wrk(base, "purchase", fixture, args.duration, args.connections,
                                                   args.threads, f"{tag}r", every, idempotency=args.idempotency,
                                                   lines=args.lines, pace_ms=pace_ms, name="paced_purchase")
            if args.profile:
                spy = profile_worker(pids[0], max(5, args.duration - 2), args.profile)
                time.sleep(0.5)
                phases["profiled_purchase"] = run_wrk(base, "purchase", fixture, args.duration, args.connections,
                                                      args.threads, f"{tag}p", every, idempotency=args.idempotency,
                                                      lines=args.lines)
                spy.wait(timeout=120)
        server_log = (workdir / "server.log").read_text(errors="replace")
        health, purchase = phases["health"], phases["purchase"]
        share = purchase.rate / health.rate if health.rate else 0.0
        result: dict[str, Any] = {
            "benchmark": "earn_http", "when": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": info, "code": code_version(), "database": database_version(url),
            "database_url": make_url(url).render_as_string(),
            "members": args.members, "app": args.app, "workers": args.workers, "connections": args.connections,
            "wrk_threads": args.threads, "idempotency_key": args.idempotency,
            "program": str(args.program), "lines": args.lines,
            "duration_s": args.duration, "warmup_s": args.warmup, "setup_s": setup_s,
            "phases": {name: asdict(phase) for name, phase in phases.items()},
            "earn_share_of_noop": round(share, 3),
            "targets": {"rate": purchase.rate >= TARGET_RATE, "p99": purchase.p99_ms < TARGET_P99_MS,
                        "share": share >= TARGET_SHARE},
            "verify": verify_database(url),
            # wrk stops with requests in flight; the server may still commit those, so recorded >= answered.
            "purchases_answered_201": sum(p.ok for p in phases.values() if p.name.endswith("purchase")),
            "server_log_tail": server_log[-2000:],
        }
        print(markdown(result))
        if args.json:
            args.json.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        return 0 if result["verify"]["ok"] and not purchase.errors and not health.errors else 1
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
