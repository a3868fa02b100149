"""Purchases and returns over HTTP, for POS terminals and the web shop."""

from __future__ import annotations

import email.message
import json
from collections.abc import Callable, Coroutine
from typing import Any

from anyio import CapacityLimiter
from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from pydantic import TypeAdapter, ValidationError
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from loyalty.api.deps import (
    POS_ROLES,
    AnyKey,
    Outcome,
    PosKey,
    ReadSession,
    WriteDep,
    Writer,
    WrittenOutcome,
    authenticate_key,
    check_idempotency_key,
    check_role,
    check_store,
    presented_key,
)
from loyalty.api.limits import IdPath
from loyalty.auth.service import Principal, cached_principal
from loyalty.config import get_settings
from loyalty.errors import NotFound
from loyalty.transactions import service
from loyalty.transactions.schemas import PurchaseIn, PurchaseOut, ReturnIn, ReturnOut

router = APIRouter(tags=["transactions"])


def create_purchase(data: PurchaseIn, principal: PosKey, write: WriteDep) -> Response:
    check_store(principal, data.store_id)

    def at_once(session: Session, remember: dict[str, Any] | None) -> WrittenOutcome | None:
        written = service.record_purchase_at_once(session, data, actor=principal.actor, remember=remember)
        if written is None:
            return None
        return WrittenOutcome(201, written.body, {"Location": f"/v1/transactions/{written.transaction_id}"})

    answered = write.run_at_once(data, at_once) if service.worth_trying_at_once(write.engine) else None
    if answered is not None:
        return answered

    def work(session: Session) -> Outcome:
        recorded = service.record_purchase(session, data, actor=principal.actor)
        if recorded.replayed:
            return Outcome(200, recorded.body, {"Idempotent-Replayed": "true"})
        return Outcome(201, recorded.body, {"Location": f"/v1/transactions/{recorded.body.id}"})
    # A sale only writes to this database: its replay look-up can wait for the key's unique insert to fail.
    return write.run(data, work, optimistic=True)


# --- the lean route for POST /v1/transactions -------------------------------------------------
# FastAPI's per-request machinery (parsing the body to Python objects and validating them again,
# solving four dependencies, a thread-pool hop for the sync endpoint) cost more CPU than the sale's
# SQL (profiled). This route keeps FastAPI's declaration of the operation — `create_purchase` with its
# parameters, so the OpenAPI document is unchanged — and replaces only how a request reaches it: one
# parse of the body by pydantic (JSON straight to the model), the same checks in the same order as
# the dependencies (auth, role, Idempotency-Key, then the body's errors), and the key's database
# check (when not cached) and the write in ONE thread-pool hop. Errors are raised as the same
# exceptions, so api/problems.py answers them as before.

_PURCHASE_IN: TypeAdapter[PurchaseIn] = TypeAdapter(PurchaseIn)
_MISSING = object()  # an empty body (JSON null is a value, and invalid)


def _body_errors(exc: ValidationError) -> RequestValidationError:
    return RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)])


def _parse_as_fastapi_does(content_type: str | None, body: bytes) -> tuple[PurchaseIn | None,
                                                                             RequestValidationError | None]:
    """FastAPI's own body handling (fastapi/routing.py), for anything but well-formed JSON sent as
    application/json — so odd requests get exactly the answers they got before."""
    value: Any = _MISSING
    if body:
        is_json = False
        if content_type:
            message = email.message.Message()
            message["content-type"] = content_type
            if message.get_content_maintype() == "application":
                subtype = message.get_content_subtype()
                is_json = subtype == "json" or subtype.endswith("+json")
        if not is_json:
            value = body
        else:
            try:
                value = json.loads(body)
            except json.JSONDecodeError as exc:  # raised before any dependency runs, as FastAPI does
                raise RequestValidationError([{"type": "json_invalid", "loc": ("body", exc.pos),
                                               "msg": "JSON decode error", "input": {},
                                               "ctx": {"error": exc.msg}}], body=exc.doc) from exc
            except Exception as exc:
                raise HTTPException(status_code=400, detail="There was an error parsing the body") from exc
    if value is _MISSING:
        return None, RequestValidationError([{"type": "missing", "loc": ("body",), "msg": "Field required",
                                              "input": None}])
    try:
        return _PURCHASE_IN.validate_python(value, from_attributes=True), None
    except ValidationError as exc:
        return None, _body_errors(exc)


def _parse_purchase(content_type: str | None, body: bytes) -> tuple[PurchaseIn | None,
                                                                      RequestValidationError | None]:
    if body and content_type is not None and (content_type == "application/json"
                                              or content_type.startswith("application/json;")):
        try:
            return _PURCHASE_IN.validate_json(body), None
        except ValidationError:
            pass  # the error answer is FastAPI's (its messages and locations), made below
    return _parse_as_fastapi_does(content_type, body)


def _purchase(endpoint: Callable[..., Response], engine: Engine, request: Request, presented: str | None,
              principal: Principal | None, data: PurchaseIn | None,
              invalid: RequestValidationError | None) -> Response:
    """The dependencies' checks in their order, then the endpoint; runs in the thread pool."""
    if principal is None:
        principal = authenticate_key(engine, presented)
    check_role(principal, POS_ROLES)
    idempotency_key = request.headers.get("idempotency-key")
    check_idempotency_key(idempotency_key)
    if invalid is not None:
        raise invalid
    assert data is not None
    return endpoint(data, principal, Writer(engine, principal, request.method, request.url.path, idempotency_key))


def _purchase_limiter(app: FastAPI) -> CapacityLimiter:
    """The process's queue of purchases waiting for a thread (first come, first served)."""
    limiter: CapacityLimiter | None = getattr(app.state, "purchase_limiter", None)
    if limiter is None:
        limiter = app.state.purchase_limiter = CapacityLimiter(get_settings().purchase_concurrency)
    return limiter


class PurchaseRoute(APIRoute):
    """Serves `create_purchase` as described above; FastAPI still documents it."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        endpoint = self.endpoint

        async def handle(request: Request) -> Response:
            headers = request.headers
            data, invalid = _parse_purchase(headers.get("content-type"), await request.body())
            presented = presented_key(headers.get("authorization"), headers.get("x-api-key"))
            engine: Engine = request.app.state.engine
            async with _purchase_limiter(request.app):
                return await run_in_threadpool(_purchase, endpoint, engine, request, presented,
                                               cached_principal(presented), data, invalid)
        return handle


router.add_api_route(
    "/transactions", create_purchase, methods=["POST"], status_code=201, response_model=PurchaseOut,
    responses={200: {"description": "already recorded: the first result again", "model": PurchaseOut},
               409: {"description": "same POS id with different details, or not enough points"}},
    route_class_override=PurchaseRoute)


@router.get("/transactions/{transaction_id}", response_model=PurchaseOut)
def get_purchase(transaction_id: IdPath, session: ReadSession, principal: AnyKey) -> PurchaseOut:
    tx = service.get_transaction(session, transaction_id)
    if tx.kind != "purchase" or (principal.role == "store" and tx.store_id != principal.store_id):
        raise NotFound(f"purchase {transaction_id} does not exist")
    return service.purchase_out(session, tx)


@router.post("/transactions/{transaction_id}/returns", status_code=201, response_model=ReturnOut,
             responses={200: {"description": "already recorded: the first result again", "model": ReturnOut}})
def create_return(transaction_id: IdPath, data: ReturnIn, principal: PosKey, write: WriteDep) -> JSONResponse:
    def work(session: Session) -> Outcome:
        allowed = principal.store_id if principal.role == "store" else None
        recorded = service.register_return(session, transaction_id, data, actor=principal.actor,
                                           allowed_store=allowed)
        if recorded.replayed:
            return Outcome(200, recorded.body, {"Idempotent-Replayed": "true"})
        return Outcome(201, recorded.body)
    return write.run(data, work)
