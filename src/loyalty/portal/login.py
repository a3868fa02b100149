"""One-time-code login for members: ask with a phone or e-mail, get a 6-digit code, log in with it once.

A code is drawn with `secrets`, stored only as an scrypt hash with its own salt (guessing all
10^6 codes from a stolen row takes hours of CPU, well past its 10 minutes), lives a few minutes,
allows a few wrong guesses before it locks, and is used at most once: the UPDATE to 'used' is
conditional, so two racing logins with the same code get one session. Asking again supersedes
the open code; each identity may ask a few times per hour. An identity nobody has gets the same
answer as a known one and nothing is stored or sent, so the form does not tell who is a member.

Functions take the caller's session and never commit; the caller commits even when a login is
refused, so that a wrong guess counts. Delivery (`deliver`) runs after that commit.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import re
import secrets
import smtplib
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any, Literal, cast

from sqlalchemy import CursorResult, case, select, update
from sqlalchemy.orm import Session

from loyalty.config import Settings
from loyalty.customers.identities import normalise_email, normalise_phone
from loyalty.customers.repository import find_by_identity
from loyalty.errors import LoyaltyError, ValidationFailed
from loyalty.models import Customer, CustomerIdentity
from loyalty.models.portal import PortalLoginCode
from loyalty.portal.settings import PortalSettings

log = logging.getLogger("loyalty.portal.login")

CODE_DIGITS = 6
Refusal = Literal["wrong", "expired", "used", "locked", "no-code"]


class TooManyCodes(LoyaltyError):
    status = 429
    type_slug = "too-many-codes"
    title = "Too many login codes asked for"


@dataclass(frozen=True, slots=True)
class CodeRequest:
    """What asking for a code did; `code` is the plaintext, for delivery only (None: nobody has the identity)."""

    identity: str
    customer_id: int | None
    code: str | None
    email_to: str | None
    expires_at: datetime | None


@dataclass(frozen=True, slots=True)
class LoginResult:
    customer_id: int | None
    refusal: Refusal | None = None


def parse_identity(raw: str) -> tuple[str, str]:
    """('email', 'an@example.vn') or ('phone', '+84912345678'); ValidationFailed for anything else."""
    text = raw.strip()
    if not text or len(text) > 200:
        raise ValidationFailed("enter your phone number or e-mail address", field="identity")
    if "@" in text:
        return "email", normalise_email(text)
    return "phone", normalise_phone(text)


def hash_code(code: str, salt: str) -> str:
    return hashlib.scrypt(code.encode(), salt=bytes.fromhex(salt), n=2**14, r=8, p=1, dklen=32).hex()


def _rowcount(result: Any) -> int:
    return int(cast(CursorResult[Any], result).rowcount or 0)


def _email_of(session: Session, customer_id: int) -> str | None:
    return session.scalar(select(CustomerIdentity.value).where(
        CustomerIdentity.customer_id == customer_id, CustomerIdentity.kind == "email")
        .order_by(CustomerIdentity.id).limit(1))


def request_code(session: Session, raw_identity: str, now: datetime, portal: PortalSettings) -> CodeRequest:
    """Makes a new code for the member behind the phone or e-mail; 429 past the rate limit."""
    kind, value = parse_identity(raw_identity)
    identity = f"{kind}:{value}"
    customer_id = find_by_identity(session, kind, value)
    if customer_id is None:
        hash_code("000000", secrets.token_hex(16))  # the same work as for a member, so timing tells less
        return CodeRequest(identity, None, None, None, None)
    # Serialises one member's code requests (PostgreSQL), so two racing ones cannot both pass the limit.
    session.execute(select(Customer.id).where(Customer.id == customer_id).with_for_update())
    window_start = now - timedelta(seconds=portal.rate_window_seconds)
    recent = list(session.scalars(
        select(PortalLoginCode.created_at)
        .where(PortalLoginCode.identity == identity, PortalLoginCode.created_at > window_start)
        .order_by(PortalLoginCode.created_at.desc())))
    if len(recent) >= portal.codes_per_window:
        retry = recent[portal.codes_per_window - 1] + timedelta(seconds=portal.rate_window_seconds) - now
        raise TooManyCodes(f"too many codes asked for {identity}; try again in {_minutes(retry)} minutes",
                           retry_after=math.ceil(retry.total_seconds()))
    if recent and now - recent[0] < timedelta(seconds=portal.min_interval_seconds):
        retry = recent[0] + timedelta(seconds=portal.min_interval_seconds) - now
        seconds = math.ceil(retry.total_seconds())
        raise TooManyCodes(f"a code was just sent to {identity}; wait {seconds} seconds", retry_after=seconds)
    session.execute(update(PortalLoginCode)
                    .where(PortalLoginCode.identity == identity, PortalLoginCode.status == "open")
                    .values(status="superseded").execution_options(synchronize_session=False))
    code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
    salt = secrets.token_hex(16)
    expires_at = now + timedelta(seconds=portal.code_ttl_seconds)
    session.add(PortalLoginCode(customer_id=customer_id, identity=identity, salt=salt, code_hash=hash_code(code, salt),
                                status="open", attempts=0, created_at=now, expires_at=expires_at))
    session.flush()
    email_to = value if kind == "email" else _email_of(session, customer_id)
    return CodeRequest(identity, customer_id, code, email_to, expires_at)


def _minutes(delta: timedelta) -> int:
    return max(1, math.ceil(delta.total_seconds() / 60))


def verify_code(session: Session, raw_identity: str, code: str, now: datetime, portal: PortalSettings) -> LoginResult:
    """The customer id when `code` is the open code of this identity; otherwise why not (and a guess counted)."""
    kind, value = parse_identity(raw_identity)
    identity = f"{kind}:{value}"
    digits = re.sub(r"\s", "", code)
    row = session.execute(
        select(PortalLoginCode.id, PortalLoginCode.customer_id, PortalLoginCode.salt, PortalLoginCode.code_hash,
               PortalLoginCode.status, PortalLoginCode.attempts, PortalLoginCode.expires_at)
        .where(PortalLoginCode.identity == identity)
        .order_by(PortalLoginCode.id.desc()).limit(1)
    ).one_or_none()
    if row is None:
        return LoginResult(None, "no-code")
    if row.status == "used":
        return LoginResult(None, "used")
    if row.status != "open" or row.attempts >= portal.max_attempts:
        return LoginResult(None, "locked")
    if row.expires_at <= now:
        return LoginResult(None, "expired")
    if not re.fullmatch(rf"\d{{{CODE_DIGITS}}}", digits) or not hmac.compare_digest(
            hash_code(digits, row.salt), row.code_hash):
        counted = session.execute(
            update(PortalLoginCode)
            .where(PortalLoginCode.id == row.id, PortalLoginCode.status == "open",
                   PortalLoginCode.attempts < portal.max_attempts)
            .values(attempts=PortalLoginCode.attempts + 1,
                    status=case((PortalLoginCode.attempts + 1 >= portal.max_attempts, "locked"), else_="open"))
            .execution_options(synchronize_session=False))
        locked = _rowcount(counted) == 0 or row.attempts + 1 >= portal.max_attempts
        return LoginResult(None, "locked" if locked else "wrong")
    used = session.execute(
        update(PortalLoginCode)
        .where(PortalLoginCode.id == row.id, PortalLoginCode.status == "open",
               PortalLoginCode.attempts < portal.max_attempts, PortalLoginCode.expires_at > now)
        .values(status="used", used_at=now).execution_options(synchronize_session=False))
    if _rowcount(used) != 1:
        return LoginResult(None, "used")  # another request used it first
    return LoginResult(int(row.customer_id))


# --- delivery ---------------------------------------------------------------------------------

def _message(request: CodeRequest, settings: Settings, ttl_minutes: int) -> EmailMessage:
    assert request.code is not None and request.email_to is not None and settings.mail_from is not None
    message = EmailMessage()
    message["Subject"] = f"Mã đăng nhập / Login code: {request.code}"
    message["From"] = settings.mail_from
    message["To"] = request.email_to
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain=settings.mail_from.rsplit("@", 1)[-1].strip("> "))
    message.set_content(
        f"Mã đăng nhập của bạn là {request.code}. Mã dùng được một lần trong {ttl_minutes} phút.\n"
        "Nếu bạn không yêu cầu mã này, hãy bỏ qua thư này.\n\n"
        f"Your login code is {request.code}. It works once, for {ttl_minutes} minutes.\n"
        "If you did not ask for it, ignore this message.\n")
    return message


def deliver(request: CodeRequest, settings: Settings, portal: PortalSettings) -> bool:
    """Sends the code after the caller committed it: e-mail when SMTP is set up and the member has an
    address; in demo mode (LOYALTY_PORTAL_LOG_CODES) also the server log. True if it went anywhere."""
    if request.code is None:
        return False
    sent = False
    if portal.log_codes:
        log.warning("DEMO login code for %s (customer %s): %s", request.identity, request.customer_id, request.code)
        sent = True
    if settings.smtp_host and request.email_to:
        from loyalty.service import mail  # the survey mailer's SMTP session: one place for SMTP settings

        try:
            with mail.smtp(settings) as client:
                client.send_message(_message(request, settings, portal.code_ttl_seconds // 60),
                                    to_addrs=[request.email_to])
            sent = True
        except (mail.ConnectionFailed, OSError, smtplib.SMTPException) as exc:  # the member can ask again
            log.error("login code for customer %s not e-mailed: %s", request.customer_id, exc)
    if not sent:
        log.warning("login code for customer %s had no way to reach them (no e-mail, no SMTP, no demo log)",
                    request.customer_id)
    return sent
