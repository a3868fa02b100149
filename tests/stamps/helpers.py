"""A shop with stamp cards, and a till that sells and takes back through the API."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from loyalty.models.rewards import Reward, Voucher
from loyalty.models.stamps import MemberStampCard, StampEvent
from loyalty.programs.schemas import parse_program
from loyalty.programs.service import apply_program, default_program
from tests.factories import auth, make_customer, make_key, make_store
from tests.readers import reading

TUESDAY = datetime(2026, 3, 10, 5, 0, tzinfo=UTC)  # 12:00 in Hồ Chí Minh City
WEDNESDAY = datetime(2026, 3, 11, 5, 0, tzinfo=UTC)

REWARDS = [
    {"code": "FREE-CONE", "name": "Free cone", "kind": "free_product", "sku": "KEM-CONE", "points_cost": 30},
    {"code": "DOUBLE-SUNDAE", "name": "Double sundae", "kind": "free_product", "sku": "KEM-SUNDAE-2",
     "points_cost": 90},
]
ICE_CREAM = {"id": "ice-cream", "name": "Buy 5 ice creams, the 6th is free", "counts": {"categories": ["ice cream"]},
             "per": "unit", "stamps_to_complete": 5, "reward": "FREE-CONE"}
DOZEN = {"id": "dozen", "name": "Buy a dozen, get a double sundae",
         "counts": {"skus": ["KEM-CONE", "KEM-CUP", "KEM-STICK"]}, "per": "unit", "stamps_to_complete": 12,
         "reward": "DOUBLE-SUNDAE"}


def cone(quantity: int = 1, price: int = 25_000) -> dict[str, Any]:
    return {"sku": "KEM-CONE", "category": "ice cream", "quantity": quantity, "unit_price": price}


def cup(quantity: int = 1) -> dict[str, Any]:
    return {"sku": "KEM-CUP", "category": "ice cream", "quantity": quantity, "unit_price": 35_000}


def water(quantity: int = 1) -> dict[str, Any]:
    return {"sku": "NUOC", "category": "drinks", "quantity": quantity, "unit_price": 10_000}


def program_data(cards: list[dict[str, Any]], rules: list[dict[str, Any]] | None = None,
                 rewards: list[dict[str, Any]] | None = REWARDS) -> dict[str, Any]:
    data = default_program().definition.model_dump(mode="json", exclude_none=True)
    data.update(stamp_cards=cards, rules=rules or [])
    if rewards is not None:
        data["rewards"] = rewards
    return data


def use_cards(session: Session, cards: list[dict[str, Any]], rules: list[dict[str, Any]] | None = None,
              rewards: list[dict[str, Any]] | None = REWARDS) -> None:
    apply_program(session, parse_program(program_data(cards, rules, rewards)), "test", actor="test",
                  effective_from=datetime(2000, 1, 1, tzinfo=UTC))
    session.commit()


_pos = itertools.count(1)


class Till:
    """Store HN01 with an admin key; sales and returns through the API."""

    def __init__(self, client: TestClient, session: Session) -> None:
        make_store(session)
        self.client, self.session = client, session
        self.admin = make_key(session)

    def member(self) -> int:
        return make_customer(self.session).id

    def sale_body(self, customer_id: int | None, lines: list[dict[str, Any]], *, at: datetime | None = None,
                  pos_id: str | None = None) -> dict[str, Any]:
        return {"store_id": "HN01", "transaction_id": pos_id or f"S-{next(_pos)}", "customer_id": customer_id,
                "occurred_at": (at or WEDNESDAY).isoformat(),
                "amount": sum(line["quantity"] * line["unit_price"] for line in lines), "lines": lines}

    def sell(self, customer_id: int | None, *lines: dict[str, Any], at: datetime | None = None,
             pos_id: str | None = None, expect: int = 201) -> dict[str, Any]:
        response = self.client.post("/v1/transactions", json=self.sale_body(customer_id, list(lines), at=at,
                                                                            pos_id=pos_id),
                                    headers=auth(self.admin))
        assert response.status_code == expect, response.text
        return dict(response.json())

    def take_back(self, purchase_id: int, *lines: dict[str, Any], amount: int | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"transaction_id": f"R-{next(_pos)}", "occurred_at": WEDNESDAY.isoformat(),
                                "amount": amount or sum(li["quantity"] * li["unit_price"] for li in lines)}
        if lines:
            body["lines"] = list(lines)
        response = self.client.post(f"/v1/transactions/{purchase_id}/returns", json=body, headers=auth(self.admin))
        assert response.status_code == 201, response.text
        return dict(response.json())

    def cards(self, customer_id: int) -> dict[str, dict[str, Any]]:
        response = self.client.get(f"/v1/customers/{customer_id}/stamp-cards", headers=auth(self.admin))
        assert response.status_code == 200, response.text
        return {card["card_id"]: card for card in response.json()["items"]}

    def progress(self, customer_id: int) -> dict[str, tuple[int, int]]:
        """card id -> (stamps on the open card, cards completed)."""
        return {card_id: (card["stamps"], card["completed"]) for card_id, card in self.cards(customer_id).items()}

    def vouchers(self, customer_id: int) -> list[tuple[str, str, int]]:
        """(reward code, status, points spent) of the member's vouchers, oldest first."""
        with reading(self.session) as reader:
            return [(code, status, spent) for code, status, spent in reader.execute(
                select(Reward.code, Voucher.status, Voucher.points_spent).join(Reward, Reward.id == Voucher.reward_id)
                .where(Voucher.customer_id == customer_id).order_by(Voucher.id))]


def stamps_consistent(session: Session, customer_id: int) -> None:
    """Summed over a member's cards of one id, stamps equal the sum of their events; one open card per id."""
    with reading(session) as reader:
        cards: dict[str, int] = {}
        open_cards: dict[str, int] = {}
        for card in reader.scalars(select(MemberStampCard).where(MemberStampCard.customer_id == customer_id)):
            cards[card.card_id] = cards.get(card.card_id, 0) + card.stamps
            if card.completed_at is None:
                open_cards[card.card_id] = open_cards.get(card.card_id, 0) + 1
            else:
                assert card.stamps == card.target and card.voucher_id is not None
        events: dict[str, int] = {}
        for event in reader.scalars(select(StampEvent).where(StampEvent.customer_id == customer_id)):
            events[event.card_id] = events.get(event.card_id, 0) + event.stamps
        assert cards == {k: v for k, v in events.items() if k in cards or v}
        assert all(n == 1 for n in open_cards.values()), open_cards
        assert set(open_cards) == set(cards)
