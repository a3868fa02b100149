"""Long work off the request: a background thread per task, its progress polled by the page (htmx).

Used for the analytics bundle and program simulations. Tasks live in this process (a page polls the
worker that started its task; with several workers, put the analytics behind one or accept a second
computation). A task's result stays for `keep` seconds after it finished.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from loyalty.errors import LoyaltyError

log = logging.getLogger("loyalty.web.tasks")
_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="web-task")
_lock = threading.Lock()
_tasks: dict[str, Task] = {}
_by_key: dict[str, str] = {}


@dataclass
class Task:
    id: str
    key: str
    title: str
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None
    fraction: float = 0.0
    step: str = "waiting to start"
    result: Any = None
    error: str | None = None
    keep: float = 600.0

    @property
    def done(self) -> bool:
        return self.finished is not None

    @property
    def failed(self) -> bool:
        return self.error is not None

    @property
    def elapsed(self) -> float:
        return (self.finished or time.monotonic()) - self.started

    def progress(self, fraction: float, step: str) -> None:
        self.fraction, self.step = max(0.0, min(1.0, fraction)), step


Work = Callable[[Task], Any]


def _run(task: Task, work: Work) -> None:
    try:
        task.progress(0.01, "starting")
        task.result = work(task)
        task.progress(1.0, "done")
    except LoyaltyError as exc:
        task.error = exc.detail
    except Exception:  # the page shows that it failed; the log has why
        log.exception("background task %s failed", task.title)
        task.error = "an unexpected error occurred; it was logged"
    finally:
        task.finished = time.monotonic()


def _expired(task: Task, now: float) -> bool:
    return task.finished is not None and now - task.finished > task.keep


def start(key: str, title: str, work: Work, *, keep: float = 600.0, fresh: bool = False) -> Task:
    """The task for `key`: the running or recently finished one, else a new one running `work`."""
    now = time.monotonic()
    with _lock:
        for old in [t for t in _tasks.values() if _expired(t, now)]:
            _tasks.pop(old.id, None)
            if _by_key.get(old.key) == old.id:
                _by_key.pop(old.key, None)
        existing = _tasks.get(_by_key.get(key, ""))
        if existing is not None and not (fresh and existing.done):
            return existing
        task = Task(secrets.token_urlsafe(9), key, title, keep=keep)
        _tasks[task.id] = task
        _by_key[key] = task.id
    _pool.submit(_run, task, work)
    return task


def find(key: str) -> Task | None:
    with _lock:
        task = _tasks.get(_by_key.get(key, ""))
    return None if task is None or _expired(task, time.monotonic()) else task


def get(task_id: str) -> Task | None:
    with _lock:
        return _tasks.get(task_id)


def clear() -> None:
    """Forgets every task (tests)."""
    with _lock:
        _tasks.clear()
        _by_key.clear()
