"""Races through a real server: concurrent holds, redemptions and retried purchases never break the ledger."""

from __future__ import annotations

import random
import ssl
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from loyalty.db import session_factory
from loyalty.ledger.verify import verify
from loyalty.models import LedgerEntry, Transaction
from tests.api.server import LiveServer
from tests.factories import auth, make_customer, make_key, make_store, purchase_body

PROBLEM_JSON = "application/problem+json"


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)


def fire(server: LiveServer, calls: Sequence[Call], timeout: float = 120.0) -> list[httpx.Response]:
    """Sends every call at once: one thread and one open keep-alive connection each, released by a barrier."""
    barrier = threading.Barrier(len(calls))
    # Plain HTTP, but httpx builds an SSL context per client unless given one: build it once.
    ssl_context = ssl.create_default_context()
    results: list[httpx.Response | BaseException | None] = [None] * len(calls)

    def send(index: int, call: Call) -> None:
        try:
            transport = httpx.HTTPTransport(verify=ssl_context)
            with httpx.Client(base_url=server.base_url, timeout=timeout, transport=transport) as client:
                client.get("/v1/health")  # open the connection before the start line
                barrier.wait(timeout=timeout)
                results[index] = client.request(call.method, call.path, json=call.body, headers=call.headers)
        except BaseException as exc:  # reported below, with the server's log
            barrier.abort()
            results[index] = exc

    threads = [threading.Thread(target=send, args=(i, c), daemon=True) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout + 30)
    failures = [r for r in results if not isinstance(r, httpx.Response)]
    if failures:
        pytest.fail(f"{len(failures)} of {len(calls)} requests did not complete: {failures[0]!r}\n"
                    f"server log:\n{server.log()[-4000:]}")
    return [r for r in results if isinstance(r, httpx.Response)]


def problem_slug(response: httpx.Response) -> str:
    assert response.headers["content-type"].startswith(PROBLEM_JSON), response.text
    return str(response.json()["type"]).rsplit("/", 1)[-1]


def expect_only(
    responses: Sequence[httpx.Response], allowed: dict[int, str | None], server: LiveServer,
) -> None:
    """Every response has an allowed status (and problem type, for errors); anything else fails loudly."""
    for response in responses:
        ok = response.status_code in allowed
        if ok and allowed[response.status_code] is not None:
            ok = problem_slug(response) == allowed[response.status_code]
        if not ok:
            request = response.request
            pytest.fail(f"unexpected {response.status_code} for {request.method} {request.url}: "
                        f"{response.text}\nserver log:\n{server.log()[-4000:]}")


def assert_ledger_verifies(engine: Engine) -> None:
    session = session_factory(engine)()
    try:
        failed = [r for r in verify(session) if not r.ok]
    finally:
        session.rollback()
        session.close()
    assert not failed, [(r.name, r.violations, r.examples) for r in failed]


@dataclass
class Member:
    customer_id: int
    key: str


def arrange_member(session: Session, server: LiveServer, points: int) -> Member:
    """A store, a member and an admin key; the starting points arrive through POST /v1/adjustments."""
    make_store(session)
    customer = make_customer(session)
    key = make_key(session)
    session.close()  # hold no connection (nor SQLite lock) while the server works
    response = httpx.post(f"{server.base_url}/v1/adjustments", headers=auth(key), timeout=30,
                          json={"customer_id": customer.id, "points": points, "reason": "opening balance"})
    assert response.status_code == 201, response.text
    assert response.json()["balance"]["available"] == points
    return Member(customer.id, key)


def balance(server: LiveServer, member: Member) -> dict[str, int]:
    response = httpx.get(f"{server.base_url}/v1/customers/{member.customer_id}/balance",
                         headers=auth(member.key), timeout=30)
    assert response.status_code == 200, response.text
    return {k: int(v) for k, v in response.json().items()}


def count(engine: Engine, statement: Any) -> int:
    with session_factory(engine)() as session:
        value = session.scalar(statement)
        session.rollback()
    return int(value or 0)


class TestConcurrentHolds:
    def test_holds_for_more_than_the_balance_never_overdraw(
        self, live_server: LiveServer, session: Session, engine: Engine,
    ) -> None:
        member = arrange_member(session, live_server, 150)
        sizes = [random.Random(i).randint(1, 20) for i in range(48)]
        assert sum(sizes) > 150
        responses = fire(live_server, [
            Call("POST", f"/v1/customers/{member.customer_id}/holds", {"points": n}, auth(member.key))
            for n in sizes
        ])

        expect_only(responses, {201: None, 409: "insufficient-points"}, live_server)
        held = sum(n for n, r in zip(sizes, responses, strict=True) if r.status_code == 201)
        assert 0 < held <= 150
        after = balance(live_server, member)
        assert (after["available"], after["held"]) == (150 - held, held)
        # `available` only went down, so a refusal is only right if even the final balance was too small.
        refused = [n for n, r in zip(sizes, responses, strict=True) if r.status_code == 409]
        assert all(n > after["available"] for n in refused), (refused, after)
        assert_ledger_verifies(engine)

    def test_equal_holds_grant_exactly_what_fits(
        self, live_server: LiveServer, session: Session, engine: Engine,
    ) -> None:
        member = arrange_member(session, live_server, 100)
        responses = fire(live_server, [
            Call("POST", f"/v1/customers/{member.customer_id}/holds",
                 {"points": 7, "reference": f"basket-{i}"}, auth(member.key))
            for i in range(40)
        ])

        expect_only(responses, {201: None, 409: "insufficient-points"}, live_server)
        assert sum(r.status_code == 201 for r in responses) == 14  # 14 x 7 = 98 of 100
        assert balance(live_server, member)["available"] == 2
        assert_ledger_verifies(engine)


class TestConcurrentRetriedPurchases:
    def test_same_pos_transaction_id_is_recorded_once(
        self, live_server: LiveServer, session: Session, engine: Engine,
    ) -> None:
        member = arrange_member(session, live_server, 5)
        body = purchase_body(member.customer_id, 250_000, pos_id="POS-RETRY-1")
        responses = fire(live_server, [Call("POST", "/v1/transactions", body, auth(member.key))] * 24)

        expect_only(responses, {200: None, 201: None}, live_server)
        assert sorted(r.status_code for r in responses) == [200] * 23 + [201]
        assert all(r.headers.get("idempotent-replayed") == "true" for r in responses if r.status_code == 200)
        assert len({r.text for r in responses}) == 1, {r.text for r in responses}
        assert responses[0].json()["points_earned"] == 20
        assert count(engine, select(func.count()).select_from(Transaction)) == 1
        earn_entries = select(func.count()).select_from(LedgerEntry).where(LedgerEntry.kind == "earn")
        assert count(engine, earn_entries) == 1
        assert balance(live_server, member)["available"] == 25
        assert_ledger_verifies(engine)

    def test_same_idempotency_key_is_recorded_once(
        self, live_server: LiveServer, session: Session, engine: Engine,
    ) -> None:
        member = arrange_member(session, live_server, 5)
        body = purchase_body(member.customer_id, 1_000_000, pos_id="POS-KEYED-1")
        responses = fire(live_server, [
            Call("POST", "/v1/transactions", body, auth(member.key, idempotency_key="retry-me-1"))] * 24)

        expect_only(responses, {201: None}, live_server)
        assert len({r.text for r in responses}) == 1, {r.text for r in responses}
        assert sum(r.headers.get("idempotent-replayed") != "true" for r in responses) == 1
        assert responses[0].json()["points_earned"] == 100
        assert count(engine, select(func.count()).select_from(Transaction)) == 1
        assert balance(live_server, member)["available"] == 105
        assert_ledger_verifies(engine)

    def test_one_idempotency_key_for_different_sales_records_only_the_first(
        self, live_server: LiveServer, session: Session, engine: Engine,
    ) -> None:
        member = arrange_member(session, live_server, 5)
        responses = fire(live_server, [
            Call("POST", "/v1/transactions",
                 purchase_body(member.customer_id, 300_000, pos_id=f"POS-DIFF-{i}"),
                 auth(member.key, idempotency_key="reused-key"))
            for i in range(16)
        ])

        expect_only(responses, {201: None, 409: "idempotency-key-reused"}, live_server)
        assert sum(r.status_code == 201 for r in responses) == 1
        assert count(engine, select(func.count()).select_from(Transaction)) == 1
        assert balance(live_server, member)["available"] == 5 + 30
        assert_ledger_verifies(engine)


class TestConcurrentRedemptions:
    def test_points_paying_for_purchases_never_overdraw(
        self, live_server: LiveServer, session: Session, engine: Engine,
    ) -> None:
        member = arrange_member(session, live_server, 1000)
        # 30 points pay 30,000 of a 60,000 sale; the 30,000 paid in money earns no points (whole blocks).
        responses = fire(live_server, [
            Call("POST", "/v1/transactions",
                 purchase_body(member.customer_id, 60_000, pos_id=f"POS-REDEEM-{i}", redeem_points=30),
                 auth(member.key))
            for i in range(48)
        ])

        expect_only(responses, {201: None, 409: "insufficient-points"}, live_server)
        succeeded = [r.json() for r in responses if r.status_code == 201]
        assert len(succeeded) == 33  # 33 x 30 = 990 of 1,000
        assert all(s["points_redeemed"] == 30 and s["points_earned"] == 0 for s in succeeded)
        # Refused sales left nothing behind.
        assert count(engine, select(func.count()).select_from(Transaction)) == 33
        assert balance(live_server, member)["available"] == 10
        assert_ledger_verifies(engine)

    def test_holds_redemptions_and_debits_racing_on_one_member(
        self, live_server: LiveServer, session: Session, engine: Engine,
    ) -> None:
        member = arrange_member(session, live_server, 500)
        headers = auth(member.key)
        hold = Call("POST", f"/v1/customers/{member.customer_id}/holds", {"points": 25}, headers)
        debit_body = {"customer_id": member.customer_id, "points": -15, "reason": "goodwill reversed"}
        debit = Call("POST", "/v1/adjustments", debit_body, headers)
        calls: list[tuple[int, Call]] = [(25, hold)] * 16 + [(15, debit)] * 8
        for i in range(16):
            body = purchase_body(member.customer_id, 50_000, pos_id=f"POS-MIX-{i}", redeem_points=20)
            calls.append((20, Call("POST", "/v1/transactions", body, headers)))
        random.Random(3).shuffle(calls)
        assert sum(points for points, _ in calls) > 500
        responses = fire(live_server, [call for _, call in calls])

        expect_only(responses, {201: None, 409: "insufficient-points"}, live_server)
        taken = sum(points for (points, _), r in zip(calls, responses, strict=True) if r.status_code == 201)
        after = balance(live_server, member)
        assert 0 <= after["available"] == 500 - taken
        refused = [points for (points, _), r in zip(calls, responses, strict=True) if r.status_code == 409]
        assert all(points > after["available"] for points in refused), (refused, after)
        assert_ledger_verifies(engine)
