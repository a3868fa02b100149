"""Service results as API shapes, shared by the endpoints and the CLI."""

from __future__ import annotations

from loyalty.programs.schemas import TierLevel, TierPerks
from loyalty.programs.service import ActiveProgram
from loyalty.tiers.schemas import LevelOut, MemberTierOut, NextTierOut, OverrideOut, PerksOut, TiersOut
from loyalty.tiers.service import Progress, require_tiers


def perks_out(perks: TierPerks) -> PerksOut:
    return PerksOut(earn_multiplier=str(perks.earn_multiplier), earn_multiplier_percent=perks.earn_multiplier_percent,
                    discount_percent=perks.discount_percent, free_shipping=perks.free_shipping,
                    reward_access=list(perks.reward_access))


def tiers_out(program: ActiveProgram, counts: list[tuple[TierLevel, int]]) -> TiersOut:
    tiers = require_tiers(program)
    window = tiers.qualification.window
    return TiersOut(
        metric=tiers.qualification.metric,
        window="calendar_year" if window.rolling_months is None else f"rolling_{window.rolling_months}_months",
        review_every=tiers.qualification.review.every, grace_days=tiers.qualification.review.grace_days,
        levels=[LevelOut(code=level.code, name=level.name, threshold=level.threshold, perks=perks_out(level.perks),
                         members=members) for level, members in counts],
    )


def member_tier_out(customer_id: int, progress: Progress) -> MemberTierOut:
    nxt = progress.next_tier
    override = None
    if progress.override_tier is not None and progress.override_until is not None:
        override = OverrideOut(tier=progress.override_tier, reason=progress.override_reason or "",
                               until=progress.override_until)
    return MemberTierOut(
        customer_id=customer_id, tier=progress.tier, earned_tier=progress.earned_tier, since=progress.since,
        metric=progress.metric, value=progress.value, window_start=progress.window_start,
        keeps_tier=progress.keeps_tier, next_review=progress.next_review,
        next=NextTierOut(code=nxt.code, name=nxt.name, threshold=nxt.threshold, missing=progress.missing,
                         deadline=progress.deadline) if nxt is not None else None,
        override=override,
    )
