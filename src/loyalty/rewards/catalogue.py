"""The program file's `rewards:` list, synced into the rewards table when a program is applied."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from loyalty.models.rewards import Reward
from loyalty.rewards.schemas import RewardDefinition


def sync_catalogue(
    session: Session, rewards: Sequence[RewardDefinition] | None, previous: Sequence[RewardDefinition] | None,
    now: datetime,
) -> None:
    """Upserts the file's rewards by code; rewards the file no longer lists stop being offered.

    A file without `rewards:` leaves the catalogue alone (it is then managed through the API).
    Stock is set when a reward is created and afterwards only when the number differs from the
    previously applied file's (or that file did not list the reward, as when a seasonal reward
    comes back): re-applying a file to change an earn rate must not refill stock that members
    have already taken. Nothing is ever deleted: vouchers point at it.
    """
    if rewards is None:
        return
    before = {r.code: r.stock for r in previous or ()}
    existing = {r.code: r for r in session.scalars(select(Reward).where(Reward.code.in_([r.code for r in rewards])))}
    for definition in rewards:
        fields = definition.model_dump()
        reward = existing.get(definition.code)
        if reward is None:
            session.add(Reward(**fields, active=True, created_at=now, updated_at=now))
            continue
        if definition.code in before and before[definition.code] == definition.stock:
            del fields["stock"]
        for name, value in fields.items():
            setattr(reward, name, value)
        reward.active, reward.updated_at = True, now
    session.execute(update(Reward).where(Reward.code.not_in([r.code for r in rewards]), Reward.active.is_(True))
                    .values(active=False, updated_at=now).execution_options(synchronize_session=False))
    session.flush()
