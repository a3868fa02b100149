"""Why customers leave: a reason captured when a member cancels or is won back (S4)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from loyalty.customers.service import require_customer
from loyalty.models.service import Departure
from loyalty.service.schemas import DepartureIn, DepartureOut


def record(session: Session, customer_id: int, data: DepartureIn, actor: str, now: datetime) -> DepartureOut:
    require_customer(session, customer_id)
    row = Departure(customer_id=customer_id, kind=data.kind, reason=data.reason, note=data.note.strip(), actor=actor,
                    created_at=now)
    session.add(row)
    session.flush()
    return DepartureOut(id=row.id, customer_id=customer_id, kind=row.kind, reason=row.reason, note=row.note,
                        created_at=row.created_at)
