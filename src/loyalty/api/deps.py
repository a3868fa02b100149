"""Dependencies every endpoint shares: sessions, the caller's key and role, idempotent writes."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Annotated, Any, cast
from weakref import WeakKeyDictionary

from fastapi import Depends, Header, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from sqlalchemy import Engine, Table, bindparam, insert, select
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session

from loyalty.auth.service import Principal, authenticate, cached_principal
from loyalty.db import is_retryable, read_only_engine, session_factory, writer_gate
from loyalty.driver import DriverStatement
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


def authenticate_key(engine: Engine, presented: str | None) -> Principal:
    session = session_factory(read_only_engine(engine))()
    try:
        return authenticate(session, presented)
    finally:
        session.close()


def presented_key(authorization: str | None, x_api_key: str | None) -> str | None:
    """The API key a request presents: `Authorization: Bearer ...` wins over `X-API-Key`."""
    if authorization and authorization.lower().startswith("bearer "):
        return authorization[7:].strip()
    return x_api_key


# The dependencies below are async so that FastAPI runs them on the event loop: as sync functions
# each cost a hop to the thread pool, which profiling showed cost more than a purchase's SQL.
async def current_principal(
    request: Request,
    authorization: Annotated[str | None, Header(description="Bearer lk_...")] = None,
    x_api_key: Annotated[str | None, Header(description="lk_... (alternative to Authorization)")] = None,
) -> Principal:
    presented = presented_key(authorization, x_api_key)
    principal = cached_principal(presented)
    if principal is not None:
        return principal
    # A key not seen lately is checked against the database off the event loop.
    return await run_in_threadpool(authenticate_key, _engine(request), presented)


CurrentKey = Annotated[Principal, Depends(current_principal)]


def require_roles(*roles: str) -> Callable[[Principal], Coroutine[Any, Any, Principal]]:
    async def check(principal: CurrentKey) -> Principal:
        return check_role(principal, roles)
    return check


def check_role(principal: Principal, roles: tuple[str, ...]) -> Principal:
    if principal.role not in roles:
        raise Forbidden(f"a {principal.role} key cannot do this; it needs one of: {', '.join(roles)}")
    return principal


POS_ROLES = ("admin", "store")


AdminKey = Annotated[Principal, Depends(require_roles("admin"))]
AnyKey = Annotated[Principal, Depends(require_roles("admin", "store", "readonly"))]
StaffKey = Annotated[Principal, Depends(require_roles("admin", "readonly"))]
PosKey = Annotated[Principal, Depends(require_roles(*POS_ROLES))]


def check_store(principal: Principal, store_id: str | None) -> None:
    """A store key acts for its own store only."""
    if principal.role == "store" and store_id != principal.store_id:
        raise Forbidden(f"this key belongs to store {principal.store_id} and cannot act for store {store_id}")


@dataclass(frozen=True, slots=True)
class Outcome:
    status: int
    body: BaseModel
    headers: dict[str, str] | None = None


class RenderedJSON(JSONResponse):
    """A JSON response whose body is already JSON text: pydantic renders a model in one pass (the
    same compact UTF-8 JSON as JSONResponse), where dumping it to Python values and then to JSON,
    once for the Idempotency-Key's record and once for the response, cost ~9 % of a full-program
    sale's instructions (benchmarks/earn_instructions.py)."""

    def render(self, content: Any) -> bytes:
        assert isinstance(content, str)
        return content.encode("utf-8")


@dataclass(frozen=True, slots=True)
class WrittenOutcome:
    """A response already written as JSON text (by the statement that did the work, see `run_at_once`)."""

    status: int
    body: str
    headers: dict[str, str] | None = None


def _fingerprint(method: str, path: str, payload: BaseModel | None) -> str:
    canonical = payload.model_dump_json() if payload is not None else ""
    return hashlib.sha256(f"{method} {path}\n{canonical}".encode()).hexdigest()


# Driver-level statements (compiled once per dialect): through SQLAlchemy Core, the replay check and
# the record cost more of a general-path sale's CPU than the database's work for them (profiled).
_IDEMPOTENCY = cast(Table, IdempotencyRecord.__table__)
_RECALL = DriverStatement("Idempotency-Key replay", lambda: select(
    _IDEMPOTENCY.c.request_hash, _IDEMPOTENCY.c.response_status, _IDEMPOTENCY.c.response_body)
    .where(_IDEMPOTENCY.c.api_key_id == bindparam("api_key_id"), _IDEMPOTENCY.c.key == bindparam("key")))
_RECORD_COLUMNS = ("api_key_id", "key", "method", "path", "request_hash", "response_status", "response_body",
                   "created_at")
_REMEMBER = DriverStatement("Idempotency-Key record", lambda: insert(_IDEMPOTENCY).values(
    {name: bindparam(name, type_=_IDEMPOTENCY.c[name].type) for name in _RECORD_COLUMNS}))
_autocommit_engines: WeakKeyDictionary[Engine, Engine] = WeakKeyDictionary()


def _autocommit(engine: Engine) -> Engine:
    """The engine's pool with every statement committed on its own (one per engine, made once)."""
    found = _autocommit_engines.get(engine)
    if found is None:
        found = _autocommit_engines[engine] = engine.execution_options(isolation_level="AUTOCOMMIT")
    return found


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
    # The last payload's fingerprint: a sale tried at once and then by `run` hashes its body once.
    _fingerprinted: tuple[BaseModel | None, str] | None = field(default=None, init=False, repr=False)

    def _fingerprint_of(self, payload: BaseModel | None) -> str:
        if self._fingerprinted is None or self._fingerprinted[0] is not payload:
            self._fingerprinted = (payload, _fingerprint(self.method, self.path, payload))
        return self._fingerprinted[1]

    def run(self, payload: BaseModel | None, work: Callable[[Session], Outcome], attempts: int = 6, *,
            optimistic: bool = False) -> JSONResponse:
        """`optimistic`: the first attempt skips the replay look-up (one statement fewer) and relies on
        the record's unique key instead: when the key is already stored, the record's insert fails and
        everything rolls back. Any failure of that attempt (the key stored, or an error that a stored
        response might answer instead) sends the request through the usual order: look-up first.
        Only for work that touches nothing but this database transaction."""
        fingerprint = self._fingerprint_of(payload) if self.idempotency_key else ""
        factory = session_factory(self.engine)
        for attempt in range(attempts):
            recall = not (optimistic and attempt == 0 and self.idempotency_key)
            # Rolling back inside the gate too: a SQLite transaction holds the database until it ends.
            with writer_gate(self.engine):
                session = factory()
                try:
                    return self._attempt(session, fingerprint, work, recall=recall)
                except LoyaltyError:
                    session.rollback()
                    if not recall:
                        continue  # a stored response for this key answers before any error
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

    def run_at_once(
        self, payload: BaseModel,
        work: Callable[[Session, dict[str, Any] | None], WrittenOutcome | None],
    ) -> Response | None:
        """Tries the mutation as ONE autocommitted statement that also stores the Idempotency-Key's
        record (`work` gets the record's values, or None without a key), saving the round trips of a
        transaction and of the replay check. `work` answers None, or raises, having written nothing;
        then this answers None and the caller takes `run`, which does everything in the usual order
        (replay first, then the work) — so a replay, a reused key (409) and every error come from
        the one general path. A retry whose key is already stored cannot be written at once: the
        statement's record insert hits the unique key and nothing commits.
        """
        if self.engine.dialect.name != "postgresql":
            return None  # SQLite serialises writers anyway: its writes take `run`
        remember = None
        if self.idempotency_key:
            remember = {"api_key_id": self.principal.key_id, "key": self.idempotency_key, "method": self.method,
                        "path": self.path, "request_hash": self._fingerprint_of(payload),
                        "created_at": utcnow()}
        session = session_factory(_autocommit(self.engine))()
        try:
            return self._written(work(session, remember))
        except (LoyaltyError, DBAPIError):
            return None
        finally:
            session.close()

    @staticmethod
    def _written(outcome: WrittenOutcome | None) -> Response | None:
        if outcome is None:
            return None
        return Response(outcome.body, status_code=outcome.status, headers=outcome.headers,
                        media_type="application/json")

    def _attempt(self, session: Session, fingerprint: str, work: Callable[[Session], Outcome], *,
                 recall: bool = True) -> JSONResponse:
        if self.idempotency_key and recall:
            replay = self._replay(session, fingerprint)
            if replay is not None:
                session.rollback()
                return replay
        outcome = work(session)
        body = outcome.body.model_dump_json()
        if self.idempotency_key:
            _REMEMBER.rows(session, {
                "api_key_id": self.principal.key_id, "key": self.idempotency_key, "method": self.method,
                "path": self.path, "request_hash": fingerprint, "response_status": outcome.status,
                "response_body": body, "created_at": utcnow()})
        session.commit()
        return RenderedJSON(body, status_code=outcome.status, headers=outcome.headers)

    def _replay(self, session: Session, fingerprint: str) -> JSONResponse | None:
        record = _RECALL.one_or_none(session, {"api_key_id": self.principal.key_id, "key": self.idempotency_key})
        if record is None:
            return None
        request_hash, response_status, response_body = record
        if request_hash != fingerprint:
            raise IdempotencyConflict(
                f"Idempotency-Key {self.idempotency_key!r} was already used for a different request; "
                "send a new key for a new request")
        return JSONResponse(json.loads(response_body), status_code=response_status,
                            headers={"Idempotent-Replayed": "true"})


async def writer(
    request: Request, principal: CurrentKey,
    idempotency_key: Annotated[str | None, Header(
        description="any unique string (a UUID); retries with the same key get the first response")] = None,
) -> Writer:
    check_idempotency_key(idempotency_key)
    return Writer(_engine(request), principal, request.method, request.url.path, idempotency_key)


WriteDep = Annotated[Writer, Depends(writer)]


def check_idempotency_key(idempotency_key: str | None) -> None:
    if idempotency_key is not None and not 1 <= len(idempotency_key) <= 255:
        raise ValidationFailed("Idempotency-Key must be 1 to 255 characters")


def idempotency_cutoff(hours: int) -> Any:
    return utcnow() - timedelta(hours=hours)
