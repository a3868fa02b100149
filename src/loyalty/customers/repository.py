"""Customer and identity queries shared by the API, the CLI and the importers."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from loyalty.models import Customer, CustomerIdentity


def identities_of(session: Session, customer_id: int) -> list[CustomerIdentity]:
    return list(session.scalars(select(CustomerIdentity).where(CustomerIdentity.customer_id == customer_id)
                                .order_by(CustomerIdentity.id)))


def find_by_identity(session: Session, kind: str, value: str, namespace: str = "") -> int | None:
    return session.scalar(select(CustomerIdentity.customer_id).where(
        CustomerIdentity.kind == kind, CustomerIdentity.namespace == namespace, CustomerIdentity.value == value))


def find_many(
    session: Session, keys: Iterable[tuple[str, str, str]], chunk: int = 900,
) -> dict[tuple[str, str, str], int]:
    """Resolves (kind, namespace, value) keys in a few indexed queries, for imports."""
    grouped: dict[tuple[str, str], list[str]] = {}
    for kind, namespace, value in dict.fromkeys(keys):
        grouped.setdefault((kind, namespace), []).append(value)
    found: dict[tuple[str, str, str], int] = {}
    for (kind, namespace), values in grouped.items():
        for start in range(0, len(values), chunk):
            # kind = ? AND namespace = ? AND value IN (...) walks the unique index; a row-value
            # IN list did not on PostgreSQL.
            rows = session.execute(
                select(CustomerIdentity.value, CustomerIdentity.customer_id)
                .where(CustomerIdentity.kind == kind, CustomerIdentity.namespace == namespace,
                       CustomerIdentity.value.in_(values[start:start + chunk]))
            ).all()
            found.update({(kind, namespace, value): cid for value, cid in rows})
    return found


def get_customer(session: Session, customer_id: int) -> Customer | None:
    return session.get(Customer, customer_id)
