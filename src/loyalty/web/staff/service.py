"""Service desk: the ticket queue per store with SLA countdowns, a ticket's page, NPS/CSAT and the weekly review."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import Depends, Form, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from loyalty.api.limits import IdPath
from loyalty.customers.service import require_customer
from loyalty.errors import LoyaltyError
from loyalty.models.service import Ticket
from loyalty.service import reports, tickets
from loyalty.service.schemas import ResponseIn, StatusIn
from loyalty.service.staff import list_staff
from loyalty.timeutil import utcnow
from loyalty.web.auth import Staff, StaffUser, require
from loyalty.web.staff import router
from loyalty.web.staff.common import reading, tz, writing
from loyalty.web.templating import flash, render

OPEN = ("new", "assigned", "waiting")
QUEUE_LIMIT = 500
Server = Annotated[StaffUser, Depends(require("serve"))]
Analyst = Annotated[StaffUser, Depends(require("analyse"))]


def _span(seconds: float) -> str:
    minutes = int(abs(seconds) // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    return f"{hours}h {mins:02d}m" if hours else f"{mins}m"


def clock(ticket: Ticket | Any, now: datetime) -> dict[str, Any]:
    """The deadline that matters now (first response, else resolution), how long is left, and whether it is
    breached (late now, or recorded as breached)."""
    if ticket.first_response_at is None:
        due, label = ticket.first_response_due_at, "first response"
    else:
        due, label = ticket.resolution_due_at, "resolution"
    left = (due - now).total_seconds()
    breached = left < 0 or ticket.breached_at is not None or ticket.resolution_breached_at is not None
    return {"due": due, "label": label, "left": left, "breached": breached,
            "text": (f"{_span(left)} left" if left >= 0 else f"late by {_span(left)}"),
            "soon": 0 <= left < 2 * 3600}


@router.get("/service")
def queue(request: Request, user: Staff, store: str = "", breached: str = "") -> Response:
    now = utcnow()
    with reading(request) as session:
        scope = user.read_scope()
        rows: list[Ticket] = []
        for status in OPEN:
            rows.extend(tickets.list_tickets(session, scope, status=status, store_id=store or None,
                                             limit=QUEUE_LIMIT))
        staff = {s.id: s.name for s in list_staff(session)}
    items: list[dict[str, Any]] = [{"t": t, "clock": clock(t, now)} for t in rows]
    if breached:
        items = [i for i in items if i["clock"]["breached"]]
    items.sort(key=lambda i: (str(i["t"].store_id), not i["clock"]["breached"], i["clock"]["left"]))
    stores: dict[str, list[dict[str, Any]]] = {}
    for item in items:
        stores.setdefault(item["t"].store_id or "(no store)", []).append(item)
    return render(request, "staff/queue.html", stores=stores, staff=staff, store=store, breached=breached,
                  total=len(items), late=sum(1 for i in items if i["clock"]["breached"]),
                  visible_stores=sorted(user.stores) if user.stores is not None else None)


@router.get("/tickets/{ticket_id}")
def ticket_page(request: Request, ticket_id: IdPath, user: Staff) -> Response:
    """Another store's ticket is simply not there (404), as in the API."""
    now = utcnow()
    with reading(request) as session:
        ticket = tickets.get_visible(session, ticket_id, user.read_scope())
        out = tickets.to_out(session, ticket)
        customer = require_customer(session, ticket.customer_id)
        staff = {s.id: s.name for s in list_staff(session)}
    return render(request, "staff/ticket.html", ticket=out, clock=clock(out, now), customer=customer, staff=staff,
                  transitions=sorted(tickets.TRANSITIONS[out.status]))


@router.post("/tickets/{ticket_id}/respond")
def respond(request: Request, ticket_id: IdPath, user: Server,
            message: Annotated[str, Form(max_length=6000)] = "",
            wait: Annotated[str, Form(max_length=5)] = "") -> Response:
    try:
        data = ResponseIn(message=message, wait_for_customer=bool(wait))
    except ValidationError:
        flash(request, "write the answer to the customer first", "error")
        return RedirectResponse(f"/staff/tickets/{ticket_id}", status_code=303)

    def work(session: Session) -> None:
        tickets.get_visible(session, ticket_id, user.scope())  # another store's ticket: 404 before anything
        tickets.respond(session, ticket_id, data, user.scope(), utcnow())

    try:
        writing(request, work)
    except LoyaltyError as exc:
        if exc.status == 404:
            raise
        flash(request, exc.detail, "error")
    else:
        flash(request, "answer recorded")
    return RedirectResponse(f"/staff/tickets/{ticket_id}", status_code=303)


@router.post("/tickets/{ticket_id}/status")
def change_status(request: Request, ticket_id: IdPath, user: Server,
                  status: Annotated[str, Form(max_length=20)],
                  note: Annotated[str, Form(max_length=1000)] = "") -> Response:
    try:
        data = StatusIn.model_validate({"status": status, "note": note})
    except ValidationError:
        flash(request, f"unknown status {status[:20]!r}", "error")
        return RedirectResponse(f"/staff/tickets/{ticket_id}", status_code=303)

    def work(session: Session) -> str:
        tickets.get_visible(session, ticket_id, user.scope())
        return tickets.change_status(session, ticket_id, data, user.scope(), utcnow()).status

    try:
        now_status = writing(request, work)
    except LoyaltyError as exc:
        if exc.status == 404:
            raise
        flash(request, exc.detail, "error")
    else:
        flash(request, f"ticket is now {now_status}")
    return RedirectResponse(f"/staff/tickets/{ticket_id}", status_code=303)


@router.get("/service/quality")
def quality(request: Request, user: Analyst, days: int = 90) -> Response:
    """NPS and CSAT by store with 95% intervals, and this week's complaint review."""
    days = max(7, min(days, 730))
    now = utcnow()
    zone = tz()
    with reading(request) as session:
        nps = reports.score_report(session, "nps", by=["store"], since=now - timedelta(days=days), until=now,
                                   tz=zone, now=now)
        csat = reports.score_report(session, "csat", by=["store"], since=now - timedelta(days=days), until=now,
                                    tz=zone, now=now)
        week = now.astimezone(zone).date()
        trends = reports.complaint_trends(session, week_of=week, weeks=8, tz=zone)
        comments, words, phrases = reports.frequent_terms(session, week_of=week, tz=zone)
    return render(request, "staff/quality.html", nps=nps, csat=csat, trends=trends, comments=comments,
                  words=words, phrases=phrases, days=days, week=week)
