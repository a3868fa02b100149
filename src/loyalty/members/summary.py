"""The member summary: balance, expiring points, tier, usable vouchers and the best next reward in one read."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from loyalty.goals import service as goals
from loyalty.ledger.service import balance_view
from loyalty.members import repository
from loyalty.members.schemas import MemberSummary, NextReward, SummaryBalance, SummaryExpiring, SummaryVoucher
from loyalty.programs.service import program_at
from loyalty.referrals import service as referrals
from loyalty.stamps import service as stamps
from loyalty.tiers import service as tiers
from loyalty.tiers.views import member_tier_out


def member_summary(session: Session, customer_id: int, now: datetime) -> MemberSummary:
    """What a member sees; 404 for an unknown customer (the balance read)."""
    view = balance_view(session, customer_id, now)
    program = program_at(session, now)
    tier_out = None
    eligible: list[str] | None = None
    levels = program.definition.tiers
    if levels is not None:
        progress = tiers.progress(session, program, customer_id, now)
        tier_out = member_tier_out(customer_id, progress)
        # The codes whose min_tier the member meets, as tiers.meets_tier decides it: their level and
        # every level below; a tier the program no longer knows meets only itself.
        rank = levels.rank(progress.tier)
        eligible = [level.code for level in levels.levels[:rank + 1]] if rank >= 0 else [progress.tier]
    vouchers = [
        SummaryVoucher.model_validate({
            "code": v.code, "reward_name": v.reward_name, "kind": v.kind, "expires_at": v.expires_at,
            "value": v.amount if v.amount is not None else v.percent if v.percent is not None else v.sku})
        for v in repository.usable_vouchers(session, customer_id, now)
    ]
    excluded = tiers.access_restricted_above(program, tier_out.tier if tier_out is not None else None) \
        if levels is not None else []
    best = repository.best_next_reward(session, customer_id, available=view.available, tiers=eligible, now=now,
                                       excluded=excluded)
    next_reward = None
    if best is not None:
        missing = max(0, best.points_cost - view.available)
        next_reward = NextReward(code=best.code, name=best.name, points_cost=best.points_cost,
                                 affordable=missing == 0, points_missing=missing)
    badges = goals.earned_badges(session, customer_id)
    goal_progress = goals.goal_progress(session, program, customer_id, now, {b.goal_id for b in badges})
    return MemberSummary(
        customer_id=customer_id,
        balance=SummaryBalance(available=view.available, pending=view.pending, held=view.held, owed=view.owed),
        expiring=SummaryExpiring(within_30_days=view.expiring[30], within_60_days=view.expiring[60],
                                 within_90_days=view.expiring[90]),
        tier=tier_out, vouchers=vouchers, best_next_reward=next_reward,
        stamp_cards=stamps.progress(session, program, customer_id, now),
        badges=badges, next_goal=goal_progress[0] if goal_progress else None,
        advocate=referrals.is_advocate(session, customer_id),
    )
