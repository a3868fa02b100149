"""Survey invitations by e-mail: which are due, the message (plain text + HTML), SMTP, and the sent mark.

Standard library only (email.message.EmailMessage, smtplib). The job in service/jobs.py drives
the steps and commits between them; these functions only read and write through the session.
"""

from __future__ import annotations

import hashlib
import html
import logging
import smtplib
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import formataddr, formatdate, parseaddr

from sqlalchemy import and_, exists, or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from loyalty.config import Settings
from loyalty.models import Customer, CustomerIdentity
from loyalty.models.service import Interaction, Survey, SurveyInvitation, SurveyResponse
from loyalty.service import surveys

log = logging.getLogger(__name__)

# A sender's claim on the invitations it is about to send. A sender that crashes leaves its claim
# behind; after this long another run may send those invitations.
CLAIM = timedelta(minutes=15)
# Failures (refused recipient, server down) are retried on later runs, fresh invitations first,
# until this many attempts or until the link expires, whichever comes first.
MAX_ATTEMPTS = 8

SUBJECT = "Mời bạn cho ý kiến về lần mua sắm vừa qua / How did we do?"


@dataclass(frozen=True, slots=True)
class Outgoing:
    invitation_id: int
    customer_id: int
    to: str
    message: EmailMessage


def _due(now: datetime) -> list[ColumnElement[bool]]:
    """What makes an invitation due for e-mail, re-checked at send time: consent can be withdrawn
    and a link can be answered from another channel after the invitation was made."""
    return [
        SurveyInvitation.channel == "email",
        SurveyInvitation.sent_at.is_(None),
        SurveyInvitation.send_after <= now,
        SurveyInvitation.expires_at > now,
        SurveyInvitation.send_attempts < MAX_ATTEMPTS,
        or_(SurveyInvitation.sending_until.is_(None), SurveyInvitation.sending_until <= now),
        Customer.consent_email.is_(True),
        Survey.active.is_(True),
        exists().where(CustomerIdentity.customer_id == SurveyInvitation.customer_id,
                       CustomerIdentity.kind == "email"),
        ~exists().where(SurveyResponse.invitation_id == SurveyInvitation.id),
    ]


def claim_due(session: Session, now: datetime, limit: int) -> list[int]:
    """Claims up to `limit` due invitations (fresh ones before retries) for this sender.

    One UPDATE that re-checks the claim, so two senders running at once never both get an
    invitation: on PostgreSQL the second waits for the first's row lock and then sees the claim.
    """
    candidates = (select(SurveyInvitation.id)
                  .join(Customer, Customer.id == SurveyInvitation.customer_id)
                  .join(Survey, Survey.id == SurveyInvitation.survey_id)
                  .where(*_due(now))
                  .order_by(SurveyInvitation.send_attempts, SurveyInvitation.id)
                  .limit(limit))
    claimed = session.execute(
        update(SurveyInvitation)
        .where(SurveyInvitation.id.in_(candidates.scalar_subquery()), SurveyInvitation.sent_at.is_(None),
               or_(SurveyInvitation.sending_until.is_(None), SurveyInvitation.sending_until <= now))
        .values(sending_until=now + CLAIM)
        .returning(SurveyInvitation.id)
        .execution_options(synchronize_session=False))
    return sorted(int(i) for i in claimed.scalars())


def compose(session: Session, invitation_id: int, settings: Settings) -> Outgoing:
    """The invitation as an e-mail: Vietnamese with an English line (customers have no language
    preference on file), plain text and HTML, with the signed link to /s/{token}."""
    invitation = session.get_one(SurveyInvitation, invitation_id)
    survey = session.get_one(Survey, invitation.survey_id)
    customer = session.get_one(Customer, invitation.customer_id)
    # The newest e-mail identity; claim_due only claims customers who have one.
    to = session.scalars(select(CustomerIdentity.value).where(
        CustomerIdentity.customer_id == invitation.customer_id, CustomerIdentity.kind == "email")
        .order_by(CustomerIdentity.id.desc()).limit(1)).one()
    link = surveys.link(session, invitation)
    expires = invitation.expires_at.astimezone(settings.tz).strftime("%d/%m/%Y")
    name = (customer.name or "").strip()
    question = survey.question.strip()

    text = "\n".join([
        f"Xin chào {name}," if name else "Xin chào,",
        "",
        "Cảm ơn bạn đã mua sắm cùng chúng tôi. Bạn dành một phút trả lời câu hỏi sau nhé:",
        question,
        "",
        link,
        "",
        f"Liên kết có hiệu lực đến hết ngày {expires}.",
        "",
        f"English: thank you for shopping with us. Please answer in English here: {link}?lang=en",
        "",
    ])
    e = html.escape
    body = (
        '<!doctype html><html lang="vi"><body style="font-family:sans-serif;line-height:1.5">'
        f"<p>{e(f'Xin chào {name},' if name else 'Xin chào,')}</p>"
        "<p>Cảm ơn bạn đã mua sắm cùng chúng tôi. Bạn dành một phút trả lời câu hỏi sau nhé:</p>"
        f"<p><strong>{e(question)}</strong></p>"
        f'<p><a href="{e(link)}" style="display:inline-block;padding:10px 18px;background:#0b6e4f;'
        f'color:#fff;text-decoration:none;border-radius:6px">Trả lời khảo sát</a></p>'
        f"<p>Liên kết có hiệu lực đến hết ngày {e(expires)}.</p>"
        f'<p lang="en" style="color:#555">English: thank you for shopping with us. '
        f'<a href="{e(link)}?lang=en">Answer in English</a>.</p>'
        "</body></html>"
    )
    message = EmailMessage()
    message["Subject"] = SUBJECT
    message["From"] = settings.mail_from or ""
    message["To"] = formataddr((name, to)) if name else to
    message["Date"] = formatdate(localtime=False)
    # One Message-ID per invitation (and database, through the public URL): in the rare case of a
    # repeated delivery (see the job) mail systems that de-duplicate by Message-ID show it once.
    site = hashlib.sha256(settings.public_url.encode()).hexdigest()[:10]
    domain = parseaddr(settings.mail_from or "")[1].rpartition("@")[2] or "localhost"
    message["Message-ID"] = f"<survey-invitation-{invitation.id}.{site}@{domain}>"
    message.set_content(text)
    message.add_alternative(body, subtype="html")
    return Outgoing(invitation.id, invitation.customer_id, to, message)


def mark_sent(session: Session, outgoing: Outgoing, now: datetime) -> bool:
    """Records the SMTP server's acceptance, and the e-mail on the customer's timeline."""
    result = session.execute(
        update(SurveyInvitation)
        .where(SurveyInvitation.id == outgoing.invitation_id, SurveyInvitation.sent_at.is_(None))
        .values(sent_at=now, sending_until=None, last_error=None,
                send_attempts=SurveyInvitation.send_attempts + 1)
        .execution_options(synchronize_session=False))
    if not result.rowcount:  # type: ignore[attr-defined]
        return False
    session.add(Interaction(customer_id=outgoing.customer_id, kind="survey", channel="email",
                            direction="outbound", occurred_at=now, store_id=None, staff_id=None,
                            note=f"survey invitation {outgoing.invitation_id} e-mailed", actor="job:mail",
                            created_at=now))
    session.flush()
    return True


def mark_failed(session: Session, invitation_id: int, error: str) -> None:
    """Counts a failed attempt and releases the claim, so the next run tries again."""
    session.execute(
        update(SurveyInvitation)
        .where(SurveyInvitation.id == invitation_id, SurveyInvitation.sent_at.is_(None))
        .values(sending_until=None, last_error=error[:300], send_attempts=SurveyInvitation.send_attempts + 1)
        .execution_options(synchronize_session=False))


def release(session: Session, invitation_ids: list[int]) -> None:
    """Gives back claims that were not tried (the run stopped early); no attempt is counted."""
    if invitation_ids:
        session.execute(
            update(SurveyInvitation)
            .where(and_(SurveyInvitation.id.in_(invitation_ids), SurveyInvitation.sent_at.is_(None)))
            .values(sending_until=None)
            .execution_options(synchronize_session=False))


class MessageRefused(Exception):
    """The server refused this message or its recipient; the connection is still usable."""


class ConnectionFailed(Exception):
    """The SMTP server is unreachable or dropped us: later messages of this run would fail too."""


@contextmanager
def smtp(settings: Settings) -> Iterator[smtplib.SMTP]:
    """One SMTP session for a run; connection, TLS and login failures become ConnectionFailed."""
    assert settings.smtp_host is not None
    try:
        client = smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=settings.smtp_timeout_seconds)
    except (OSError, smtplib.SMTPException) as exc:
        raise ConnectionFailed(f"cannot connect to {settings.smtp_host}:{settings.smtp_port}: {exc}") from exc
    try:
        try:
            client.ehlo()
            if settings.smtp_starttls:
                client.starttls(context=ssl.create_default_context())
                client.ehlo()
            if settings.smtp_username:
                password = settings.smtp_password.get_secret_value() if settings.smtp_password else ""
                client.login(settings.smtp_username, password)
        except (OSError, smtplib.SMTPException) as exc:
            raise ConnectionFailed(f"SMTP session setup failed: {exc}") from exc
        yield client
    finally:
        try:
            client.quit()
        except (OSError, smtplib.SMTPException):
            client.close()


def send(client: smtplib.SMTP, outgoing: Outgoing) -> None:
    """Hands one message to the server; returns only when the server accepted it.

    Raises MessageRefused when the server refused this recipient or message (the connection
    stays usable), and ConnectionFailed when the connection is gone. A timeout while waiting for
    the server's reply to the message is a ConnectionFailed although the server may have accepted
    it: the retry can then deliver it twice (the same Message-ID).
    """
    try:
        refused = client.send_message(outgoing.message, to_addrs=[outgoing.to])
    except (smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused, smtplib.SMTPDataError,
            smtplib.SMTPNotSupportedError) as exc:  # the last: a non-ASCII address without SMTPUTF8
        raise MessageRefused(str(exc)) from exc
    except (OSError, smtplib.SMTPException) as exc:  # SMTPServerDisconnected, timeouts, resets
        raise ConnectionFailed(f"SMTP connection failed: {exc}") from exc
    if refused:
        raise MessageRefused(f"recipient refused: {refused}")
