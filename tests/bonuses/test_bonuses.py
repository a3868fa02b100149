"""Bonuses (L6): sign-up gift, first-purchase and birthday bonuses, instant rewards; each exactly once."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine, event, select
from sqlalchemy.orm import Session

from loyalty.bonuses.schemas import BirthdayBonus
from loyalty.bonuses.service import birthday_year
from loyalty.imports.pipeline import import_customer_file
from loyalty.models import Customer, LedgerEntry, Transaction
from loyalty.models.bonuses import MemberBonus
from loyalty.models.rewards import Voucher
from loyalty.transactions.schemas import PurchaseIn
from loyalty.transactions.service import record_purchase
from tests.bonuses.helpers import Counter, bonus_keys, race, sources, use_program, vn
from tests.factories import auth, make_customer, make_store, purchase_body
from tests.readers import assert_ledger_ok, balance_of, count, reading

SIGNUP = {"name": "Welcome gift", "points": 50, "reward": "WELCOME-COFFEE"}
FIRST = {"name": "First purchase bonus", "points": 100, "min_spend": 100000}


def vouchers_of(session: Session, customer_id: int) -> list[tuple[str, int, str]]:
    with reading(session) as reader:
        return [(v.issued_by, v.points_spent, v.status) for v in reader.scalars(
            select(Voucher).where(Voucher.customer_id == customer_id).order_by(Voucher.id))]


class TestSignupGift:
    def test_enrolment_through_the_api_gives_points_and_a_free_voucher(self, client: TestClient,
                                                                       session: Session) -> None:
        use_program(session, bonuses={"signup": SIGNUP})
        counter = Counter(client, session)
        member = counter.enrol(phone="0912000001")
        assert balance_of(session, member["id"]) == (50, 0, 0, 0)
        assert vouchers_of(session, member["id"]) == [("bonus:signup", 0, "issued")]
        listed = client.get(f"/v1/customers/{member['id']}/vouchers", headers=auth(counter.admin)).json()["items"]
        assert [(v["reward_code"], v["points_spent"], v["redeemable"]) for v in listed] == [
            ("WELCOME-COFFEE", 0, True)]
        with reading(session) as reader:
            kinds = list(reader.scalars(select(LedgerEntry.kind).where(LedgerEntry.customer_id == member["id"])))
        assert kinds == ["bonus"]
        assert bonus_keys(session, member["id"]) == ["signup"]
        assert_ledger_ok(session)

    def test_a_retried_enrolment_gives_the_gift_once(self, client: TestClient, session: Session) -> None:
        use_program(session, bonuses={"signup": SIGNUP})
        counter = Counter(client, session)
        key = str(uuid.uuid4())
        bodies = [client.post("/v1/customers", json={"phone": "0912000002"}, headers=auth(counter.admin, key))
                  for _ in range(2)]
        assert [b.status_code for b in bodies] == [201, 201]
        assert bodies[0].json()["id"] == bodies[1].json()["id"]
        assert balance_of(session, bodies[0].json()["id"]) == (50, 0, 0, 0)
        assert count(session, Voucher) == 1

    def test_imported_customers_get_no_gift(self, engine: Engine, session: Session, tmp_path: Path) -> None:
        use_program(session, bonuses={"signup": SIGNUP})
        path = tmp_path / "customers.csv"
        path.write_text("phone,name\n0912000003,An\n0912000004,Bình\n", encoding="utf-8")
        import_customer_file(engine, path)
        assert count(session, Customer) == 2
        assert count(session, MemberBonus) == 0 and count(session, Voucher) == 0

    def test_without_a_bonuses_section_enrolment_gives_nothing(self, client: TestClient, session: Session) -> None:
        counter = Counter(client, session)
        member = counter.enrol(phone="0912000005")
        assert balance_of(session, member["id"]) == (0, 0, 0, 0)
        assert count(session, MemberBonus) == 0

    def test_a_granted_voucher_is_cancelled_without_refunding_points(self, client: TestClient,
                                                                      session: Session) -> None:
        use_program(session, bonuses={"signup": {"name": "Coffee", "reward": "WELCOME-COFFEE"}})
        counter = Counter(client, session)
        member = counter.enrol(phone="0912000006")
        code = client.get(f"/v1/customers/{member['id']}/vouchers", headers=auth(counter.admin)).json()["items"][0]
        response = client.post(f"/v1/vouchers/{code['code']}/cancel", headers=auth(counter.admin))
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "cancelled"
        assert balance_of(session, member["id"]) == (0, 0, 0, 0)
        assert_ledger_ok(session)

    def test_a_reward_out_of_stock_gives_the_points_alone(self, client: TestClient, session: Session) -> None:
        use_program(session, bonuses={"signup": {"name": "Last one", "points": 5, "reward": "ONE-LEFT"}})
        counter = Counter(client, session)
        first, second = counter.enrol(phone="0912000007"), counter.enrol(phone="0912000008")
        assert len(vouchers_of(session, first["id"])) == 1
        assert vouchers_of(session, second["id"]) == []
        assert balance_of(session, second["id"]) == (5, 0, 0, 0)
        assert_ledger_ok(session)


class TestFirstPurchase:
    def test_once_and_on_the_receipt_replays_included(self, client: TestClient, session: Session) -> None:
        use_program(session, bonuses={"first_purchase": FIRST})
        counter = Counter(client, session)
        member = counter.enrol(phone="0912000011")["id"]
        body = purchase_body(member, 150000)
        first = counter.post(body)
        assert sources(first) == [("points", "bonus:first_purchase", 100)]
        assert first["points_earned"] == 10
        assert first["balance"]["available"] == 110  # the receipt counts the bonus it prints
        assert counter.post(body)["instant_rewards"] == first["instant_rewards"]  # the POS retried
        assert sources(counter.buy(member, 150000)) == []
        assert balance_of(session, member) == (10 + 100 + 10, 0, 0, 0)
        assert bonus_keys(session, member) == ["first_purchase"]
        assert_ledger_ok(session)

    def test_the_receipt_of_a_sale_paid_with_points_counts_the_bonus(self, client: TestClient,
                                                                      session: Session) -> None:
        use_program(session, bonuses={"first_purchase": FIRST})
        counter = Counter(client, session)
        member = counter.enrol(phone="0912000014")["id"]
        gift = client.post("/v1/adjustments", json={"customer_id": member, "points": 50, "reason": "welcome gift"},
                           headers=auth(counter.admin))
        assert gift.status_code == 201, gift.text
        first = counter.buy(member, 200000, redeem_points=20)  # points paid: the general path
        assert sources(first) == [("points", "bonus:first_purchase", 100)]
        shown = client.get(f"/v1/customers/{member}/balance", headers=auth(counter.admin)).json()
        assert first["balance"]["available"] == shown["available"] == 50 - 20 + 10 + 100

    def test_a_small_first_sale_waits_for_the_first_one_over_min_spend(self, client: TestClient,
                                                                       session: Session) -> None:
        use_program(session, bonuses={"first_purchase": FIRST})
        counter = Counter(client, session)
        member = counter.enrol(phone="0912000012")["id"]
        assert sources(counter.buy(member, 50000)) == []
        assert sources(counter.buy(member, 100000)) == [("points", "bonus:first_purchase", 100)]
        assert sources(counter.buy(member, 100000)) == []

    def test_members_who_bought_before_get_none(self, client: TestClient, session: Session) -> None:
        use_program(session, bonuses={"first_purchase": FIRST})
        counter = Counter(client, session)
        member = counter.enrol(phone="0912000013")["id"]
        session.add(Transaction(store_id="HN01", pos_transaction_id="OLD-1", kind="purchase", customer_id=member,
                                occurred_at=vn(2024, 1, 1), amount=500000, currency="VND", points_earned=0,
                                points_redeemed=0, returned_amount=0, points_reversed=0, points_restored=0,
                                created_at=vn(2024, 1, 1)))
        session.commit()
        assert sources(counter.buy(member, 200000)) == []

    def test_concurrent_first_purchases_give_it_once(self, engine: Engine, session: Session) -> None:
        use_program(session, bonuses={"first_purchase": FIRST})
        make_store(session)
        member = make_customer(session).id

        def buy(n: int) -> Any:
            def work(s: Session) -> Any:
                return record_purchase(s, PurchaseIn.model_validate(purchase_body(member, 200000)), actor="test")
            return work

        results = race(engine, [buy(n) for n in range(6)])
        assert not [r for r in results if isinstance(r, BaseException)], results
        given = [r.body.instant_rewards for r in results if not isinstance(r, BaseException)]
        assert sum(len(g) for g in given) == 1
        assert count(session, MemberBonus, MemberBonus.customer_id == member) == 1
        assert balance_of(session, member)[0] == 6 * 20 + 100
        assert_ledger_ok(session)


def birthday(window: Any = "month") -> BirthdayBonus:
    return BirthdayBonus(name="B", points=1, window=window)


class TestBirthdayWindow:
    def test_month(self) -> None:
        assert birthday_year(birthday(), date(1990, 11, 20), date(2026, 11, 1)) == 2026
        assert birthday_year(birthday(), date(1990, 11, 20), date(2026, 11, 30)) == 2026
        assert birthday_year(birthday(), date(1990, 11, 20), date(2026, 12, 1)) is None
        assert birthday_year(birthday(), date(1990, 11, 20), date(2026, 10, 31)) is None

    def test_days_across_a_month_end(self) -> None:
        window = birthday({"days": 7})
        assert birthday_year(window, date(1990, 3, 2), date(2026, 2, 23)) == 2026
        assert birthday_year(window, date(1990, 3, 2), date(2026, 2, 22)) is None
        assert birthday_year(window, date(1990, 1, 31), date(2026, 2, 7)) == 2026
        assert birthday_year(window, date(1990, 1, 31), date(2026, 2, 8)) is None

    def test_days_across_a_year_end_count_for_the_birthdays_year(self) -> None:
        window = birthday({"days": 7})
        assert birthday_year(window, date(1990, 1, 2), date(2025, 12, 26)) == 2026
        assert birthday_year(window, date(1990, 1, 2), date(2025, 12, 25)) is None
        assert birthday_year(window, date(1990, 12, 30), date(2027, 1, 6)) == 2026
        assert birthday_year(window, date(1990, 12, 30), date(2027, 1, 7)) is None

    def test_29_february_is_the_28th_in_other_years(self) -> None:
        assert birthday_year(birthday({"days": 0}), date(2000, 2, 29), date(2026, 2, 28)) == 2026
        assert birthday_year(birthday({"days": 0}), date(2000, 2, 29), date(2028, 2, 29)) == 2028
        assert birthday_year(birthday({"days": 0}), date(2000, 2, 29), date(2028, 2, 28)) is None

    @given(st.dates(date(1920, 1, 1), date(2010, 12, 31)), st.dates(date(2000, 1, 1), date(2090, 12, 31)),
           st.integers(0, 31))
    def test_the_year_found_is_the_one_whose_window_holds_the_day(self, born: date, day: date, days: int) -> None:
        year = birthday_year(birthday({"days": days}), born, day)
        candidates = []
        for y in (day.year - 1, day.year, day.year + 1):
            try:
                celebrated = born.replace(year=y)
            except ValueError:
                celebrated = date(y, 2, 28)
            if abs((day - celebrated).days) <= days:
                candidates.append(y)
        # Windows are at most 63 days long: never two birthdays' windows at once.
        assert len(candidates) <= 1
        assert year == (candidates[0] if candidates else None)


class TestBirthdayBonus:
    def test_once_a_year_in_a_window_across_the_year_end(self, client: TestClient, session: Session) -> None:
        use_program(session, bonuses={"birthday": {"name": "Birthday", "points": 200, "reward": "BIRTHDAY-CAKE",
                                                   "window": {"days": 7}}})
        counter = Counter(client, session)
        member = counter.enrol(phone="0912000021", birthday="1990-01-02")["id"]
        dec = counter.buy(member, 100000, occurred_at=vn(2023, 12, 28))
        assert [(k, s) for k, s, _ in sources(dec)] == [("points", "bonus:birthday"), ("voucher", "bonus:birthday")]
        assert dec["instant_rewards"][1]["voucher_code"]
        assert sources(counter.buy(member, 100000, occurred_at=vn(2024, 1, 5))) == []  # same birthday
        assert sources(counter.buy(member, 100000, occurred_at=vn(2024, 6, 1))) == []  # outside the window
        again = counter.buy(member, 100000, occurred_at=vn(2024, 12, 27))  # next year's birthday
        assert sources(again)[0] == ("points", "bonus:birthday", 200)
        assert bonus_keys(session, member) == ["birthday:2024", "birthday:2025"]
        assert_ledger_ok(session)

    def test_birthday_month_in_business_time(self, client: TestClient, session: Session) -> None:
        use_program(session, bonuses={"birthday": {"name": "Birthday", "points": 200}})
        counter = Counter(client, session)
        member = counter.enrol(phone="0912000022", birthday="1985-11-20")["id"]
        # 31 October 23:30 UTC is 1 November 06:30 in Hà Nội: inside the birthday month.
        assert sources(counter.buy(member, 100000, occurred_at=vn(2024, 11, 1, 6)))[0][1] == "bonus:birthday"
        assert sources(counter.buy(member, 100000, occurred_at=vn(2024, 11, 20))) == []
        assert sources(counter.buy(member, 100000, occurred_at=vn(2025, 11, 2)))[0][1] == "bonus:birthday"
        assert sources(counter.buy(member, 100000, occurred_at=vn(2025, 12, 1))) == []

    def test_members_without_a_birthday_get_none(self, client: TestClient, session: Session) -> None:
        use_program(session, bonuses={"birthday": {"name": "Birthday", "points": 200}})
        counter = Counter(client, session)
        member = counter.enrol(phone="0912000023")["id"]
        assert sources(counter.buy(member, 100000)) == []
        assert count(session, MemberBonus) == 0

    def test_min_spend(self, client: TestClient, session: Session) -> None:
        use_program(session, bonuses={"birthday": {"name": "Birthday", "points": 200, "min_spend": 300000}})
        counter = Counter(client, session)
        member = counter.enrol(phone="0912000024", birthday="1995-05-10")["id"]
        assert sources(counter.buy(member, 200000, occurred_at=vn(2026, 5, 10))) == []
        assert sources(counter.buy(member, 300000, occurred_at=vn(2026, 5, 11)))[0][1] == "bonus:birthday"


BIG_BASKET = {"id": "big-basket", "name": "Spend 1,000,000: 50,000 off next time", "reward": "NEXT-50K",
              "when": {"min_spend": 1000000, "store_kinds": ["retail"]}}


class TestInstantRewards:

    def test_spend_over_x_gets_a_voucher_on_every_receipt(self, client: TestClient, session: Session) -> None:
        use_program(session, bonuses={"instant": [BIG_BASKET]})
        counter = Counter(client, session)
        make_store(session, "OUT1", kind="outlet")
        member = counter.enrol(phone="0912000031")["id"]
        body = purchase_body(member, 1200000)
        big = counter.post(body)
        assert sources(big) == [("voucher", "bonus:instant:big-basket", 0)]
        code = big["instant_rewards"][0]["voucher_code"]
        assert client.get(f"/v1/vouchers/{code}", headers=auth(counter.admin)).json()["reward_code"] == "NEXT-50K"
        assert counter.post(body)["instant_rewards"] == big["instant_rewards"]  # a replay: the same voucher
        assert len(sources(counter.buy(member, 1000000))) == 1
        assert sources(counter.buy(member, 999999)) == []
        assert sources(counter.buy(member, 2000000, store_id="OUT1")) == []
        assert count(session, Voucher) == 2
        assert_ledger_ok(session)

    def test_conditions_on_lines_and_dates(self, client: TestClient, session: Session) -> None:
        use_program(session, bonuses={"instant": [{
            "id": "dairy-week", "name": "Dairy week", "points": 20,
            "when": {"categories": ["dairy"], "min_spend": 200000, "date_from": "2026-06-01",
                     "date_to": "2026-06-07"}}]})
        counter = Counter(client, session)
        member = counter.enrol(phone="0912000032")["id"]
        dairy = [{"sku": "MILK", "category": "dairy", "quantity": 4, "unit_price": 50000},
                 {"sku": "BREAD", "category": "bakery", "quantity": 1, "unit_price": 100000}]
        assert sources(counter.buy(member, 300000, lines=dairy, occurred_at=vn(2026, 6, 3))) == [
            ("points", "bonus:instant:dairy-week", 20)]
        assert sources(counter.buy(member, 300000, lines=dairy, occurred_at=vn(2026, 6, 8))) == []
        little = [{**dairy[0], "quantity": 3}, dairy[1]]  # 150,000 of dairy: under min_spend
        assert sources(counter.buy(member, 250000, lines=little, occurred_at=vn(2026, 6, 3))) == []
        assert sources(counter.buy(member, 300000, occurred_at=vn(2026, 6, 3))) == []

    def test_everything_a_sale_gives_comes_back_in_order(self, client: TestClient, session: Session) -> None:
        use_program(session, bonuses={"first_purchase": FIRST, "instant": [BIG_BASKET],
                                      "birthday": {"name": "Birthday", "points": 200}})
        counter = Counter(client, session)
        member = counter.enrol(phone="0912000033", birthday="1990-03-15")["id"]
        body = counter.buy(member, 1500000, occurred_at=vn(2026, 3, 1))
        assert [s for _, s, _ in sources(body)] == ["bonus:first_purchase", "bonus:birthday",
                                                    "bonus:instant:big-basket"]
        fetched = client.get(f"/v1/transactions/{body['id']}", headers=auth(counter.admin)).json()
        assert fetched["instant_rewards"] == body["instant_rewards"]
        assert_ledger_ok(session)

    def test_anonymous_sales_and_programs_without_bonuses_give_nothing(self, client: TestClient,
                                                                        session: Session) -> None:
        counter = Counter(client, session)
        member = counter.enrol(phone="0912000034")["id"]
        assert sources(counter.buy(member, 5000000)) == []
        use_program(session, bonuses={"instant": [BIG_BASKET]})
        assert counter.buy(None, 5000000)["instant_rewards"] == []  # type: ignore[arg-type]


def test_returns_keep_bonuses_but_the_ledger_stays_consistent(client: TestClient, session: Session) -> None:
    use_program(session, bonuses={"first_purchase": FIRST})
    counter = Counter(client, session)
    member = counter.enrol(phone="0912000041")["id"]
    sale = counter.buy(member, 200000)
    response = client.post(f"/v1/transactions/{sale['id']}/returns",
                           json={"transaction_id": "R-1", "amount": 200000,
                                 "occurred_at": datetime.now(UTC).isoformat()},
                           headers=auth(counter.admin))
    assert response.status_code == 201, response.text
    assert balance_of(session, member) == (100, 0, 0, 0)
    assert_ledger_ok(session)


class TestCostOnTheHotPath:
    """Sales the feature cannot affect cost it no statement; member bonuses cost one read when nothing is due."""

    def _statements(self, engine: Engine, work: Any) -> list[str]:
        seen: list[str] = []

        def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            seen.append(statement)

        event.listen(engine, "before_cursor_execute", record)
        try:
            work()
        finally:
            event.remove(engine, "before_cursor_execute", record)
        return [s for s in seen if "member_bonuses" in s or "referral" in s]

    def test_no_statement_when_no_member_bonus_is_configured(self, client: TestClient, engine: Engine,
                                                             session: Session) -> None:
        use_program(session, bonuses={"signup": SIGNUP, "instant": [BIG_BASKET]})
        counter = Counter(client, session)
        member = counter.enrol(phone="0912000051")["id"]
        assert self._statements(engine, lambda: counter.buy(member, 500000)) == []

    def test_one_read_when_nothing_is_due(self, client: TestClient, engine: Engine, session: Session) -> None:
        use_program(session, bonuses={"first_purchase": FIRST, "birthday": {"name": "B", "points": 1}},
                    referrals={"referrer": {"name": "R", "points": 1}})
        counter = Counter(client, session)
        member = counter.enrol(phone="0912000052", birthday="1990-01-01")["id"]
        counter.buy(member, 200000, occurred_at=vn(2026, 6, 1))
        statements = self._statements(engine, lambda: counter.buy(member, 200000, occurred_at=vn(2026, 6, 2)))
        assert len(statements) == 1 and statements[0].lstrip().upper().startswith("SELECT"), statements
