"""On PostgreSQL the common sale's own statement writes its stamps (hotpath.py, one round trip fewer than
stamps/repository.add_stamps after it): member by member, cards, stamp events, vouchers and receipts must
be what the general path writes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from loyalty.models import TransactionInstantReward
from loyalty.models.rewards import Reward, Voucher
from loyalty.models.stamps import MemberStampCard, StampEvent
from loyalty.programs.schemas import parse_program
from loyalty.programs.service import apply_program
from loyalty.stamps import repository
from loyalty.transactions.schemas import PurchaseIn
from loyalty.transactions.service import record_purchase
from tests.factories import make_customer, make_store, purchase_body
from tests.readers import reading
from tests.stamps.helpers import DOZEN, ICE_CREAM, cone, cup, program_data, stamps_consistent, water
from tests.tiers.helpers import tier_section

VISIT = {"id": "visit", "name": "Ten visits", "counts": {}, "per": "purchase",
         "stamps_to_complete": 3, "reward": "FREE-CONE"}
# Line sets: completions (one sale fills a card and starts the next), sales no card counts, no lines.
SALES: list[list[dict[str, Any]]] = [[cone(2)], [water()], [], [cup(4), cone(3)], [cone(1)], [water(2), cup(1)],
                                     [cone(6)], [], [cup(2)], [cone(12)], [water()], [cone(1), cup(1)]]


def _add_tiers(data: dict[str, Any]) -> None:
    data["tiers"] = tier_section()
    data["rewards"] = [*data["rewards"], {"code": "LOUNGE", "name": "Lounge", "kind": "free_product",
                                          "sku": "LOUNGE", "points_cost": 10}]


def _state(session: Session, customer_id: int) -> dict[str, Any]:
    with reading(session) as reader:
        cards = reader.execute(
            select(MemberStampCard.card_id, MemberStampCard.card_no, MemberStampCard.stamps, MemberStampCard.target,
                   MemberStampCard.completed_at.is_not(None), Reward.code)
            .outerjoin(Voucher, Voucher.id == MemberStampCard.voucher_id)
            .outerjoin(Reward, Reward.id == Voucher.reward_id)
            .where(MemberStampCard.customer_id == customer_id)
            .order_by(MemberStampCard.card_id, MemberStampCard.card_no)).all()
        events = reader.execute(select(StampEvent.card_id, StampEvent.kind, StampEvent.stamps)
                                .where(StampEvent.customer_id == customer_id).order_by(StampEvent.id)).all()
        vouchers = reader.execute(select(Reward.code, Voucher.status, Voucher.points_spent)
                                  .join(Reward, Reward.id == Voucher.reward_id)
                                  .where(Voucher.customer_id == customer_id).order_by(Voucher.id)).all()
    return {"cards": [tuple(c) for c in cards], "events": [tuple(e) for e in events],
            "vouchers": [tuple(v) for v in vouchers]}


def _sell(session: Session, customer_id: int, *, hot_path: bool, tag: str) -> list[Any]:
    seen: list[Any] = []
    start = datetime.now(UTC) - timedelta(minutes=len(SALES) + 1)
    for n, lines in enumerate(SALES):
        amount = sum(line["quantity"] * line["unit_price"] for line in lines) or 90_000
        data = PurchaseIn.model_validate(purchase_body(customer_id, amount, pos_id=f"{tag}-{n}",
                                                       occurred_at=start + timedelta(minutes=n), lines=lines))
        body = record_purchase(session, data, actor="test", hot_path=hot_path).body
        session.commit()
        with reading(session) as reader:
            stored = reader.execute(select(TransactionInstantReward.kind, TransactionInstantReward.source,
                                           TransactionInstantReward.name)
                                    .where(TransactionInstantReward.transaction_id == body.id)
                                    .order_by(TransactionInstantReward.reward_no)).all()
        seen.append(([(r.kind, r.source, r.name, r.voucher_code is not None) for r in body.instant_rewards],
                     [tuple(s) for s in stored], body.points_earned, _state(session, customer_id)))
    stamps_consistent(session, customer_id)
    return seen


@pytest.mark.parametrize("with_tiers", [False, True], ids=["cards", "cards and tiers"])
def test_the_sale_statement_stamps_as_the_general_path(session: Session, engine: Engine,
                                                       monkeypatch: pytest.MonkeyPatch, with_tiers: bool) -> None:
    make_store(session)
    data = program_data([ICE_CREAM, DOZEN, VISIT])
    if with_tiers:
        _add_tiers(data)
    apply_program(session, parse_program(data), "test", actor="test", effective_from=datetime(2000, 1, 1, tzinfo=UTC))
    fast, general = make_customer(session), make_customer(session)
    session.commit()
    separate: list[int] = []
    add_stamps = repository.add_stamps

    def counted(*args: Any, **kwargs: Any) -> Any:
        separate.append(1)
        return add_stamps(*args, **kwargs)

    monkeypatch.setattr(repository, "add_stamps", counted)
    through_sale = _sell(session, fast.id, hot_path=True, tag="fast")
    stamped_apart = len(separate)
    through_general = _sell(session, general.id, hot_path=False, tag="general")
    assert through_sale == through_general
    assert through_sale[-1][3]["vouchers"]  # cards did complete on the way
    # Every sale stamps the visit card: PostgreSQL writes it in the sale's statement, SQLite apart.
    assert stamped_apart == (0 if engine.dialect.name == "postgresql" else len(SALES))
    assert len(separate) == stamped_apart + len(SALES)  # the general path stamps apart


def test_a_stamp_rule_on_member_facts_stamps_after_the_sale(session: Session, engine: Engine,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    # Its facts (the tier) are read after the sale's upgrade, so the stamps cannot be decided before it.
    make_store(session)
    rule = {"id": "gold-double", "name": "Gold members stamp twice", "when": {"tiers": ["GOLD"]},
            "give": {"stamp": {"card": "ice-cream", "times": 2}}}
    data = program_data([ICE_CREAM], rules=[rule])
    _add_tiers(data)
    apply_program(session, parse_program(data), "test", actor="test", effective_from=datetime(2000, 1, 1, tzinfo=UTC))
    member = make_customer(session)
    session.commit()
    separate: list[int] = []
    add_stamps = repository.add_stamps

    def counted(*args: Any, **kwargs: Any) -> Any:
        separate.append(1)
        return add_stamps(*args, **kwargs)

    monkeypatch.setattr(repository, "add_stamps", counted)
    # 25,000,000 crosses GOLD (20,000,000): the rule already doubles this sale's stamps.
    data_in = PurchaseIn.model_validate(purchase_body(member.id, 25_000_000, lines=[cone(1, price=25_000_000)]))
    record_purchase(session, data_in, actor="test")
    session.commit()
    assert separate == [1]
    assert _state(session, member.id)["events"] == [("ice-cream", "purchase", 2)]
