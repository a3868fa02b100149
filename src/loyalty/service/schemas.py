"""Request and response bodies of the service desk: staff, interactions, tickets, surveys, reports."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from loyalty.api.limits import MAX_ID

Channel = Literal["phone", "email", "store", "web", "social", "sms", "zalo", "app", "api", "survey"]
InteractionKind = Literal["call", "email", "visit", "web", "social", "message", "complaint", "survey", "note"]
Category = Literal["product", "service", "staff", "price", "delivery", "points", "store", "other"]
Priority = Literal["low", "normal", "high", "urgent"]
Status = Literal["new", "assigned", "waiting", "resolved", "closed"]
StatusChange = Literal["assigned", "waiting", "resolved", "closed", "reopened"]
StoreId = str
Id = int


def _text(value: str) -> str:
    stripped = value.strip()
    if not stripped:
        raise ValueError("must not be empty")
    return stripped


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- staff ----------------------------------------------------------------------------------------

class StaffIn(Strict):
    name: str = Field(min_length=1, max_length=200)
    email: str = Field(min_length=3, max_length=200, pattern=r"^[^@\s]+@[^@\s]+$")
    role: Literal["agent", "manager", "admin", "readonly"]
    stores: list[str] = Field(default_factory=list, max_length=200)

    _name = field_validator("name")(_text)  # stored stripped: blank is no name


class StaffPatch(Strict):
    """Change who a staff member is for the desk; fields left out stay as they are."""

    stores: list[str] | None = Field(default=None, max_length=200,
                                     description="the stores they cover from now on (replaces the list)")
    active: bool | None = Field(default=None, description="false: their keys stop working and no tickets "
                                                          "are assigned to them by rule")


class StaffOut(BaseModel):
    id: int
    name: str
    email: str
    role: str
    active: bool
    stores: list[str]


# --- interactions and the timeline ---------------------------------------------------------------

class InteractionIn(Strict):
    kind: InteractionKind
    channel: Channel
    direction: Literal["inbound", "outbound"] = "inbound"
    occurred_at: datetime | None = Field(default=None, description="when it happened (default: now); needs an offset")
    store_id: str | None = Field(default=None, max_length=32)
    staff_id: int | None = Field(default=None, ge=1, le=MAX_ID, description="who handled it (default: the key's)")
    note: str = Field(default="", max_length=500)

    @field_validator("occurred_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("give a time zone offset, e.g. 2026-11-23T10:15:00+07:00")
        return value


class InteractionOut(BaseModel):
    id: int
    customer_id: int
    kind: str
    channel: str
    direction: str
    occurred_at: datetime
    store_id: str | None
    staff_id: int | None
    note: str
    actor: str


class TimelineItem(BaseModel):
    at: datetime
    type: str = Field(description="interaction, complaint, survey_answer, purchase, return or points")
    id: int = Field(description="id of the row in its own table (interaction, ticket, answer, transaction, entry)")
    kind: str | None = Field(description="interaction kind, ticket status, survey kind or ledger entry kind")
    channel: str | None
    store_id: str | None
    handled_by: str | None
    note: str | None
    amount: int | None = Field(description="VND for purchases and returns")
    score: int | None = Field(description="survey score")


class TimelinePage(BaseModel):
    items: list[TimelineItem]
    next_offset: int | None


# --- tickets --------------------------------------------------------------------------------------

class TicketIn(Strict):
    customer_id: int = Field(ge=1, le=MAX_ID)
    store_id: str | None = Field(default=None, max_length=32)
    channel: Channel = "api"
    category: Category
    priority: Priority = "normal"
    subject: str = Field(min_length=1, max_length=200)
    description: str = Field(min_length=1, max_length=5000)
    owner_id: int | None = Field(default=None, ge=1, le=MAX_ID,
                                 description="a named staff member; omit to assign by rule (round-robin per store)")

    _subject = field_validator("subject", "description")(_text)


class AssignIn(Strict):
    owner_id: int | None = Field(default=None, ge=1, le=MAX_ID, description="omit to assign by rule")
    note: str = Field(default="", max_length=1000)


class StatusIn(Strict):
    status: StatusChange
    note: str = Field(default="", max_length=1000)


class ResponseIn(Strict):
    message: str = Field(min_length=1, max_length=5000)
    wait_for_customer: bool = Field(default=False, description="move the ticket to 'waiting on customer'")

    _message = field_validator("message")(_text)


class GoodwillIn(Strict):
    points: int | None = Field(default=None, ge=1, le=100_000)
    voucher_value: int | None = Field(default=None, ge=1000, le=100_000_000, description="VND")
    note: str = Field(min_length=1, max_length=500)

    _note = field_validator("note")(_text)


class TicketEventOut(BaseModel):
    id: int
    kind: str
    from_status: str | None
    to_status: str | None
    owner_id: int | None
    points: int | None
    ledger_entry_id: int | None
    note: str
    actor: str
    created_at: datetime


class TicketOut(BaseModel):
    id: int
    customer_id: int
    store_id: str | None
    channel: str
    category: str
    priority: str
    subject: str
    description: str
    status: str
    owner_id: int | None
    survey_response_id: int | None
    created_at: datetime
    created_by: str
    first_response_due_at: datetime
    resolution_due_at: datetime
    first_response_at: datetime | None
    resolved_at: datetime | None
    closed_at: datetime | None
    breached_at: datetime | None = Field(description="when the first response became late")
    resolution_breached_at: datetime | None = Field(
        description="when the ticket became overdue: not resolved by resolution_due_at")
    escalated_to_id: int | None
    events: list[TicketEventOut] = Field(default_factory=list)


class CustomerTicketLinkIn(Strict):
    days: int = Field(default=30, ge=1, le=365, description="how long the link works")


class CustomerTicketLink(BaseModel):
    url: str
    token: str
    expires_at: datetime


class CustomerReply(BaseModel):
    at: datetime
    note: str


class CustomerTicket(BaseModel):
    """What a customer sees of their own ticket: no owners, internal notes or deadlines."""

    id: int
    subject: str
    category: str
    store_id: str | None
    status: str
    created_at: datetime
    first_response_at: datetime | None
    resolved_at: datetime | None
    replies: list[CustomerReply]


class CustomerTickets(BaseModel):
    customer_id: int
    tickets: list[CustomerTicket]


class TicketPage(BaseModel):
    items: list[TicketOut]
    next_before: int | None


# --- departures -----------------------------------------------------------------------------------

class DepartureIn(Strict):
    kind: Literal["cancelled", "won_back"]
    reason: Literal["price", "service", "product", "competitor", "moved", "no_need", "points", "other"]
    note: str = Field(default="", max_length=500)


class DepartureOut(BaseModel):
    id: int
    customer_id: int
    kind: str
    reason: str
    note: str
    created_at: datetime


# --- surveys --------------------------------------------------------------------------------------

class CustomField(Strict):
    name: str = Field(min_length=1, max_length=40, pattern=r"^[a-z][a-z0-9_]*$")
    label: str = Field(min_length=1, max_length=200)
    type: Literal["text", "choice", "rating"] = "text"
    choices: list[str] = Field(default_factory=list, max_length=20)
    required: bool = False


class SurveyIn(Strict):
    name: str = Field(min_length=1, max_length=200)
    kind: Literal["nps", "csat", "custom"]
    question: str = Field(default="", max_length=500, description="default: the standard NPS or CSAT question")
    fields: list[CustomField] = Field(default_factory=list, max_length=20, description="custom surveys only")
    channel: Literal["email", "sms", "zalo"] = "email"
    after_purchase: bool = False
    delay_hours: int = Field(default=24, ge=0, le=24 * 60)
    sample_percent: int = Field(default=100, ge=0, le=100)
    cooldown_days: int = Field(default=30, ge=0, le=3650, description="at most one invitation per customer per N days")
    link_days: int = Field(default=14, ge=1, le=365)

    _name = field_validator("name")(_text)  # stored stripped: blank is no name


class SurveyOut(SurveyIn):
    id: int
    active: bool
    created_at: datetime


class InviteIn(Strict):
    customer_id: int = Field(ge=1, le=MAX_ID)
    store_id: str | None = Field(default=None, max_length=32)
    channel: Literal["email", "sms", "zalo", "phone", "store"] | None = Field(
        default=None, description="default: the survey's; phone and store (asked in person) need no consent")


class InvitationOut(BaseModel):
    id: int
    survey_id: int
    customer_id: int
    transaction_id: int | None
    store_id: str | None
    channel: str
    created_at: datetime
    expires_at: datetime
    link: str
    sent_at: datetime | None = Field(default=None, description="when `loyalty jobs run` e-mailed it (SMTP accepted)")


class AnswerIn(Strict):
    token: str = Field(min_length=10, max_length=500)
    score: int | None = Field(default=None, description="NPS 0-10, CSAT 1-5; checked against the survey")
    comment: str = Field(default="", max_length=2000)
    answers: dict[str, str] = Field(default_factory=dict, max_length=20)
    language: Literal["vi", "en"] = "vi"


class AnswerOut(BaseModel):
    id: int
    survey_id: int
    kind: str
    score: int | None
    ticket_id: int | None = Field(description="the complaint a detractor answer opened")


# --- reports --------------------------------------------------------------------------------------

class ScoreRowOut(BaseModel):
    store_id: str | None
    channel: str | None
    month: str | None
    answers: int
    score: float = Field(description="NPS in points (-100..100), or CSAT as the % of 4 and 5 answers")
    ci_low: float = Field(description="95 % interval; rows are ranked by this lower bound")
    ci_high: float
    promoters: int
    passives: int
    detractors: int
    satisfied: int
    mean: float | None


class ScoreReport(BaseModel):
    kind: str
    method: str
    rows: list[ScoreRowOut]


class TimeRowOut(BaseModel):
    key: str | None = Field(description="store id or owner (staff) id")
    name: str | None
    tickets: int
    responded: int
    within_sla: int
    breached: int = Field(description="first responses after the due time")
    resolved: int
    avg_first_response_hours: float | None
    avg_resolution_hours: float | None
    overdue: int = Field(description="resolution breaches: not resolved by the resolution due time")


class TrendOut(BaseModel):
    dimension: str
    value: str | None
    this_week: int
    previous: list[int] = Field(description="complaints in each previous week, oldest first")
    mean: float
    threshold: float
    rising: bool


class TermOut(BaseModel):
    term: str
    count: int = Field(description="comments that use it")
    examples: list[str]


class WeeklyReview(BaseModel):
    week_start: datetime
    rule: str
    trends: list[TrendOut]
    comments: int
    words: list[TermOut]
    phrases: list[TermOut]


class DepartureCount(BaseModel):
    kind: str
    reason: str
    count: int
