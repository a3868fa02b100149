"""Customer and identity queries shared by the API, the CLI and the importers."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from loyalty.models import Customer, CustomerIdentity


def identities_of(session: Session, customer_id: int) -> list[CustomerIdentity]:
    return list(session.scalars(select(CustomerIdentity).where(CustomerIdentity.customer_id == customer_id)
                                .order_by(CustomerIdentity.id)))


def find_by_identity(session: Session, kind: str, value: str, namespace: str = "") -> int | None:
    return session.scalar(select(CustomerIdentity.customer_id).where(
        CustomerIdentity.kind == kind, CustomerIdentity.namespace == namespace, CustomerIdentity.value == value))


def find_many(
    session: Session, keys: Iterable[tuple[str, str, str]], chunk: int = 500,
) -> dict[tuple[str, str, str], int]:
    """Resolves (kind, namespace, value) keys in a few queries, for imports."""
    keys = list(dict.fromkeys(keys))
    found: dict[tuple[str, str, str], int] = {}
    for start in range(0, len(keys), chunk):
        part = keys[start:start + chunk]
        rows = session.execute(
            select(CustomerIdentity.kind, CustomerIdentity.namespace, CustomerIdentity.value,
                   CustomerIdentity.customer_id)
            .where(tuple_(CustomerIdentity.kind, CustomerIdentity.namespace, CustomerIdentity.value).in_(part))
        ).all()
        found.update({(k, n, v): cid for k, n, v, cid in rows})
    return found


def get_customer(session: Session, customer_id: int) -> Customer | None:
    return session.get(Customer, customer_id)
