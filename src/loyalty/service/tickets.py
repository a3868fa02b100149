"""Complaint tickets: create from any channel, assign by rule or by hand, respond, resolve, goodwill, breaches.

Status moves new -> assigned -> waiting on customer -> resolved -> closed, and reopen; each
change is a ticket_events row with who and when. A ticket cannot be resolved or closed before
someone has answered the customer (the database checks that too).
"""

from __future__ import annotations

import secrets
from datetime import datetime

from sqlalchemy import and_, func, insert, literal, select, update
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.selectable import ScalarSelect

from loyalty.customers.service import require_customer
from loyalty.errors import Conflict, Forbidden, NotFound
from loyalty.ledger import service as ledger
from loyalty.models import LedgerEntry
from loyalty.models.service import StaffMember, StaffStore, Ticket, TicketEvent
from loyalty.programs.service import program_at
from loyalty.service import sla
from loyalty.service.schemas import (
    AssignIn,
    CustomerReply,
    CustomerTicket,
    GoodwillIn,
    ResponseIn,
    StatusIn,
    TicketEventOut,
    TicketIn,
    TicketOut,
)
from loyalty.service.staff import Scope, require_staff
from loyalty.stores.service import store_kind


class InvalidTransition(Conflict):
    type_slug = "invalid-transition"
    title = "The ticket cannot make this status change"


OPEN = ("new", "assigned", "waiting")
# Allowed moves; "reopened" lands on assigned (or new when nobody owns the ticket).
TRANSITIONS: dict[str, frozenset[str]] = {
    "new": frozenset({"assigned", "resolved"}),
    "assigned": frozenset({"waiting", "resolved"}),
    "waiting": frozenset({"assigned", "resolved"}),
    "resolved": frozenset({"closed", "reopened"}),
    "closed": frozenset({"reopened"}),
}
HANDLERS = ("admin", "manager", "agent")


def _event(session: Session, ticket: Ticket, kind: str, actor: str, now: datetime, *, note: str = "",
           from_status: str | None = None, to_status: str | None = None, owner_id: int | None = None,
           points: int | None = None, ledger_entry_id: int | None = None) -> None:
    session.add(TicketEvent(ticket_id=ticket.id, kind=kind, from_status=from_status, to_status=to_status,
                            owner_id=owner_id, points=points, ledger_entry_id=ledger_entry_id, note=note,
                            actor=actor, created_at=now))


def _require_handler(scope: Scope, ticket: Ticket) -> None:
    if scope.role not in HANDLERS:
        raise Forbidden(f"a {scope.role} key cannot handle tickets")
    if not scope.sees(ticket.store_id):
        raise NotFound(f"ticket {ticket.id} does not exist")


def pick_owner(session: Session, store_id: str | None, now: datetime) -> int | None:
    """Round-robin: the store's active agent who was assigned a ticket there least recently."""
    if store_id is None:
        return None
    row = session.execute(
        select(StaffStore.staff_id).join(StaffMember, StaffMember.id == StaffStore.staff_id)
        .where(StaffStore.store_id == store_id, StaffMember.active.is_(True), StaffMember.role == "agent")
        .order_by(StaffStore.last_assigned_at.is_not(None), StaffStore.last_assigned_at, StaffStore.staff_id)
        .limit(1)
    ).scalar_one_or_none()
    return int(row) if row is not None else None


def _check_owner(session: Session, owner_id: int, store_id: str | None) -> None:
    owner = require_staff(session, owner_id)
    if owner.role != "admin" and (store_id is None or session.get(StaffStore, (owner_id, store_id)) is None):
        raise Conflict(f"staff member {owner_id} ({owner.name}) does not cover store {store_id}")


def _set_owner(session: Session, ticket: Ticket, owner_id: int, actor: str, now: datetime, note: str) -> None:
    before = ticket.status
    ticket.owner_id = owner_id
    if ticket.status == "new":
        ticket.status = "assigned"
    ticket.updated_at = now
    if ticket.store_id is not None:
        session.execute(update(StaffStore)
                        .where(StaffStore.staff_id == owner_id, StaffStore.store_id == ticket.store_id)
                        .values(last_assigned_at=now))
    _event(session, ticket, "assigned", actor, now, note=note, from_status=before, to_status=ticket.status,
           owner_id=owner_id)


def create_ticket(session: Session, data: TicketIn, scope: Scope, now: datetime, *,
                  survey_response_id: int | None = None) -> Ticket:
    if scope.role not in (*HANDLERS, "store", "system"):
        raise Forbidden(f"a {scope.role} key cannot open tickets")
    require_customer(session, data.customer_id)
    if data.store_id is not None:
        store_kind(session, data.store_id)  # 404 for an unknown store
    scope.require_store(data.store_id)
    if data.owner_id is not None:
        _check_owner(session, data.owner_id, data.store_id)
    first_due, resolution_due = sla.deadlines(session, data.priority, data.store_id, now)
    ticket = Ticket(customer_id=data.customer_id, store_id=data.store_id, channel=data.channel,
                    category=data.category, priority=data.priority, subject=data.subject,
                    description=data.description, status="new", survey_response_id=survey_response_id,
                    created_at=now, created_by=scope.actor, first_response_due_at=first_due,
                    resolution_due_at=resolution_due, updated_at=now)
    session.add(ticket)
    session.flush()
    _event(session, ticket, "created", scope.actor, now, to_status="new", note=data.subject)
    owner = data.owner_id if data.owner_id is not None else pick_owner(session, data.store_id, now)
    if owner is not None:
        _set_owner(session, ticket, owner, scope.actor if data.owner_id else "rule:round-robin", now, "")
    session.flush()
    return ticket


def get_visible(session: Session, ticket_id: int, scope: Scope) -> Ticket:
    """The ticket if this key may see it; another store's ticket is simply not there (404)."""
    if scope.role not in HANDLERS:
        raise Forbidden(f"a {scope.role} key cannot read tickets")
    ticket = session.get(Ticket, ticket_id)
    if ticket is None or not scope.sees(ticket.store_id):
        raise NotFound(f"ticket {ticket_id} does not exist")
    return ticket


def _for_update(session: Session, ticket_id: int, scope: Scope) -> Ticket:
    ticket = session.get(Ticket, ticket_id, with_for_update=True)
    if ticket is None:
        raise NotFound(f"ticket {ticket_id} does not exist")
    _require_handler(scope, ticket)
    return ticket


def assign(session: Session, ticket_id: int, data: AssignIn, scope: Scope, now: datetime) -> Ticket:
    ticket = _for_update(session, ticket_id, scope)
    if scope.role == "agent":
        raise Forbidden("only a manager or an admin assigns tickets by hand")
    if ticket.status == "closed":
        raise InvalidTransition(f"ticket {ticket_id} is closed; reopen it first")
    owner = data.owner_id if data.owner_id is not None else pick_owner(session, ticket.store_id, now)
    if owner is None:
        raise Conflict(f"no active agent covers store {ticket.store_id}; name an owner")
    _check_owner(session, owner, ticket.store_id)
    _set_owner(session, ticket, owner, scope.actor, now, data.note)
    session.flush()
    return ticket


def respond(session: Session, ticket_id: int, data: ResponseIn, scope: Scope, now: datetime) -> Ticket:
    ticket = _for_update(session, ticket_id, scope)
    if ticket.status in ("resolved", "closed"):
        raise InvalidTransition(f"ticket {ticket_id} is {ticket.status}; reopen it to answer again")
    if ticket.owner_id is None and scope.staff_id is not None:
        _set_owner(session, ticket, scope.staff_id, scope.actor, now, "took the ticket by answering it")
    if ticket.first_response_at is None:
        ticket.first_response_at = now
        if now > ticket.first_response_due_at and ticket.breached_at is None:
            ticket.breached_at = now
            _event(session, ticket, "breached", scope.actor, now, note="first response after the due time")
    before = ticket.status
    if data.wait_for_customer and ticket.status == "assigned":
        ticket.status = "waiting"
    _event(session, ticket, "response", scope.actor, now, note=data.message, from_status=before,
           to_status=ticket.status)
    ticket.updated_at = now
    session.flush()
    return ticket


def change_status(session: Session, ticket_id: int, data: StatusIn, scope: Scope, now: datetime) -> Ticket:
    ticket = _for_update(session, ticket_id, scope)
    before = ticket.status
    if data.status not in TRANSITIONS[before]:
        allowed = ", ".join(sorted(TRANSITIONS[before]))
        hint = " (answer the customer and resolve it first)" if data.status == "closed" else ""
        raise InvalidTransition(f"a {before} ticket cannot become {data.status}{hint}; allowed: {allowed}",
                                current_status=before)
    if data.status in ("resolved", "closed") and ticket.first_response_at is None:
        raise InvalidTransition(f"ticket {ticket_id} has no response yet; answer the customer before resolving it",
                                current_status=before)
    if data.status == "assigned" and ticket.owner_id is None:
        raise InvalidTransition(f"ticket {ticket_id} has no owner; assign one", current_status=before)
    if data.status == "resolved":
        ticket.status, ticket.resolved_at = "resolved", now
        if now > ticket.resolution_due_at and ticket.resolution_breached_at is None:
            ticket.resolution_breached_at = now
            _event(session, ticket, "overdue", scope.actor, now, note="resolved after the resolution due time")
    elif data.status == "closed":
        ticket.status, ticket.closed_at = "closed", now
    elif data.status == "reopened":
        ticket.status = "assigned" if ticket.owner_id is not None else "new"
        ticket.resolved_at = ticket.closed_at = None
    else:
        ticket.status = data.status
    ticket.updated_at = now
    _event(session, ticket, "reopened" if data.status == "reopened" else "status", scope.actor, now,
           note=data.note, from_status=before, to_status=ticket.status)
    session.flush()
    return ticket


def grant_goodwill(session: Session, ticket_id: int, data: GoodwillIn, scope: Scope, now: datetime) -> Ticket:
    """Points through the ledger (once per ticket: the ledger's unique source key) and/or a voucher."""
    ticket = _for_update(session, ticket_id, scope)
    if data.points is None and data.voucher_value is None:
        raise Conflict("give points, a voucher value, or both")
    if data.points is not None:
        already = session.scalar(select(LedgerEntry.id).where(
            LedgerEntry.source_type == "ticket", LedgerEntry.source_id == str(ticket.id),
            LedgerEntry.event == "goodwill"))
        if already is not None:
            raise Conflict(f"ticket {ticket_id} already granted goodwill points (ledger entry {already})",
                           ledger_entry_id=already)
        entry = ledger.credit(
            session, program_at(session, now), customer_id=ticket.customer_id, points=data.points, kind="adjust",
            from_account="adjusted", source_type="ticket", source_id=str(ticket.id), event="goodwill",
            reason=f"goodwill for ticket #{ticket.id}: {data.note}", actor=scope.actor, earned_at=now, now=now,
            counts_as_earned=False)
        _event(session, ticket, "goodwill", scope.actor, now, note=data.note, points=data.points,
               ledger_entry_id=entry.entry_id)
    if data.voucher_value is not None:
        code = f"GW{ticket.id}-{secrets.token_hex(3).upper()}"
        _event(session, ticket, "voucher", scope.actor, now,
               note=f"voucher {code} worth {data.voucher_value:,} VND: {data.note}")
    ticket.updated_at = now
    session.flush()
    return ticket


def list_tickets(
    session: Session, scope: Scope, *, status: str | None = None, store_id: str | None = None,
    owner_id: int | None = None, breached: bool | None = None, customer_id: int | None = None,
    overdue: bool | None = None,
    before: int | None = None, limit: int = 50,
) -> list[Ticket]:
    """A queue, newest first: agents and managers see their stores only."""
    if scope.role not in HANDLERS:
        raise Forbidden(f"a {scope.role} key cannot read tickets")
    query = select(Ticket)
    if scope.stores is not None:
        query = query.where(Ticket.store_id.in_(sorted(scope.stores)))
    if status is not None:
        query = query.where(Ticket.status == status)
    if store_id is not None:
        query = query.where(Ticket.store_id == store_id)
    if owner_id is not None:
        query = query.where(Ticket.owner_id == owner_id)
    if breached is not None:
        query = query.where(Ticket.breached_at.is_not(None) if breached else Ticket.breached_at.is_(None))
    if overdue is not None:
        query = query.where(Ticket.resolution_breached_at.is_not(None) if overdue
                            else Ticket.resolution_breached_at.is_(None))
    if customer_id is not None:
        query = query.where(Ticket.customer_id == customer_id)
    if before is not None:
        query = query.where(Ticket.id < before)
    return list(session.scalars(query.order_by(Ticket.id.desc()).limit(limit)))


def customer_tickets(session: Session, customer_id: int, *, limit: int = 100) -> list[CustomerTicket]:
    """A customer's own tickets, newest first, with the replies staff sent them (two queries)."""
    own = list(session.scalars(select(Ticket).where(Ticket.customer_id == customer_id)
                               .order_by(Ticket.id.desc()).limit(limit)))
    replies: dict[int, list[CustomerReply]] = {t.id: [] for t in own}
    if own:
        for ticket_id, at, note in session.execute(
                select(TicketEvent.ticket_id, TicketEvent.created_at, TicketEvent.note)
                .where(TicketEvent.ticket_id.in_(list(replies)), TicketEvent.kind == "response")
                .order_by(TicketEvent.id)):
            replies[ticket_id].append(CustomerReply(at=at, note=note))
    return [CustomerTicket(id=t.id, subject=t.subject, category=t.category, store_id=t.store_id, status=t.status,
                           created_at=t.created_at, first_response_at=t.first_response_at,
                           resolved_at=t.resolved_at, replies=replies[t.id]) for t in own]


def to_out(session: Session, ticket: Ticket, *, with_events: bool = True) -> TicketOut:
    events: list[TicketEventOut] = []
    if with_events:
        events = [TicketEventOut(id=e.id, kind=e.kind, from_status=e.from_status, to_status=e.to_status,
                                 owner_id=e.owner_id, points=e.points, ledger_entry_id=e.ledger_entry_id, note=e.note,
                                 actor=e.actor, created_at=e.created_at)
                  for e in session.scalars(select(TicketEvent).where(TicketEvent.ticket_id == ticket.id)
                                           .order_by(TicketEvent.id))]
    return TicketOut(
        id=ticket.id, customer_id=ticket.customer_id, store_id=ticket.store_id, channel=ticket.channel,
        category=ticket.category, priority=ticket.priority, subject=ticket.subject, description=ticket.description,
        status=ticket.status, owner_id=ticket.owner_id, survey_response_id=ticket.survey_response_id,
        created_at=ticket.created_at, created_by=ticket.created_by,
        first_response_due_at=ticket.first_response_due_at, resolution_due_at=ticket.resolution_due_at,
        first_response_at=ticket.first_response_at, resolved_at=ticket.resolved_at, closed_at=ticket.closed_at,
        breached_at=ticket.breached_at, resolution_breached_at=ticket.resolution_breached_at,
        escalated_to_id=ticket.escalated_to_id, events=events)


# --- the breach job ---------------------------------------------------------------------------

def _escalation_manager() -> ScalarSelect[int | None]:
    """The store's first active manager, for a ticket in the statement (correlated)."""
    return (select(func.min(StaffMember.id))
            .join(StaffStore, StaffStore.staff_id == StaffMember.id)
            .where(StaffStore.store_id == Ticket.store_id, StaffMember.role == "manager",
                   StaffMember.active.is_(True))
            .scalar_subquery())


def _mark(session: Session, due: ColumnElement[bool], kind: str, note: str, column: str, now: datetime,
          escalate_to: ColumnElement[int | None]) -> int:
    when = TicketEvent.created_at.type
    session.execute(insert(TicketEvent).from_select(
        ["ticket_id", "kind", "owner_id", "note", "actor", "created_at"],
        select(Ticket.id, literal(kind), escalate_to, literal(note), literal("job:sla"),
               literal(now, type_=when)).where(due)))
    result = session.execute(update(Ticket).where(due)
                             .values({column: now, "escalated_to_id": escalate_to, "updated_at": now})
                             .execution_options(synchronize_session=False))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def mark_breaches(session: Session, now: datetime) -> int:
    """Marks open tickets past their first-response time, and open tickets past their resolution
    time, and escalates them to the store's manager; returns the number of breaches marked.

    Each kind is two set-based statements under one condition in one transaction: the events
    first, then the tickets; a ticket once marked no longer matches, so a second run changes
    nothing. A ticket can breach both, at different times: the first-response breach is
    `breached_at` with a "breached" event, the resolution breach `resolution_breached_at` with an
    "overdue" event. A resolution breach keeps an earlier escalation.
    """
    first = and_(Ticket.status.in_(OPEN), Ticket.first_response_at.is_(None), Ticket.breached_at.is_(None),
                 Ticket.first_response_due_at <= now)
    total = _mark(session, first, "breached", "no first response by the due time; escalated", "breached_at", now,
                  _escalation_manager())
    resolution = and_(Ticket.status.in_(OPEN), Ticket.resolution_breached_at.is_(None),
                      Ticket.resolution_due_at <= now)
    total += _mark(session, resolution, "overdue", "not resolved by the resolution due time; escalated",
                   "resolution_breached_at", now, func.coalesce(Ticket.escalated_to_id, _escalation_manager()))
    return total
