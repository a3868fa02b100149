"""The demo's way into the member portal: codes in the server log, and a member to log in as."""

from __future__ import annotations

import os

from sqlalchemy import Engine, select

from loyalty.db import session_factory
from loyalty.models import CustomerIdentity, MemberBalance
from loyalty.portal.settings import get_portal_settings


def enable_demo_codes() -> None:
    """`loyalty demo --serve` writes login codes to its log (unless LOYALTY_PORTAL_LOG_CODES says otherwise)."""
    os.environ.setdefault("LOYALTY_PORTAL_LOG_CODES", "true")
    get_portal_settings.cache_clear()


def demo_member_phone(engine: Engine) -> str | None:
    """The phone of the demo member with the most points, to try the portal with."""
    with session_factory(engine)() as session:
        return session.scalar(
            select(CustomerIdentity.value)
            .join(MemberBalance, MemberBalance.customer_id == CustomerIdentity.customer_id)
            .where(CustomerIdentity.kind == "phone")
            .order_by(MemberBalance.available.desc(), CustomerIdentity.id).limit(1))


def hint(engine: Engine, base_url: str) -> str:
    phone = demo_member_phone(engine)
    who = f"log in with {phone}; " if phone else ""
    return f"member portal: {base_url}/portal/  ({who}the one-time code is printed in this log)"
