"""The demo's web logins: an owner (admin) and one store agent, each with a fresh printed password."""

from __future__ import annotations

import secrets

from sqlalchemy import Engine, select

from loyalty.db import session_scope
from loyalty.models.service import StaffMember, StaffStore
from loyalty.timeutil import utcnow
from loyalty.web.auth import set_password

OWNER_EMAIL = "owner@demo.vn"


def demo_logins(engine: Engine) -> list[tuple[str, str, str]]:
    """(role, e-mail, password) for the demo owner (created once) and the first agent of a store;
    passwords are new on every run, so the printed ones are the ones that work."""
    logins: list[tuple[str, str, str]] = []
    now = utcnow()
    with session_scope(engine) as session:
        if session.scalar(select(StaffMember.id).where(StaffMember.email == OWNER_EMAIL)) is None:
            session.add(StaffMember(name="Chủ chuỗi (demo)", email=OWNER_EMAIL, role="admin", active=True,
                                    created_at=now))
            session.flush()
        agent = session.scalar(select(StaffMember.email).join(StaffStore, StaffStore.staff_id == StaffMember.id)
                               .where(StaffMember.role == "agent", StaffMember.active.is_(True))
                               .order_by(StaffMember.id).limit(1))
        for role, email in (("admin", OWNER_EMAIL), ("agent", agent)):
            if email is None:
                continue
            password = secrets.token_urlsafe(9)
            set_password(session, email, password, now)
            logins.append((role, email, password))
    return logins
