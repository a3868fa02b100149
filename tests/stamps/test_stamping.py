"""Stamping sales through POST /v1/transactions: the product's two examples, each card shape,
completion and carry-over, several cards per sale, rule-given stamps, replays and progress."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from loyalty.models.rewards import Reward
from loyalty.models.stamps import StampEvent
from loyalty.programs.service import program_at
from loyalty.transactions import effects
from loyalty.transactions.schemas import Line
from tests.factories import auth, make_customer
from tests.readers import assert_ledger_ok, reading
from tests.rewards.helpers import give_points
from tests.stamps.helpers import DOZEN, ICE_CREAM, TUESDAY, Till, cone, cup, stamps_consistent, use_cards, water


def vouchers_on(receipt: dict[str, Any]) -> list[tuple[str, str]]:
    return [(r["kind"], r["source"]) for r in receipt["instant_rewards"]]


class TestTheProductExamples:
    def test_buy_five_ice_creams_the_sixth_is_free(self, client: TestClient, session: Session) -> None:
        use_cards(session, [ICE_CREAM])
        till = Till(client, session)
        member = till.member()
        for n in range(4):
            receipt = till.sell(member, cone())
            assert receipt["instant_rewards"] == []
            assert till.progress(member) == {"ice-cream": (n + 1, 0)}
        fifth = till.sell(member, cone())
        [reward] = fifth["instant_rewards"]
        assert (reward["kind"], reward["source"], reward["points"]) == ("voucher", "stamp_card:ice-cream", 0)
        assert reward["name"] == "Buy 5 ice creams, the 6th is free: Free cone"
        assert till.progress(member) == {"ice-cream": (0, 1)}
        assert till.vouchers(member) == [("FREE-CONE", "issued", 0)]
        # The 6th is the voucher: burned at the till like any other, no points involved.
        burned = client.post(f"/v1/vouchers/{reward['voucher_code']}/redeem", json={"store_id": "HN01"},
                             headers=auth(till.admin))
        assert burned.status_code == 200, burned.text
        assert (burned.json()["sku"], burned.json()["points_spent"]) == ("KEM-CONE", 0)
        assert fifth["points_earned"] == 0 and fifth["balance"]["available"] == 0
        stamps_consistent(session, member)
        assert_ledger_ok(session)

    def test_buy_a_dozen_get_a_double_sundae(self, client: TestClient, session: Session) -> None:
        use_cards(session, [ICE_CREAM, DOZEN])
        till = Till(client, session)
        member = till.member()
        first = till.sell(member, cone(4), cup(3), water(2))  # 7 on both cards: ice-cream completes once
        assert vouchers_on(first) == [("voucher", "stamp_card:ice-cream")]
        assert till.progress(member) == {"ice-cream": (2, 1), "dozen": (7, 0)}
        second = till.sell(member, cup(5))
        assert vouchers_on(second) == [("voucher", "stamp_card:ice-cream"), ("voucher", "stamp_card:dozen")]
        assert till.progress(member) == {"ice-cream": (2, 2), "dozen": (0, 1)}
        assert till.vouchers(member) == [("FREE-CONE", "issued", 0), ("FREE-CONE", "issued", 0),
                                         ("DOUBLE-SUNDAE", "issued", 0)]
        stamps_consistent(session, member)
        assert_ledger_ok(session)


class TestCardShapes:
    def test_per_unit_counts_quantity_and_only_matching_lines(self, client: TestClient, session: Session) -> None:
        use_cards(session, [{**ICE_CREAM, "stamps_to_complete": 50, "counts": {"skus": ["KEM-CONE"],
                                                                                "min_unit_price": 20_000}}])
        till = Till(client, session)
        member = till.member()
        till.sell(member, cone(3), cone(2, price=15_000), cup(4), water())
        assert till.progress(member) == {"ice-cream": (3, 0)}

    def test_categories_and_skus_must_both_match(self, client: TestClient, session: Session) -> None:
        use_cards(session, [{**ICE_CREAM, "counts": {"skus": ["KEM-CONE", "NUOC"], "categories": ["ice cream"]}}])
        till = Till(client, session)
        member = till.member()
        till.sell(member, cone(2), water(3), cup())
        assert till.progress(member) == {"ice-cream": (2, 0)}

    def test_per_purchase_gives_one_stamp_whatever_the_quantity(self, client: TestClient, session: Session) -> None:
        use_cards(session, [{**ICE_CREAM, "per": "purchase", "stamps_to_complete": 3}])
        till = Till(client, session)
        member = till.member()
        till.sell(member, cone(5), cup(2))
        till.sell(member, water())
        assert till.progress(member) == {"ice-cream": (1, 0)}

    def test_a_visit_card_counts_sales_without_lines(self, client: TestClient, session: Session) -> None:
        use_cards(session, [{"id": "visits", "name": "10 visits", "per": "purchase", "stamps_to_complete": 10,
                             "reward": "FREE-CONE"}, ICE_CREAM])
        till = Till(client, session)
        member = till.member()
        response = client.post("/v1/transactions", json={
            "store_id": "HN01", "transaction_id": "NOLINES", "customer_id": member,
            "occurred_at": datetime.now(UTC).isoformat(), "amount": 50_000}, headers=auth(till.admin))
        assert response.status_code == 201, response.text
        assert till.progress(member) == {"visits": (1, 0), "ice-cream": (0, 0)}

    def test_validity_window_in_business_dates(self, client: TestClient, session: Session) -> None:
        # TUESDAY is 2026-03-10 12:00 in Hồ Chí Minh City.
        use_cards(session, [{**ICE_CREAM, "valid_until": "2026-03-09"},
                            {**DOZEN, "valid_from": "2026-03-10", "valid_until": "2026-03-10"}])
        till = Till(client, session)
        member = till.member()
        till.sell(member, cone(2), at=TUESDAY)
        assert till.progress(member) == {"ice-cream": (0, 0), "dozen": (2, 0)}
        assert not till.cards(member)["ice-cream"]["active"]

    def test_anonymous_sales_and_sales_touching_no_card_write_nothing(self, client: TestClient,
                                                                     session: Session) -> None:
        use_cards(session, [ICE_CREAM])
        till = Till(client, session)
        till.sell(None, cone(3))
        member = till.member()
        till.sell(member, water(3))
        with reading(session) as reader:
            assert reader.scalar(select(func.count()).select_from(StampEvent)) == 0


class TestCompletion:
    def test_extra_stamps_carry_over_and_one_sale_can_complete_several_cards(self, client: TestClient,
                                                                           session: Session) -> None:
        use_cards(session, [ICE_CREAM])
        till = Till(client, session)
        member = till.member()
        till.sell(member, cone(3))
        receipt = till.sell(member, cone(9))  # 12 stamps: two cards complete, 2 carry over
        assert vouchers_on(receipt) == [("voucher", "stamp_card:ice-cream")] * 2
        assert till.progress(member) == {"ice-cream": (2, 2)}
        assert [card["card_id"] for card in till.cards(member).values()] == ["ice-cream"]
        stamps_consistent(session, member)

    def test_out_of_stock_leaves_the_card_full_until_a_unit_comes_back(self, client: TestClient,
                                                                       session: Session) -> None:
        use_cards(session, [ICE_CREAM])
        session.execute(update(Reward).where(Reward.code == "FREE-CONE").values(stock=0))
        session.commit()
        till = Till(client, session)
        member = till.member()
        assert till.sell(member, cone(6))["instant_rewards"] == []
        card = till.cards(member)["ice-cream"]
        assert (card["stamps"], card["stamps_missing"], card["completed"]) == (6, 0, 0)
        session.execute(update(Reward).where(Reward.code == "FREE-CONE").values(stock=1))
        session.commit()
        assert vouchers_on(till.sell(member, cup())) == [("voucher", "stamp_card:ice-cream")]
        assert till.progress(member) == {"ice-cream": (2, 1)}
        with reading(session) as reader:
            assert reader.scalar(select(Reward.stock).where(Reward.code == "FREE-CONE")) == 0
        stamps_consistent(session, member)

    def test_a_cancelled_granted_voucher_refunds_no_points(self, client: TestClient, session: Session) -> None:
        use_cards(session, [ICE_CREAM])
        till = Till(client, session)
        member = till.member()
        [reward] = till.sell(member, cone(5))["instant_rewards"]
        cancelled = client.post(f"/v1/vouchers/{reward['voucher_code']}/cancel", headers=auth(till.admin))
        assert cancelled.status_code == 200, cancelled.text
        assert cancelled.json()["status"] == "cancelled"
        assert till.vouchers(member) == [("FREE-CONE", "cancelled", 0)]
        assert till.progress(member) == {"ice-cream": (0, 1)}
        assert_ledger_ok(session)


class TestRuleGivenStamps:
    def test_double_stamps_on_tuesdays(self, client: TestClient, session: Session) -> None:
        use_cards(session, [ICE_CREAM, DOZEN], rules=[
            {"id": "tuesday", "name": "Double stamps on Tuesdays", "when": {"weekdays": ["tue"]},
             "give": {"stamp": {"card": "ice-cream", "times": 2}}}])
        till = Till(client, session)
        member = till.member()
        till.sell(member, cone(2), at=TUESDAY)
        till.sell(member, cone(1))  # a Wednesday
        assert till.progress(member) == {"ice-cream": (5 % 5, 1), "dozen": (3, 0)}
        till.sell(member, water(), at=TUESDAY)  # no ice cream: nothing to double
        assert till.progress(member) == {"ice-cream": (0, 1), "dozen": (3, 0)}

    def test_extra_stamps_need_no_counting_line_and_give_no_points(self, client: TestClient,
                                                                 session: Session) -> None:
        use_cards(session, [ICE_CREAM], rules=[
            {"id": "big", "name": "Big basket", "when": {"min_spend": 30_000},
             "give": {"stamp": {"card": "ice-cream", "extra": 2}}},
            {"id": "again", "name": "Twice", "when": {"min_spend": 30_000},
             "give": {"stamp": {"card": "ice-cream", "times": 3}}}])
        till = Till(client, session)
        member = till.member()
        receipt = till.sell(member, water(3))
        assert till.progress(member) == {"ice-cream": (2, 0)}
        assert [a["rule_id"] for a in receipt["points_breakdown"]] == []
        till.sell(member, cone(1), water())  # 2 + (1 stamp x3 + 2) = 7: completes, 2 carry over
        assert till.progress(member) == {"ice-cream": (2, 1)}

    def test_rules_with_member_conditions(self, client: TestClient, session: Session) -> None:
        use_cards(session, [ICE_CREAM], rules=[
            {"id": "bday", "name": "Birthday stamp", "when": {"birthday_month": True},
             "give": {"stamp": {"card": "ice-cream", "extra": 1}}}])
        till = Till(client, session)
        born = make_customer(session, birthday="1990-03-20").id
        other = make_customer(session, birthday="1990-07-20").id
        till.sell(born, cone())
        till.sell(other, cone())
        assert till.progress(born)["ice-cream"][0] == 2
        assert till.progress(other)["ice-cream"][0] == 1


class TestExactlyOnce:
    def test_a_replayed_sale_prints_the_same_receipt_and_stamps_once(self, client: TestClient,
                                                                     session: Session) -> None:
        use_cards(session, [ICE_CREAM])
        till = Till(client, session)
        member = till.member()
        till.sell(member, cone(4))
        first = till.sell(member, cone(2), pos_id="REPLAY")
        again = till.sell(member, cone(2), pos_id="REPLAY", expect=200)
        assert again["instant_rewards"] == first["instant_rewards"] != []
        assert till.progress(member) == {"ice-cream": (1, 1)}
        shown = client.get(f"/v1/transactions/{first['id']}", headers=auth(till.admin)).json()
        assert shown["instant_rewards"] == first["instant_rewards"]
        stamps_consistent(session, member)

    def test_the_general_path_stamps_too(self, client: TestClient, session: Session) -> None:
        """A sale paid partly with points goes through the general path, not the hot path."""
        use_cards(session, [ICE_CREAM])
        till = Till(client, session)
        member = till.member()
        give_points(session, member, 10)
        body = till.sale_body(member, [cone(5)])
        body["redeem_points"] = 10
        response = client.post("/v1/transactions", json=body, headers=auth(till.admin))
        assert response.status_code == 201, response.text
        assert vouchers_on(response.json()) == [("voucher", "stamp_card:ice-cream")]
        assert till.progress(member) == {"ice-cream": (0, 1)}
        assert_ledger_ok(session)

    def test_the_unique_key_refuses_a_second_stamping(self, client: TestClient, session: Session) -> None:
        use_cards(session, [ICE_CREAM])
        till = Till(client, session)
        member = till.member()
        receipt = till.sell(member, cone())
        sale = effects.Sale(transaction_id=receipt["id"], pos_transaction_id="x", store_id="HN01",
                            store_kind="retail", customer_id=member, occurred_at=datetime.now(UTC), amount=25_000,
                            lines=[Line.model_validate(cone())], points_earned=0, actor="test",
                            now=datetime.now(UTC))
        with pytest.raises(IntegrityError):
            effects.after_purchase(session, program_at(session), sale)
        session.rollback()


class TestProgress:
    def test_unknown_customer_is_404_and_summary_shows_the_cards(self, client: TestClient,
                                                                session: Session) -> None:
        use_cards(session, [ICE_CREAM, DOZEN])
        till = Till(client, session)
        missing = client.get("/v1/customers/999999/stamp-cards", headers=auth(till.admin))
        assert missing.status_code == 404
        assert missing.headers["content-type"] == "application/problem+json"
        member = till.member()
        till.sell(member, cone(3))
        summary = client.get(f"/v1/customers/{member}/summary", headers=auth(till.admin)).json()
        assert [(c["card_id"], c["stamps"], c["stamps_missing"], c["reward"]) for c in summary["stamp_cards"]] == [
            ("ice-cream", 3, 2, "FREE-CONE"), ("dozen", 3, 9, "DOUBLE-SUNDAE")]

    def test_cards_of_an_earlier_program_stay_visible(self, client: TestClient, session: Session) -> None:
        use_cards(session, [ICE_CREAM])
        till = Till(client, session)
        member = till.member()
        till.sell(member, cone(2))
        use_cards(session, [DOZEN])
        cards = till.cards(member)
        assert list(cards) == ["dozen", "ice-cream"]
        assert (cards["ice-cream"]["stamps"], cards["ice-cream"]["active"], cards["ice-cream"]["reward"]) == (
            2, False, None)
