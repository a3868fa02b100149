"""A program with tiers, and purchases written straight into the transactions table for tier tests."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from loyalty.models import Transaction
from loyalty.models.tiers import MemberTier, TierHistory
from loyalty.programs.schemas import parse_program
from loyalty.programs.service import ActiveProgram, apply_program, default_program, program_at

VN = ZoneInfo("Asia/Ho_Chi_Minh")
LEVELS = {
    "spend": [0, 5_000_000, 20_000_000],
    "points_earned": [0, 500, 2_000],
    "purchases": [0, 5, 10],
}
_pos = itertools.count(1)


def vn(year: int, month: int, day: int, hour: int = 12, minute: int = 0) -> datetime:
    """A business time in Hà Nội, as UTC."""
    return datetime(year, month, day, hour, minute, tzinfo=VN).astimezone(UTC)


def tier_section(metric: str = "spend", window: Any = "calendar_year", every: str = "year", grace_days: int = 30,
                 thresholds: list[int] | None = None) -> dict[str, Any]:
    member, silver, gold = thresholds or LEVELS[metric]
    return {
        "qualification": {"metric": metric, "window": window, "review": {"every": every, "grace_days": grace_days}},
        "levels": [
            {"code": "MEMBER", "name": "Thành viên", "threshold": member},
            {"code": "SILVER", "name": "Bạc", "threshold": silver,
             "perks": {"earn_multiplier": 1.25, "discount_percent": 3}},
            {"code": "GOLD", "name": "Vàng", "threshold": gold,
             "perks": {"earn_multiplier": "1.5", "discount_percent": 5, "free_shipping": True,
                       "reward_access": ["LOUNGE"]}},
        ],
    }


def program_data(**tiers: Any) -> dict[str, Any]:
    data = default_program().definition.model_dump(mode="json", exclude_none=True)
    data["tiers"] = tier_section(**tiers)
    return data


def use_tiers(session: Session, **tiers: Any) -> ActiveProgram:
    apply_program(session, parse_program(program_data(**tiers)), "test", actor="test",
                  effective_from=datetime(2000, 1, 1, tzinfo=UTC))
    session.commit()
    return program_at(session, datetime(2000, 1, 2, tzinfo=UTC))


def add_purchase(session: Session, customer_id: int, amount: int, at: datetime, *, returned: int = 0,
                 points: int = 0, reversed_points: int = 0, store_id: str = "HN01") -> int:
    """A purchase as record_purchase leaves it (returns net on the purchase row), without the ledger."""
    return int(session.execute(insert(Transaction).values(
        store_id=store_id, pos_transaction_id=f"T-{next(_pos)}", kind="purchase", customer_id=customer_id,
        occurred_at=at, amount=amount, currency="VND", points_earned=points, points_redeemed=0,
        returned_amount=returned, points_reversed=reversed_points, points_restored=0, created_at=at,
    ).returning(Transaction.id)).scalar_one())


def tier_row(session: Session, customer_id: int) -> MemberTier | None:
    session.expire_all()
    return session.get(MemberTier, customer_id)


def history(session: Session, customer_id: int) -> list[tuple[str | None, str, str]]:
    return [(h.from_tier, h.to_tier, h.reason) for h in session.scalars(
        select(TierHistory).where(TierHistory.customer_id == customer_id).order_by(TierHistory.id))]
