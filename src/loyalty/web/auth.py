"""Staff login for the web screens: who is logged in, what their role allows, lockout and rate limits.

Session keys (the signed cookie, see docs/web.md): ``staff_id`` (int), ``staff_pw`` (a fingerprint of
the password hash: setting a new password logs every other session out) and ``csrf``.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import select
from sqlalchemy.orm import Session

from loyalty.db import read_only_engine, session_factory
from loyalty.errors import Forbidden, LoyaltyError, NotFound, Unauthenticated
from loyalty.models.service import StaffMember
from loyalty.service.staff import Scope, stores_of
from loyalty.web import passwords

ROLES = ("admin", "manager", "agent", "readonly")
# What each role may do, in one place; routes and templates ask `user.can(...)`.
PERMISSIONS: dict[str, frozenset[str]] = {
    "view": frozenset(ROLES),                                  # home, customers, the ticket queue
    "serve": frozenset({"admin", "manager", "agent"}),         # answer tickets, open tickets, record calls
    "reward": frozenset({"admin", "manager"}),                 # adjust points, issue vouchers
    "analyse": frozenset({"admin", "manager", "readonly"}),    # analytics pages and exports
    "program": frozenset({"admin", "manager", "readonly"}),    # see the program
    "change_program": frozenset({"admin"}),                    # upload, simulate and apply a program
    "import": frozenset({"admin"}),                            # import customers and transactions from CSV
}

MAX_FAILURES = 5               # consecutive wrong passwords before the account locks
LOCK_MINUTES = 5
IP_WINDOW_SECONDS = 300        # and at most this many attempts per client address per window
IP_MAX_ATTEMPTS = 20


class LoginRequired(Unauthenticated):
    type_slug = "login-required"
    title = "Please log in"


class TooManyAttempts(LoyaltyError):
    status = 429
    type_slug = "too-many-attempts"
    title = "Too many login attempts"


@dataclass(frozen=True, slots=True)
class StaffUser:
    id: int
    name: str
    email: str
    role: str
    stores: frozenset[str] | None  # None: every store (admin, readonly)

    def can(self, permission: str) -> bool:
        return self.role in PERMISSIONS[permission]

    @property
    def actor(self) -> str:
        return f"staff:{self.id}:{self.email}"[:100]

    def scope(self) -> Scope:
        """The service desk's view of this person: the same rules as their API key would have."""
        return Scope(self.role, self.id, self.actor, self.stores)

    def read_scope(self) -> Scope:
        """For reading the desk: a readonly person sees every store as an admin would (and the
        routes that write refuse them before any service is called)."""
        if self.role == "readonly":
            return Scope("admin", self.id, self.actor, None)
        return self.scope()


def fingerprint(password_hash: str | None) -> str:
    return hashlib.sha256((password_hash or "").encode()).hexdigest()[:16]


def load_user(session: Session, staff_id: int, pw: str | None) -> StaffUser | None:
    member = session.get(StaffMember, staff_id)
    if member is None or not member.active or member.password_hash is None:
        return None
    if pw != fingerprint(member.password_hash):
        return None
    stores = None if member.role in ("admin", "readonly") else frozenset(stores_of(session, member.id))
    return StaffUser(member.id, member.name, member.email, member.role, stores)


def current_staff(request: Request) -> StaffUser:
    """The logged-in staff member (checked against the database on every request: deactivating
    someone or changing their password ends their sessions at once)."""
    cached = getattr(request.state, "staff", None)
    if isinstance(cached, StaffUser):
        return cached
    staff_id = request.session.get("staff_id")
    user = None
    if isinstance(staff_id, int):
        with session_factory(read_only_engine(request.app.state.engine))() as session:
            user = load_user(session, staff_id, request.session.get("staff_pw"))
    if user is None:
        request.session.pop("staff_id", None)
        raise LoginRequired("log in to see this page")
    request.state.staff = user
    return user


def optional_staff(request: Request) -> StaffUser | None:
    try:
        return current_staff(request)
    except LoginRequired:
        return None


def require(permission: str) -> Callable[[StaffUser], StaffUser]:
    """A dependency: the logged-in staff member, refused unless their role has `permission`."""
    if permission not in PERMISSIONS:
        raise ValueError(f"unknown permission {permission!r}")

    def check(user: Annotated[StaffUser, Depends(current_staff)]) -> StaffUser:
        if not user.can(permission):
            raise Forbidden(f"your role ({user.role}) cannot do this")
        return user

    return check


Staff = Annotated[StaffUser, Depends(require("view"))]


# --- logging in ---------------------------------------------------------------------------------

class _AddressLimiter:
    """Attempts per client address in a sliding window (this process; the account lock is shared)."""

    def __init__(self) -> None:
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def hit(self, address: str) -> bool:
        now = time.monotonic()
        with self._lock:
            if len(self._hits) > 10_000:
                self._hits.clear()
            hits = self._hits.setdefault(address, deque())
            while hits and hits[0] < now - IP_WINDOW_SECONDS:
                hits.popleft()
            if len(hits) >= IP_MAX_ATTEMPTS:
                return False
            hits.append(now)
            return True

    def clear(self) -> None:
        with self._lock:
            self._hits.clear()


address_limiter = _AddressLimiter()
BAD_LOGIN = "wrong e-mail or password"


def log_in(session: Session, email: str, password: str, address: str, now: datetime) -> StaffMember:
    """The staff member whose e-mail and password these are; the caller commits (failures count too)."""
    if not address_limiter.hit(address):
        raise TooManyAttempts("too many login attempts from this address; wait a few minutes")
    email = email.strip().lower()
    member = session.scalar(select(StaffMember).where(StaffMember.email == email).with_for_update())
    if member is None or not member.active:
        passwords.verify(None, password)
        raise Unauthenticated(BAD_LOGIN)
    if member.locked_until is not None and member.locked_until > now:
        raise TooManyAttempts("too many wrong passwords for this account; try again in a few minutes")
    if not passwords.verify(member.password_hash, password):
        member.failed_logins += 1
        if member.failed_logins >= MAX_FAILURES:
            member.locked_until = now + timedelta(minutes=LOCK_MINUTES)
            member.failed_logins = 0
        session.flush()
        raise Unauthenticated(BAD_LOGIN)
    assert member.password_hash is not None
    member.failed_logins = 0
    member.locked_until = None
    if passwords.needs_rehash(member.password_hash):
        member.password_hash = passwords.hash_password(password)
    session.flush()
    return member


def set_password(session: Session, email: str, password: str, now: datetime) -> StaffMember:
    member = session.scalar(select(StaffMember).where(StaffMember.email == email.strip().lower()))
    if member is None:
        raise NotFound(f"no staff member has the e-mail {email.strip().lower()}")
    member.password_hash = passwords.hash_password(password)
    member.password_set_at = now
    member.failed_logins = 0
    member.locked_until = None
    session.flush()
    return member
