"""Returns take stamps back: from the open card, then across a completed card whose voucher is unused."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from loyalty.models.rewards import Reward
from loyalty.models.stamps import StampEvent
from tests.factories import auth
from tests.readers import assert_ledger_ok, reading
from tests.stamps.helpers import DOZEN, ICE_CREAM, Till, cone, cup, stamps_consistent, use_cards, water


def return_events(session: Session, purchase_id: int) -> list[tuple[str, int]]:
    with reading(session) as reader:
        return [(c, s) for c, s in reader.execute(
            select(StampEvent.card_id, StampEvent.stamps)
            .where(StampEvent.purchase_id == purchase_id, StampEvent.kind == "return").order_by(StampEvent.id))]


def stock(session: Session, code: str) -> int | None:
    with reading(session) as reader:
        return reader.scalar(select(Reward.stock).where(Reward.code == code))


class TestFromTheOpenCard:
    def test_returned_lines_take_their_stamps_off(self, client: TestClient, session: Session) -> None:
        use_cards(session, [ICE_CREAM, DOZEN])
        till = Till(client, session)
        member = till.member()
        sale = till.sell(member, cone(2), cup(2), water())
        till.take_back(sale["id"], cup(1), water())
        assert till.progress(member) == {"ice-cream": (3, 0), "dozen": (3, 0)}
        assert return_events(session, sale["id"]) == [("ice-cream", -1), ("dozen", -1)]
        stamps_consistent(session, member)

    def test_never_more_than_the_sale_gave(self, client: TestClient, session: Session) -> None:
        use_cards(session, [ICE_CREAM])
        till = Till(client, session)
        member = till.member()
        first = till.sell(member, cone(1), water(5))
        till.sell(member, cone(3))
        # The POS claims 2 cones back from a sale that had 1: only that sale's one stamp comes off.
        till.take_back(first["id"], amount=25_000)
        till.take_back(first["id"], water(5))
        assert till.progress(member) == {"ice-cream": (3, 0)}
        stamps_consistent(session, member)

    def test_without_lines_the_returned_share_rounded_up(self, client: TestClient, session: Session) -> None:
        use_cards(session, [{**ICE_CREAM, "stamps_to_complete": 50}])
        till = Till(client, session)
        member = till.member()
        sale = till.sell(member, cone(5))  # 125,000 for 5 stamps
        till.take_back(sale["id"], amount=30_000)  # 24% of the sale: 1.2 stamps -> 2
        assert till.progress(member) == {"ice-cream": (3, 0)}
        till.take_back(sale["id"], amount=95_000)  # the rest: all of it
        assert till.progress(member) == {"ice-cream": (0, 0)}
        assert return_events(session, sale["id"]) == [("ice-cream", -2), ("ice-cream", -3)]

    def test_a_full_return_takes_rule_given_and_per_purchase_stamps(self, client: TestClient,
                                                                    session: Session) -> None:
        use_cards(session, [{**ICE_CREAM, "stamps_to_complete": 50},
                            {**DOZEN, "per": "purchase", "stamps_to_complete": 5}],
                  rules=[{"id": "x", "name": "x", "give": {"stamp": {"card": "ice-cream", "extra": 3}}}])
        till = Till(client, session)
        member = till.member()
        sale = till.sell(member, cone(2), water())
        assert till.progress(member) == {"ice-cream": (5, 0), "dozen": (1, 0)}
        till.take_back(sale["id"], cone(1))  # lines: the cone's stamp; the per-purchase stamp stays
        assert till.progress(member) == {"ice-cream": (4, 0), "dozen": (1, 0)}
        till.take_back(sale["id"], cone(1), water())  # the last of it: everything left
        assert till.progress(member) == {"ice-cream": (0, 0), "dozen": (0, 0)}
        stamps_consistent(session, member)

    def test_a_per_purchase_stamp_stays_until_the_sale_is_returned_in_full(self, client: TestClient,
                                                                          session: Session) -> None:
        use_cards(session, [{**ICE_CREAM, "per": "purchase", "stamps_to_complete": 5}])
        till = Till(client, session)
        member = till.member()
        sale = till.sell(member, cone(2), water())
        till.take_back(sale["id"], amount=30_000)  # no lines
        till.take_back(sale["id"], cone(1))
        assert till.progress(member) == {"ice-cream": (1, 0)}
        till.take_back(sale["id"], amount=5_000)  # the rest
        assert till.progress(member) == {"ice-cream": (0, 0)}
        stamps_consistent(session, member)

    def test_a_replayed_return_takes_stamps_once(self, client: TestClient, session: Session) -> None:
        use_cards(session, [ICE_CREAM])
        till = Till(client, session)
        member = till.member()
        sale = till.sell(member, cone(3))
        body = {"transaction_id": "R-SAME", "occurred_at": "2026-03-11T05:00:00+00:00", "amount": 25_000,
                "lines": [cone(1)]}
        url = f"/v1/transactions/{sale['id']}/returns"
        first = client.post(url, json=body, headers=auth(till.admin))
        again = client.post(url, json=body, headers=auth(till.admin))
        assert (first.status_code, again.status_code) == (201, 200)
        assert till.progress(member) == {"ice-cream": (2, 0)}


class TestAcrossACompletedCard:
    def test_an_unused_voucher_is_cancelled_and_the_card_reopens(self, client: TestClient,
                                                                  session: Session) -> None:
        use_cards(session, [ICE_CREAM], rewards=[{"code": "FREE-CONE", "name": "Free cone", "kind": "free_product",
                                                  "sku": "KEM-CONE", "points_cost": 30, "stock": 10}])
        till = Till(client, session)
        member = till.member()
        till.sell(member, cone(3))
        sale = till.sell(member, cone(3))  # completes the card, 1 carries over
        assert till.progress(member) == {"ice-cream": (1, 1)}
        assert stock(session, "FREE-CONE") == 9
        till.take_back(sale["id"], cone(2))  # 1 off the new card, 1 off the completed one
        assert till.progress(member) == {"ice-cream": (4, 0)}
        assert till.vouchers(member) == [("FREE-CONE", "cancelled", 0)]
        assert stock(session, "FREE-CONE") == 10
        assert return_events(session, sale["id"]) == [("ice-cream", -2)]
        # Stamping again completes the reopened card and grants a new voucher.
        assert [r["source"] for r in till.sell(member, cone())["instant_rewards"]] == ["stamp_card:ice-cream"]
        assert till.progress(member) == {"ice-cream": (0, 1)}
        stamps_consistent(session, member)
        assert_ledger_ok(session)

    def test_a_used_voucher_stays_and_the_card_does_not_go_below_zero(self, client: TestClient,
                                                                       session: Session) -> None:
        use_cards(session, [ICE_CREAM])
        till = Till(client, session)
        member = till.member()
        sale = till.sell(member, cone(6))
        [reward] = sale["instant_rewards"]
        assert client.post(f"/v1/vouchers/{reward['voucher_code']}/redeem", json={"store_id": "HN01"},
                           headers=auth(till.admin)).status_code == 200
        till.take_back(sale["id"], cone(4))  # only the 1 carried over can come off; 3 are forgiven
        assert till.progress(member) == {"ice-cream": (0, 1)}
        assert till.vouchers(member) == [("FREE-CONE", "redeemed", 0)]
        assert return_events(session, sale["id"]) == [("ice-cream", -1)]
        stamps_consistent(session, member)

    def test_a_big_return_reopens_several_cards(self, client: TestClient, session: Session) -> None:
        use_cards(session, [ICE_CREAM])
        till = Till(client, session)
        member = till.member()
        sale = till.sell(member, cone(12))  # two cards, 2 carried over
        till.take_back(sale["id"], cone(10))
        assert till.progress(member) == {"ice-cream": (2, 0)}
        assert till.vouchers(member) == [("FREE-CONE", "cancelled", 0)] * 2
        stamps_consistent(session, member)
        assert_ledger_ok(session)
