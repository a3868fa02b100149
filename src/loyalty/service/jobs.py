"""The service desk's scheduled work, run by `loyalty jobs run`: SLA breaches (and survey invitations)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy.orm import Session

from loyalty.service import surveys, tickets


def jobs(now: datetime) -> list[tuple[str, str, Callable[[Session], int]]]:
    return [
        ("invite buyers to surveys", "invitations", lambda s: surveys.trigger_after_purchase(s, now)),
        ("mark SLA breaches", "tickets", lambda s: tickets.mark_breaches(s, now)),
    ]
