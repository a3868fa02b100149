"""The member's pages: home, rewards and redeeming, vouchers with their QR code, history, tickets, profile."""

from __future__ import annotations

import secrets
from typing import Annotated, Any

from fastapi import Form, Query, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from loyalty.api.limits import MAX_ID
from loyalty.db import run_in_transaction, session_factory
from loyalty.errors import InsufficientPoints, LoyaltyError, NotFound, ValidationFailed
from loyalty.models.rewards import Voucher
from loyalty.models.service import TICKET_CATEGORIES
from loyalty.portal import service as portal
from loyalty.portal.i18n import Translator
from loyalty.portal.qr import qr_svg
from loyalty.rewards.service import OutOfStock, RewardLimitReached, RewardUnavailable, TierRequired
from loyalty.stores.service import list_stores
from loyalty.timeutil import utcnow
from loyalty.web.portal import router
from loyalty.web.portal.member import Member, ReadDb, translator
from loyalty.web.portal.views import N_, page

ENTRY_KINDS = {
    "earn": N_("Points earned"), "redeem": N_("Points paid at the till"), "reward": N_("Reward redeemed"),
    "reward_refund": N_("Voucher cancelled, points back"), "adjust": N_("Adjustment"), "expire": N_("Points expired"),
    "release": N_("Pending points now usable"), "reverse": N_("Return: points taken back"),
    "restore": N_("Return: points given back"), "hold": N_("Points reserved"),
    "release_hold": N_("Reservation released"), "capture": N_("Reserved points paid"),
}
VOUCHER_STATUSES = {"issued": N_("Ready to use"), "redeemed": N_("Used"), "expired": N_("Expired"),
                    "cancelled": N_("Cancelled")}
TICKET_STATUSES = {"new": N_("Received"), "assigned": N_("Being handled"), "waiting": N_("Waiting for you"),
                   "resolved": N_("Resolved"), "closed": N_("Closed")}
CATEGORIES = {"product": N_("Product"), "service": N_("Service"), "staff": N_("Staff"), "price": N_("Price"),
              "delivery": N_("Delivery"), "points": N_("Points"), "store": N_("Store"), "other": N_("Other")}
REDEEM_REFUSALS: list[tuple[type[LoyaltyError], str]] = [
    (InsufficientPoints, N_("You do not have enough points for this reward yet.")),
    (OutOfStock, N_("Sorry, this reward has just run out.")),
    (RewardLimitReached, N_("You already have as many of this reward as one member may.")),
    (TierRequired, N_("This reward is for a higher tier.")),
    (RewardUnavailable, N_("This reward is not offered right now.")),
    (NotFound, N_("This reward is not offered to you.")),
    (ValidationFailed, N_("This form has expired. Open the reward again.")),
]
IDENTITY_LABELS = {"phone": N_("Phone"), "email": N_("E-mail"), "card": N_("Card")}
assert set(CATEGORIES) == set(TICKET_CATEGORIES)


def describe(t: Translator, kind: str, amount: int | None, percent: int | None, sku: str | None) -> str:
    """What a reward or voucher gives, in the member's language."""
    if kind == "voucher_amount" and amount is not None:
        return t.gettext("%(amount)s off your purchase", amount=t.money(amount))
    if kind == "voucher_percent" and percent is not None:
        return t.gettext("%(percent)s%% off your purchase", percent=percent)
    if kind == "free_product":
        return t.gettext("A free product (%(sku)s)", sku=sku or "")
    if kind == "free_shipping":
        return t.gettext("Free shipping")
    if kind == "experience":
        return t.gettext("An experience")
    return t.gettext("A gift")


# --- home -------------------------------------------------------------------------------------

@router.get("/")
def home(request: Request, member: Member, db: ReadDb) -> Response:
    now = utcnow()
    summary = portal.home(db, member.id, now)
    tier = summary.tier
    progress = None
    if tier is not None and tier.next is not None:
        done = tier.value / tier.next.threshold * 100 if tier.next.threshold else 100
        progress = min(100, max(0, round(done)))
    return page(request, "portal/home.html", summary=summary, tier=tier, progress=progress, nav="home",
                tier_names=portal.tier_names(db, now))


# --- rewards ----------------------------------------------------------------------------------

@router.get("/rewards")
def rewards(request: Request, member: Member, db: ReadDb) -> Response:
    now = utcnow()
    t = translator(request)
    items = portal.catalogue(db, member.id, now)
    available = portal.home(db, member.id, now).balance.available
    return page(request, "portal/rewards.html", nav="rewards", available=available,
                affordable=[i for i in items if i.affordable], later=[i for i in items if not i.affordable],
                gives={i.code: describe(t, i.kind, i.amount, i.percent, None) for i in items})


@router.get("/rewards/{code}")
def reward(request: Request, code: str, member: Member, db: ReadDb) -> Response:
    """The confirmation page: what it costs and what is left; its form carries a fresh request key."""
    now = utcnow()
    t = translator(request)
    item = portal.reward(db, member.id, code[:40], now)
    available = portal.home(db, member.id, now).balance.available
    return page(request, "portal/reward.html", nav="rewards", item=item, available=available,
                gives=describe(t, item.kind, item.amount, item.percent, None), request_key=secrets.token_hex(16),
                error=None)


@router.post("/rewards/{code}/redeem")
def redeem(request: Request, code: str, member: Member,
           request_key: Annotated[str, Form(max_length=64)] = "") -> Response:
    """Spends the points and shows the voucher; the same form sent twice shows the same voucher."""
    engine = request.app.state.engine
    t = translator(request)

    def work(session: Session) -> tuple[Voucher, bool] | LoyaltyError:
        try:
            return portal.redeem(session, member.id, code[:40], request_key, utcnow())
        except LoyaltyError as exc:
            return exc

    try:
        outcome = run_in_transaction(engine, work)
    except IntegrityError:
        # Another copy of this form won the race; this one was rolled back whole, points included.
        with session_factory(engine)() as session:
            found = portal.existing_redemption(session, member.id, request_key)
        if found is None:
            raise
        outcome = found, False
    if isinstance(outcome, LoyaltyError):
        message = next((text for cls, text in REDEEM_REFUSALS if isinstance(outcome, cls)),
                       N_("This reward cannot be redeemed now."))
        return page(request, "portal/message.html", status=outcome.status, nav="rewards",
                    title=t.gettext("Not redeemed"), text=t.gettext(message), back="/portal/rewards")
    voucher, _ = outcome
    return RedirectResponse(f"/portal/vouchers/{voucher.code}?new=1", status_code=303)


# --- vouchers ---------------------------------------------------------------------------------

@router.get("/vouchers")
def vouchers(request: Request, member: Member, db: ReadDb) -> Response:
    t = translator(request)
    items = portal.vouchers(db, member.id, utcnow())
    return page(request, "portal/vouchers.html", nav="vouchers", vouchers=items, statuses=VOUCHER_STATUSES,
                gives={v.code: describe(t, v.kind, v.amount, v.percent, v.sku) for v in items})


@router.get("/vouchers/{code}")
def voucher(request: Request, code: str, member: Member, db: ReadDb, new: bool = False) -> Response:
    """One of the member's vouchers with its code and QR for the cashier; anyone else's is not found."""
    t = translator(request)
    item = portal.voucher(db, member.id, code[:40], utcnow())
    return page(request, "portal/voucher.html", nav="vouchers", voucher=item, new=new,
                status_label=VOUCHER_STATUSES.get(item.status, item.status),
                gives=describe(t, item.kind, item.amount, item.percent, item.sku),
                qr=qr_svg(item.code) if item.redeemable else None)


# --- history ----------------------------------------------------------------------------------

@router.get("/history")
def history(request: Request, member: Member, db: ReadDb,
            before: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None) -> Response:
    items, more = portal.history(db, member.id, before=before)
    template = "portal/history_rows.html" if request.headers.get("hx-request") and before else "portal/history.html"
    return page(request, template, nav="history", items=items, more=more, kinds=ENTRY_KINDS)


# --- tickets ----------------------------------------------------------------------------------

def _ticket_form(request: Request, db: Session, status: int = 200, error: str | None = None,
                 values: dict[str, Any] | None = None) -> Response:
    return page(request, "portal/tickets.html", status=status, nav="tickets",
                tickets=portal.member_tickets(db, request.state.member.id), statuses=TICKET_STATUSES,
                categories=CATEGORIES, stores=list_stores(db), error=error,
                form=values or {"kind": "complaint", "category": "service", "store_id": "", "subject": "",
                                "description": ""})


@router.get("/tickets")
def tickets(request: Request, member: Member, db: ReadDb) -> Response:
    return _ticket_form(request, db)


@router.post("/tickets")
def open_ticket(request: Request, member: Member, db: ReadDb,
                kind: Annotated[str, Form(max_length=20)] = "complaint",
                category: Annotated[str, Form(max_length=20)] = "other",
                store_id: Annotated[str, Form(max_length=32)] = "",
                subject: Annotated[str, Form(max_length=400)] = "",
                description: Annotated[str, Form(max_length=10_000)] = "") -> Response:
    values = {"kind": kind, "category": category, "store_id": store_id, "subject": subject[:200],
              "description": description[:5000]}

    def work(session: Session) -> int | LoyaltyError:
        try:
            return portal.open_ticket(session, member.id, kind=kind, category=category, subject=subject,
                                      description=description, store_id=store_id or None, now=utcnow()).id
        except LoyaltyError as exc:
            return exc

    try:
        outcome = run_in_transaction(request.app.state.engine, work)
    except ValueError:  # pydantic: a category, subject or description out of bounds
        outcome = ValidationFailed("invalid")
    if isinstance(outcome, LoyaltyError):
        t = translator(request)
        return _ticket_form(request, db, 422, t.gettext("Please choose a type and a topic, and write a subject "
                                                        "(up to 200 characters) and your message."), values)
    return RedirectResponse(f"/portal/tickets/{outcome}?new=1", status_code=303)


@router.get("/tickets/{ticket_id}")
def ticket(request: Request, ticket_id: int, member: Member, db: ReadDb, new: bool = False) -> Response:
    if not 1 <= ticket_id <= MAX_ID:
        raise NotFound("no such ticket")
    item = portal.member_ticket(db, member.id, ticket_id)
    return page(request, "portal/ticket.html", nav="tickets", ticket=item, new=new, statuses=TICKET_STATUSES,
                categories=CATEGORIES)


# --- profile ----------------------------------------------------------------------------------

@router.get("/profile")
def profile(request: Request, member: Member, db: ReadDb) -> Response:
    customer = portal.require_member(db, member.id)
    # The referral code is created on a member's first look at it: a short write of its own.
    invite = run_in_transaction(request.app.state.engine, lambda s: portal.referral(s, member.id, utcnow()))
    return page(request, "portal/profile.html", nav="profile", customer=customer,
                identities=portal.identities(db, member.id), referral=invite, labels=IDENTITY_LABELS)
