"""The demo's rewards: vouchers redeemed, used and cancelled through the rewards service and the ledger."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from loyalty.demo.rewards_data import CATALOGUE, build_rewards_data
from loyalty.models import LedgerPosting, Reward, Voucher
from tests.factories import make_customer, make_purchase, make_store
from tests.readers import assert_ledger_ok, count, reading


def test_members_redeem_use_and_cancel_vouchers(engine: Engine, session: Session) -> None:
    make_store(session, "HN01")
    start = datetime.now(UTC) - timedelta(days=200)
    for i in range(30):
        customer = make_customer(session).id
        for j in range(4):
            make_purchase(session, customer, 2_000_000, occurred_at=start + timedelta(days=i * 5 + j))  # 200 points
    summary = build_rewards_data(engine, seed=3, now=datetime.now(UTC), vouchers=120)
    assert summary.rewards == count(session, Reward) == len(CATALOGUE)
    assert 0 < summary.issued == count(session, Voucher) <= 120
    assert summary.used == count(session, Voucher, Voucher.status == "redeemed") > 0
    assert summary.cancelled == count(session, Voucher, Voucher.status == "cancelled")
    with reading(session) as reader:
        spent = reader.scalar(select(func.sum(Voucher.points_spent)).where(Voucher.status != "cancelled"))
        redeemed = reader.scalar(select(func.sum(LedgerPosting.amount)).where(LedgerPosting.account == "redeemed"))
    assert redeemed == spent  # cancelled vouchers gave their points back
    assert_ledger_ok(session)
