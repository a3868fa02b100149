"""Races through a real server: sales of one member at once complete each card exactly once."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from loyalty.models.rewards import Voucher
from loyalty.models.stamps import MemberStampCard, StampEvent
from tests.api.server import LiveServer
from tests.api.test_concurrency import Call, assert_ledger_verifies, count, expect_only, fire
from tests.factories import auth, make_customer, make_key, make_store
from tests.rewards.helpers import give_points
from tests.stamps.helpers import ICE_CREAM, cone, stamps_consistent, use_cards

SALES = 16


class TestConcurrentSales:
    def test_one_members_sales_at_once_complete_each_card_once(
        self, live_server: LiveServer, session: Session, engine: Engine,
    ) -> None:
        use_cards(session, [ICE_CREAM])
        make_store(session)
        key = make_key(session)
        member = make_customer(session).id
        give_points(session, member, 100)
        session.close()  # hold no connection (nor SQLite lock) while the server works
        now = datetime.now(UTC).isoformat()
        calls = []
        for n in range(SALES):
            body = {"store_id": "HN01", "transaction_id": f"RACE-{n}", "customer_id": member, "occurred_at": now,
                    "amount": 25_000, "lines": [cone()]}
            if n % 4 == 0:
                body["redeem_points"] = 1  # the general path, not the hot path
            calls.append(Call("POST", "/v1/transactions", body, auth(key)))
        responses = fire(live_server, calls)
        expect_only(responses, {201: None}, live_server)
        # 16 stamps on a 5-stamp card: three cards complete, one stamp on the fourth.
        assert sum(len(r.json()["instant_rewards"]) for r in responses) == 3
        assert count(engine, select(func.count()).select_from(Voucher)) == 3
        assert count(engine, select(func.count()).select_from(StampEvent)) == SALES
        assert count(engine, select(func.count()).select_from(MemberStampCard)
                     .where(MemberStampCard.completed_at.is_(None), MemberStampCard.stamps == 1)) == 1
        stamps_consistent(session, member)
        assert_ledger_verifies(engine)
