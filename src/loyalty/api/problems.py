"""Every error as RFC 9457 problem+json, mapped in this one place."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import DataError, IntegrityError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from loyalty.errors import LoyaltyError

log = logging.getLogger("loyalty.api")
PROBLEM_BASE = "https://loyalty.dev/problems/"
MEDIA_TYPE = "application/problem+json"


class FieldError(BaseModel):
    """One invalid input of a 422 validation-error problem."""

    field: str = Field(description="where: a body field as a dotted path (`lines.0.sku`), or the parameter's place "
                                   "and name (`query.limit`, `header.idempotency-key`)")
    message: str


# Only the OpenAPI document (api/openapi.py) uses this model: it describes what `problem()` writes.
class Problem(BaseModel):
    """An error answer: RFC 9457 problem details, media type application/problem+json."""

    # Extension members vary with the error (`available`/`requested` for insufficient points,
    # `existing_id` for a recorded transaction, `hold_status`, ...): the schema allows any.
    model_config = ConfigDict(extra="allow")

    type: str = Field(description="URI of the problem type; its last segment is a stable slug to branch on",
                      examples=[PROBLEM_BASE + "validation-error"])
    title: str = Field(description="short summary of the problem type")
    status: int = Field(description="the HTTP status code")
    detail: str = Field(description="what went wrong with this request, for a person")
    instance: str = Field(description="the path of the request", examples=["/v1/customers/42"])
    # `invalid-program` (ConfigError) sends its own `errors`: "path: message" strings from the program file.
    errors: list[FieldError] | list[str] = Field(
        default_factory=list,
        description="422 only. `validation-error`: each invalid input and why (absent when the fault is not one "
                    "field's); `invalid-program`: each problem of the program file, as `path: message`")


def problem(status: int, slug: str, title: str, detail: str, instance: str,
            extra: dict[str, Any] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"type": PROBLEM_BASE + slug, "title": title, "status": status, "detail": detail,
                            "instance": instance}
    # Extension members add to the standard ones (RFC 9457 section 3.2), never replace them.
    body.update({key: value for key, value in (extra or {}).items() if key not in body})
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


def _location(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body",)]
    return ".".join(parts) or "body"


def validation_problem(errors: Sequence[Any], instance: str) -> JSONResponse:
    """A 422 listing each invalid input (pydantic's error dicts) as {field, message}."""
    fields = [{"field": _location(tuple(e.get("loc", ()))),
               "message": str(e.get("msg", "")).removeprefix("Value error, ")} for e in errors]
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in fields[:5])
    return problem(422, "validation-error", "The request is not valid", detail, instance, {"errors": fields})


def install(app: FastAPI) -> None:
    @app.exception_handler(LoyaltyError)
    async def _loyalty(request: Request, exc: LoyaltyError) -> JSONResponse:
        return problem(exc.status, exc.type_slug, exc.title, exc.detail, request.url.path, exc.extra)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return validation_problem(exc.errors(), request.url.path)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        slug = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "http-error")
        return problem(exc.status_code, slug, str(exc.detail), str(exc.detail), request.url.path)

    @app.exception_handler(IntegrityError)
    async def _integrity(request: Request, exc: IntegrityError) -> JSONResponse:
        log.warning("integrity error on %s: %s", request.url.path, exc.orig)
        return problem(409, "conflict", "Conflict",
                       "the request conflicts with data recorded at the same time; retry it", request.url.path)

    @app.exception_handler(DataError)
    async def _unstorable(request: Request, exc: DataError) -> JSONResponse:
        # A value the database cannot hold (a NUL character in text, a number out of range): the input's fault.
        log.warning("data error on %s: %s", request.url.path, exc.orig)
        return problem(422, "validation-error", "The request is not valid",
                       "a value in the request cannot be stored (out of range or an invalid character)",
                       request.url.path)

    @app.exception_handler(OperationalError)
    async def _busy(request: Request, exc: OperationalError) -> JSONResponse:
        if exc.connection_invalidated:
            # Whether a write that lost its connection committed is unknown to us: the client's
            # retry with the same Idempotency-Key (or POS id) answers that without doubling it.
            log.warning("database connection lost on %s: %s", request.url.path, exc.orig)
            return problem(503, "database-unavailable", "The database connection was lost",
                           "the connection to the database was lost; retry the request with the same "
                           "Idempotency-Key", request.url.path)
        log.warning("database busy on %s: %s", request.url.path, exc.orig)
        return problem(503, "database-busy", "The database is busy",
                       "the database could not take the request in time; retry it", request.url.path)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s", request.url.path)
        return problem(500, "internal-error", "Internal error", "an unexpected error occurred; it was logged",
                       request.url.path)
