"""The member summary's two catalogue reads: usable vouchers, and the best next reward."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, case, func, or_, select
from sqlalchemy.orm import Session

from loyalty.models.rewards import Reward, Voucher


@dataclass(frozen=True, slots=True)
class UsableVoucher:
    code: str
    reward_name: str
    kind: str
    amount: int | None
    percent: int | None
    sku: str | None
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class RewardPick:
    code: str
    name: str
    points_cost: int


def usable_vouchers(session: Session, customer_id: int, now: datetime) -> list[UsableVoucher]:
    """Issued and not past their time (the expiry job may not have run yet), soonest expiry first."""
    return [UsableVoucher(*row) for row in session.execute(
        select(Voucher.code, Reward.name, Voucher.kind, Voucher.amount, Voucher.percent, Voucher.sku,
               Voucher.expires_at)
        .join(Reward, Reward.id == Voucher.reward_id)
        .where(Voucher.customer_id == customer_id, Voucher.status == "issued", Voucher.expires_at > now)
        .order_by(Voucher.expires_at, Voucher.id)
    )]


def best_next_reward(
    session: Session, customer_id: int, *, available: int, tiers: Collection[str] | None, now: datetime,
    excluded: Collection[str] = (),
) -> RewardPick | None:
    """The reward the member could redeem next: the dearest affordable one, else the cheapest.

    `tiers` are the min_tier values the member meets (None: only rewards with no min_tier).
    Rewards the member already holds as many of as allowed are left out, as issuing would refuse them.
    """
    held = (select(func.count()).select_from(Voucher)
            .where(Voucher.customer_id == customer_id, Voucher.reward_id == Reward.id, Voucher.status != "cancelled")
            .scalar_subquery())
    tier_ok: ColumnElement[bool] = Reward.min_tier.is_(None)
    if tiers:
        tier_ok = or_(tier_ok, Reward.min_tier.in_(list(tiers)))
    affordable = Reward.points_cost <= available
    row = session.execute(
        select(Reward.code, Reward.name, Reward.points_cost)
        .where(
            Reward.active.is_(True),
            or_(Reward.stock.is_(None), Reward.stock > 0),
            or_(Reward.valid_from.is_(None), Reward.valid_from <= now),
            or_(Reward.valid_until.is_(None), Reward.valid_until > now),
            tier_ok,
            Reward.code.not_in(list(excluded)),  # kept by higher tiers' reward_access
            or_(Reward.per_member_limit.is_(None), held < Reward.per_member_limit),
        )
        # Affordable first, dearest of those; otherwise the cheapest. Code breaks ties, for a stable answer.
        .order_by(case((affordable, 0), else_=1), case((affordable, -Reward.points_cost), else_=Reward.points_cost),
                  Reward.code)
        .limit(1)
    ).one_or_none()
    return None if row is None else RewardPick(row.code, row.name, int(row.points_cost))
