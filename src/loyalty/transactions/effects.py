"""What a recorded sale or return triggers beyond its earn points.

A sale may upgrade a tier (L4), stamp cards (L5), give bonuses (L6), reward a referrer (L13) and
reach goals (L10). Each feature adds its step to `after_purchase` / `after_return`; all of them run
inside the sale's own database transaction, so a failure rolls the sale back with them, and an
idempotent replay never runs them twice (the sale is only written once). What a step gives the
member for the receipt is returned as `InstantReward`s; they are stored with the sale so a replayed
request prints the same receipt.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from loyalty.bonuses import service as bonuses
from loyalty.bulk import insert_rows
from loyalty.goals import service as goals
from loyalty.models import TransactionInstantReward
from loyalty.models.rewards import Voucher
from loyalty.programs.service import ActiveProgram
from loyalty.stamps import service as stamps
from loyalty.stamps.repository import OpenCard
from loyalty.tiers import service as tiers
from loyalty.transactions.hotpath import NOT_NOTED, NotNoted
from loyalty.transactions.schemas import InstantRewardOut, Line


@dataclass(frozen=True, slots=True)
class Sale:
    """A member's sale as written: what every after-purchase step may look at."""

    transaction_id: int
    pos_transaction_id: str
    store_id: str
    store_kind: str
    customer_id: int
    occurred_at: datetime
    amount: int
    lines: Sequence[Line]
    points_earned: int
    actor: str
    now: datetime


@dataclass(frozen=True, slots=True)
class Returned:
    """A return as written, with the purchase it takes back from."""

    return_id: int
    purchase_id: int
    customer_id: int
    store_id: str
    occurred_at: datetime
    amount: int
    lines: Sequence[Line]
    actor: str
    now: datetime


@dataclass(frozen=True, slots=True)
class InstantReward:
    kind: str  # points | voucher | badge
    source: str
    name: str
    points: int = 0
    voucher_id: int | None = None
    voucher_code: str | None = None  # known when the voucher was just granted: the receipt needs no query


def acts_on_purchases(program: ActiveProgram) -> bool:
    """Whether `after_purchase` may do anything for this program's sales (the steps it checks)."""
    definition = program.definition
    return (definition.tiers is not None or bool(definition.stamp_cards) or definition.bonuses is not None
            or definition.referrals is not None or bool(definition.goals))


def after_purchase(session: Session, program: ActiveProgram, sale: Sale,
                   tier_noted: tuple[str, int] | NotNoted | None = NOT_NOTED,
                   stamped: tuple[dict[str, int], list[OpenCard]] | None = None) -> list[InstantReward]:
    """Runs every feature's step for a newly written sale, in a fixed order, and stores what it gave.
    `tier_noted`, `stamped`: the tier metric and the stamps as the sale's own statement stored them
    (hotpath.SaleWritten)."""
    given: list[InstantReward] = []
    if program.definition.tiers is not None:
        # Upgrade as soon as the threshold is crossed (never down: that waits for the review).
        tiers.on_purchase(session, program, sale.customer_id, sale.occurred_at, actor=sale.actor,
                          noted=tier_noted)
    if program.definition.stamp_cards:
        # Stamp cards (L5): decided in Python from the lines (no query when no card counts); a card
        # completed by this sale issues its reward's voucher, printed on the receipt.
        given += [InstantReward("voucher", r.source, r.name, voucher_id=r.voucher_id, voucher_code=r.voucher_code)
                  for r in stamps.on_purchase(session, program, sale, stamped)]
    if program.definition.bonuses is not None or program.definition.referrals is not None:
        # First-purchase, birthday and instant bonuses (L6); the referrer's reward and the welcome (L13).
        given += bonuses.on_purchase(session, program, sale)
    if program.definition.goals:
        # Badges (and their points) for the goals this sale reaches, once per member and goal; no query
        # when the sale can move none of them.
        given += goals.on_purchase(session, program, sale)
    if given:
        _store(session, sale.transaction_id, given)
    return given


def after_return(session: Session, program: ActiveProgram, returned: Returned) -> None:
    """Runs every feature's step for a newly written return (stamps taken back, goal progress)."""
    if program.definition.stamp_cards:
        # Stamp cards (L5): the returned lines' stamps come off the member's card (see stamps/service.py).
        stamps.on_return(session, program, returned)
    # Goals: nothing to do. Badges stay once earned; progress is computed net of returns when read.


def _store(session: Session, transaction_id: int, given: list[InstantReward]) -> None:
    insert_rows(session, TransactionInstantReward, [
        {"transaction_id": transaction_id, "reward_no": n, "kind": r.kind, "source": r.source, "name": r.name,
         "points": r.points, "voucher_id": r.voucher_id}
        for n, r in enumerate(given, start=1)
    ])


def rewards_out(session: Session, given: list[InstantReward]) -> list[InstantRewardOut]:
    """The receipt lines for what a sale gave (voucher codes read in one query)."""
    if not given:
        return []
    codes = {r.voucher_id: r.voucher_code for r in given if r.voucher_id is not None and r.voucher_code is not None}
    ids = [r.voucher_id for r in given if r.voucher_id is not None and r.voucher_id not in codes]
    if ids:
        rows = session.execute(select(Voucher.id, Voucher.code).where(Voucher.id.in_(ids)))
        codes |= {id_: code for id_, code in rows}
    return [InstantRewardOut(kind=r.kind, source=r.source, name=r.name, points=r.points,
                             voucher_code=codes.get(r.voucher_id) if r.voucher_id is not None else None)
            for r in given]


def stored_rewards(session: Session, transaction_id: int) -> list[InstantRewardOut]:
    """What a sale gave, as first answered (for replays)."""
    rows = session.execute(
        select(TransactionInstantReward.kind, TransactionInstantReward.source, TransactionInstantReward.name,
               TransactionInstantReward.points, TransactionInstantReward.voucher_id)
        .where(TransactionInstantReward.transaction_id == transaction_id)
        .order_by(TransactionInstantReward.reward_no)).all()
    return rewards_out(session, [InstantReward(kind, source, name, points, voucher_id)
                                 for kind, source, name, points, voucher_id in rows])
