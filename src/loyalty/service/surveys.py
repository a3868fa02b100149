"""Surveys (NPS, CSAT, custom): invitations after a purchase or by hand, answers by signed link, detractor tickets."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import exists, func, insert, literal, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from loyalty.config import get_settings
from loyalty.customers.service import require_customer
from loyalty.errors import Conflict, NotFound, ValidationFailed
from loyalty.models import Customer, Transaction
from loyalty.models.service import Survey, SurveyInvitation, SurveyResponse
from loyalty.service import tickets, tokens
from loyalty.service.schemas import (
    AnswerIn,
    AnswerOut,
    CustomField,
    InvitationOut,
    InviteIn,
    SurveyIn,
    SurveyOut,
    TicketIn,
)
from loyalty.service.staff import Scope
from loyalty.stores.service import store_kind

DEFAULT_QUESTIONS = {
    "nps": "Bạn có sẵn lòng giới thiệu chúng tôi với bạn bè không? / How likely are you to recommend us to a friend?",
    "csat": "Bạn hài lòng thế nào với lần mua hàng này? / How satisfied were you with this visit?",
    "custom": "Góp ý của bạn / Your feedback",
}
SCORE_RANGE = {"nps": (0, 10), "csat": (1, 5)}
CONSENT = {"email": Customer.consent_email, "sms": Customer.consent_sms, "zalo": Customer.consent_zalo}
# Purchases older than this are not invited when the job first runs or after a pause.
TRIGGER_WINDOW = timedelta(days=7)


class AlreadyAnswered(Conflict):
    type_slug = "already-answered"
    title = "This survey was already answered"


def is_detractor(kind: str, score: int | None) -> bool:
    return score is not None and ((kind == "nps" and score <= 6) or (kind == "csat" and score <= 2))


def detractor_priority(kind: str, score: int | None) -> Literal["normal", "high"]:
    """NPS 0-3 or CSAT 1 are angry customers: high priority; other detractors normal."""
    return "high" if score is not None and ((kind == "nps" and score <= 3) or (kind == "csat" and score == 1)) \
        else "normal"


def create_survey(session: Session, data: SurveyIn, now: datetime) -> Survey:
    if data.kind == "custom" and not data.fields:
        raise ValidationFailed("a custom survey needs at least one field")
    if data.kind != "custom" and data.fields:
        raise ValidationFailed("only custom surveys have fields")
    question = data.question.strip() or DEFAULT_QUESTIONS[data.kind]
    survey = Survey(name=data.name.strip(), kind=data.kind, question=question,
                    fields=json.dumps([f.model_dump() for f in data.fields], ensure_ascii=False), channel=data.channel,
                    after_purchase=data.after_purchase, delay_hours=data.delay_hours,
                    sample_percent=data.sample_percent, cooldown_days=data.cooldown_days, link_days=data.link_days,
                    active=True, created_at=now)
    session.add(survey)
    session.flush()
    return survey


def fields_of(survey: Survey) -> list[CustomField]:
    return [CustomField.model_validate(f) for f in json.loads(survey.fields)]


def survey_out(survey: Survey) -> SurveyOut:
    return SurveyOut(id=survey.id, name=survey.name, kind=survey.kind,
                     question=survey.question, fields=fields_of(survey), channel=survey.channel,
                     after_purchase=survey.after_purchase, delay_hours=survey.delay_hours,
                     sample_percent=survey.sample_percent, cooldown_days=survey.cooldown_days,
                     link_days=survey.link_days, active=survey.active, created_at=survey.created_at)


def require_survey(session: Session, survey_id: int) -> Survey:
    survey = session.get(Survey, survey_id)
    if survey is None:
        raise NotFound(f"survey {survey_id} does not exist")
    return survey


def link(session: Session, invitation: SurveyInvitation) -> str:
    return f"{get_settings().public_url.rstrip('/')}/s/{tokens.sign(session, invitation.id)}"


def invitation_out(session: Session, invitation: SurveyInvitation) -> InvitationOut:
    return InvitationOut(id=invitation.id, survey_id=invitation.survey_id, customer_id=invitation.customer_id,
                         transaction_id=invitation.transaction_id, store_id=invitation.store_id,
                         channel=invitation.channel, created_at=invitation.created_at,
                         expires_at=invitation.expires_at, link=link(session, invitation),
                         sent_at=invitation.sent_at)


def invite(session: Session, survey_id: int, data: InviteIn, actor: str, now: datetime) -> SurveyInvitation:
    """An invitation sent by hand; messages need the customer's consent for that channel."""
    survey = require_survey(session, survey_id)
    if not survey.active:
        raise Conflict(f"survey {survey_id} is not active")
    customer = require_customer(session, data.customer_id)
    if data.store_id is not None:
        store_kind(session, data.store_id)
    channel = data.channel or survey.channel
    if channel in CONSENT and not getattr(customer, f"consent_{channel}"):
        raise Conflict(f"customer {customer.id} has not agreed to {channel} messages")
    invitation = SurveyInvitation(survey_id=survey.id, customer_id=customer.id, transaction_id=None,
                                  store_id=data.store_id, channel=channel, created_at=now, send_after=now,
                                  expires_at=now + timedelta(days=survey.link_days), created_by=actor)
    session.add(invitation)
    session.flush()
    return invitation


def trigger_after_purchase(session: Session, now: datetime) -> int:
    """Invites recent buyers, set-based: one INSERT..SELECT per active after-purchase survey.

    A purchase qualifies once its delay has passed (and within a week of that); sampling is a
    deterministic hash of the purchase id; the customer must consent to the survey's channel and
    have had no invitation from any survey in the cool-down; one invitation per customer per run
    (their latest purchase). The (survey, purchase) UNIQUE key makes reruns harmless.
    """
    total = 0
    for survey in session.scalars(select(Survey).where(Survey.active.is_(True), Survey.after_purchase.is_(True),
                                                        Survey.sample_percent > 0)):
        ready = now - timedelta(hours=survey.delay_hours)
        consent = CONSENT.get(survey.channel)
        if consent is None:
            continue
        recent = SurveyInvitation.__table__.alias("recent")
        ranked = (
            select(Transaction.id.label("tid"), Transaction.customer_id.label("cid"),
                   Transaction.store_id.label("sid"),
                   func.row_number().over(partition_by=Transaction.customer_id,
                                          order_by=Transaction.id.desc()).label("rn"))
            .join(Customer, Customer.id == Transaction.customer_id)
            .where(Transaction.kind == "purchase", Transaction.customer_id.is_not(None),
                   Transaction.occurred_at <= ready, Transaction.occurred_at > ready - TRIGGER_WINDOW,
                   consent.is_(True),
                   (Transaction.id * 7919 + survey.id * 104729) % 100 < survey.sample_percent,
                   ~exists().where(recent.c.customer_id == Transaction.customer_id,
                                   recent.c.created_at > now - timedelta(days=survey.cooldown_days)),
                   ~exists().where(recent.c.survey_id == survey.id, recent.c.transaction_id == Transaction.id))
            .subquery())
        expires = now + timedelta(days=survey.link_days)
        when = SurveyInvitation.created_at.type
        result = session.execute(insert(SurveyInvitation).from_select(
            ["survey_id", "customer_id", "transaction_id", "store_id", "channel", "created_at", "send_after",
             "expires_at", "created_by"],
            select(literal(survey.id), ranked.c.cid, ranked.c.tid, ranked.c.sid, literal(survey.channel),
                   literal(now, when), literal(now, when), literal(expires, when), literal("job:surveys"))
            .where(ranked.c.rn == 1)).returning(SurveyInvitation.id))
        total += len(result.all())  # RETURNING: psycopg reports no row count for INSERT..SELECT here
    return total


def open_invitation(session: Session, token: str, now: datetime) -> tuple[SurveyInvitation, Survey]:
    """The invitation behind a link, or a clear refusal: forged, expired or already answered."""
    invitation_id, signed_at = tokens.read(session, token)
    invitation = session.get(SurveyInvitation, invitation_id)
    if invitation is None:
        raise tokens.InvalidLink("the link is damaged or was not issued by us; use the link from your message")
    survey = require_survey(session, invitation.survey_id)
    if now >= invitation.expires_at or now >= signed_at + timedelta(days=survey.link_days):
        raise tokens.LinkExpired("this survey link has expired; thank you all the same")
    if session.scalar(select(exists().where(SurveyResponse.invitation_id == invitation.id))):
        raise AlreadyAnswered("this survey was already answered; thank you")
    return invitation, survey


def _check_answer(survey: Survey, data: AnswerIn) -> tuple[int | None, dict[str, str]]:
    if survey.kind in SCORE_RANGE:
        low, high = SCORE_RANGE[survey.kind]
        if data.score is None or not low <= data.score <= high:
            raise ValidationFailed(f"choose a score from {low} to {high}", field="score")
        return data.score, {}
    if data.score is not None:
        raise ValidationFailed("this survey has no score", field="score")
    answers: dict[str, str] = {}
    for field in fields_of(survey):
        value = data.answers.get(field.name, "").strip()
        if field.required and not value:
            raise ValidationFailed(f"{field.label}: please answer", field=field.name)
        if value and field.type == "choice" and value not in field.choices:
            raise ValidationFailed(f"{field.label}: choose one of the options", field=field.name)
        if value and field.type == "rating" and value not in {"1", "2", "3", "4", "5"}:
            raise ValidationFailed(f"{field.label}: choose from 1 to 5", field=field.name)
        if value:
            answers[field.name] = value[:1000]
    unknown = set(data.answers) - {f.name for f in fields_of(survey)}
    if unknown:
        raise ValidationFailed(f"unknown field {sorted(unknown)[0]!r}")
    return None, answers


def answer(session: Session, data: AnswerIn, now: datetime) -> AnswerOut:
    """Records an answer (the invitation's UNIQUE key refuses a second one) and opens a ticket for a detractor."""
    invitation, survey = open_invitation(session, data.token, now)
    score, answers = _check_answer(survey, data)
    response = SurveyResponse(invitation_id=invitation.id, survey_id=survey.id, kind=survey.kind,
                              customer_id=invitation.customer_id, store_id=invitation.store_id,
                              channel=invitation.channel, score=score, comment=data.comment.strip(),
                              answers=json.dumps(answers, ensure_ascii=False), language=data.language, created_at=now)
    try:
        with session.begin_nested():
            session.add(response)
    except IntegrityError:
        raise AlreadyAnswered("this survey was already answered; thank you") from None
    ticket_id = None
    if is_detractor(survey.kind, score):
        label = "NPS" if survey.kind == "nps" else "CSAT"
        ticket = tickets.create_ticket(
            session,
            TicketIn(customer_id=invitation.customer_id, store_id=invitation.store_id, channel="survey",
                     category="service", priority="high" if (score is not None and score <= 3 and label == "NPS")
                     or score == 1 else "normal",
                     subject=f"{label} {score} in a survey answer",
                     description=response.comment or f"{label} score {score}, no comment"),
            Scope("system", None, "survey", None), now, survey_response_id=response.id)
        ticket_id = ticket.id
    return AnswerOut(id=response.id, survey_id=survey.id, kind=survey.kind, score=score, ticket_id=ticket_id)


