"""Stamping sales, taking stamps back on returns, and each member's progress (L5).

Exactly once: a sale's (or return's) stamps on a card id are one `stamp_events` row, UNIQUE per
(transaction, card). A sale's stamps go onto the open card by one atomic upsert (see
repository.py), so two sales of one member at once complete a card once, in turn; a return
locks the member's balance row first (PostgreSQL; SQLite writers are serial).

A card is full at `stamps_to_complete`: it completes, its reward's voucher is granted free of
points (the same code, stock and validity rules as issuing for points), and the next card
starts with the stamps left over. A reward that cannot be granted now (out of stock, not
offered, not in the catalogue) leaves the card full and open: its next stamping sale tries again.

Returns take the returned lines' stamps off (at most what the sale gave; a return without lines
takes the returned share, rounded up, and the last return of a sale takes whatever is left, rule-
given stamps included). A per-purchase card's stamp comes off when the sale is returned in full.
They come off the open card first. If that is not enough and the card before it was completed
by stamps now gone, its voucher is cancelled when it is still unused and the card reopens with
the rest taken off; a voucher already used (or expired) is kept, and the card cannot go below
zero: the stamps that could not be taken back are forgiven. The return's event records the
stamps actually taken off, so a member's stamps always equal the sum of their events.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, delete, func, insert, select, update
from sqlalchemy.orm import Session

from loyalty.bulk import insert_rows
from loyalty.driver import DriverStatement
from loyalty.errors import LoyaltyError
from loyalty.ledger.repository import lock_member, read_balance
from loyalty.models import Transaction
from loyalty.models.base import UTCDateTime
from loyalty.models.stamps import MemberStampCard, StampEvent
from loyalty.programs.rules import MemberFacts
from loyalty.programs.service import ActiveProgram
from loyalty.rewards import service as rewards
from loyalty.stamps import repository
from loyalty.stamps.engine import Card, engine_for
from loyalty.stamps.schemas import StampCardList, StampCardOut
from loyalty.transactions import hotpath
from loyalty.transactions.schemas import Line

if TYPE_CHECKING:
    from loyalty.transactions.effects import Returned, Sale

_C = MemberStampCard


@dataclass(frozen=True, slots=True)
class CardReward:
    """A voucher a completed card granted, for the receipt."""

    source: str
    name: str
    voucher_id: int
    voucher_code: str


def _lock(session: Session, customer_id: int) -> None:
    if session.get_bind().dialect.name == "postgresql":
        lock_member(session, customer_id)


def stamps_before_sale(program: ActiveProgram, *, store_id: str, store_kind: str, amount: int,
                       occurred_at: datetime, customer_id: int, lines: Sequence[Line]) -> dict[str, int] | None:
    """What `on_purchase` would stamp, decided before the sale is written (for the sale's own statement
    to write it); None when a stamp rule needs member facts, read after the sale's tier upgrade."""
    engine = engine_for(program.definition)
    if engine.needs_member:
        return None

    def member() -> MemberFacts | None:
        raise AssertionError("no stamp rule of this program reads member facts")

    return engine.stamps_for(store_id=store_id, store_kind=store_kind, amount=amount, occurred_at=occurred_at,
                             customer_id=customer_id, lines=lines, member=member)


def stamps_json(program: ActiveProgram, earned: dict[str, int]) -> str:
    """`earned` as the sale's statement takes it (transactions/hotpath.StampsToAdd)."""
    by_id = engine_for(program.definition).by_id
    return json.dumps([{"card_id": card_id, "stamps": n, "target": by_id[card_id].target}
                       for card_id, n in earned.items()])


def on_purchase(session: Session, program: ActiveProgram, sale: Sale,
                stamped: tuple[dict[str, int], list[repository.OpenCard]] | None = None) -> list[CardReward]:
    """Stamps a member's sale; returns the vouchers of the cards it completed. `stamped`: what the sale's
    own statement already stamped (the stamps of `stamps_before_sale`, and the cards they filled)."""
    engine = engine_for(program.definition)
    if stamped is not None:
        earned, cards = stamped
        return _completions(session, program, sale, earned, cards) if earned else []

    def member() -> MemberFacts | None:
        assert engine.rules is not None
        return hotpath.read_member_facts(session, sale.customer_id, at=sale.occurred_at,
                                         base_tier=engine.rules.base_tier)

    earned = engine.stamps_for(store_id=sale.store_id, store_kind=sale.store_kind, amount=sale.amount,
                               occurred_at=sale.occurred_at, customer_id=sale.customer_id, lines=sale.lines,
                               member=member)
    if not earned:
        return []
    cards = repository.add_stamps(
        session, transaction_id=sale.transaction_id, customer_id=sale.customer_id, program_version=program.version,
        stamps={card_id: (n, engine.by_id[card_id].target) for card_id, n in earned.items()}, now=sale.now)
    return _completions(session, program, sale, earned, cards)


def _completions(session: Session, program: ActiveProgram, sale: Sale, earned: dict[str, int],
                 cards: list[repository.OpenCard]) -> list[CardReward]:
    engine = engine_for(program.definition)
    given: list[CardReward] = []
    for card in sorted(cards, key=lambda c: list(earned).index(c.card_id)):
        if card.stamps >= card.target:  # full: the rare case, through the ORM
            given += _complete(session, program, engine.by_id[card.card_id], card, sale.customer_id, sale.actor,
                               sale.now)
    return given


def _finish_card() -> Any:
    return (update(MemberStampCard).where(MemberStampCard.id == bindparam("card_row"))
            .values(stamps=bindparam("card_stamps"), completed_at=bindparam("card_done", type_=UTCDateTime()),
                    voucher_id=bindparam("card_voucher")))


def _start_card() -> Any:
    names = ("customer_id", "card_id", "card_no", "program_version", "target", "stamps", "voucher_id")
    return insert(MemberStampCard).values(
        **{name: bindparam(f"card_{name}") for name in names},
        started_at=bindparam("card_started_at", type_=UTCDateTime()),
        completed_at=bindparam("card_completed_at", type_=UTCDateTime()))


# A full card is a sale in ten or so on a café's visit card: prebuilt, like the stamping itself.
_FINISH_CARD = DriverStatement("complete stamp card", _finish_card)
_START_CARD = DriverStatement("start stamp card", _start_card)


def _complete(session: Session, program: ActiveProgram, card: Card, full: repository.OpenCard, customer_id: int,
              actor: str, now: datetime) -> list[CardReward]:
    """Completes a full card (and any full card after it) while its reward can be granted; the stamps left
    over start the next card."""
    given: list[CardReward] = []
    current_id: int | None = full.id
    card_no, target, total = full.card_no, full.target, full.stamps
    while total >= target:
        try:
            voucher = rewards.grant_voucher(session, customer_id=customer_id, reward_code=card.reward,
                                            actor=actor, now=now)
        except LoyaltyError:
            break  # no voucher can be granted now: the card stays full and open, the next stamp retries
        given.append(CardReward(f"stamp_card:{card.id}", f"{card.name}: {voucher.reward_name}", voucher.voucher_id,
                                voucher.code))
        if current_id is not None:
            _FINISH_CARD.rows(session, {"card_row": current_id, "card_stamps": target, "card_done": now,
                                        "card_voucher": voucher.voucher_id})
        else:
            _START_CARD.rows(session, _row(customer_id, card, card_no, target, program, now)
                             | {"card_stamps": target, "card_completed_at": now, "card_voucher_id": voucher.voucher_id})
        total -= target
        current_id, card_no, target = None, card_no + 1, card.target
    if current_id is None:
        _START_CARD.rows(session, _row(customer_id, card, card_no, target, program, now)
                         | {"card_stamps": total, "card_completed_at": None, "card_voucher_id": None})
    return given


def _row(customer_id: int, card: Card, card_no: int, target: int, program: ActiveProgram,
         now: datetime) -> dict[str, object]:
    return {"card_customer_id": customer_id, "card_card_id": card.id, "card_card_no": card_no,
            "card_program_version": program.version, "card_target": target, "card_started_at": now}


# --- returns ----------------------------------------------------------------------------------

def on_return(session: Session, program: ActiveProgram, returned: Returned) -> None:
    """Takes a return's stamps off the member's cards (see the module docstring for the rules)."""
    engine = engine_for(program.definition)
    if not engine.cards:
        return  # the sale's program had no cards: it gave no stamps
    rows = session.execute(
        select(StampEvent.card_id, StampEvent.kind, func.sum(StampEvent.stamps))
        .where(StampEvent.purchase_id == returned.purchase_id).group_by(StampEvent.card_id, StampEvent.kind)).all()
    if not rows:
        return
    given: dict[str, int] = {}
    taken: dict[str, int] = {}
    for card_id, kind, stamps in rows:
        (given if kind == "purchase" else taken)[card_id] = int(stamps)
    purchase = session.get(Transaction, returned.purchase_id)
    assert purchase is not None
    everything = purchase.returned_amount >= purchase.amount
    remove: dict[str, int] = {}
    for card_id in [c.id for c in engine.cards if c.id in given] + sorted(set(given) - set(engine.by_id)):
        stamps = given[card_id]
        left = stamps + taken.get(card_id, 0)
        if left <= 0:
            continue
        card = engine.by_id.get(card_id)
        if everything:
            wanted = left
        elif card is not None and not card.per_unit:
            wanted = 0  # a per-purchase card's stamp stays until the sale is returned in full
        elif returned.lines and card is not None:
            wanted = card.stamps_for_lines(returned.lines)
        else:
            # The returned share of the sale's stamps, on the running total, rounded up like points.
            kept = stamps * (purchase.amount - purchase.returned_amount) // purchase.amount
            wanted = stamps - kept - (-taken.get(card_id, 0))
        if min(wanted, left) > 0:
            remove[card_id] = min(wanted, left)
    if not remove:
        return
    _lock(session, returned.customer_id)
    events = []
    for card_id, stamps in remove.items():
        removed = _unstamp(session, returned.customer_id, card_id, stamps, returned.now)
        events.append({"transaction_id": returned.return_id, "purchase_id": returned.purchase_id,
                       "customer_id": returned.customer_id, "card_id": card_id, "kind": "return",
                       "stamps": -removed, "created_at": returned.now})
    insert_rows(session, StampEvent, events)


def _unstamp(session: Session, customer_id: int, card_id: str, stamps: int, now: datetime) -> int:
    """Takes up to `stamps` off a member's card id; returns how many came off."""
    cards = session.execute(
        select(_C.id, _C.stamps, _C.target, _C.completed_at, _C.voucher_id)
        .where(_C.customer_id == customer_id, _C.card_id == card_id).order_by(_C.card_no.desc())).all()
    if not cards:
        return 0
    if cards[0].completed_at is not None:
        return 0  # cannot happen: completing a card always starts the next one
    removed = 0
    open_id, open_stamps = cards[0].id, cards[0].stamps
    for previous in [*cards[1:], None]:
        off = min(stamps - removed, open_stamps)
        open_stamps -= off
        removed += off
        if removed == stamps or previous is None:
            break
        # The open card is empty and stamps are still to come off: reopen the card before it if the
        # voucher it issued is unused, cancelling that voucher; otherwise the rest is forgiven.
        if previous.voucher_id is None or not rewards.withdraw_granted_voucher(session, previous.voucher_id,
                                                                              now=now):
            break
        session.execute(delete(_C).where(_C.id == open_id))
        open_id, open_stamps = previous.id, previous.target
        session.execute(update(_C).where(_C.id == open_id).values(completed_at=None, voucher_id=None,
                                                                  stamps=open_stamps))
    session.execute(update(_C).where(_C.id == open_id).values(stamps=open_stamps))
    return removed


# --- progress ---------------------------------------------------------------------------------

def progress(session: Session, program: ActiveProgram, customer_id: int, now: datetime) -> list[StampCardOut]:
    """Every card of the program in force (not started: 0 stamps), then any older card the member holds."""
    engine = engine_for(program.definition)
    rows = session.execute(
        select(_C.card_id, _C.stamps, _C.target, _C.started_at, _C.completed_at)
        .where(_C.customer_id == customer_id).order_by(_C.card_id, _C.card_no)).all()
    held: dict[str, list[tuple[int, int, datetime, datetime | None]]] = {}
    for card_id, stamps, target, started_at, completed_at in rows:
        held.setdefault(card_id, []).append((stamps, target, started_at, completed_at))
    day = now.astimezone(engine.tz).date()
    out: list[StampCardOut] = []
    order = [card.id for card in engine.cards] + sorted(set(held) - set(engine.by_id))
    for card_id in order:
        card = engine.by_id.get(card_id)
        mine = held.get(card_id, [])
        completed = [c for c in mine if c[3] is not None]
        current = next((c for c in mine if c[3] is None), None)
        stamps = current[0] if current else 0
        target = current[1] if current else card.target if card else 0
        out.append(StampCardOut(
            card_id=card_id, name=card.name if card else card_id, reward=card.reward if card else None,
            stamps=stamps, stamps_to_complete=target, stamps_missing=max(0, target - stamps),
            completed=len(completed), active=card is not None and card.open_on(day),
            started_at=current[2] if current else None,
            last_completed_at=max((c[3] for c in completed if c[3] is not None), default=None)))
    return out


def customer_cards(session: Session, program: ActiveProgram, customer_id: int, now: datetime) -> StampCardList:
    read_balance(session, customer_id)  # 404 for an unknown customer
    return StampCardList(customer_id=customer_id, items=progress(session, program, customer_id, now))


def stamped_purchases(session: Session, purchase_ids: Sequence[int]) -> set[int]:
    """Which of these sales stamped a card (imports send their returns through the service), 900 at a time."""
    found: set[int] = set()
    for start in range(0, len(purchase_ids), 900):
        found.update(session.scalars(select(StampEvent.purchase_id).distinct()
                                     .where(StampEvent.purchase_id.in_(purchase_ids[start:start + 900]))))
    return found
