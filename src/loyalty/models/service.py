"""Service and feedback: staff, interactions, surveys and their answers, complaint tickets, departures."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from loyalty.models.base import Base, BigIntPK, UTCDateTime

STAFF_ROLES = ("agent", "manager", "admin", "readonly")
CHANNELS = ("phone", "email", "store", "web", "social", "sms", "zalo", "app", "api", "survey")
INTERACTION_KINDS = ("call", "email", "visit", "web", "social", "message", "complaint", "survey", "note")
SURVEY_KINDS = ("nps", "csat", "custom")
TICKET_CATEGORIES = ("product", "service", "staff", "price", "delivery", "points", "store", "other")
PRIORITIES = ("low", "normal", "high", "urgent")
TICKET_STATUSES = ("new", "assigned", "waiting", "resolved", "closed")
DEPARTURE_KINDS = ("cancelled", "won_back")
DEPARTURE_REASONS = ("price", "service", "product", "competitor", "moved", "no_need", "points", "other")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class StaffMember(Base):
    """A named person who handles tickets; API keys with role agent or manager belong to one."""

    __tablename__ = "staff_members"
    __table_args__ = (CheckConstraint(_in("role", STAFF_ROLES), name="role"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(200), unique=True)
    role: Mapped[str] = mapped_column(String(10))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Web login (migration 0012): an argon2 hash; None means the person cannot log in to the web screens.
    password_hash: Mapped[str | None] = mapped_column(String(200))
    password_set_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Consecutive failed logins and the lock they earned (reset by a successful login).
    failed_logins: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime())


class StaffStore(Base):
    """The stores a staff member covers; `last_assigned_at` drives round-robin assignment."""

    __tablename__ = "staff_stores"

    staff_id: Mapped[int] = mapped_column(ForeignKey("staff_members.id"), primary_key=True)
    store_id: Mapped[str] = mapped_column(ForeignKey("stores.id"), primary_key=True)
    last_assigned_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class StaffApiKey(Base):
    """Which staff member an API key acts for (keys of role agent and manager always have one)."""

    __tablename__ = "staff_keys"

    api_key_id: Mapped[int] = mapped_column(ForeignKey("api_keys.id"), primary_key=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff_members.id"))


class StoreHours(Base):
    """A store's time zone and service hours, for SLA clocks that count business hours only."""

    __tablename__ = "store_hours"
    __table_args__ = (CheckConstraint("opens_minute >= 0 AND opens_minute < closes_minute AND closes_minute <= 1440",
                                      name="hours"),)

    store_id: Mapped[str] = mapped_column(ForeignKey("stores.id"), primary_key=True)
    timezone: Mapped[str] = mapped_column(String(64))
    opens_minute: Mapped[int] = mapped_column(Integer)
    closes_minute: Mapped[int] = mapped_column(Integer)
    # ISO weekdays the service desk works, as digits: "12345" is Monday to Friday.
    weekdays: Mapped[str] = mapped_column(String(7))


class SlaPolicy(Base):
    """First-response and resolution targets per priority; code defaults apply when a row is missing."""

    __tablename__ = "sla_policies"
    __table_args__ = (CheckConstraint(_in("priority", PRIORITIES), name="priority"),
                      CheckConstraint("first_response_hours > 0 AND resolution_hours > 0", name="positive"))

    priority: Mapped[str] = mapped_column(String(10), primary_key=True)
    first_response_hours: Mapped[int] = mapped_column(Integer)
    resolution_hours: Mapped[int] = mapped_column(Integer)
    business_hours: Mapped[bool] = mapped_column(Boolean, default=False)


class Interaction(Base):
    """One touchpoint on a customer's timeline: a call, an e-mail, a visit, a message."""

    __tablename__ = "interactions"
    __table_args__ = (
        CheckConstraint(_in("kind", INTERACTION_KINDS), name="kind"),
        CheckConstraint(_in("channel", CHANNELS), name="channel"),
        Index("ix_interactions_customer_time", "customer_id", "occurred_at"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    kind: Mapped[str] = mapped_column(String(12))
    channel: Mapped[str] = mapped_column(String(10))
    direction: Mapped[str] = mapped_column(String(8), default="inbound")
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())
    store_id: Mapped[str | None] = mapped_column(ForeignKey("stores.id"))
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff_members.id"))
    note: Mapped[str] = mapped_column(String(500), default="")
    actor: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Survey(Base):
    __tablename__ = "surveys"
    __table_args__ = (
        CheckConstraint(_in("kind", SURVEY_KINDS), name="kind"),
        CheckConstraint("sample_percent >= 0 AND sample_percent <= 100", name="sample"),
        CheckConstraint("delay_hours >= 0 AND cooldown_days >= 0", name="timing"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(10))
    question: Mapped[str] = mapped_column(Text)
    # For custom surveys: a JSON list of {"name", "label", "type": "text"|"choice"|"rating", "choices"}.
    fields: Mapped[str] = mapped_column(Text, default="[]")
    channel: Mapped[str] = mapped_column(String(10))
    after_purchase: Mapped[bool] = mapped_column(Boolean, default=False)
    delay_hours: Mapped[int] = mapped_column(Integer, default=24)
    sample_percent: Mapped[int] = mapped_column(Integer, default=100)
    cooldown_days: Mapped[int] = mapped_column(Integer, default=30)
    link_days: Mapped[int] = mapped_column(Integer, default=14)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class SurveyInvitation(Base):
    __tablename__ = "survey_invitations"
    __table_args__ = (
        # A purchase triggers a survey at most once, however often the job runs.
        UniqueConstraint("survey_id", "transaction_id", name="per_purchase"),
        Index("ix_survey_invitations_customer_time", "customer_id", "created_at"),
        Index("ix_survey_invitations_unsent", "sent_at", "send_after"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    survey_id: Mapped[int] = mapped_column(ForeignKey("surveys.id"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    transaction_id: Mapped[int | None] = mapped_column(ForeignKey("transactions.id"))
    store_id: Mapped[str | None] = mapped_column(ForeignKey("stores.id"))
    channel: Mapped[str] = mapped_column(String(10))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    send_after: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(100))
    # E-mail delivery (migration 0006): set once the SMTP server accepted the message.
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    send_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_error: Mapped[str | None] = mapped_column(String(300))
    # A sender's claim: others leave the invitation alone until then (a crashed sender's claim lapses).
    sending_until: Mapped[datetime | None] = mapped_column(UTCDateTime())


class SurveyResponse(Base):
    __tablename__ = "survey_responses"
    __table_args__ = (
        # The database itself refuses a second answer to one invitation.
        UniqueConstraint("invitation_id", name="once"),
        CheckConstraint("score IS NULL OR (score >= 0 AND score <= 10)", name="score"),
        Index("ix_survey_responses_customer", "customer_id", "created_at"),
        Index("ix_survey_responses_time", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    invitation_id: Mapped[int] = mapped_column(ForeignKey("survey_invitations.id"))
    survey_id: Mapped[int] = mapped_column(ForeignKey("surveys.id"))
    kind: Mapped[str] = mapped_column(String(10))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    store_id: Mapped[str | None] = mapped_column(ForeignKey("stores.id"))
    channel: Mapped[str] = mapped_column(String(10))
    score: Mapped[int | None] = mapped_column(SmallInteger)
    comment: Mapped[str] = mapped_column(Text, default="")
    answers: Mapped[str] = mapped_column(Text, default="{}")
    language: Mapped[str] = mapped_column(String(5), default="vi")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Ticket(Base):
    __tablename__ = "tickets"
    __table_args__ = (
        CheckConstraint(_in("status", TICKET_STATUSES), name="status"),
        CheckConstraint(_in("priority", PRIORITIES), name="priority"),
        CheckConstraint(_in("category", TICKET_CATEGORIES), name="category"),
        CheckConstraint("status = 'new' OR owner_id IS NOT NULL OR status IN ('resolved', 'closed')",
                        name="owned_when_assigned"),
        CheckConstraint("status NOT IN ('resolved', 'closed') OR first_response_at IS NOT NULL",
                        name="answered_before_resolved"),
        UniqueConstraint("survey_response_id", name="one_per_answer"),
        Index("ix_tickets_store_status", "store_id", "status"),
        Index("ix_tickets_customer", "customer_id", "created_at"),
        Index("ix_tickets_due", "first_response_due_at"),
        Index("ix_tickets_resolution_due", "resolution_due_at"),
        Index("ix_tickets_created", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    store_id: Mapped[str | None] = mapped_column(ForeignKey("stores.id"))
    channel: Mapped[str] = mapped_column(String(10))
    category: Mapped[str] = mapped_column(String(12))
    priority: Mapped[str] = mapped_column(String(10))
    subject: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(10))
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("staff_members.id"))
    survey_response_id: Mapped[int | None] = mapped_column(ForeignKey("survey_responses.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(100))
    first_response_due_at: Mapped[datetime] = mapped_column(UTCDateTime())
    resolution_due_at: Mapped[datetime] = mapped_column(UTCDateTime())
    first_response_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    breached_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # first response late
    # Not resolved by resolution_due_at (migration 0006); stays set when a ticket is reopened.
    resolution_breached_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    escalated_to_id: Mapped[int | None] = mapped_column(ForeignKey("staff_members.id"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class TicketEvent(Base):
    """Every change to a ticket, with who and when: status, owner, responses, goodwill, breaches."""

    __tablename__ = "ticket_events"
    __table_args__ = (Index("ix_ticket_events_ticket", "ticket_id", "id"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"))
    kind: Mapped[str] = mapped_column(String(12))
    from_status: Mapped[str | None] = mapped_column(String(10))
    to_status: Mapped[str | None] = mapped_column(String(10))
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("staff_members.id"))
    points: Mapped[int | None] = mapped_column(Integer)
    ledger_entry_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_entries.id"))
    note: Mapped[str] = mapped_column(Text, default="")
    actor: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Departure(Base):
    """Why a member left (cancelled) or came back (won back)."""

    __tablename__ = "departures"
    __table_args__ = (
        CheckConstraint(_in("kind", DEPARTURE_KINDS), name="kind"),
        CheckConstraint(_in("reason", DEPARTURE_REASONS), name="reason"),
        Index("ix_departures_time", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    kind: Mapped[str] = mapped_column(String(10))
    reason: Mapped[str] = mapped_column(String(12))
    note: Mapped[str] = mapped_column(String(500), default="")
    actor: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ServiceSecret(Base):
    """A generated signing secret for survey links, shared by every process on this database."""

    __tablename__ = "service_secrets"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    value: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
