"""Finding customers by what staff know: part of a name, a phone number, an e-mail or a card."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from loyalty.customers.identities import guess_identity
from loyalty.errors import LoyaltyError, ValidationFailed
from loyalty.models import Customer, CustomerIdentity

MAX_RESULTS = 50


@dataclass(frozen=True, slots=True)
class Found:
    id: int
    name: str | None
    city: str | None
    enrolled_at: datetime
    phone: str | None
    email: str | None
    cards: list[str]


def search_customers(session: Session, query: str, *, limit: int = MAX_RESULTS) -> list[Found]:
    """Exact matches on an identity (phone, e-mail, card: normalised as on enrolment) or a prefix of
    a phone or card, then names containing the text (case-insensitive); two or three indexed queries."""
    text = query.strip()
    if len(text) < 2 and not text.isdigit():  # a customer number may be one digit
        raise ValidationFailed("type at least 2 characters of a name, phone, e-mail or card", field="q")
    if len(text) > 200:
        raise ValidationFailed("a search has at most 200 characters", field="q")
    ids: list[int] = []
    if text.isdigit() and len(text) < 9:
        ids.extend(session.scalars(select(Customer.id).where(Customer.id == int(text))))
    try:
        kind, value = guess_identity(text)
    except (LoyaltyError, ValueError):
        kind, value = "", ""
    if kind:
        ids.extend(session.scalars(
            select(CustomerIdentity.customer_id)
            .where(CustomerIdentity.kind == kind, CustomerIdentity.namespace == "",
                   or_(CustomerIdentity.value == value, CustomerIdentity.value.startswith(value, autoescape=True)))
            .order_by(CustomerIdentity.value).limit(limit)))
    if not any(ch.isdigit() for ch in text) and "@" not in text:
        pattern = "%" + text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        ids.extend(session.scalars(select(Customer.id).where(func.lower(Customer.name).like(pattern, escape="\\"))
                                   .order_by(Customer.name, Customer.id).limit(limit)))
    ids = list(dict.fromkeys(ids))[:limit]
    if not ids:
        return []
    customers = {c.id: c for c in session.scalars(select(Customer).where(Customer.id.in_(ids)))}
    identities: dict[int, list[CustomerIdentity]] = {}
    for identity in session.scalars(select(CustomerIdentity).where(CustomerIdentity.customer_id.in_(ids))):
        identities.setdefault(identity.customer_id, []).append(identity)
    found = []
    for customer_id in ids:
        customer = customers[customer_id]
        own = identities.get(customer_id, [])
        found.append(Found(customer.id, customer.name, customer.city, customer.enrolled_at,
                           next((i.value for i in own if i.kind == "phone"), None),
                           next((i.value for i in own if i.kind == "email"), None),
                           [i.value for i in own if i.kind == "card"]))
    return found
