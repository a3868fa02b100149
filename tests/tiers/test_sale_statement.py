"""On PostgreSQL the common sale's own statement stores the member's tier metric (hotpath.py, one round
trip fewer): member by member it must leave the same tier rows and history as the general path, which
runs tiers/repository.note_metric after the sale."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, event, select
from sqlalchemy.orm import Session

from loyalty.models.tiers import MemberTier, TierHistory
from loyalty.transactions.schemas import PurchaseIn, ReturnIn
from loyalty.transactions.service import record_purchase, register_return
from tests.factories import make_customer, make_store, purchase_body
from tests.readers import reading
from tests.tiers.helpers import use_tiers

# Amounts that climb MEMBER -> SILVER -> GOLD under each metric's thresholds (tests/tiers/helpers.py),
# with a zero-amount sale and a return on the way.
AMOUNTS = [0, 3_000_000, 2_500_000, 800_000, 9_000_000, 6_000_000, 1_200_000, 4_000_000, 2_000_000,
           3_000_000, 5_000_000, 700_000]


def _tier_rows(session: Session, customer_id: int) -> dict[str, Any]:
    with reading(session) as reader:
        row = reader.execute(select(MemberTier.tier, MemberTier.qualified_value)
                             .where(MemberTier.customer_id == customer_id)).one_or_none()
        history = reader.execute(select(TierHistory.from_tier, TierHistory.to_tier, TierHistory.reason)
                                 .where(TierHistory.customer_id == customer_id).order_by(TierHistory.id)).all()
    return {"row": tuple(row) if row else None, "history": [tuple(h) for h in history]}


def _sell(session: Session, customer_id: int, *, hot_path: bool, tag: str) -> list[dict[str, Any]]:
    """The sales of AMOUNTS (the fourth one returned in part after it), the tier state after each."""
    seen = []
    start = datetime.now(UTC) - timedelta(minutes=len(AMOUNTS) + 1)
    for n, amount in enumerate(AMOUNTS):
        at = start + timedelta(minutes=n)
        data = PurchaseIn.model_validate(purchase_body(customer_id, amount, pos_id=f"{tag}-{n}", occurred_at=at))
        recorded = record_purchase(session, data, actor="test", hot_path=hot_path)
        session.commit()
        if n == 3:
            register_return(session, recorded.body.id, ReturnIn(transaction_id=f"{tag}-r", occurred_at=at,
                                                                amount=amount // 2), actor="test")
            session.commit()
        seen.append(_tier_rows(session, customer_id))
    return seen


@pytest.mark.parametrize("metric", ["spend", "points_earned", "purchases"])
def test_the_sale_statement_stores_the_tier_metric_as_the_general_path(session: Session, engine: Engine,
                                                                       metric: str) -> None:
    make_store(session)
    use_tiers(session, metric=metric)
    fast, general = make_customer(session), make_customer(session)
    session.commit()
    metric_updates: list[str] = []

    def note(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "qualified_value=" in statement.replace(" ", "") and statement.lstrip().upper().startswith("UPDATE"):
            metric_updates.append(statement)

    event.listen(engine, "before_cursor_execute", note)
    try:
        through_sale = _sell(session, fast.id, hot_path=True, tag="fast")
    finally:
        event.remove(engine, "before_cursor_execute", note)
    through_general = _sell(session, general.id, hot_path=False, tag="general")
    assert through_sale == through_general
    assert through_sale[-1]["row"] is not None and through_sale[-1]["row"][0] == "GOLD"  # the climb happened
    # PostgreSQL stores the metric in the sale's statement (only a member's first sale, without a tier
    # row yet, goes the usual way); SQLite runs note_metric after each sale.
    expected = 0 if engine.dialect.name == "postgresql" else len(AMOUNTS)
    assert len(metric_updates) == expected
