"""Races through a real server: the last unit of a reward goes to exactly one member; a burn lands once."""

from __future__ import annotations

import httpx
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from loyalty.models import LedgerEntry
from loyalty.models.rewards import Voucher
from tests.api.server import LiveServer
from tests.api.test_concurrency import Call, assert_ledger_verifies, count, expect_only, fire
from tests.factories import auth, make_customer, make_key, make_store
from tests.rewards.helpers import give_points, reward_body

MEMBERS = 32


def _arrange(session: Session, server: LiveServer, stock: int) -> tuple[str, list[int]]:
    make_store(session)
    key = make_key(session)
    members = [make_customer(session).id for _ in range(MEMBERS)]
    for member in members:
        give_points(session, member, 500)
    session.close()  # hold no connection (nor SQLite lock) while the server works
    response = httpx.post(f"{server.base_url}/v1/rewards", headers=auth(key), timeout=30,
                          json=reward_body("LAST", points_cost=200, stock=stock))
    assert response.status_code == 201, response.text
    return key, members


class TestLastUnit:
    def test_concurrent_redemptions_of_the_last_unit_give_it_to_exactly_one_member(
        self, live_server: LiveServer, session: Session, engine: Engine,
    ) -> None:
        key, members = _arrange(session, live_server, stock=1)
        responses = fire(live_server, [
            Call("POST", f"/v1/customers/{member}/vouchers", {"reward_code": "LAST"}, auth(key))
            for member in members
        ])

        expect_only(responses, {201: None, 409: "out-of-stock"}, live_server)
        assert sum(r.status_code == 201 for r in responses) == 1
        assert count(engine, select(func.count()).select_from(Voucher)) == 1
        assert count(engine, select(func.count()).select_from(LedgerEntry)
                     .where(LedgerEntry.source_type == "voucher")) == 1
        stock = httpx.get(f"{live_server.base_url}/v1/rewards/LAST", headers=auth(key), timeout=30).json()["stock"]
        assert stock == 0
        assert_ledger_verifies(engine)

    def test_a_few_units_go_to_as_many_members(
        self, live_server: LiveServer, session: Session, engine: Engine,
    ) -> None:
        key, members = _arrange(session, live_server, stock=5)
        responses = fire(live_server, [
            Call("POST", f"/v1/customers/{member}/vouchers", {"reward_code": "LAST"}, auth(key))
            for member in members
        ])

        expect_only(responses, {201: None, 409: "out-of-stock"}, live_server)
        winners = {r.json()["customer_id"] for r in responses if r.status_code == 201}
        assert len(winners) == 5
        assert count(engine, select(func.count()).select_from(Voucher)) == 5
        assert_ledger_verifies(engine)


class TestConcurrentBurns:
    def test_one_voucher_burned_from_many_tills_is_used_once(
        self, live_server: LiveServer, session: Session, engine: Engine,
    ) -> None:
        key, members = _arrange(session, live_server, stock=1)
        issued = httpx.post(f"{live_server.base_url}/v1/customers/{members[0]}/vouchers", headers=auth(key),
                            json={"reward_code": "LAST"}, timeout=30)
        assert issued.status_code == 201, issued.text
        code = issued.json()["code"]
        responses = fire(live_server, [
            Call("POST", f"/v1/vouchers/{code}/redeem", {"store_id": "HN01", "transaction_id": f"POS-{i}"},
                 auth(key))
            for i in range(MEMBERS)
        ])

        expect_only(responses, {200: None, 409: "voucher-used"}, live_server)
        assert sum(r.status_code == 200 for r in responses) == 1
        assert_ledger_verifies(engine)

    def test_cancels_racing_refund_once(
        self, live_server: LiveServer, session: Session, engine: Engine,
    ) -> None:
        key, members = _arrange(session, live_server, stock=1)
        issued = httpx.post(f"{live_server.base_url}/v1/customers/{members[0]}/vouchers", headers=auth(key),
                            json={"reward_code": "LAST"}, timeout=30)
        code = issued.json()["code"]
        responses = fire(live_server, [Call("POST", f"/v1/vouchers/{code}/cancel", None, auth(key))] * 16)

        expect_only(responses, {200: None}, live_server)
        assert count(engine, select(func.count()).select_from(LedgerEntry)
                     .where(LedgerEntry.kind == "reward_refund")) == 1
        balance = httpx.get(f"{live_server.base_url}/v1/customers/{members[0]}/balance", headers=auth(key),
                            timeout=30).json()
        assert balance["available"] == 500
        assert_ledger_verifies(engine)
