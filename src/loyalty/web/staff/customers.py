"""Customers: search, the customer's page, and what staff do for them (points, voucher, ticket, call)."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import Depends, Form, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from loyalty.api.limits import IdPath
from loyalty.customers.search import search_customers
from loyalty.customers.service import require_customer, to_out
from loyalty.errors import LoyaltyError
from loyalty.ledger import service as ledger
from loyalty.members.summary import member_summary
from loyalty.models import LedgerEntry
from loyalty.programs.service import program_at
from loyalty.rewards import repository as rewards_repository
from loyalty.rewards import service as rewards
from loyalty.service import interactions, tickets
from loyalty.service.schemas import InteractionIn, TicketIn
from loyalty.stores.service import list_stores
from loyalty.timeutil import utcnow
from loyalty.web.auth import Staff, StaffUser, require
from loyalty.web.staff import insight, router
from loyalty.web.staff.common import reading, writing
from loyalty.web.templating import flash, render

CATEGORIES = ("product", "service", "staff", "price", "delivery", "points", "store", "other")
PRIORITIES = ("low", "normal", "high", "urgent")
Rewarder = Annotated[StaffUser, Depends(require("reward"))]
Server = Annotated[StaffUser, Depends(require("serve"))]


@router.get("/customers")
def customers(request: Request, user: Staff, q: str = "") -> Response:
    found, error = None, None
    if q.strip():
        with reading(request) as session:
            try:
                found = search_customers(session, q)
            except LoyaltyError as exc:
                error = exc.detail
    return render(request, "staff/customers.html", q=q, found=found, error=error)


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    field = ".".join(str(p) for p in error.get("loc", ()))
    return f"{field}: {str(error.get('msg', '')).removeprefix('Value error, ')}"


@router.get("/customers/{customer_id}")
def customer_page(request: Request, customer_id: IdPath, user: Staff) -> Response:
    now = utcnow()
    with reading(request) as session:
        customer = to_out(session, require_customer(session, customer_id))
        summary = member_summary(session, customer_id, now)
        history = ledger.history(session, customer_id, before=None, limit=25)
        vouchers = rewards.customer_vouchers(session, customer_id, status=None, limit=25, now=now)
        timeline = interactions.timeline(session, customer_id, offset=0, limit=25)
        ticket_list = tickets.list_tickets(session, user.read_scope(), customer_id=customer_id, limit=25)
        offered = [r for r in rewards_repository.list_rewards(session, include_inactive=False)
                   if r.stock is None or r.stock > 0]
        stores = list_stores(session)
    bundle = insight.ready(request)
    return render(request, "staff/customer.html", customer=customer, summary=summary, history=history,
                  vouchers=vouchers, timeline=timeline, tickets=ticket_list, rewards=offered, stores=stores,
                  scores=bundle.customer(customer_id) if bundle else None, categories=CATEGORIES,
                  priorities=PRIORITIES, nonce=secrets.token_urlsafe(12))


@router.get("/customers/{customer_id}/scores")
def customer_scores(request: Request, customer_id: IdPath, user: Staff) -> Response:
    """RFM segment, probability alive and lifetime value: from the analytics bundle, started if needed."""
    bundle = insight.ready(request)
    task = None if bundle else insight.start(request)
    return render(request, "staff/_customer_scores.html", customer_id=customer_id,
                  scores=bundle.customer(customer_id) if bundle else None, task=task)


def _back(customer_id: int) -> Response:
    return RedirectResponse(f"/staff/customers/{customer_id}", status_code=303)


@router.post("/customers/{customer_id}/points")
def adjust_points(request: Request, customer_id: IdPath, user: Rewarder,
                  points: Annotated[int, Form(ge=-1_000_000, le=1_000_000)],
                  reason: Annotated[str, Form(max_length=500)] = "",
                  nonce: Annotated[str, Form(min_length=8, max_length=40)] = "") -> Response:
    """Through the ledger; the form's one-time nonce is the adjustment's unique source key, so a
    double click or a resent form gives the points once."""
    source_id = f"web:{user.id}:{nonce}"

    def work(session: Session) -> int:
        now = utcnow()
        require_customer(session, customer_id)
        return ledger.adjust(session, program_at(session, now), customer_id=customer_id, points=points,
                             reason=reason.strip(), actor=user.actor, source_id=source_id, now=now)

    try:
        entry_id = writing(request, work)
    except LoyaltyError as exc:
        flash(request, exc.detail, "error")
        return _back(customer_id)
    except IntegrityError:
        with reading(request) as session:
            already = session.scalar(select(LedgerEntry.id).where(LedgerEntry.source_type == "adjustment",
                                                                  LedgerEntry.source_id == source_id))
        if already is None:
            raise
        flash(request, f"this adjustment was already recorded (entry {already}); nothing was added twice")
        return _back(customer_id)
    flash(request, f"{points:+,} points recorded (ledger entry {entry_id}): {reason.strip()}")
    return _back(customer_id)


@router.post("/customers/{customer_id}/voucher")
def issue_voucher(request: Request, customer_id: IdPath, user: Rewarder,
                  reward: Annotated[str, Form(min_length=1, max_length=40)]) -> Response:
    def work(session: Session) -> tuple[str, int]:
        voucher = rewards.issue_voucher(session, customer_id=customer_id, reward_code=reward, actor=user.actor,
                                        now=utcnow())
        return voucher.code, voucher.points_spent

    try:
        code, spent = writing(request, work)
    except LoyaltyError as exc:
        flash(request, exc.detail, "error")
        return _back(customer_id)
    flash(request, f"voucher {code} issued for {spent:,} points")
    return _back(customer_id)


@router.post("/customers/{customer_id}/ticket")
def open_ticket(request: Request, customer_id: IdPath, user: Server,
                subject: Annotated[str, Form(max_length=300)] = "",
                description: Annotated[str, Form(max_length=6000)] = "",
                category: Annotated[str, Form(max_length=20)] = "other",
                priority: Annotated[str, Form(max_length=20)] = "normal",
                store_id: Annotated[str, Form(max_length=40)] = "",
                channel: Annotated[str, Form(max_length=20)] = "phone") -> Response:
    try:
        data = TicketIn.model_validate({"customer_id": customer_id, "store_id": store_id or None,
                                        "channel": channel, "category": category, "priority": priority,
                                        "subject": subject, "description": description})
    except ValidationError as exc:
        flash(request, _first_error(exc), "error")
        return _back(customer_id)
    try:
        ticket_id = writing(request, lambda session: tickets.create_ticket(session, data, user.scope(), utcnow()).id)
    except LoyaltyError as exc:
        flash(request, exc.detail, "error")
        return _back(customer_id)
    flash(request, f"ticket #{ticket_id} opened")
    return RedirectResponse(f"/staff/tickets/{ticket_id}", status_code=303)


@router.post("/customers/{customer_id}/call")
def record_call(request: Request, customer_id: IdPath, user: Server,
                note: Annotated[str, Form(max_length=600)] = "",
                direction: Annotated[str, Form(max_length=10)] = "inbound",
                store_id: Annotated[str, Form(max_length=40)] = "") -> Response:
    try:
        data = InteractionIn.model_validate({"kind": "call", "channel": "phone", "direction": direction,
                                             "note": note, "store_id": store_id or None})
    except ValidationError as exc:
        flash(request, _first_error(exc), "error")
        return _back(customer_id)
    try:
        writing(request, lambda session: interactions.record(session, customer_id, data, user.scope(), utcnow()).id)
    except LoyaltyError as exc:
        flash(request, exc.detail, "error")
        return _back(customer_id)
    flash(request, "call recorded on the timeline")
    return _back(customer_id)
