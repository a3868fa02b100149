"""Reward and voucher queries, and the conditional updates that keep stock and status right under races."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, func, select, update
from sqlalchemy.orm import Session

from loyalty.models.rewards import Reward, Voucher


def _rowcount(result: Any) -> int:
    return int(cast(CursorResult[Any], result).rowcount or 0)


def reward_by_code(session: Session, code: str) -> Reward | None:
    return session.scalar(select(Reward).where(Reward.code == code))


def rewards_by_id(session: Session, ids: Sequence[int]) -> dict[int, Reward]:
    if not ids:
        return {}
    return {r.id: r for r in session.scalars(select(Reward).where(Reward.id.in_(set(ids))))}


def list_rewards(session: Session, *, include_inactive: bool) -> list[Reward]:
    query = select(Reward).order_by(Reward.code)
    if not include_inactive:
        query = query.where(Reward.active.is_(True))
    return list(session.scalars(query))


def take_one_unit(session: Session, reward_id: int) -> bool:
    """One conditional UPDATE: it row-locks the reward, so the last unit goes to exactly one caller."""
    result = session.execute(
        update(Reward).where(Reward.id == reward_id, (Reward.stock.is_(None)) | (Reward.stock > 0))
        .values(stock=Reward.stock - 1).execution_options(synchronize_session=False))
    return _rowcount(result) == 1


def return_one_unit(session: Session, reward_id: int) -> None:
    session.execute(update(Reward).where(Reward.id == reward_id, Reward.stock.is_not(None))
                    .values(stock=Reward.stock + 1).execution_options(synchronize_session=False))


def vouchers_held(session: Session, customer_id: int, reward_id: int) -> int:
    """Vouchers that count against a per-member limit: every one not cancelled (refunded)."""
    return int(session.scalar(
        select(func.count()).select_from(Voucher)
        .where(Voucher.customer_id == customer_id, Voucher.reward_id == reward_id, Voucher.status != "cancelled")
    ) or 0)


def voucher_by_code(session: Session, code: str) -> Voucher | None:
    return session.scalar(select(Voucher).where(Voucher.code == code))


def vouchers_of(session: Session, customer_id: int, status: str | None, limit: int, now: datetime) -> list[Voucher]:
    """Newest first; an issued voucher past its time counts as expired before the job marks it."""
    query = select(Voucher).where(Voucher.customer_id == customer_id)
    if status == "issued":
        query = query.where(Voucher.status == "issued", Voucher.expires_at > now)
    elif status == "expired":
        lapsed = (Voucher.status == "issued") & (Voucher.expires_at <= now)
        query = query.where((Voucher.status == "expired") | lapsed)
    elif status is not None:
        query = query.where(Voucher.status == status)
    return list(session.scalars(query.order_by(Voucher.id.desc()).limit(limit)))


def mark_redeemed(
    session: Session, voucher_id: int, *, store_id: str, reference: str | None, now: datetime,
) -> bool:
    """Burns an issued, unexpired voucher; False if another request (or time) got there first."""
    result = session.execute(
        update(Voucher)
        .where(Voucher.id == voucher_id, Voucher.status == "issued", Voucher.expires_at > now)
        .values(status="redeemed", redeemed_at=now, redeemed_store_id=store_id, redeemed_reference=reference)
        .execution_options(synchronize_session=False))
    return _rowcount(result) == 1


def mark_cancelled(session: Session, voucher_id: int, *, refund_entry_id: int | None, now: datetime) -> bool:
    result = session.execute(
        update(Voucher)
        .where(Voucher.id == voucher_id, Voucher.status == "issued", Voucher.expires_at > now)
        .values(status="cancelled", cancelled_at=now, refund_entry_id=refund_entry_id)
        .execution_options(synchronize_session=False))
    return _rowcount(result) == 1


def expire_issued(session: Session, now: datetime) -> int:
    """One statement for every issued voucher past its time, however many there are."""
    result = session.execute(
        update(Voucher).where(Voucher.status == "issued", Voucher.expires_at <= now)
        .values(status="expired").execution_options(synchronize_session=False))
    return _rowcount(result)
