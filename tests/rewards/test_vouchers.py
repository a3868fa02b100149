"""Rewards for points: the catalogue, issuing vouchers, burning them at the POS, cancelling, expiry."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from loyalty.db import session_factory
from loyalty.jobs import run_jobs
from loyalty.models import LedgerEntry
from loyalty.models.rewards import Reward, Voucher
from loyalty.rewards import service
from loyalty.timeutil import utcnow
from tests.factories import auth, make_key, make_store
from tests.readers import assert_ledger_ok, count, reading
from tests.rewards.helpers import Counter, reward_body, slug
from tests.tiers.helpers import use_tiers


@pytest.fixture
def counter(client: TestClient, session: Session) -> Counter:
    return Counter(client, session)


def _entries(session: Session, *where: object) -> int:
    return count(session, LedgerEntry, *where)


class TestCatalogue:
    def test_admin_creates_and_anyone_lists_with_stock(self, counter: Counter) -> None:
        counter.reward("COFFEE", stock=5)
        counter.reward("OLD", points_cost=10)
        counter.client.patch("/v1/rewards/OLD", json={"active": False}, headers=auth(counter.admin))
        response = counter.client.get("/v1/rewards", headers=auth(counter.store_key))
        assert response.status_code == 200
        assert [(r["code"], r["stock"]) for r in response.json()] == [("COFFEE", 5)]
        everything = counter.client.get("/v1/rewards?include_inactive=true", headers=auth(counter.store_key))
        assert [r["code"] for r in everything.json()] == ["COFFEE", "OLD"]

    @pytest.mark.parametrize("extra", [
        {"kind": "item"},
        {"kind": "voucher_amount", "amount": 50_000},
        {"kind": "voucher_percent", "percent": 15},
        {"kind": "free_product", "sku": "SKU-LATTE"},
        {"kind": "free_shipping"},
        {"kind": "experience", "description": "a seat at the Tết tasting, 20 Jan"},
    ])
    def test_each_kind_issues_a_voucher_carrying_its_value(self, counter: Counter, extra: dict[str, object]) -> None:
        counter.reward("R1", points_cost=300, **extra)
        member = counter.member(1000)
        voucher = counter.issued(member, "R1")
        assert voucher["kind"] == extra["kind"]
        for field in ("amount", "percent", "sku"):
            assert voucher[field] == extra.get(field)
        assert voucher["status"] == "issued" and voucher["redeemable"] is True
        assert voucher["points_spent"] == 300
        assert counter.available(member) == 700
        assert_ledger_ok(counter.session)

    @pytest.mark.parametrize(("extra", "message"), [
        ({"kind": "voucher_amount"}, "needs amount"),
        ({"kind": "voucher_percent", "percent": 101}, "less than or equal to 100"),
        ({"kind": "item", "sku": "X"}, "takes no sku"),
        ({"points_cost": 0}, "greater than 0"),
        ({"stock": -1}, "greater than or equal to 0"),
        ({"valid_from": "2026-02-01T00:00:00Z", "valid_until": "2026-01-01T00:00:00Z"}, "later than valid_from"),
        ({"valid_from": "2026-02-01T00:00:00"}, "timezone"),
    ])
    def test_bad_rewards_are_422_and_nothing_is_written(self, counter: Counter, extra: dict[str, object],
                                                        message: str) -> None:
        response = counter.client.post("/v1/rewards", json=reward_body("COFFEE", **extra), headers=auth(counter.admin))
        assert response.status_code == 422, response.text
        assert message in response.json()["detail"]
        assert count(counter.session, Reward) == 0

    def test_duplicate_code_is_409(self, counter: Counter) -> None:
        counter.reward("COFFEE")
        response = counter.client.post("/v1/rewards", json=reward_body("COFFEE"), headers=auth(counter.admin))
        assert response.status_code == 409

    def test_store_keys_cannot_change_the_catalogue(self, counter: Counter) -> None:
        response = counter.client.post("/v1/rewards", json=reward_body(), headers=auth(counter.store_key))
        assert response.status_code == 403
        counter.reward("COFFEE")
        response = counter.client.patch("/v1/rewards/COFFEE", json={"stock": 99}, headers=auth(counter.store_key))
        assert response.status_code == 403

    def test_patch_changes_only_what_is_sent(self, counter: Counter) -> None:
        counter.reward("COFFEE", stock=3, per_member_limit=2)
        response = counter.client.patch("/v1/rewards/COFFEE", json={"stock": None, "points_cost": 50},
                                        headers=auth(counter.admin))
        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["stock"], body["points_cost"], body["per_member_limit"]) == (None, 50, 2)
        bad = counter.client.patch("/v1/rewards/COFFEE", json={"points_cost": None}, headers=auth(counter.admin))
        assert bad.status_code == 422
        assert counter.client.patch("/v1/rewards/NOPE", json={"stock": 1},
                                    headers=auth(counter.admin)).status_code == 404


class TestIssuing:
    def test_spends_from_available_into_redeemed_and_takes_one_unit(self, counter: Counter) -> None:
        counter.reward("COFFEE", points_cost=250, stock=2)
        member = counter.member(1000)
        voucher = counter.issued(member)
        assert counter.available(member) == 750
        assert counter.stock() == 1
        assert len(voucher["code"]) == 14 and voucher["code"].count("-") == 2
        with reading(counter.session) as reader:
            row = reader.scalar(select(Voucher))
            assert row is not None
            assert reader.scalar(select(LedgerEntry.source_id).where(LedgerEntry.id == row.spend_entry_id)) == str(
                row.id)
        assert_ledger_ok(counter.session)

    def test_store_key_may_issue(self, counter: Counter) -> None:
        counter.reward()
        assert counter.issue(counter.member(), key=counter.store_key).status_code == 201

    def test_readonly_key_may_not(self, counter: Counter) -> None:
        counter.reward()
        readonly = make_key(counter.session, role="readonly")
        assert counter.issue(counter.member(), key=readonly).status_code == 403

    def test_codes_are_unique_and_unguessable(self, counter: Counter) -> None:
        codes = {service.new_voucher_code() for _ in range(2000)}
        assert len(codes) == 2000
        assert all(set(c.replace("-", "")) <= set(service.CODE_ALPHABET) for c in codes)
        assert not set("01OIL") & set(service.CODE_ALPHABET)

    def test_stock_exhausted_is_409_and_nothing_is_written(self, counter: Counter) -> None:
        counter.reward("LAST", stock=1)
        first, second = counter.member(), counter.member()
        counter.issued(first, "LAST")
        entries = _entries(counter.session)
        response = counter.issue(second, "LAST")
        assert response.status_code == 409
        assert slug(response) == "out-of-stock"
        assert "LAST is out of stock" in response.json()["detail"]
        assert counter.available(second) == 1000
        assert counter.stock("LAST") == 0
        assert (count(counter.session, Voucher), _entries(counter.session)) == (1, entries)
        assert_ledger_ok(counter.session)

    def test_not_enough_points_is_409_and_the_unit_stays(self, counter: Counter) -> None:
        counter.reward("DEAR", points_cost=5000, stock=1)
        member = counter.member(1000)
        response = counter.issue(member, "DEAR")
        assert response.status_code == 409 and slug(response) == "insufficient-points"
        assert counter.stock("DEAR") == 1
        assert count(counter.session, Voucher) == 0
        assert_ledger_ok(counter.session)

    def test_per_member_limit_counts_every_voucher_but_cancelled_ones(self, counter: Counter) -> None:
        counter.reward("ONCE", per_member_limit=2, points_cost=10)
        member, other = counter.member(), counter.member()
        first = counter.issued(member, "ONCE")
        second = counter.issued(member, "ONCE")
        assert counter.redeem(second["code"]).status_code == 200  # used ones count too
        response = counter.issue(member, "ONCE")
        assert response.status_code == 409 and slug(response) == "reward-limit-reached"
        assert counter.issue(other, "ONCE").status_code == 201  # the limit is per member
        assert counter.cancel(first["code"]).status_code == 200
        assert counter.issue(member, "ONCE").status_code == 201  # a cancelled one frees its place
        assert_ledger_ok(counter.session)

    def test_validity_window(self, counter: Counter) -> None:
        now = utcnow()
        counter.reward("SOON", valid_from=(now + timedelta(days=1)).isoformat())
        counter.reward("GONE", valid_until=(now - timedelta(seconds=1)).isoformat())
        counter.reward("NOW", valid_from=(now - timedelta(days=1)).isoformat(),
                       valid_until=(now + timedelta(days=1)).isoformat())
        member = counter.member()
        for code, words in (("SOON", "can be redeemed from"), ("GONE", "could be redeemed until")):
            response = counter.issue(member, code)
            assert response.status_code == 409 and slug(response) == "reward-unavailable"
            assert words in response.json()["detail"]
        assert counter.issue(member, "NOW").status_code == 201
        assert counter.available(member) == 900

    def test_inactive_reward_is_409_and_unknown_is_404(self, counter: Counter) -> None:
        counter.reward("OFF")
        counter.client.patch("/v1/rewards/OFF", json={"active": False}, headers=auth(counter.admin))
        member = counter.member()
        off = counter.issue(member, "OFF")
        assert off.status_code == 409 and "no longer offered" in off.json()["detail"]
        assert counter.issue(member, "NOPE").status_code == 404
        assert counter.issue(999_999, "OFF").status_code == 409  # the reward is checked first
        counter.reward("ON")
        assert counter.issue(999_999, "ON").status_code == 404

    def test_tier_restricted_rewards_need_a_program_with_tiers(self, counter: Counter) -> None:
        counter.reward("VIP", min_tier="gold")
        response = counter.issue(counter.member(), "VIP")
        assert response.status_code == 409 and slug(response) == "tier-required"
        assert count(counter.session, Voucher) == 0

    def test_tier_restricted_rewards_go_to_that_tier_and_above(self, counter: Counter) -> None:
        use_tiers(counter.session)  # MEMBER < SILVER < GOLD
        counter.session.rollback()  # end the read it left open: the API writes next
        counter.reward("SILVERDAY", min_tier="SILVER")
        base, silver, gold = counter.member(), counter.member(), counter.member()
        until = (utcnow() + timedelta(days=30)).isoformat()
        for member, tier in ((silver, "SILVER"), (gold, "GOLD")):
            response = counter.client.post(f"/v1/customers/{member}/tier-override", headers=auth(counter.admin),
                                           json={"tier": tier, "reason": "test", "until": until})
            assert response.status_code in (200, 201), response.text
        refused = counter.issue(base, "SILVERDAY")
        assert refused.status_code == 409 and slug(refused) == "tier-required"
        assert counter.issue(silver, "SILVERDAY").status_code == 201
        assert counter.issue(gold, "SILVERDAY").status_code == 201
        assert count(counter.session, Voucher) == 2
        assert_ledger_ok(counter.session)

    def test_same_idempotency_key_issues_once(self, counter: Counter) -> None:
        counter.reward("COFFEE", stock=10)
        member = counter.member()
        responses = [counter.issue(member, idempotency_key="issue-1") for _ in range(3)]
        assert {r.status_code for r in responses} == {201}
        assert len({r.json()["code"] for r in responses}) == 1
        assert counter.available(member) == 900 and counter.stock() == 9
        assert_ledger_ok(counter.session)


class TestValidating:
    def test_shows_the_voucher_whatever_the_case_or_dashes(self, counter: Counter) -> None:
        counter.reward()
        voucher = counter.issued(counter.member())
        for typed in (voucher["code"], voucher["code"].lower(), voucher["code"].replace("-", "")):
            response = counter.get(typed)
            assert response.status_code == 200
            assert response.json() == voucher

    def test_unknown_code_is_404(self, counter: Counter) -> None:
        for code in ("AAAA-BBBB-CCCC", "short", "0000-0000-0000"):
            response = counter.get(code)
            assert response.status_code == 404 and slug(response) == "not-found"

    def test_past_its_time_shows_expired_before_the_job_runs(self, counter: Counter) -> None:
        counter.reward()
        voucher = counter.issued(counter.member())
        counter.age_voucher(voucher["code"], 1)
        body = counter.get(voucher["code"]).json()
        assert (body["status"], body["redeemable"]) == ("expired", False)

    def test_a_members_vouchers_newest_first_by_status(self, counter: Counter) -> None:
        counter.reward()
        member = counter.member()
        first, second = counter.issued(member), counter.issued(member)
        counter.redeem(second["code"])
        listed = counter.client.get(f"/v1/customers/{member}/vouchers", headers=auth(counter.store_key)).json()
        assert [v["code"] for v in listed["items"]] == [second["code"], first["code"]]
        issued = counter.client.get(f"/v1/customers/{member}/vouchers?status=issued",
                                    headers=auth(counter.store_key)).json()
        assert [v["code"] for v in issued["items"]] == [first["code"]]
        assert counter.client.get("/v1/customers/999999/vouchers", headers=auth(counter.store_key)).status_code == 404


class TestBurning:
    def test_issued_to_redeemed_records_when_and_where(self, counter: Counter) -> None:
        counter.reward()
        member = counter.member()
        voucher = counter.issued(member)
        response = counter.redeem(voucher["code"], transaction_id="POS-1")
        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["status"], body["redeemed_store_id"], body["redeemed_transaction_id"]) == (
            "redeemed", "HN01", "POS-1")
        assert body["redeemable"] is False
        assert counter.available(member) == 900  # burning moves no points: they were spent at issue
        assert_ledger_ok(counter.session)

    def test_same_transaction_id_gets_the_first_answer(self, counter: Counter) -> None:
        counter.reward()
        voucher = counter.issued(counter.member())
        first = counter.redeem(voucher["code"], transaction_id="POS-7")
        again = counter.redeem(voucher["code"], transaction_id="POS-7")
        assert again.status_code == 200 and again.json() == first.json()
        assert again.headers["idempotent-replayed"] == "true"

    def test_same_idempotency_key_gets_the_first_answer(self, counter: Counter) -> None:
        counter.reward()
        voucher = counter.issued(counter.member())
        first = counter.redeem(voucher["code"], idempotency_key="burn-1")
        again = counter.redeem(voucher["code"], idempotency_key="burn-1")
        assert again.status_code == 200 and again.json() == first.json()

    def test_second_burn_is_409_saying_when_and_where(self, counter: Counter) -> None:
        counter.reward()
        make_store(counter.session, "HN02")
        voucher = counter.issued(counter.member())
        counter.redeem(voucher["code"], transaction_id="POS-1")
        for body in ({"transaction_id": "POS-2"}, {}, {"transaction_id": "POS-1", "store_id": "HN02"}):
            response = counter.redeem(voucher["code"], key=counter.admin, **body)
            assert response.status_code == 409 and slug(response) == "voucher-used"
            problem = response.json()
            assert "used at store HN01" in problem["detail"] and "POS-1" in problem["detail"]
            assert problem["redeemed_store_id"] == "HN01" and problem["redeemed_at"]

    def test_expired_is_409_voucher_expired(self, counter: Counter) -> None:
        counter.reward()
        voucher = counter.issued(counter.member())
        counter.age_voucher(voucher["code"], 2)
        response = counter.redeem(voucher["code"])
        assert response.status_code == 409 and slug(response) == "voucher-expired"
        assert "expired at" in response.json()["detail"]

    def test_cancelled_is_409_voucher_cancelled(self, counter: Counter) -> None:
        counter.reward()
        voucher = counter.issued(counter.member())
        counter.cancel(voucher["code"])
        response = counter.redeem(voucher["code"])
        assert response.status_code == 409 and slug(response) == "voucher-cancelled"

    def test_unknown_code_and_unknown_store_are_404(self, counter: Counter) -> None:
        counter.reward()
        voucher = counter.issued(counter.member())
        assert counter.redeem("ZZZZ-ZZZZ-ZZZZ").status_code == 404
        assert counter.redeem(voucher["code"], key=counter.admin, store_id="NOPE").status_code == 404
        assert counter.get(voucher["code"]).json()["status"] == "issued"

    def test_a_store_key_burns_only_for_its_own_store(self, counter: Counter) -> None:
        counter.reward()
        voucher = counter.issued(counter.member())
        assert counter.redeem(voucher["code"], store_id="HN02").status_code == 403
        admin_without_store = counter.client.post(f"/v1/vouchers/{voucher['code']}/redeem", json={},
                                                  headers=auth(counter.admin))
        assert admin_without_store.status_code == 422
        assert counter.redeem(voucher["code"], store_id=None).status_code == 200  # the key's own store


class TestCancelling:
    def test_refunds_into_the_same_lots_and_returns_the_unit_once(self, counter: Counter) -> None:
        counter.reward("COFFEE", points_cost=300, stock=1)
        member = counter.member(1000)
        voucher = counter.issued(member)
        first = counter.cancel(voucher["code"])
        assert first.status_code == 200 and first.json()["status"] == "cancelled"
        again = counter.cancel(voucher["code"])
        assert again.status_code == 200 and again.json() == first.json()
        assert counter.available(member) == 1000
        assert counter.stock() == 1
        assert _entries(counter.session, LedgerEntry.kind == "reward_refund") == 1
        assert_ledger_ok(counter.session)

    def test_a_used_voucher_cannot_be_cancelled(self, counter: Counter) -> None:
        counter.reward()
        member = counter.member()
        voucher = counter.issued(member)
        counter.redeem(voucher["code"])
        response = counter.cancel(voucher["code"])
        assert response.status_code == 409 and slug(response) == "voucher-used"
        assert counter.available(member) == 900

    def test_an_expired_voucher_cannot_be_cancelled_nor_refunded(self, counter: Counter) -> None:
        counter.reward()
        member = counter.member()
        voucher = counter.issued(member)
        counter.age_voucher(voucher["code"], 1)
        response = counter.cancel(voucher["code"])
        assert response.status_code == 409 and slug(response) == "voucher-expired"
        assert counter.available(member) == 900
        assert_ledger_ok(counter.session)

    def test_unknown_is_404(self, counter: Counter) -> None:
        assert counter.cancel("ZZZZ-ZZZZ-ZZZZ").status_code == 404


class TestExpiryJob:
    def test_expires_issued_vouchers_past_their_time_once_and_refunds_nothing(
        self, counter: Counter, engine: Engine,
    ) -> None:
        counter.reward("COFFEE", stock=10)
        member = counter.member()
        old, used, fresh = counter.issued(member), counter.issued(member), counter.issued(member)
        counter.redeem(used["code"])
        counter.age_voucher(old["code"], 1)
        counter.age_voucher(used["code"], 1)
        entries = _entries(counter.session)

        results = {r.name: r.count for r in run_jobs(engine, utcnow())}
        assert results["expire vouchers"] == 1
        again = {r.name: r.count for r in run_jobs(engine, utcnow())}
        assert again["expire vouchers"] == 0

        statuses = {v["code"]: v["status"] for v in counter.client.get(
            f"/v1/customers/{member}/vouchers", headers=auth(counter.admin)).json()["items"]}
        assert statuses == {old["code"]: "expired", used["code"]: "redeemed", fresh["code"]: "issued"}
        assert counter.available(member) == 700 and counter.stock() == 7
        assert _entries(counter.session) == entries
        assert_ledger_ok(counter.session)

    def test_service_expiry_at_exactly_expires_at(self, counter: Counter, engine: Engine) -> None:
        counter.reward()
        voucher = counter.issued(counter.member())
        with session_factory(engine)() as session:
            row = session.scalar(select(Voucher).where(Voucher.code == voucher["code"]))
            assert row is not None
            assert service.expire_vouchers(session, row.expires_at - timedelta(microseconds=1)) == 0
            assert service.expire_vouchers(session, row.expires_at) == 1
            session.rollback()

    def test_voucher_lasts_through_the_nth_business_day(self, counter: Counter) -> None:
        counter.reward("WEEK", voucher_valid_days=7)
        voucher = counter.issued(counter.member(), "WEEK")
        from datetime import datetime
        from zoneinfo import ZoneInfo
        expires = datetime.fromisoformat(voucher["expires_at"]).astimezone(ZoneInfo("Asia/Ho_Chi_Minh"))
        issued = datetime.fromisoformat(voucher["issued_at"]).astimezone(ZoneInfo("Asia/Ho_Chi_Minh"))
        assert (expires.date() - issued.date()).days == 8
        assert (expires.hour, expires.minute) == (0, 0)


def test_voucher_ledger_entries_are_exactly_once(counter: Counter) -> None:
    counter.reward()
    member = counter.member()
    voucher = counter.issued(member)
    counter.cancel(voucher["code"])
    counter.cancel(voucher["code"])
    with reading(counter.session) as reader:
        events = reader.execute(select(LedgerEntry.event, func.count()).where(LedgerEntry.source_type == "voucher")
                                .group_by(LedgerEntry.event)).all()
    assert sorted(events) == [("cancel", 1), ("redeem", 1)]
