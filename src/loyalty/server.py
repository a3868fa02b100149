"""Serving the API from several worker processes, each listening on its own socket.

uvicorn's `--workers` shares one listening socket among its workers, and an asyncio server accepts
every waiting connection (up to its backlog) each time it wakes. A burst of new connections — a
POS fleet reconnecting after a network blip, a proxy opening its pool — lands on whichever worker
wakes first, and keep-alive keeps it there: measured with 32 clients and 2 workers, all 32 went to
one worker and the other core idled (no-op endpoint 2,591 requests/s with one core idle; 6,582/s
as below). Here each worker binds its own socket with SO_REUSEPORT, and Linux spreads new
connections across the sockets by their address hash.

The supervisor (this process) serves nothing: it starts the workers, starts a new one when one
dies, and stops them all on SIGINT/SIGTERM. A worker that dies within `startup_seconds` (5) of its
start (an import error, a bad database URL) is not restarted: the server stops with exit code 1,
since restarting would fail the same way forever.

One worker, or a system without Linux's SO_REUSEPORT balancing, is served by uvicorn as before.
"""

from __future__ import annotations

import argparse
import gc
import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from types import FrameType

logger = logging.getLogger("loyalty.server")

_STARTUP_SECONDS = 5.0  # a worker that dies sooner than this failed to start
_STOP_SECONDS = 30.0  # how long stopping workers may finish their requests before they are killed


class ServerError(Exception):
    """The server cannot start (its message says why)."""


@dataclass(frozen=True, slots=True)
class ServeOptions:
    app: str  # "module:attribute"
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    factory: bool = False  # `app` names a function that makes the app
    log_level: str = "warning"
    access_log: bool = True
    backlog: int = 2048
    startup_seconds: float = _STARTUP_SECONDS  # a worker dying sooner failed to start: no restart
    graceful_seconds: int | None = None  # how long a stopping worker waits for open requests (None: for all)


def reuse_port_balances() -> bool:
    """Whether sockets sharing a port with SO_REUSEPORT get the new connections in turn (Linux);
    elsewhere (macOS, the BSDs) one of them gets all, which would be no better than one socket."""
    return sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")


def serve(options: ServeOptions) -> int:
    """Serves until stopped; answers the exit code."""
    if options.workers < 1:
        raise ServerError(f"workers must be at least 1, not {options.workers}")
    if options.workers == 1:
        _uvicorn(options, None)
        return 0
    if not reuse_port_balances():
        import uvicorn

        uvicorn.run(options.app, host=options.host, port=options.port, workers=options.workers,
                    factory=options.factory, log_level=options.log_level, access_log=options.access_log,
                    backlog=options.backlog, timeout_graceful_shutdown=options.graceful_seconds)
        return 0
    _check_address_free(options.host, options.port)
    return _Supervisor(options).run()


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def _check_address_free(host: str, port: int) -> None:
    """A socket without SO_REUSEPORT cannot bind where another server listens, with or without it:
    so a second `loyalty serve` on a busy port fails here instead of silently sharing it."""
    probe = socket.socket(_family(host), socket.SOCK_STREAM)
    try:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a closed server's TIME_WAIT is fine
        probe.bind((host, port))
    except OSError as exc:
        raise ServerError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    finally:
        probe.close()


def _worker(options: ServeOptions) -> None:
    """One worker process: its own socket on the shared port, and uvicorn serving the app on it."""
    sock = socket.socket(_family(options.host), socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((options.host, options.port))
    threading.Thread(target=_stop_when_orphaned, args=(os.getppid(),), daemon=True).start()
    _uvicorn(options, sock)


def _stop_when_orphaned(supervisor: int) -> None:
    """A worker whose supervisor was killed (SIGKILL, the OOM killer) stops too, gracefully, rather
    than serving on unsupervised."""
    while os.getppid() == supervisor:
        time.sleep(1.0)
    os.kill(os.getpid(), signal.SIGTERM)


def _uvicorn(options: ServeOptions, sock: socket.socket | None) -> None:
    """uvicorn serving the app in this process, on `sock` or on the options' address."""
    import uvicorn

    config = uvicorn.Config(options.app, host=options.host, port=options.port, factory=options.factory,
                            log_level=options.log_level, access_log=options.access_log, backlog=options.backlog,
                            timeout_graceful_shutdown=options.graceful_seconds)
    config.load()
    # The app's objects (routes, models, metadata) live as long as the process: kept out of the
    # collector's full passes, which otherwise walk all of them while requests wait (measured: the
    # no-op endpoint's p99 went from 116 to 8 ms, a purchase's from 173 to 60 ms).
    gc.collect()
    gc.freeze()
    uvicorn.Server(config).run(sockets=None if sock is None else [sock])  # stops gracefully on SIGINT/SIGTERM


class _Supervisor:
    def __init__(self, options: ServeOptions) -> None:
        self.options = options
        self.context = multiprocessing.get_context("spawn")  # a fresh interpreter: no state forked mid-use
        self.workers: dict[int, tuple[BaseProcess, float]] = {}  # slot → (process, started at)
        self.stopping = False

    def _start(self, slot: int) -> None:
        process = self.context.Process(target=_worker, args=(self.options,), name=f"loyalty-worker-{slot}")
        process.start()
        self.workers[slot] = (process, time.monotonic())

    def _stop_signal(self, signum: int, frame: FrameType | None) -> None:
        self.stopping = True

    def run(self) -> int:
        previous = {sig: signal.signal(sig, self._stop_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        failed = False
        try:
            for slot in range(self.options.workers):
                self._start(slot)
            logger.info("serving on %s:%d with %d workers (pid %d)", self.options.host, self.options.port,
                        self.options.workers, os.getpid())
            while not self.stopping:
                sentinels = {process.sentinel: slot for slot, (process, _) in self.workers.items()}
                for sentinel in multiprocessing.connection.wait(list(sentinels), timeout=0.5):
                    slot = sentinels[sentinel]  # type: ignore[index]
                    process, started = self.workers[slot]
                    process.join()
                    if self.stopping:
                        break
                    if time.monotonic() - started < self.options.startup_seconds:
                        # Printed, not logged: `loyalty serve` configures no logging, and this must be seen.
                        print(f"loyalty serve: a worker failed to start (exit code {process.exitcode}); "
                              "see its error above", file=sys.stderr)
                        failed = self.stopping = True
                        break
                    logger.warning("worker %d (pid %s) exited with code %s; starting a new one",
                                   slot, process.pid, process.exitcode)
                    self._start(slot)
        finally:
            self._stop_all()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return 1 if failed else 0

    def _stop_all(self) -> None:
        for process, _ in self.workers.values():
            if process.is_alive() and process.pid is not None:
                os.kill(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + _STOP_SECONDS
        for process, _ in self.workers.values():
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
                process.join()


def main(argv: list[str] | None = None) -> int:
    """`python -m loyalty.server APP [options]`: the same server for benchmarks and experiments."""
    parser = argparse.ArgumentParser(prog="python -m loyalty.server", description=__doc__.splitlines()[0])
    parser.add_argument("app", help="module:attribute of the ASGI app (or of a function making it, with --factory)")
    parser.add_argument("--factory", action="store_true")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--log-level", default="warning")
    parser.add_argument("--no-access-log", dest="access_log", action="store_false")
    parser.add_argument("--backlog", type=int, default=2048)
    parser.add_argument("--timeout-graceful-shutdown", type=int, default=None, dest="graceful_seconds")
    parser.add_argument("--startup-seconds", type=float, default=_STARTUP_SECONDS,
                        help="a worker that dies sooner after its start is not restarted: the server stops")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s: %(message)s")
    try:
        return serve(ServeOptions(app=args.app, host=args.host, port=args.port, workers=args.workers,
                                  factory=args.factory, log_level=args.log_level, access_log=args.access_log,
                                  backlog=args.backlog, startup_seconds=args.startup_seconds,
                                  graceful_seconds=args.graceful_seconds))
    except ServerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
