"""The service desk's scheduled work, run by `loyalty jobs run`: SLA breaches (and survey invitations)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy.orm import Session

from loyalty.service import tickets


def jobs(now: datetime) -> list[tuple[str, str, Callable[[Session], int]]]:
    return [
        ("mark SLA breaches", "tickets", lambda s: tickets.mark_breaches(s, now)),
    ]
