"""The service desk over HTTP: staff, interactions, the timeline, tickets, departures."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from loyalty.api.deps import AdminKey, Outcome, ReadSession, WriteDep, require_roles
from loyalty.api.limits import MAX_ID, IdPath
from loyalty.auth.service import Principal
from loyalty.db import session_factory
from loyalty.models.service import Survey, SurveyInvitation
from loyalty.service import departures, interactions, staff, surveys, tickets
from loyalty.service.schemas import (
    AnswerIn,
    AnswerOut,
    AssignIn,
    DepartureIn,
    DepartureOut,
    GoodwillIn,
    InteractionIn,
    InteractionOut,
    InvitationOut,
    InviteIn,
    ResponseIn,
    StaffIn,
    StaffOut,
    Status,
    StatusIn,
    SurveyIn,
    SurveyOut,
    TicketIn,
    TicketOut,
    TicketPage,
    TimelinePage,
)
from loyalty.timeutil import utcnow

router = APIRouter(tags=["service"])

DeskKey = Annotated[Principal, Depends(require_roles("admin", "manager", "agent"))]
ManagerKey = Annotated[Principal, Depends(require_roles("admin", "manager"))]
ContactKey = Annotated[Principal, Depends(require_roles("admin", "manager", "agent", "store"))]
ViewerKey = Annotated[Principal, Depends(require_roles("admin", "readonly", "manager", "agent"))]


@router.post("/staff", status_code=201, response_model=StaffOut, tags=["staff"])
def create_staff(data: StaffIn, _: AdminKey, write: WriteDep) -> JSONResponse:
    def work(session: Session) -> Outcome:
        return Outcome(201, staff.to_out(session, staff.create_staff(session, data)))
    return write.run(data, work)


@router.get("/staff", response_model=list[StaffOut], tags=["staff"])
def list_staff(session: ReadSession, _: ManagerKey) -> list[StaffOut]:
    return staff.list_staff(session)


@router.post("/customers/{customer_id}/interactions", status_code=201, response_model=InteractionOut)
def create_interaction(customer_id: IdPath, data: InteractionIn, principal: ContactKey,
                       write: WriteDep) -> JSONResponse:
    def work(session: Session) -> Outcome:
        scope = staff.scope_of(session, principal)
        return Outcome(201, interactions.to_out(interactions.record(session, customer_id, data, scope, utcnow())))
    return write.run(data, work)


@router.get("/customers/{customer_id}/timeline", response_model=TimelinePage,
            summary="Every touchpoint of a customer, newest first")
def get_timeline(
    customer_id: IdPath, session: ReadSession, _: ViewerKey,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> TimelinePage:
    items = interactions.timeline(session, customer_id, offset=offset, limit=limit)
    return TimelinePage(items=items, next_offset=offset + limit if len(items) == limit else None)


@router.post("/tickets", status_code=201, response_model=TicketOut,
             responses={404: {"description": "unknown customer, store or owner"}})
def create_ticket(data: TicketIn, principal: ContactKey, write: WriteDep) -> JSONResponse:
    def work(session: Session) -> Outcome:
        ticket = tickets.create_ticket(session, data, staff.scope_of(session, principal), utcnow())
        return Outcome(201, tickets.to_out(session, ticket), {"Location": f"/v1/tickets/{ticket.id}"})
    return write.run(data, work)


@router.get("/tickets", response_model=TicketPage, summary="A queue: agents and managers see their stores only")
def list_tickets(
    session: ReadSession, principal: DeskKey,
    status: Status | None = None,
    store_id: Annotated[str | None, Query(max_length=32)] = None,
    owner_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    customer_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    breached: bool | None = None,
    before: Annotated[int | None, Query(ge=1, le=MAX_ID, description="ticket id from next_before")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> TicketPage:
    found = tickets.list_tickets(session, staff.scope_of(session, principal), status=status, store_id=store_id,
                                 owner_id=owner_id, breached=breached, customer_id=customer_id, before=before,
                                 limit=limit)
    return TicketPage(items=[tickets.to_out(session, t, with_events=False) for t in found],
                      next_before=found[-1].id if len(found) == limit else None)


@router.get("/tickets/{ticket_id}", response_model=TicketOut)
def get_ticket(ticket_id: IdPath, session: ReadSession, principal: DeskKey) -> TicketOut:
    return tickets.to_out(session, tickets.get_visible(session, ticket_id, staff.scope_of(session, principal)))


@router.post("/tickets/{ticket_id}/assign", response_model=TicketOut)
def assign_ticket(ticket_id: IdPath, data: AssignIn, principal: DeskKey, write: WriteDep) -> JSONResponse:
    def work(session: Session) -> Outcome:
        ticket = tickets.assign(session, ticket_id, data, staff.scope_of(session, principal), utcnow())
        return Outcome(200, tickets.to_out(session, ticket))
    return write.run(data, work)


@router.post("/tickets/{ticket_id}/responses", response_model=TicketOut)
def respond_ticket(ticket_id: IdPath, data: ResponseIn, principal: DeskKey, write: WriteDep) -> JSONResponse:
    def work(session: Session) -> Outcome:
        ticket = tickets.respond(session, ticket_id, data, staff.scope_of(session, principal), utcnow())
        return Outcome(200, tickets.to_out(session, ticket))
    return write.run(data, work)


@router.post("/tickets/{ticket_id}/status", response_model=TicketOut,
             responses={409: {"description": "the status change is not allowed"}})
def change_status(ticket_id: IdPath, data: StatusIn, principal: DeskKey, write: WriteDep) -> JSONResponse:
    def work(session: Session) -> Outcome:
        ticket = tickets.change_status(session, ticket_id, data, staff.scope_of(session, principal), utcnow())
        return Outcome(200, tickets.to_out(session, ticket))
    return write.run(data, work)


@router.post("/tickets/{ticket_id}/goodwill", response_model=TicketOut,
             responses={409: {"description": "goodwill points were already granted on this ticket"}})
def grant_goodwill(ticket_id: IdPath, data: GoodwillIn, principal: DeskKey, write: WriteDep) -> JSONResponse:
    def work(session: Session) -> Outcome:
        ticket = tickets.grant_goodwill(session, ticket_id, data, staff.scope_of(session, principal), utcnow())
        return Outcome(200, tickets.to_out(session, ticket))
    return write.run(data, work)


@router.post("/customers/{customer_id}/departures", status_code=201, response_model=DepartureOut,
             summary="Record why a member cancelled or was won back")
def record_departure(customer_id: IdPath, data: DepartureIn, principal: DeskKey, write: WriteDep) -> JSONResponse:
    def work(session: Session) -> Outcome:
        return Outcome(201, departures.record(session, customer_id, data, principal.actor, utcnow()))
    return write.run(data, work)


# --- surveys --------------------------------------------------------------------------------------

@router.post("/surveys", status_code=201, response_model=SurveyOut, tags=["surveys"])
def create_survey(data: SurveyIn, _: AdminKey, write: WriteDep) -> JSONResponse:
    def work(session: Session) -> Outcome:
        return Outcome(201, surveys.survey_out(surveys.create_survey(session, data, utcnow())))
    return write.run(data, work)


@router.get("/surveys", response_model=list[SurveyOut], tags=["surveys"])
def list_surveys(session: ReadSession, _: ViewerKey) -> list[SurveyOut]:
    return [surveys.survey_out(s) for s in session.scalars(select(Survey).order_by(Survey.id))]


@router.post("/surveys/{survey_id}/invitations", status_code=201, response_model=InvitationOut, tags=["surveys"],
             summary="Invite a customer by hand; the answer link is signed and expires")
def invite(survey_id: IdPath, data: InviteIn, principal: DeskKey, write: WriteDep) -> JSONResponse:
    def work(session: Session) -> Outcome:
        invitation = surveys.invite(session, survey_id, data, principal.actor, utcnow())
        return Outcome(201, surveys.invitation_out(session, invitation))
    return write.run(data, work)


@router.get("/surveys/{survey_id}/invitations", response_model=list[InvitationOut], tags=["surveys"],
            summary="Invitations with their links, for the e-mail/SMS sender, oldest first")
def list_invitations(
    survey_id: IdPath, _: AdminKey, request: Request,
    after_id: Annotated[int, Query(ge=0, le=MAX_ID, description="last invitation id already sent")] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[InvitationOut]:
    # Signing may create the per-database secret on first use, so this read runs as a writer.
    with session_factory(request.app.state.engine)() as session:
        surveys.require_survey(session, survey_id)
        found = session.scalars(select(SurveyInvitation).where(SurveyInvitation.survey_id == survey_id,
                                                               SurveyInvitation.id > after_id)
                                .order_by(SurveyInvitation.id).limit(limit)).all()
        out = [surveys.invitation_out(session, i) for i in found]
        session.commit()
    return out


@router.post("/survey-answers", status_code=201, response_model=AnswerOut, tags=["surveys"],
             responses={404: {"description": "forged or damaged link"}, 409: {"description": "already answered"},
                        410: {"description": "expired link"}},
             summary="Answer a survey with the token from its link (no API key: the token is the permission)")
def post_answer(data: AnswerIn, request: Request) -> AnswerOut:
    session = session_factory(request.app.state.engine)()
    try:
        result = surveys.answer(session, data, utcnow())
        session.commit()
        return result
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
