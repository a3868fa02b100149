"""A real server (loyalty.server, as `loyalty serve` runs it) in a subprocess on a free loopback port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class LiveServer:
    """One uvicorn process serving create_app() against `database_url`; stop() ends it."""

    database_url: str
    log_path: Path
    workers: int = 1
    port: int = 0
    process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path.exists() else ""

    def start(self, timeout: float = 30.0, tries: int = 3) -> LiveServer:
        for _ in range(tries):
            self.port = free_port()
            env = {**os.environ, "LOYALTY_DATABASE_URL": self.database_url, "PYTHONUNBUFFERED": "1"}
            command = [
                sys.executable, "-m", "loyalty.server", "--factory", "loyalty.app:create_app",
                "--host", HOST, "--port", str(self.port), "--workers", str(self.workers),
                "--no-access-log", "--log-level", "warning", "--timeout-graceful-shutdown", "5",
            ]
            with self.log_path.open("ab") as log:
                self.process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
            if self._wait_healthy(timeout):
                return self
            self.stop()  # most likely the port was taken between free_port() and bind: try another
        raise RuntimeError(f"the server did not start; its log:\n{self.log()}")

    def _wait_healthy(self, timeout: float) -> bool:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            try:
                if httpx.get(f"{self.base_url}/v1/health", timeout=1.0).status_code == 200:
                    return True
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        return False

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self.process = None
