"""The service desk over HTTP: staff, interactions, the timeline, tickets, departures."""

from __future__ import annotations

from dataclasses import asdict
from datetime import date, datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from loyalty.api.deps import AdminKey, Outcome, ReadSession, WriteDep, require_roles
from loyalty.api.limits import MAX_ID, IdPath
from loyalty.auth.service import Principal
from loyalty.auth.service import clear_cache as clear_key_cache
from loyalty.config import get_settings
from loyalty.customers.service import require_customer
from loyalty.db import session_factory
from loyalty.errors import ValidationFailed
from loyalty.models.service import Survey, SurveyInvitation
from loyalty.service import departures, interactions, reports, staff, surveys, tickets, tokens
from loyalty.service.schemas import (
    AnswerIn,
    AnswerOut,
    AssignIn,
    CustomerTicketLink,
    CustomerTicketLinkIn,
    CustomerTickets,
    DepartureCount,
    DepartureIn,
    DepartureOut,
    GoodwillIn,
    InteractionIn,
    InteractionOut,
    InvitationOut,
    InviteIn,
    ResponseIn,
    ScoreReport,
    ScoreRowOut,
    StaffIn,
    StaffOut,
    StaffPatch,
    Status,
    StatusIn,
    SurveyIn,
    SurveyOut,
    TermOut,
    TicketIn,
    TicketOut,
    TicketPage,
    TimelinePage,
    TimeRowOut,
    TrendOut,
    WeeklyReview,
)
from loyalty.timeutil import business_date, start_of_business_day, utcnow

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


@router.patch("/staff/{staff_id}", response_model=StaffOut, tags=["staff"],
              summary="Deactivate or reactivate a staff member, or replace the stores they cover")
def update_staff(staff_id: IdPath, data: StaffPatch, _: AdminKey, write: WriteDep) -> JSONResponse:
    def work(session: Session) -> Outcome:
        return Outcome(200, staff.to_out(session, staff.update_staff(session, staff_id, data)))
    response = write.run(data, work)
    # After the commit: this process forgets verified keys at once, so a deactivated person's
    # keys fail on their next request here. Other server processes notice within 30 s.
    clear_key_cache()
    return response


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
    breached: Annotated[bool | None, Query(description="first response late")] = None,
    overdue: Annotated[bool | None, Query(description="not resolved by the resolution due time")] = None,
    before: Annotated[int | None, Query(ge=1, le=MAX_ID, description="ticket id from next_before")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> TicketPage:
    found = tickets.list_tickets(session, staff.scope_of(session, principal), status=status, store_id=store_id,
                                 owner_id=owner_id, breached=breached, customer_id=customer_id, overdue=overdue,
                                 before=before, limit=limit)
    return TicketPage(items=[tickets.to_out(session, t, with_events=False) for t in found],
                      next_before=found[-1].id if len(found) == limit else None)


@router.get("/tickets/{ticket_id}", response_model=TicketOut)
def get_ticket(ticket_id: IdPath, session: ReadSession, principal: DeskKey) -> TicketOut:
    return tickets.to_out(session, tickets.get_visible(session, ticket_id, staff.scope_of(session, principal)))


@router.post("/customers/{customer_id}/ticket-link", status_code=201, response_model=CustomerTicketLink,
             summary="A signed link for the customer to follow their own tickets")
def create_ticket_link(customer_id: IdPath, data: CustomerTicketLinkIn, principal: DeskKey,
                       write: WriteDep) -> JSONResponse:
    def work(session: Session) -> Outcome:
        require_customer(session, customer_id)
        token = tokens.sign_customer(session, customer_id, data.days)
        return Outcome(201, CustomerTicketLink(url=f"{get_settings().public_url.rstrip('/')}/v1/customer-tickets/"
                                                   f"{token}", token=token,
                                               expires_at=utcnow() + timedelta(days=data.days)))
    return write.run(data, work)


@router.get("/customer-tickets/{token}", response_model=CustomerTickets,
            summary="A customer's own tickets, through the signed link they were sent (no API key)")
def read_customer_tickets(token: Annotated[str, Path(max_length=500)], session: ReadSession) -> CustomerTickets:
    customer_id = tokens.read_customer(session, token)
    return CustomerTickets(customer_id=customer_id, tickets=tickets.customer_tickets(session, customer_id))


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


# --- reports --------------------------------------------------------------------------------------

ReportKey = Annotated[Principal, Depends(require_roles("admin", "readonly", "manager"))]
By = Literal["store", "channel", "month"]
NPS_METHOD = ("NPS = % promoters (9-10) - % detractors (0-6). 95 % interval: Wald, variance ((p + d) - (p - d)^2) / n, "
              "on counts with one pseudo-answer of each kind added (Agresti-Caffo); ranked by its lower bound.")
CSAT_METHOD = "CSAT = % of answers 4 or 5. 95 % interval: Wilson score; ranked by its lower bound."


def _check_report_date(day: date, name: str) -> None:
    # Report windows are shifted by weeks and time zones: dates near year 1 or 9999 would overflow.
    if not date(1971, 1, 1) <= day <= date(9998, 12, 31):
        raise ValidationFailed(f"{name} {day.isoformat()} is out of range: use a date between 1971 and 9998")


def _range(since: date | None, until: date | None) -> tuple[datetime, datetime]:
    tz = get_settings().tz
    today = business_date(utcnow(), tz)
    start = since or today - timedelta(days=365)
    end = until or today
    if end < start:
        raise ValidationFailed("until must not be before since")
    _check_report_date(start, "since")
    _check_report_date(end, "until")
    return start_of_business_day(start, tz), start_of_business_day(end + timedelta(days=1), tz)


def _score(session: Session, kind: str, by: list[By], since: date | None, until: date | None) -> ScoreReport:
    start, end = _range(since, until)
    rows = reports.score_report(session, kind, by=list(dict.fromkeys(by)), since=start, until=end,
                                tz=get_settings().tz, now=utcnow())
    return ScoreReport(kind=kind, method=NPS_METHOD if kind == "nps" else CSAT_METHOD,
                       rows=[ScoreRowOut.model_validate(asdict(r)) for r in rows])


SinceQ = Annotated[date | None, Query(description="first business day (default: a year ago)")]
UntilQ = Annotated[date | None, Query(description="last business day (default: today)")]
ByQ = Annotated[list[By], Query(description="group by any of store, channel, month")]


@router.get("/reports/nps", response_model=ScoreReport, tags=["reports"])
def nps_report(session: ReadSession, _: ReportKey, by: ByQ = ["store"], since: SinceQ = None,  # noqa: B006
               until: UntilQ = None) -> ScoreReport:
    return _score(session, "nps", by, since, until)


@router.get("/reports/csat", response_model=ScoreReport, tags=["reports"])
def csat_report(session: ReadSession, _: ReportKey, by: ByQ = ["store"], since: SinceQ = None,  # noqa: B006
                until: UntilQ = None) -> ScoreReport:
    return _score(session, "csat", by, since, until)


@router.get("/reports/service-times", response_model=list[TimeRowOut], tags=["reports"],
            summary="First-response and resolution times per store or per owner (managers: their stores)")
def service_times(session: ReadSession, principal: ReportKey, by: Literal["store", "owner"] = "store",
                  since: SinceQ = None, until: UntilQ = None) -> list[TimeRowOut]:
    start, end = _range(since, until)
    rows = reports.service_times(session, by=by, since=start, until=end,
                                 stores=staff.scope_of(session, principal).stores)
    return [TimeRowOut.model_validate(asdict(r)) for r in rows]


@router.get("/reports/weekly-review", response_model=WeeklyReview, tags=["reports"],
            summary="Complaints by category and store against previous weeks, and the week's frequent words")
def weekly_review(
    session: ReadSession, _: ReportKey,
    week_of: Annotated[date | None, Query(description="any day of the week to review (default: this week)")] = None,
    weeks: Annotated[int, Query(ge=2, le=52, description="previous weeks to compare with")] = 8,
) -> WeeklyReview:
    return review(session, week_of or business_date(utcnow(), get_settings().tz), weeks)


def review(session: Session, week_of: date, weeks: int) -> WeeklyReview:
    _check_report_date(week_of, "week_of")
    tz = get_settings().tz
    trends = reports.complaint_trends(session, week_of=week_of, weeks=weeks, tz=tz)
    comments, words, phrases = reports.frequent_terms(session, week_of=week_of, tz=tz)
    return WeeklyReview(
        week_start=reports.week_start(week_of, tz), rule=reports.rising.__doc__ or "",
        trends=[TrendOut.model_validate(asdict(t)) for t in trends], comments=comments,
        words=[TermOut.model_validate(asdict(w)) for w in words],
        phrases=[TermOut.model_validate(asdict(p)) for p in phrases])


@router.get("/reports/departures", response_model=list[DepartureCount], tags=["reports"],
            summary="Why members cancelled or came back")
def departure_report(session: ReadSession, _: ReportKey, since: SinceQ = None,
                     until: UntilQ = None) -> list[DepartureCount]:
    start, end = _range(since, until)
    return [DepartureCount(kind=k, reason=r, count=n)
            for k, r, n in reports.departure_reasons(session, since=start, until=end)]
