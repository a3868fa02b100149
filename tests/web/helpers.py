"""A small business for the staff screens' tests: two stores, one person per role, a customer with points,
and a ticket in each store (HN01's past its first-response deadline)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import update
from sqlalchemy.orm import Session

from loyalty.models.service import Ticket
from loyalty.service.schemas import TicketIn
from loyalty.service.staff import Scope
from loyalty.service.tickets import create_ticket
from loyalty.timeutil import utcnow
from tests.factories import make_customer, make_purchase, make_staff, make_store

ADMIN, MANAGER, AGENT, OTHER_AGENT, READONLY = ("owner@shop.vn", "manager@shop.vn", "agent@shop.vn",
                                                "agent2@shop.vn", "viewer@shop.vn")
ROLE_EMAIL = {"admin": ADMIN, "manager": MANAGER, "agent": AGENT, "readonly": READONLY}


@dataclass(frozen=True)
class Desk:
    customer_id: int
    hn_ticket: int       # HN01, breached (first response late)
    hcm_ticket: int      # HCM01
    agent_id: int


def make_desk(session: Session) -> Desk:
    make_store(session, "HN01")
    make_store(session, "HCM01")
    make_staff(session, role="admin", email=ADMIN, name="Chị Lan (owner)")
    make_staff(session, role="manager", email=MANAGER, stores=["HN01"], name="Anh Minh")
    agent_id = make_staff(session, role="agent", email=AGENT, stores=["HN01"], name="Thu Hà")
    make_staff(session, role="agent", email=OTHER_AGENT, stores=["HCM01"], name="Văn Nam")
    make_staff(session, role="readonly", email=READONLY, name="Kế toán")
    customer = make_customer(session, name="Nguyễn Thị Mai", email="mai@example.vn")
    make_purchase(session, customer.id, 2_000_000, store_id="HN01")
    system = Scope("admin", None, "test", None)
    now = utcnow()
    hn = create_ticket(session, TicketIn(customer_id=customer.id, store_id="HN01", channel="phone", category="points",
                                         subject="Điểm không được cộng", description="Tôi mua hàng hôm qua."),
                       system, now - timedelta(days=2))
    hcm = create_ticket(session, TicketIn(customer_id=customer.id, store_id="HCM01", channel="store",
                                          category="service", subject="Nhân viên chậm", description="Chờ lâu."),
                        system, now)
    session.execute(update(Ticket).where(Ticket.id == hn.id)
                    .values(first_response_due_at=now - timedelta(hours=5), breached_at=now - timedelta(hours=5)))
    session.commit()
    return Desk(customer.id, hn.id, hcm.id, agent_id)


def make_history(session: Session, customers: int = 40, also: tuple[int, ...] = ()) -> None:
    """Enough purchases over the last year for the lifetime-value models to fit (and a few for `also`)."""
    rng = random.Random(7)
    now = datetime.now(UTC)
    for customer_id in also:
        for days in (300, 210, 120, 45):
            make_purchase(session, customer_id, rng.randint(200, 900) * 1000, store_id="HN01",
                          occurred_at=now - timedelta(days=days))
    for i in range(customers):
        customer = make_customer(session, name=f"Khách {i}")
        for _ in range(rng.randint(1, 8)):
            make_purchase(session, customer.id, rng.randint(50, 900) * 1000, store_id="HN01",
                          occurred_at=now - timedelta(days=rng.randint(1, 360), minutes=rng.randint(0, 600)))
