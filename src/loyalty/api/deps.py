"""Dependencies every endpoint shares: sessions, the caller's key and role, idempotent writes."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any, cast

from fastapi import Depends, Header, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import Engine, Table, bindparam, insert, select
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session

from loyalty.auth.service import Principal, authenticate, cached_principal
from loyalty.db import is_retryable, read_only_engine, session_factory, writer_gate
from loyalty.errors import Forbidden, IdempotencyConflict, LoyaltyError, ValidationFailed
from loyalty.models import IdempotencyRecord
from loyalty.timeutil import utcnow


def _engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


def read_session(request: Request) -> Iterator[Session]:
    session = session_factory(read_only_engine(_engine(request)))()
    try:
        yield session
    finally:
        session.rollback()
        session.close()


ReadSession = Annotated[Session, Depends(read_session)]


def _authenticate(engine: Engine, presented: str | None) -> Principal:
    session = session_factory(read_only_engine(engine))()
    try:
        return authenticate(session, presented)
    finally:
        session.close()


# The dependencies below are async so that FastAPI runs them on the event loop: as sync functions
# each cost a hop to the thread pool, which profiling showed cost more than a purchase's SQL.
async def current_principal(
    request: Request,
    authorization: Annotated[str | None, Header(description="Bearer lk_...")] = None,
    x_api_key: Annotated[str | None, Header(description="lk_... (alternative to Authorization)")] = None,
) -> Principal:
    presented = x_api_key
    if authorization and authorization.lower().startswith("bearer "):
        presented = authorization[7:].strip()
    principal = cached_principal(presented)
    if principal is not None:
        return principal
    # A key not seen lately is checked against the database off the event loop.
    return await run_in_threadpool(_authenticate, _engine(request), presented)


CurrentKey = Annotated[Principal, Depends(current_principal)]


def require_roles(*roles: str) -> Callable[[Principal], Coroutine[Any, Any, Principal]]:
    async def check(principal: CurrentKey) -> Principal:
        if principal.role not in roles:
            raise Forbidden(f"a {principal.role} key cannot do this; it needs one of: {', '.join(roles)}")
        return principal
    return check


AdminKey = Annotated[Principal, Depends(require_roles("admin"))]
AnyKey = Annotated[Principal, Depends(require_roles("admin", "store", "readonly"))]
StaffKey = Annotated[Principal, Depends(require_roles("admin", "readonly"))]
PosKey = Annotated[Principal, Depends(require_roles("admin", "store"))]


def check_store(principal: Principal, store_id: str | None) -> None:
    """A store key acts for its own store only."""
    if principal.role == "store" and store_id != principal.store_id:
        raise Forbidden(f"this key belongs to store {principal.store_id} and cannot act for store {store_id}")


@dataclass(frozen=True, slots=True)
class Outcome:
    status: int
    body: BaseModel
    headers: dict[str, str] | None = None


def _fingerprint(method: str, path: str, payload: BaseModel | None) -> str:
    canonical = payload.model_dump_json() if payload is not None else ""
    return hashlib.sha256(f"{method} {path}\n{canonical}".encode()).hexdigest()


# Built once: Core statements on the session's connection skip the ORM's per-call work, which
# profiling showed was most of what an Idempotency-Key cost.
_IDEMPOTENCY = cast(Table, IdempotencyRecord.__table__)
_RECALL = (select(_IDEMPOTENCY.c.request_hash, _IDEMPOTENCY.c.response_status, _IDEMPOTENCY.c.response_body)
           .where(_IDEMPOTENCY.c.api_key_id == bindparam("api_key_id"), _IDEMPOTENCY.c.key == bindparam("key")))
_REMEMBER = insert(_IDEMPOTENCY)


@dataclass
class Writer:
    """Runs one mutation as one database transaction, exactly once per Idempotency-Key.

    The stored response and the effect commit together, so a retry either finds the first
    response and gets it back, or finds nothing because nothing happened (brandur's rule for
    endpoints that only touch the local database). Stripe semantics: the same key with another
    request is a 409.
    """

    engine: Engine
    principal: Principal
    method: str
    path: str
    idempotency_key: str | None

    def run(self, payload: BaseModel | None, work: Callable[[Session], Outcome], attempts: int = 6) -> JSONResponse:
        fingerprint = _fingerprint(self.method, self.path, payload) if self.idempotency_key else ""
        factory = session_factory(self.engine)
        for attempt in range(attempts):
            # Rolling back inside the gate too: a SQLite transaction holds the database until it ends.
            with writer_gate(self.engine):
                session = factory()
                try:
                    return self._attempt(session, fingerprint, work)
                except LoyaltyError:
                    session.rollback()
                    raise
                except IntegrityError:
                    session.rollback()
                    # Someone else committed first: the same key (replay it next round) or the same
                    # business id (the service sees the recorded row next round).
                    if attempt + 1 < attempts:
                        continue
                    raise
                except DBAPIError as exc:
                    session.rollback()
                    if attempt + 1 < attempts and is_retryable(exc):
                        continue
                    raise
                finally:
                    session.close()
        raise AssertionError("unreachable")

    def _attempt(self, session: Session, fingerprint: str, work: Callable[[Session], Outcome]) -> JSONResponse:
        if self.idempotency_key:
            replay = self._replay(session, fingerprint)
            if replay is not None:
                session.rollback()
                return replay
        outcome = work(session)
        body = outcome.body.model_dump(mode="json")
        if self.idempotency_key:
            session.connection().execute(_REMEMBER, {
                "api_key_id": self.principal.key_id, "key": self.idempotency_key, "method": self.method,
                "path": self.path, "request_hash": fingerprint, "response_status": outcome.status,
                "response_body": json.dumps(body), "created_at": utcnow()})
        session.commit()
        return JSONResponse(body, status_code=outcome.status, headers=outcome.headers)

    def _replay(self, session: Session, fingerprint: str) -> JSONResponse | None:
        record = session.connection().execute(
            _RECALL, {"api_key_id": self.principal.key_id, "key": self.idempotency_key}).one_or_none()
        if record is None:
            return None
        if record.request_hash != fingerprint:
            raise IdempotencyConflict(
                f"Idempotency-Key {self.idempotency_key!r} was already used for a different request; "
                "send a new key for a new request")
        return JSONResponse(json.loads(record.response_body), status_code=record.response_status,
                            headers={"Idempotent-Replayed": "true"})


async def writer(
    request: Request, principal: CurrentKey,
    idempotency_key: Annotated[str | None, Header(
        description="any unique string (a UUID); retries with the same key get the first response")] = None,
) -> Writer:
    if idempotency_key is not None and not 1 <= len(idempotency_key) <= 255:
        raise ValidationFailed("Idempotency-Key must be 1 to 255 characters")
    return Writer(_engine(request), principal, request.method, request.url.path, idempotency_key)


WriteDep = Annotated[Writer, Depends(writer)]


def idempotency_cutoff(hours: int) -> Any:
    return utcnow() - timedelta(hours=hours)
