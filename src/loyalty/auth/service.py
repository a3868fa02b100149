"""Creating and checking API keys.

Keys are 256-bit random secrets, so a single SHA-256 is the right hash (as GitHub and Stripe
do for tokens): a slow password hash such as argon2 would only cost every request time
without adding safety against guessing a random 43-character secret.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from loyalty.errors import Unauthenticated, ValidationFailed
from loyalty.models import ApiKey, Store
from loyalty.models.auth import ROLES
from loyalty.models.service import StaffApiKey, StaffMember
from loyalty.timeutil import utcnow

PREFIX = "lk"


@dataclass(frozen=True, slots=True)
class Principal:
    key_id: int
    role: str
    store_id: str | None
    name: str
    # The staff member an agent or manager key acts for (issue 5); None for other keys.
    staff_id: int | None = None

    @property
    def actor(self) -> str:
        return f"key:{self.key_id}:{self.name}"


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_key(session: Session, *, role: str, store_id: str | None, name: str,
               staff_id: int | None = None) -> tuple[ApiKey, str]:
    if role not in ROLES:
        raise ValidationFailed(f"role must be one of {', '.join(ROLES)}")
    if role == "store" and not store_id:
        raise ValidationFailed("a store key needs --store")
    if role != "store" and store_id:
        raise ValidationFailed("only store keys are bound to a store")
    if store_id and session.get(Store, store_id) is None:
        raise ValidationFailed(f"store {store_id!r} does not exist")
    if role in ("agent", "manager") and staff_id is None:
        raise ValidationFailed(f"an {role} key acts for a staff member: give --staff")
    if staff_id is not None and role not in ("agent", "manager", "admin"):
        raise ValidationFailed("only agent, manager and admin keys can belong to a staff member")
    if staff_id is not None:
        staff = session.get(StaffMember, staff_id)
        if staff is None or not staff.active:
            raise ValidationFailed(f"staff member {staff_id} does not exist or is not active")
    prefix = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    key = ApiKey(prefix=prefix, secret_hash=_hash(secret), role=role, store_id=store_id, name=name,
                 created_at=utcnow())
    session.add(key)
    session.flush()
    if staff_id is not None:
        session.add(StaffApiKey(api_key_id=key.id, staff_id=staff_id))
        session.flush()
    return key, f"{PREFIX}_{prefix}_{secret}"


_cache: dict[str, tuple[Principal, float]] = {}
_cache_lock = threading.Lock()
_CACHE_SECONDS = 30.0


def authenticate(session: Session, presented: str | None) -> Principal:
    """Checks a presented key; verified keys are cached briefly (a revocation or a staff member's
    deactivation takes up to 30 s in processes other than the one that made it)."""
    if not presented:
        raise Unauthenticated("send your API key as 'Authorization: Bearer lk_...' or 'X-API-Key: lk_...'")
    fingerprint = _hash(presented)
    hit = _cached(fingerprint)
    if hit is not None:
        return hit
    parts = presented.split("_", 2)
    if len(parts) != 3 or parts[0] != PREFIX:
        raise Unauthenticated("this is not a loyalty API key")
    found = session.execute(select(ApiKey, StaffApiKey.staff_id, StaffMember.active)
                            .outerjoin(StaffApiKey, StaffApiKey.api_key_id == ApiKey.id)
                            .outerjoin(StaffMember, StaffMember.id == StaffApiKey.staff_id)
                            .where(ApiKey.prefix == parts[1])).one_or_none()
    key, staff_id, staff_active = found if found is not None else (None, None, None)
    if key is None or key.revoked_at is not None or not hmac.compare_digest(key.secret_hash, _hash(parts[2])):
        raise Unauthenticated("the API key is unknown or revoked")
    if staff_id is not None and not staff_active:
        # Deactivating a staff member clears the cache of the process that did it; other
        # processes refuse the key once its cache entry is 30 s old.
        raise Unauthenticated("the staff member this API key belongs to is no longer active")
    principal = Principal(key.id, key.role, key.store_id, key.name, staff_id)
    with _cache_lock:
        _cache[fingerprint] = (principal, time.monotonic())
    return principal


def _cached(fingerprint: str) -> Principal | None:
    with _cache_lock:
        hit = _cache.get(fingerprint)
    if hit and time.monotonic() - hit[1] < _CACHE_SECONDS:
        return hit[0]
    return None


def cached_principal(presented: str | None) -> Principal | None:
    """The principal of a key verified in the last 30 s, without touching the database."""
    return _cached(_hash(presented)) if presented else None


def clear_cache() -> None:
    with _cache_lock:
        _cache.clear()
