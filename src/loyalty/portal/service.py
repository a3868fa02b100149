"""What the portal shows and does for the logged-in member, through the domains' own services.

Every function takes the member's customer id from the session (never from a URL) and checks
that anything addressed by a URL (a voucher code, a ticket id) is theirs; another member's is
simply not found, so a guessed code tells nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from loyalty.customers.repository import identities_of
from loyalty.errors import NotFound, ValidationFailed
from loyalty.ledger import service as ledger
from loyalty.members.schemas import MemberSummary
from loyalty.members.summary import member_summary
from loyalty.models import Customer
from loyalty.models.portal import PortalRedemption
from loyalty.models.rewards import Reward, Voucher
from loyalty.models.service import Ticket
from loyalty.programs.service import program_at
from loyalty.referrals import service as referrals
from loyalty.rewards import repository as rewards_repo
from loyalty.rewards import service as rewards
from loyalty.rewards.schemas import VoucherOut
from loyalty.service import tickets
from loyalty.service.schemas import CustomerTicket, TicketIn
from loyalty.service.staff import Scope
from loyalty.tiers import service as tiers

TICKET_KINDS = ("complaint", "feedback")
HISTORY_PAGE = 30


def actor(customer_id: int) -> str:
    return f"member:{customer_id}"


def require_member(session: Session, customer_id: int) -> Customer:
    customer = session.get(Customer, customer_id)
    if customer is None:
        raise NotFound(f"customer {customer_id} does not exist")
    return customer


def home(session: Session, customer_id: int, now: datetime) -> MemberSummary:
    return member_summary(session, customer_id, now)


def tier_names(session: Session, now: datetime) -> dict[str, str]:
    """The program's tier codes and the names members see ("SILVER": "Bạc"); empty without tiers."""
    levels = program_at(session, now).definition.tiers
    return {level.code: level.name for level in levels.levels} if levels is not None else {}


@dataclass(frozen=True, slots=True)
class CatalogueItem:
    code: str
    name: str
    description: str | None
    kind: str
    amount: int | None
    percent: int | None
    points_cost: int
    stock: int | None
    affordable: bool
    points_missing: int


def catalogue(session: Session, customer_id: int, now: datetime) -> list[CatalogueItem]:
    """Rewards this member may redeem now (offered, in stock, their tier, under the limit), cheapest first."""
    available = ledger.balance_view(session, customer_id, now).available
    program = program_at(session, now)
    tier = tiers.member_tier(session, customer_id, now) if program.definition.tiers is not None else None
    items = []
    offered = rewards_repo.list_rewards(session, include_inactive=False)
    held = _held_counts(session, customer_id, [r.id for r in offered if r.per_member_limit is not None])
    for reward in offered:
        if reward.valid_from is not None and now < reward.valid_from:
            continue
        if reward.valid_until is not None and now >= reward.valid_until:
            continue
        if reward.stock is not None and reward.stock <= 0:
            continue
        if reward.min_tier is not None and not tiers.meets_tier(program, tier, reward.min_tier):
            continue
        if reward.per_member_limit is not None and held.get(reward.id, 0) >= reward.per_member_limit:
            continue
        missing = max(0, reward.points_cost - available)
        items.append(CatalogueItem(reward.code, reward.name, reward.description, reward.kind, reward.amount,
                                   reward.percent, reward.points_cost, reward.stock, missing == 0, missing))
    items.sort(key=lambda item: (item.points_cost, item.code))
    return items


def _held_counts(session: Session, customer_id: int, reward_ids: list[int]) -> dict[int, int]:
    if not reward_ids:
        return {}
    counts: dict[int, int] = {}
    for reward_id in session.scalars(select(Voucher.reward_id).where(
            Voucher.customer_id == customer_id, Voucher.reward_id.in_(reward_ids), Voucher.status != "cancelled")):
        counts[reward_id] = counts.get(reward_id, 0) + 1
    return counts


def reward(session: Session, customer_id: int, code: str, now: datetime) -> CatalogueItem:
    """One reward of the member's catalogue (for the confirmation page); 404 if it is not on offer to them."""
    for item in catalogue(session, customer_id, now):
        if item.code == code:
            return item
    raise NotFound(f"reward {code!r} is not on offer to you")


def existing_redemption(session: Session, customer_id: int, request_key: str) -> Voucher | None:
    voucher_id = session.scalar(select(PortalRedemption.voucher_id).where(
        PortalRedemption.customer_id == customer_id, PortalRedemption.request_key == request_key))
    return None if voucher_id is None else session.get(Voucher, voucher_id)


def redeem(
    session: Session, customer_id: int, reward_code: str, request_key: str, now: datetime,
) -> tuple[Voucher, bool]:
    """Spends the member's points on a reward: (voucher, True) the first time for this confirmation form.

    The same form sent again (double click, back and resend) finds its first voucher: (voucher, False).
    Two copies racing both issue, and the loser's UNIQUE violation on (customer, request key)
    rolls its whole transaction back, points included: the caller then reads the winner's voucher.
    """
    if not 16 <= len(request_key) <= 64 or not request_key.isalnum():
        raise ValidationFailed("this form has expired; open the reward again")
    found = existing_redemption(session, customer_id, request_key)
    if found is not None:
        return found, False
    voucher = rewards.issue_voucher(session, customer_id=customer_id, reward_code=reward_code,
                                    actor=actor(customer_id), now=now)
    session.add(PortalRedemption(customer_id=customer_id, request_key=request_key, voucher_id=voucher.id,
                                 created_at=now))
    session.flush()
    return voucher, True


def vouchers(session: Session, customer_id: int, now: datetime, *, limit: int = 100) -> list[VoucherOut]:
    return rewards.customer_vouchers(session, customer_id, status=None, limit=limit, now=now)


def voucher(session: Session, customer_id: int, code: str, now: datetime) -> VoucherOut:
    """One of the member's own vouchers; anyone else's code is not found."""
    normal = rewards.normalise_voucher_code(code)
    found = rewards_repo.voucher_by_code(session, normal) if normal else None
    if found is None or found.customer_id != customer_id:
        raise NotFound("no such voucher")
    return rewards.voucher_out(session, found, now, session.get(Reward, found.reward_id))


def history(session: Session, customer_id: int, *, before: int | None) -> tuple[list[ledger.HistoryItem], int | None]:
    items = ledger.history(session, customer_id, before=before, limit=HISTORY_PAGE + 1)
    more = len(items) > HISTORY_PAGE
    items = items[:HISTORY_PAGE]
    return items, (items[-1].entry_id if more and items else None)


def member_tickets(session: Session, customer_id: int) -> list[CustomerTicket]:
    return tickets.customer_tickets(session, customer_id, limit=100)


def member_ticket(session: Session, customer_id: int, ticket_id: int) -> CustomerTicket:
    for ticket in tickets.customer_tickets(session, customer_id, limit=1000):
        if ticket.id == ticket_id:
            return ticket
    raise NotFound("no such ticket")


def open_ticket(session: Session, customer_id: int, *, kind: str, category: str, subject: str, description: str,
                store_id: str | None, now: datetime) -> Ticket:
    """A complaint (normal priority) or feedback (low) from the member, through the service desk's own rules."""
    if kind not in TICKET_KINDS:
        raise ValidationFailed("choose complaint or feedback", field="kind")
    data = TicketIn.model_validate({
        "customer_id": customer_id, "store_id": store_id or None, "channel": "web", "category": category,
        "priority": "normal" if kind == "complaint" else "low", "subject": subject, "description": description})
    scope = Scope("system", None, actor(customer_id), None)
    try:
        return tickets.create_ticket(session, data, scope, now)
    except IntegrityError:  # pragma: no cover - the service checks the store first
        raise ValidationFailed("that store does not exist", field="store_id") from None


def identities(session: Session, customer_id: int) -> list[tuple[str, str]]:
    """The member's phone numbers, e-mail addresses and cards, as (kind, value)."""
    return [(i.kind, i.value) for i in identities_of(session, customer_id) if i.kind in ("phone", "email", "card")]


@dataclass(frozen=True, slots=True)
class Referral:
    code: str
    share_url: str
    referred: int
    qualified: int


def referral(session: Session, customer_id: int, now: datetime) -> Referral | None:
    """The member's referral code, share link and how many friends joined and bought (L13); None when
    the program has no referrals."""
    if program_at(session, now).definition.referrals is None:
        return None
    out = referrals.referral_out(session, customer_id)
    return Referral(code=out.code, share_url=out.share_link, referred=out.counts.referred,
                    qualified=out.counts.rewarded + out.counts.capped)
