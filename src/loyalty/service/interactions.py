"""Interactions on the customer's timeline, and the timeline itself: every touchpoint in time order."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, String, cast, literal, select, union_all
from sqlalchemy.orm import Session

from loyalty.customers.service import require_customer
from loyalty.models import LedgerEntry, Transaction
from loyalty.models.base import UTCDateTime
from loyalty.models.service import Interaction, StaffMember, SurveyResponse, Ticket
from loyalty.service.schemas import InteractionIn, InteractionOut, TimelineItem
from loyalty.service.staff import Scope, require_staff
from loyalty.stores.service import store_kind


def record(session: Session, customer_id: int, data: InteractionIn, scope: Scope, now: datetime) -> Interaction:
    require_customer(session, customer_id)
    if data.store_id is not None:
        store_kind(session, data.store_id)
    staff_id = data.staff_id if data.staff_id is not None else scope.staff_id
    if staff_id is not None:
        require_staff(session, staff_id)
    interaction = Interaction(customer_id=customer_id, kind=data.kind, channel=data.channel, direction=data.direction,
                              occurred_at=data.occurred_at or now, store_id=data.store_id, staff_id=staff_id,
                              note=data.note.strip(), actor=scope.actor, created_at=now)
    session.add(interaction)
    session.flush()
    return interaction


def to_out(i: Interaction) -> InteractionOut:
    return InteractionOut(id=i.id, customer_id=i.customer_id, kind=i.kind, channel=i.channel, direction=i.direction,
                          occurred_at=i.occurred_at, store_id=i.store_id, staff_id=i.staff_id, note=i.note,
                          actor=i.actor)


def timeline(session: Session, customer_id: int, *, offset: int, limit: int) -> list[TimelineItem]:
    """One UNION ALL over interactions, tickets, survey answers, purchases/returns and ledger entries."""
    require_customer(session, customer_id)
    when = UTCDateTime()
    none_int = literal(None, type_=BigInteger)
    none_str = literal(None, type_=String)
    interactions = (
        select(Interaction.occurred_at.label("at"), literal("interaction").label("type"),
               cast(Interaction.id, BigInteger).label("id"), Interaction.kind.label("kind"),
               Interaction.channel.label("channel"), Interaction.store_id.label("store_id"),
               StaffMember.name.label("handled_by"), Interaction.note.label("note"),
               none_int.label("amount"), none_int.label("score"))
        .outerjoin(StaffMember, StaffMember.id == Interaction.staff_id)
        .where(Interaction.customer_id == customer_id))
    tickets = (
        select(Ticket.created_at, literal("complaint"), cast(Ticket.id, BigInteger), Ticket.status, Ticket.channel,
               Ticket.store_id, StaffMember.name, Ticket.subject, none_int, none_int)
        .outerjoin(StaffMember, StaffMember.id == Ticket.owner_id)
        .where(Ticket.customer_id == customer_id))
    answers = (
        select(SurveyResponse.created_at, literal("survey_answer"), cast(SurveyResponse.id, BigInteger),
               SurveyResponse.kind, SurveyResponse.channel, SurveyResponse.store_id, none_str,
               SurveyResponse.comment, none_int, cast(SurveyResponse.score, BigInteger))
        .where(SurveyResponse.customer_id == customer_id))
    sales = (
        select(Transaction.occurred_at, Transaction.kind, cast(Transaction.id, BigInteger), Transaction.kind,
               literal("store"), Transaction.store_id, none_str, Transaction.pos_transaction_id,
               cast(Transaction.amount, BigInteger), none_int)
        .where(Transaction.customer_id == customer_id))
    points = (
        select(LedgerEntry.created_at, literal("points"), cast(LedgerEntry.id, BigInteger), LedgerEntry.kind,
               none_str, none_str, LedgerEntry.actor, LedgerEntry.reason, none_int, none_int)
        .where(LedgerEntry.customer_id == customer_id))
    merged = union_all(interactions, tickets, answers, sales, points).subquery("timeline")
    rows = session.execute(
        select(merged).order_by(merged.c.at.desc(), merged.c.type, merged.c.id.desc()).offset(offset).limit(limit)
    ).all()
    return [TimelineItem(at=when.process_result_value(r.at, session.get_bind().dialect) or r.at, type=r.type,
                         id=int(r.id), kind=r.kind, channel=r.channel, store_id=r.store_id, handled_by=r.handled_by,
                         note=r.note, amount=None if r.amount is None else int(r.amount),
                         score=None if r.score is None else int(r.score))
            for r in rows]
