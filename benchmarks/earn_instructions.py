"""What a purchase costs the server in machine instructions, counted by valgrind (callgrind).

    .venv/bin/python benchmarks/earn_instructions.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/bench \
        [--program FILE] [--lines] [--purchases 300]

CPU time on this shared VM varies by 30 % or more between runs of the same code (and within one),
so benchmarks/earn_http_inprocess.py cannot tell apart changes of under ~20 %. Instructions do not
depend on what the neighbours do: this runs the same in-process purchases as that benchmark in a
child process under callgrind, with instrumentation switched on only for the measured purchases
(after imports, start-up and a warm-up), and reports instructions per purchase — the figure to
compare between two versions of the code. Only the server process is counted: the database's
own work is not (see earn_http_inprocess.py for PostgreSQL's CPU). Needs valgrind
(`apt-get install -y valgrind`); the child runs ~50x slower while counting.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from earn_http import Fixture, fresh_database, populate, verify_database  # the sibling benchmarks' set-up
from earn_http_inprocess import Client

from loyalty.app import create_app
from loyalty.db import make_engine
from loyalty.migrations.runner import upgrade_to_head
from loyalty.programs.service import DEFAULT_PROGRAM_FILE


def _wait_for(path: Path, process: subprocess.Popen[bytes], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        if process.poll() is not None:
            raise RuntimeError(f"the measured process ended early (exit {process.returncode})")
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {path.name} after {seconds:.0f} s")
        time.sleep(0.2)


def child(args: argparse.Namespace) -> int:
    """Runs under callgrind: warm up, tell the parent, wait, run the measured purchases, tell it again."""
    fixture = Fixture(**json.loads(args.fixture))
    engine = make_engine(args.url)
    client = Client(create_app(engine), fixture, idempotency=True, lines=args.lines)
    signals = Path(args.signals)

    async def run() -> None:
        await client.round("purchase", args.warmup)
        (signals / "ready").touch()
        while not (signals / "go").exists():
            await asyncio.sleep(0.1)
        await client.round("purchase", args.purchases)

    asyncio.run(run())
    (signals / "done").touch()
    while not (signals / "exit").exists():
        time.sleep(0.1)
    engine.dispose()
    return 0


def count(args: argparse.Namespace, url: str, fixture: Fixture, workdir: Path) -> int:
    signals = workdir / "signals"
    signals.mkdir()
    out = workdir / "callgrind.out"
    command = ["valgrind", "--tool=callgrind", "--instr-atstart=no", "--cache-sim=no", f"--callgrind-out-file={out}",
               sys.executable, __file__, "--child", "--url", url, "--signals", str(signals),
               "--fixture", json.dumps(fixture.__dict__), "--purchases", str(args.purchases),
               "--warmup", str(args.warmup)] + (["--lines"] if args.lines else [])
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for(signals / "ready", process, 600)
        pid = str(process.pid)
        subprocess.run(["callgrind_control", "--instr=on", pid], check=True, capture_output=True)
        subprocess.run(["callgrind_control", "--zero", pid], check=True, capture_output=True)
        (signals / "go").touch()
        _wait_for(signals / "done", process, 1800)
        subprocess.run(["callgrind_control", "--dump=measured", pid], check=True, capture_output=True)
        (signals / "exit").touch()
        process.wait(timeout=600)
    finally:
        if process.poll() is None:
            process.kill()
    dumps = sorted(workdir.glob("callgrind.out*"))
    totals = []
    for dump in dumps:  # the dump asked for above, not the one valgrind writes at exit
        text = dump.read_text(encoding="utf-8", errors="replace")
        header, _, _ = text.partition("\nfn=")
        found = re.search(r"^(?:summary|totals):\s+(\d+)", text, re.MULTILINE)
        if "measured" in header and found:
            totals.append(int(found.group(1)))
            if args.keep_dump is not None:
                shutil.copyfile(dump, args.keep_dump)
    if len(totals) != 1:
        raise RuntimeError(f"expected one 'measured' dump, found {len(totals)} in {[d.name for d in dumps]}")
    return totals[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default=None, help="default: a SQLite file in a temporary directory")
    parser.add_argument("--members", type=int, default=2_000)
    parser.add_argument("--purchases", type=int, default=300, help="purchases counted")
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--program", type=Path, default=DEFAULT_PROGRAM_FILE)
    parser.add_argument("--lines", action="store_true", help="a third of the purchases carry 1-3 lines")
    parser.add_argument("--keep-dump", type=Path, default=None, metavar="FILE",
                        help="copy the measured callgrind dump here (for callgrind_annotate)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--signals", help=argparse.SUPPRESS)
    parser.add_argument("--fixture", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is not installed (apt-get install -y valgrind)")
    workdir = Path(tempfile.mkdtemp(prefix="loyalty-earn-instr-"))
    try:
        url = fresh_database(args.database_url or f"sqlite:///{workdir / 'earn.db'}", workdir)
        upgrade_to_head(url)
        fixture = populate(url, args.members, args.program)
        instructions = count(args, url, fixture, workdir)
        verify = verify_database(url)
        per_purchase = instructions / args.purchases
        print(json.dumps({"benchmark": "earn_instructions", "program": str(args.program), "lines": args.lines,
                          "purchases": args.purchases, "instructions": instructions,
                          "instructions_per_purchase": round(per_purchase), "verify": verify}, indent=2))
        print(f"\n{per_purchase / 1e6:.2f} M instructions per purchase (server process, {args.purchases} purchases); "
              f"ledger verify {'ok' if verify['ok'] else 'FAILED'}")
        return 0 if verify["ok"] else 1
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
