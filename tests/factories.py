"""Factory functions with keyword defaults; each commits so the code under test sees the rows."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from loyalty.auth.service import create_key
from loyalty.customers.schemas import CustomerCreate
from loyalty.customers.service import create_customer
from loyalty.models import Customer, Store
from loyalty.stores.service import StoreIn, create_store
from loyalty.transactions.schemas import PurchaseIn
from loyalty.transactions.service import record_purchase

_phones = itertools.count(1)
_pos_ids = itertools.count(1)


def make_store(session: Session, id: str = "HN01", kind: str = "retail", name: str | None = None) -> Store:
    store = session.get(Store, id)
    if store is None:
        store = create_store(session, StoreIn(id=id, name=name or f"Store {id}", kind=kind, city="Hà Nội"))
        session.commit()
    return store


def next_phone() -> str:
    return f"091{next(_phones):07d}"


def make_customer(session: Session, *, phone: str | None = None, **fields: object) -> Customer:
    data = CustomerCreate.model_validate({"phone": phone or next_phone(), "name": "Nguyễn Văn An", **fields})
    customer = create_customer(session, data)
    session.commit()
    return customer


def make_key(session: Session, role: str = "admin", store_id: str | None = None) -> str:
    _, plaintext = create_key(session, role=role, store_id=store_id, name=f"test-{role}")
    session.commit()
    return plaintext


def auth(key: str, idempotency_key: str | None = None) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {key}"}
    if idempotency_key:
        headers["Idempotency-Key"] = idempotency_key
    return headers


def purchase_body(customer_id: int | None, amount: int, *, store_id: str = "HN01", pos_id: str | None = None,
                  occurred_at: datetime | None = None, **extra: object) -> dict[str, object]:
    return {
        "store_id": store_id, "transaction_id": pos_id or f"POS-{next(_pos_ids)}", "customer_id": customer_id,
        "occurred_at": (occurred_at or datetime.now(UTC)).isoformat(), "amount": amount, "currency": "VND",
        **extra,
    }


def make_purchase(session: Session, customer_id: int | None, amount: int, **extra: object) -> int:
    """Records a purchase through the service and returns the points it earned."""
    result = record_purchase(session, PurchaseIn.model_validate(purchase_body(customer_id, amount, **extra)),
                             actor="test")
    session.commit()
    return result.body.points_earned


def make_staff(session: Session, *, role: str = "agent", stores: list[str] | None = None,
               email: str | None = None, name: str | None = None, password: str | None = "correct horse 42") -> int:
    """A staff member (web login with `password` unless None); returns their id."""
    from loyalty.service.schemas import StaffIn
    from loyalty.service.staff import create_staff
    from loyalty.timeutil import utcnow
    from loyalty.web.auth import set_password

    email = email or f"{role}{next(_phones)}@shop.vn"
    member = create_staff(session, StaffIn(name=name or f"{role.title()} {email.split('@')[0]}", email=email,
                                           role=role, stores=stores or []))
    if password is not None:
        set_password(session, email, password, utcnow())
    session.commit()
    return member.id
