"""The demo business's rewards: a small catalogue, and vouchers members redeemed, used and cancelled.

Without redemptions the program report's redemption rate and cost of rewards would read zero.
Vouchers go through the rewards service (points spent from the soonest-expiring lots, stock
taken, codes issued), dated over the last six months; the same seed gives the same choices.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from loyalty.db import run_in_transaction
from loyalty.errors import Conflict, InsufficientPoints
from loyalty.models import MemberBalance, Store
from loyalty.models.rewards import Reward
from loyalty.rewards import service as rewards
from loyalty.rewards.schemas import RewardDefinition

CATALOGUE = (
    RewardDefinition(code="VOUCHER50K", name="Phiếu mua hàng 50.000đ", kind="voucher_amount", amount=50_000,
                     points_cost=50, voucher_valid_days=30),
    RewardDefinition(code="VOUCHER200K", name="Phiếu mua hàng 200.000đ", kind="voucher_amount", amount=200_000,
                     points_cost=200, voucher_valid_days=30),
    RewardDefinition(code="GIAM10", name="Giảm 10% một hóa đơn", kind="voucher_percent", percent=10,
                     points_cost=80, voucher_valid_days=14, per_member_limit=2),
    RewardDefinition(code="CAPHE", name="Một ly cà phê sữa đá", kind="free_product", sku="CF-SUADA",
                     points_cost=30, voucher_valid_days=30),
    RewardDefinition(code="FREESHIP", name="Miễn phí giao hàng", kind="free_shipping", points_cost=20,
                     voucher_valid_days=30),
    RewardDefinition(code="TRIAN2026", name="Vé đêm nhạc tri ân khách hàng", kind="experience", points_cost=400,
                     stock=60, voucher_valid_days=60, per_member_limit=1),
)
# (reward, share of redemptions)
MIX = (("VOUCHER50K", 0.32), ("VOUCHER200K", 0.18), ("CAPHE", 0.2), ("FREESHIP", 0.12), ("GIAM10", 0.13),
       ("TRIAN2026", 0.05))


@dataclass(frozen=True, slots=True)
class RewardsSummary:
    rewards: int
    issued: int
    used: int
    cancelled: int

    def row(self) -> tuple[str, str]:
        return ("rewards", f"{self.rewards} rewards, {self.issued:,} vouchers issued, {self.used:,} used, "
                           f"{self.cancelled:,} cancelled")


def build_rewards_data(engine: Engine, *, seed: int, now: datetime, vouchers: int = 1500) -> RewardsSummary:
    return run_in_transaction(engine, lambda session: _build(session, seed=seed, now=now, vouchers=vouchers))


def _build(session: Session, *, seed: int, now: datetime, vouchers: int) -> RewardsSummary:
    rng = np.random.Generator(np.random.PCG64(seed + 11))
    for definition in CATALOGUE:
        if session.scalar(select(Reward.id).where(Reward.code == definition.code)) is None:
            rewards.create_reward(session, definition, now - timedelta(days=200))  # else the program has it
    # Members with points to spend, richest most likely to redeem (as in real programs).
    members = session.execute(select(MemberBalance.customer_id, MemberBalance.available)
                              .where(MemberBalance.available >= 20).order_by(MemberBalance.customer_id)).all()
    stores = list(session.scalars(select(Store.id).where(Store.kind != "online").order_by(Store.id)))
    if not members or not stores:
        return RewardsSummary(len(CATALOGUE), 0, 0, 0)
    weights = np.array([float(points) for _, points in members])
    chosen = rng.choice(len(members), size=vouchers, p=weights / weights.sum())
    codes = rng.choice([code for code, _ in MIX], size=vouchers, p=[share for _, share in MIX])
    # Spread over the last six months, oldest first so the ledger reads in time order.
    ages = np.sort(rng.uniform(1, 180, size=vouchers))[::-1]
    issued = used = cancelled = 0
    for n, (member, code, age) in enumerate(zip(chosen, codes, ages, strict=True)):
        at = now - timedelta(days=float(age))
        try:
            with session.begin_nested():
                voucher = rewards.issue_voucher(session, customer_id=int(members[member][0]),
                                                reward_code=str(code), actor="demo", now=at)
        except (Conflict, InsufficientPoints):
            continue  # not enough points left, a limit reached or sold out: members are refused too
        issued += 1
        fate = rng.random()
        if fate < 0.72:  # most vouchers are used within days at a store
            used_at = min(at + timedelta(days=float(rng.uniform(0.1, 10))), now)
            rewards.redeem_voucher(session, voucher.code, store_id=stores[int(rng.integers(len(stores)))],
                                   reference=f"DEMO-V{n}", now=used_at)
            used += 1
        elif fate < 0.77:
            rewards.cancel_voucher(session, voucher.code, actor="demo",
                                   now=min(at + timedelta(days=float(rng.uniform(0.1, 5))), now))
            cancelled += 1
    rewards.expire_vouchers(session, now)  # the rest were left unused: those past their date expire
    return RewardsSummary(len(CATALOGUE), issued, used, cancelled)
