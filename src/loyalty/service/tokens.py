"""Signed, expiring survey links (itsdangerous), with the secret from settings or from the database."""

from __future__ import annotations

import secrets
import threading
from datetime import UTC, datetime, timedelta

from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from loyalty.config import get_settings
from loyalty.db import database_key
from loyalty.errors import LoyaltyError
from loyalty.models.service import ServiceSecret
from loyalty.timeutil import utcnow

SALT = "survey-invitation"
_secrets: dict[str, str] = {}
_lock = threading.Lock()


class InvalidLink(LoyaltyError):
    status = 404
    type_slug = "invalid-link"
    title = "This survey link is not valid"


class LinkExpired(LoyaltyError):
    status = 410
    type_slug = "link-expired"
    title = "This survey link has expired"


def _secret(session: Session) -> str:
    """LOYALTY_SECRET_KEY if set; otherwise one random secret per database, created on first use."""
    configured = get_settings().secret_key
    if configured is not None:
        return configured.get_secret_value()
    key = database_key(session)
    with _lock:
        if key in _secrets:
            return _secrets[key]
    value = session.scalar(select(ServiceSecret.value).where(ServiceSecret.name == SALT))
    if value is None:
        # Created in the caller's transaction: it commits with the first invitation signed with it.
        # Not cached, because a read-only caller rolls it back (and then has nothing to verify).
        try:
            with session.begin_nested():
                session.add(ServiceSecret(name=SALT, value=secrets.token_urlsafe(48), created_at=utcnow()))
        except IntegrityError:
            pass  # another process created it first: use theirs
        created = session.scalar(select(ServiceSecret.value).where(ServiceSecret.name == SALT))
        assert created is not None
        return created
    with _lock:
        _secrets[key] = value
    return value


def clear_cache() -> None:
    with _lock:
        _secrets.clear()


def sign(session: Session, invitation_id: int) -> str:
    return URLSafeTimedSerializer(_secret(session), salt=SALT).dumps({"i": invitation_id})


def read(session: Session, token: str) -> tuple[int, datetime]:
    """(invitation id, when the link was signed); a forged or damaged token is an InvalidLink."""
    try:
        payload, signed = URLSafeTimedSerializer(_secret(session), salt=SALT).loads(token, return_timestamp=True)
    except BadSignature:
        raise InvalidLink("the link is damaged or was not issued by us; use the link from your message") from None
    invitation_id = payload.get("i") if isinstance(payload, dict) else None
    if not isinstance(invitation_id, int):
        raise InvalidLink("the link is damaged or was not issued by us; use the link from your message")
    return invitation_id, signed.astimezone(UTC)


# --- a customer's own tickets ----------------------------------------------------------------
# Until members log in (the portal), a customer reaches their tickets through a signed link that
# staff send them: it names one customer and expires, so it shows that customer's tickets only.
TICKETS_SALT = "customer-tickets"


def sign_customer(session: Session, customer_id: int, days: int) -> str:
    return URLSafeTimedSerializer(_secret(session), salt=TICKETS_SALT).dumps({"c": customer_id, "d": days})


def read_customer(session: Session, token: str) -> int:
    """The customer a ticket link was signed for; forged is an InvalidLink, past its days a LinkExpired."""
    serializer = URLSafeTimedSerializer(_secret(session), salt=TICKETS_SALT)
    damaged = "the link is damaged or was not issued by us; use the link from your message"
    try:
        payload, signed = serializer.loads(token, return_timestamp=True)
    except BadSignature:
        raise InvalidLink(damaged) from None
    customer_id = payload.get("c") if isinstance(payload, dict) else None
    days = payload.get("d") if isinstance(payload, dict) else None
    if not isinstance(customer_id, int) or not isinstance(days, int):
        raise InvalidLink(damaged)
    if utcnow() > signed.astimezone(UTC) + timedelta(days=days):
        raise LinkExpired("this link has expired; ask us for a new one")
    return customer_id
