"""Referrals (L13): codes, enrolment with a code, self-referral and loops refused, rewards once within a cap."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from loyalty.cli.main import app
from loyalty.goals import service as goals_service
from loyalty.imports.pipeline import import_customer_file, import_transaction_file
from loyalty.models import Customer, IdempotencyRecord
from loyalty.models.bonuses import MemberBonus, Referral, ReferralCode
from loyalty.models.goals import MemberBadge
from loyalty.referrals.service import CODE_LENGTH, advocate_ids, normalise_code
from loyalty.rewards.service import CODE_ALPHABET
from loyalty.transactions.schemas import PurchaseIn
from loyalty.transactions.service import record_purchase
from tests.bonuses.helpers import Counter, race, sources, use_program, vn
from tests.factories import auth, make_customer, make_key, make_store, purchase_body
from tests.readers import assert_ledger_ok, balance_of, count, reading

REFERRALS = {"min_spend": 200000, "referrer": {"name": "Thanks for bringing a friend", "points": 300},
             "welcome": {"name": "Welcome, friend", "points": 50, "reward": "NEXT-50K"},
             "max_rewards_per_month": 2}
PROBLEM = "application/problem+json"


def _csv(tmp_path: Path, name: str, content: str) -> Path:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    return path


def slug(response: Any) -> str:
    assert response.headers["content-type"] == PROBLEM, response.text
    return str(response.json()["type"]).rsplit("/", 1)[-1]


class Desk(Counter):
    def referral(self, customer_id: int) -> dict[str, Any]:
        response = self.client.get(f"/v1/customers/{customer_id}/referral", headers=auth(self.admin))
        assert response.status_code == 200, response.text
        return dict(response.json())

    def code(self, customer_id: int) -> str:
        return str(self.referral(customer_id)["code"])

    def refused(self, **fields: Any) -> Any:
        response = self.client.post("/v1/customers", json=fields, headers=auth(self.admin))
        assert response.status_code == 422, response.text
        return response

    def attach(self, customer_id: int, code: str) -> Any:
        return self.client.post(f"/v1/customers/{customer_id}/referral", json={"referral_code": code},
                                headers=auth(self.admin))


@pytest.fixture
def desk(client: TestClient, session: Session) -> Desk:
    use_program(session, referrals=REFERRALS)
    return Desk(client, session)


class TestCodes:
    def test_every_member_gets_one_short_unambiguous_code(self, desk: Desk) -> None:
        a, b = desk.enrol(phone="0912100001")["id"], desk.enrol(phone="0912100002")["id"]
        first = desk.referral(a)
        assert len(first["code"]) == CODE_LENGTH and set(first["code"]) <= set(CODE_ALPHABET)
        assert desk.referral(a)["code"] == first["code"]  # stable
        assert desk.code(b) != first["code"]
        assert first["share_link"] == f"http://127.0.0.1:8000/join?ref={first['code']}"
        assert first["advocate"] is False and first["referred_by"] is None
        assert first["counts"] == {"referred": 0, "pending": 0, "rewarded": 0, "capped": 0}

    def test_every_way_of_enrolling_gives_a_code_and_reading_it_writes_nothing(
        self, desk: Desk, session: Session, engine: Engine, tmp_path: Path,
    ) -> None:
        desk.enrol(phone="0912100001")
        import_customer_file(engine, _csv(tmp_path, "c.csv", "phone,name\n0912100002,Lan\n0912100003,Minh\n"))
        import_transaction_file(engine, _csv(tmp_path, "t.csv", "transaction_id,store_id,customer,occurred_at,amount\n"
                                             f"T1,HN01,0912100004,{datetime.now(UTC).isoformat()},100000\n"),
                                create_customers=True)
        with reading(session) as reader:
            codes = dict(reader.execute(select(ReferralCode.customer_id, ReferralCode.code)).all())
            customers = set(reader.scalars(select(Customer.id)))
        assert set(codes) == customers and len(customers) == 4
        assert len(set(codes.values())) == 4 and all(normalise_code(c) == c for c in codes.values())
        readonly = make_key(session, "readonly")
        for customer_id, code in codes.items():
            response = desk.client.get(f"/v1/customers/{customer_id}/referral",
                                       headers=auth(readonly, idempotency_key=f"k-{customer_id}"))
            assert response.status_code == 200, response.text
            assert response.json()["code"] == code
        assert count(session, IdempotencyRecord) == 0  # a read: no key is stored

    def test_codes_are_read_the_way_people_type_them(self) -> None:
        assert normalise_code(" abcd-efgh ") == "ABCDEFGH"
        assert normalise_code("ABCD0FGH") is None  # 0 is not in the alphabet
        assert normalise_code("ABC") is None

    def test_unknown_member_is_404(self, desk: Desk) -> None:
        response = desk.client.get("/v1/customers/999/referral", headers=auth(desk.admin))
        assert response.status_code == 404 and slug(response) == "not-found"


class TestHappyPath:
    def test_referrer_rewarded_on_the_first_qualifying_purchase_and_the_friend_welcomed(
            self, desk: Desk, session: Session) -> None:
        referrer = desk.enrol(phone="0912100011")["id"]
        code = desk.code(referrer)
        spaced = f"{code[:4].lower()}-{code[4:].lower()}"
        friend = desk.enrol(phone="0912100012", referral_code=spaced)["id"]
        assert desk.referral(friend)["referred_by"] == referrer
        assert desk.referral(referrer)["counts"]["pending"] == 1
        assert sources(desk.buy(friend, 150000)) == []  # under min_spend: not yet
        body = purchase_body(friend, 250000)
        qualifying = desk.post(body)
        assert [(k, s, p) for k, s, p in sources(qualifying)] == [("points", "referral", 50),
                                                                 ("voucher", "referral", 0)]
        assert qualifying["instant_rewards"][1]["voucher_code"]
        assert desk.post(body)["instant_rewards"] == qualifying["instant_rewards"]  # replayed, not repeated
        assert sources(desk.buy(friend, 900000)) == []
        assert balance_of(session, referrer) == (300, 0, 0, 0)
        assert balance_of(session, friend) == (10 + 20 + 50 + 90, 0, 0, 0)
        summary = desk.referral(referrer)
        assert summary["advocate"] is True
        member_summary = desk.client.get(f"/v1/customers/{referrer}/summary", headers=auth(desk.admin)).json()
        assert member_summary["advocate"] is True
        assert summary["counts"] == {"referred": 1, "pending": 0, "rewarded": 1, "capped": 0}
        with reading(session) as reader:
            assert advocate_ids(reader) == [referrer]
        assert_ledger_ok(session)

    def test_a_referrer_needs_no_purchase_and_the_referrers_own_sales_give_nothing(self, desk: Desk,
                                                                                   session: Session) -> None:
        referrer = desk.enrol(phone="0912100013")["id"]
        desk.enrol(phone="0912100014", referral_code=desk.code(referrer))
        assert sources(desk.buy(referrer, 500000)) == []
        assert count(session, MemberBonus) == 0


class TestRefused:
    def test_unknown_code(self, desk: Desk, session: Session) -> None:
        response = desk.refused(phone="0912100021", referral_code="ZZZZZZZZ")
        assert "does not exist" in response.json()["detail"]
        assert count(session, Customer) == 0

    def test_without_a_referrals_section(self, client: TestClient, session: Session) -> None:
        counter = Desk(client, session)
        response = counter.client.post("/v1/customers", json={"phone": "0912100022", "referral_code": "ABCDEFGH"},
                                       headers=auth(counter.admin))
        assert response.status_code == 422 and "no referrals" in response.json()["detail"]

    @pytest.mark.parametrize(("theirs", "mine"), [
        ({"phone": "0912100031"}, {"phone": "+84 912 100 031"}),
        ({"phone": "0912100032", "email": "an.nguyen@gmail.com"}, {"phone": "0912100033",
                                                                     "email": "AnNguyen+ref@Gmail.com"}),
        ({"phone": "0912100034", "email": "binh@shop.vn"}, {"phone": "0912100035", "email": "binh+2@shop.vn"}),
        ({"phone": "0912100036", "card": "CARD-7788"}, {"phone": "0912100037", "card": "card 7788".replace(" ", "-")}),
    ], ids=["phone", "gmail", "email-tag", "card"])
    def test_self_referral_through_a_shared_identity(self, desk: Desk, session: Session, theirs: dict[str, str],
                                                     mine: dict[str, str]) -> None:
        referrer = desk.enrol(**theirs)["id"]
        response = desk.refused(referral_code=desk.code(referrer), **mine)
        assert slug(response) == "self-referral"
        assert count(session, Customer) == 1 and count(session, Referral) == 0

    def test_loops(self, desk: Desk, session: Session) -> None:
        a, b = desk.enrol(phone="0912100041")["id"], desk.enrol(phone="0912100042")["id"]
        assert desk.attach(b, desk.code(a)).status_code == 201  # a brought b, who enrolled without the code
        response = desk.attach(a, desk.code(b))
        assert response.status_code == 422 and slug(response) == "referral-loop"
        c = desk.enrol(phone="0912100043", referral_code=desk.code(b))["id"]
        response = desk.attach(a, desk.code(c))  # a -> b -> c -> a
        assert response.status_code == 422 and slug(response) == "referral-loop"
        assert slug(desk.attach(a, desk.code(a))) == "self-referral"
        assert count(session, Referral) == 2

    def test_attach_only_once_and_before_the_first_purchase(self, desk: Desk) -> None:
        a, b, c = (desk.enrol(phone=f"091210005{n}")["id"] for n in range(3))
        assert desk.attach(b, desk.code(a)).status_code == 201
        assert desk.attach(b, desk.code(c)).status_code == 409
        desk.buy(c, 100000)
        assert desk.attach(c, desk.code(a)).status_code == 409
        assert desk.attach(999, desk.code(a)).status_code == 404
        assert desk.attach(a, "no").status_code == 422


class TestMonthlyCap:
    def test_over_the_cap_recorded_not_rewarded(self, desk: Desk, session: Session) -> None:
        referrer = desk.enrol(phone="0912100061")["id"]
        code = desk.code(referrer)
        friends = [desk.enrol(phone=f"091210007{n}", referral_code=code)["id"] for n in range(4)]
        for n, friend in enumerate(friends[:3]):
            welcome = desk.buy(friend, 200000, occurred_at=vn(2026, 9, 10 + n))
            assert [s for _, s, _ in sources(welcome)] == ["referral", "referral"]  # the friend is welcomed anyway
        assert balance_of(session, referrer)[0] == 600
        assert desk.referral(referrer)["counts"] == {"referred": 4, "pending": 1, "rewarded": 2, "capped": 1}
        desk.buy(friends[3], 200000, occurred_at=vn(2026, 10, 1))  # a new month
        assert balance_of(session, referrer)[0] == 900
        with reading(session) as reader:
            months = sorted((m, s) for m, s in reader.execute(select(Referral.reward_month, Referral.status)))
        assert months == [("2026-09", "capped"), ("2026-09", "rewarded"), ("2026-09", "rewarded"),
                          ("2026-10", "rewarded")]
        assert_ledger_ok(session)


class TestConcurrency:
    def _buy(self, customer_id: int, amount: int = 250000) -> Any:
        def work(s: Session) -> Any:
            return record_purchase(s, PurchaseIn.model_validate(purchase_body(customer_id, amount)), actor="test")
        return work

    def test_concurrent_first_purchases_reward_once(self, engine: Engine, session: Session) -> None:
        use_program(session, referrals=REFERRALS)
        make_store(session)
        referrer = make_customer(session).id
        friend = make_customer(session, referral_code=_code(engine, referrer)).id
        results = race(engine, [self._buy(friend) for _ in range(6)])
        assert not [r for r in results if isinstance(r, BaseException)], results
        assert sum(len(r.body.instant_rewards) for r in results if not isinstance(r, BaseException)) == 2
        assert balance_of(session, referrer)[0] == 300
        assert count(session, MemberBonus) == 2
        assert_ledger_ok(session)

    def test_the_cap_holds_under_concurrent_purchases(self, engine: Engine, session: Session) -> None:
        use_program(session, referrals=REFERRALS)
        make_store(session)
        referrer = make_customer(session).id
        code = _code(engine, referrer)
        friends = [make_customer(session, referral_code=code).id for _ in range(5)]
        results = race(engine, [self._buy(friend) for friend in friends])
        assert not [r for r in results if isinstance(r, BaseException)], results
        assert balance_of(session, referrer)[0] == 600
        assert count(session, Referral, Referral.status == "rewarded") == 2
        assert count(session, Referral, Referral.status == "capped") == 3
        assert_ledger_ok(session)


def _code(engine: Engine, customer_id: int) -> str:
    from loyalty.db import run_in_transaction
    from loyalty.referrals.service import code_of

    return run_in_transaction(engine, lambda s: code_of(s, customer_id))


def test_cli_enrols_with_a_code_and_shows_the_referrals(cli_db: str, session: Session) -> None:
    runner = CliRunner()
    use_program(session, referrals=REFERRALS, bonuses={"signup": {"name": "Gift", "points": 20}})
    referrer = make_customer(session).id  # the factory enrols through the service: it gets the gift too
    engine = session.get_bind()
    assert isinstance(engine, Engine)
    code = _code(engine, referrer)
    result = runner.invoke(app, ["referrals", "enrol", "--phone", "0912100081", "--name", "Chi",
                                 "--birthday", "1990-04-01", "--referral-code", code])
    assert result.exit_code == 0, result.output
    assert "enrolled customer #2" in result.output
    assert balance_of(session, 2) == (20, 0, 0, 0)
    result = runner.invoke(app, ["referrals", "show", str(referrer)])
    assert result.exit_code == 0, result.output
    assert code in result.output and "pending 1" in result.output
    result = runner.invoke(app, ["referrals", "enrol", "--phone", "0912100082", "--referral-code", "NOPE"])
    assert result.exit_code == 2 and "does not exist" in result.output


def test_advocates_are_a_lifecycle_stage_in_analytics(desk: Desk, session: Session) -> None:
    from loyalty.analytics.lifecycle import Thresholds, stages
    from loyalty.analytics.loader import load_database

    referrer = desk.enrol(phone="0912100091")["id"]
    desk.buy(referrer, 100000)
    friend = desk.enrol(phone="0912100092", referral_code=desk.code(referrer))["id"]
    bystander = desk.enrol(phone="0912100093")["id"]
    desk.buy(bystander, 100000)
    with reading(session) as reader:
        data = load_database(reader)
    before = stages(data, data.as_of, Thresholds.derive(data.summary()))
    assert dict(zip(before["customer"], before["stage"], strict=True))[referrer] == "first purchase"
    desk.buy(friend, 300000)
    with reading(session) as reader:
        data = load_database(reader)
    after = dict(zip(*stages(data, data.as_of, Thresholds.derive(data.summary()))[["customer", "stage"]]
                     .get_columns(), strict=True))
    assert after[referrer] == "advocate" and after[bystander] == "first purchase"


AMBASSADOR = ({"id": "ambassador", "name": "Bring two friends", "metric": "referrals", "target": 2,
               "badge": {"name": "Ambassador"}, "points": 40},)


class TestReferralGoals:
    """Goals on the referrals metric (L10): a referral counts once the friend qualifies, cap or not."""


    def test_the_referrer_earns_the_badge_when_the_second_friend_qualifies(self, client: TestClient,
                                                                          session: Session) -> None:
        referrals = {**REFERRALS, "max_rewards_per_month": 1}  # the second friend is over the cap: still counts
        use_program(session, referrals=referrals, goals=list(AMBASSADOR))
        desk = Desk(client, session)
        referrer = desk.enrol(phone="0912100091")["id"]
        code = desk.code(referrer)
        first, second = (desk.enrol(phone=f"09121000{n}", referral_code=code)["id"] for n in (92, 93))
        desk.buy(first, 250000, occurred_at=vn(2026, 9, 1))
        assert badges_of(session, referrer) == []
        receipt = desk.buy(second, 250000, occurred_at=vn(2026, 9, 2))
        assert "goal:ambassador" not in {s for _, s, _ in sources(receipt)}  # the referrer's badge, not the buyer's
        assert badges_of(session, referrer) == ["ambassador"]
        assert balance_of(session, referrer)[0] == 300 + 40  # one referral reward (cap 1) and the goal's points
        badges = desk.client.get(f"/v1/customers/{referrer}/badges", headers=auth(desk.admin)).json()
        assert [b["goal_id"] for b in badges["badges"]] == ["ambassador"]
        with reading(session) as reader:
            assert goals_service.evaluate_all(reader, datetime.now(UTC)) == 0  # the job agrees: nothing more
        assert_ledger_ok(session)

    def test_the_job_counts_referrals_that_qualified_before_the_goal_existed(self, client: TestClient,
                                                                            session: Session) -> None:
        use_program(session, referrals=REFERRALS)
        desk = Desk(client, session)
        referrer = desk.enrol(phone="0912100081")["id"]
        code = desk.code(referrer)
        friends = [desk.enrol(phone=f"09121000{n}", referral_code=code)["id"] for n in (82, 83, 84)]
        for friend in friends[:2]:
            desk.buy(friend, 250000)
        desk.buy(friends[2], 100000)  # under min_spend: this referral is still pending
        use_program(session, referrals=REFERRALS, goals=[{**AMBASSADOR[0], "id": "three", "target": 3},
                                                         *AMBASSADOR])
        assert goals_service.evaluate_all(session, datetime.now(UTC)) == 1
        session.commit()
        assert badges_of(session, referrer) == ["ambassador"]
        progress = desk.client.get(f"/v1/customers/{referrer}/badges", headers=auth(desk.admin)).json()
        assert [(p["goal_id"], p["missing"]) for p in progress["progress"]] == [("three", 1)]
        assert_ledger_ok(session)


def badges_of(session: Session, customer_id: int) -> list[str]:
    with reading(session) as reader:
        return list(reader.scalars(select(MemberBadge.goal_id).where(MemberBadge.customer_id == customer_id)
                                   .order_by(MemberBadge.goal_id)))
