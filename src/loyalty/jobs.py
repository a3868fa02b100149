"""Scheduled work: lapse old holds, release pending points, expire due points and vouchers, forget old keys.

Each job is its own transaction, committed at the job's boundary; each is idempotent, so
running `loyalty jobs run` twice (or from two machines) changes nothing the second time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, delete
from sqlalchemy.orm import Session

from loyalty.db import run_in_transaction
from loyalty.goals import service as goals
from loyalty.ledger import service as ledger
from loyalty.models import IdempotencyRecord
from loyalty.rewards import service as rewards
from loyalty.service import jobs as service_jobs
from loyalty.tiers import service as tiers


@dataclass(frozen=True, slots=True)
class JobResult:
    name: str
    count: int
    unit: str


def purge_idempotency_keys(session: Session, now: datetime, retention_hours: int) -> int:
    result = session.execute(delete(IdempotencyRecord).where(
        IdempotencyRecord.created_at < now - timedelta(hours=retention_hours)))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def run_jobs(engine: Engine, now: datetime, *, retention_hours: int = 48) -> list[JobResult]:
    jobs: list[tuple[str, str, Callable[[Session], int]]] = [
        ("lapse holds", "holds", lambda s: ledger.lapse_holds(s, now)),
        ("release pending points", "points", lambda s: ledger.release_pending(s, now)),
        ("expire points", "points", lambda s: ledger.expire_due(s, now)),
        ("expire vouchers", "vouchers", lambda s: rewards.expire_vouchers(s, now)),
        *service_jobs.jobs(now),
        ("review tiers", "members", lambda s: tiers.review(s, now)),
        ("award goals", "badges", lambda s: goals.evaluate_all(s, now)),
        ("purge idempotency keys", "keys", lambda s: purge_idempotency_keys(s, now, retention_hours)),
    ]
    return [JobResult(name, run_in_transaction(engine, work), unit) for name, unit, work in jobs]
