"""loyalty.server: several workers, each with its own socket, under a supervisor (real processes)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.api.server import HOST, free_port

ROOT = Path(__file__).resolve().parents[1]
LOYALTY = str(Path(sys.executable).parent / "loyalty")  # the installed command
pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="SO_REUSEPORT balancing is Linux's")


def start(app: str, port: int, *extra: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "loyalty.server", app, "--host", HOST, "--port", str(port),
                             "--no-access-log", *extra], cwd=ROOT, env=env or {**os.environ},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)


def wait_answering(url: str, process: subprocess.Popen[str], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()[0]
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise AssertionError(f"{url} did not answer in {timeout} s")


def pids_answering(url: str, connections: int) -> set[int]:
    """One request on each of `connections` new connections."""
    pids = set()
    for _ in range(connections):
        with httpx.Client() as client:
            pids.add(client.get(url).json()["pid"])
    return pids


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except FileNotFoundError:  # reaped between the two looks
        return False


def wait_until(condition: object, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.1)
    return False


@pytest.fixture
def two_workers() -> Iterator[tuple[str, subprocess.Popen[str]]]:
    port = free_port()
    process = start("tests.server_pid_app:app", port, "--workers", "2", "--startup-seconds", "1")
    url = f"http://{HOST}:{port}/pid"
    try:
        wait_answering(url, process)
        # Both workers listen once both answered: new connections reach each (by address hash).
        assert wait_until(lambda: len(pids_answering(url, 16)) == 2)
        yield url, process
    finally:
        stop(process)


def stop(process: subprocess.Popen[str]) -> None:
    """Ends the server and its workers (which hold its output pipe open)."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
    process.communicate(timeout=30)


def test_connections_are_spread_over_the_workers(two_workers: tuple[str, subprocess.Popen[str]]) -> None:
    url, process = two_workers
    # 32 new connections all on one of two workers would happen once in 2**31 by chance.
    pids = pids_answering(url, 32)
    assert len(pids) == 2
    assert process.pid not in pids  # the supervisor serves nothing


def test_a_dead_worker_is_replaced(two_workers: tuple[str, subprocess.Popen[str]]) -> None:
    url, process = two_workers
    first = pids_answering(url, 32)
    time.sleep(1.2)  # past --startup-seconds: a crash now is a crash, not a failed start
    victim = min(first)
    os.kill(victim, signal.SIGKILL)
    assert wait_until(lambda: not alive(victim))
    assert wait_until(lambda: len(pids_answering(url, 16) - {victim}) == 2)
    assert process.poll() is None


def test_sigterm_stops_every_worker(two_workers: tuple[str, subprocess.Popen[str]]) -> None:
    url, process = two_workers
    workers = pids_answering(url, 32)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0
    assert wait_until(lambda: not any(alive(pid) for pid in workers))


def test_a_busy_port_is_refused_with_a_clear_error() -> None:
    with socket.socket() as taken:
        taken.bind((HOST, 0))
        taken.listen()
        port = taken.getsockname()[1]
        process = start("tests.server_pid_app:app", port, "--workers", "2")
        output, _ = process.communicate(timeout=30)
    assert process.returncode == 2
    assert f"cannot listen on {HOST}:{port}" in output


def test_a_worker_that_cannot_start_stops_the_server() -> None:
    process = start("tests.no_such_module:app", free_port(), "--workers", "2")
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 1
    assert "failed to start" in output
    assert "no_such_module" in output  # the worker's own error is shown too


def test_loyalty_serve_with_two_workers(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "LOYALTY_DATABASE_URL": f"sqlite:///{tmp_path / 'serve.db'}"}
    subprocess.run([LOYALTY, "init"], cwd=ROOT, env=env, check=True,
                   capture_output=True)
    process = subprocess.Popen([LOYALTY, "serve", "--port", str(port),
                                "--workers", "2"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        wait_answering(f"http://{HOST}:{port}/v1/health", process)
        assert httpx.get(f"http://{HOST}:{port}/v1/health").json() == {"status": "ok"}
        os.killpg(process.pid, signal.SIGINT)  # Ctrl-C: the terminal signals the whole group
        assert process.wait(timeout=30) == 0
    finally:
        stop(process)


def test_workers_stop_when_the_supervisor_is_killed(two_workers: tuple[str, subprocess.Popen[str]]) -> None:
    url, process = two_workers
    workers = pids_answering(url, 32)
    process.kill()
    process.wait(timeout=10)
    assert wait_until(lambda: not any(alive(pid) for pid in workers))
