"""A program with goals, and sales recorded through the purchase service so after_purchase runs."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from loyalty.ledger.verify import verify
from loyalty.models import LedgerEntry
from loyalty.models.goals import MemberBadge
from loyalty.programs.schemas import parse_program
from loyalty.programs.service import ActiveProgram, apply_program, default_program, program_at
from loyalty.transactions.schemas import PurchaseIn, PurchaseOut
from loyalty.transactions.service import record_purchase
from tests.factories import purchase_body

VN = ZoneInfo("Asia/Ho_Chi_Minh")
_pos = itertools.count(1)


def vn(year: int, month: int, day: int, hour: int = 12, minute: int = 0) -> datetime:
    """A business time in Hà Nội, as UTC."""
    return datetime(year, month, day, hour, minute, tzinfo=VN).astimezone(UTC)


def goal(id: str, metric: str, target: int, **extra: Any) -> dict[str, Any]:
    return {"id": id, "name": id.title(), "badge": {"name": f"{id.title()} badge"}, "metric": metric,
            "target": target, **extra}


def program_data(goals: list[dict[str, Any]]) -> dict[str, Any]:
    data = default_program().definition.model_dump(mode="json", exclude_none=True)
    data["goals"] = goals
    return data


def use_goals(session: Session, goals: list[dict[str, Any]]) -> ActiveProgram:
    apply_program(session, parse_program(program_data(goals)), "test", actor="test",
                  effective_from=datetime(2000, 1, 1, tzinfo=UTC))
    session.commit()
    return program_at(session, datetime(2000, 1, 2, tzinfo=UTC))


def buy(session: Session, customer_id: int, amount: int, at: datetime | None = None, *, store_id: str = "HN01",
        categories: list[str | None] | None = None, pos_id: str | None = None) -> PurchaseOut:
    """A sale through record_purchase (the API's service), committed; `categories` become one line each."""
    extra: dict[str, Any] = {}
    if categories:
        share, rest = divmod(amount, len(categories))
        extra["lines"] = [{"sku": f"SKU-{n}", "category": category, "quantity": 1,
                           "unit_price": share + (rest if n == 0 else 0)} for n, category in enumerate(categories)]
    body = purchase_body(customer_id, amount, store_id=store_id, occurred_at=at,
                         pos_id=pos_id or f"G-{next(_pos)}", **extra)
    result = record_purchase(session, PurchaseIn.model_validate(body), actor="test")
    session.commit()
    return result.body


def badges(session: Session, customer_id: int) -> list[str]:
    session.rollback()  # a fresh snapshot: other sessions may have committed since
    return sorted(session.scalars(select(MemberBadge.goal_id).where(MemberBadge.customer_id == customer_id)))


def all_badges(session: Session) -> list[tuple[int, str]]:
    session.rollback()
    return [(int(c), str(g)) for c, g in session.execute(
        select(MemberBadge.customer_id, MemberBadge.goal_id).order_by(MemberBadge.customer_id, MemberBadge.goal_id))]


def goal_entries(session: Session) -> list[tuple[str, str]]:
    session.rollback()
    return [(str(s), str(e)) for s, e in session.execute(
        select(LedgerEntry.source_id, LedgerEntry.event).where(LedgerEntry.source_type == "goal")
        .order_by(LedgerEntry.source_id))]


def rewards(body: PurchaseOut) -> list[tuple[str, str, int]]:
    return [(r.kind, r.source, r.points) for r in body.instant_rewards]


def assert_ledger_ok(session: Session) -> None:
    session.rollback()
    failed = [(r.name, r.examples) for r in verify(session) if not r.ok]
    assert failed == []
