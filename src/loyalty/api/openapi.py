"""The OpenAPI document's error answers: each operation lists the problem+json statuses it can give.

FastAPI documents a 422 `HTTPValidationError` (application/json) that api/problems.py never sends, and no
other error. `install` rewrites the generated document once per generation: every operation in it gets
the statuses derived from its route, each as application/problem+json with the `Problem` schema.

How each status is derived (from the route, not a blanket list):
- 400: the operation takes a body (a body that is not UTF-8 text cannot be read: FastAPI answers 400);
- 401: a dependency asks for the API key (`current_principal`);
- 403: a `require_roles` check that does not allow every role;
- 404: a path parameter (the record it names may not exist), or a look-up listed in `NOT_IN_ROUTE`;
- 409: the Writer (`WriteDep`): Idempotency-Key reuse, and a concurrent write it could not retry past;
- 422: the operation takes parameters (headers included) or a body;
- 503: the operation touches the database (a session, the Writer, a key check, or the Request's engine).
No 429: nothing under /v1 is rate limited (the login limits are on the HTML screens, not in the document).
What the route cannot show (a record named in the body, an operation's own rules) is in `NOT_IN_ROUTE`,
and statuses an endpoint documents itself (`responses=`) keep their text and get the problem schema too.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from fastapi import routing as fastapi_routing
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from pydantic.json_schema import models_json_schema

from loyalty.api.deps import current_principal, read_session, require_roles, writer
from loyalty.api.problems import MEDIA_TYPE, Problem
from loyalty.models.auth import ROLES

SCHEMA_REF = "#/components/schemas/{model}"
# FastAPI's own validation-error schemas, unused once every 422 is a Problem.
FASTAPI_VALIDATION_SCHEMAS = ("HTTPValidationError", "ValidationError")
# Every check that `require_roles(...)` makes is a closure over this one code object.
_ROLE_CHECK_CODE = require_roles(*ROLES).__code__

UNREADABLE_BODY = "the body cannot be read (not UTF-8 text, or a form that cannot be parsed)"
UNAUTHENTICATED = ("no API key (`Authorization: Bearer lk_...` or `X-API-Key`), or an unknown or revoked one, "
                   "or one whose staff member is no longer active")
NOT_FOUND = "nothing with this {names}"
WRITE_CONFLICT = ("the Idempotency-Key was already used for a different request (send a new key for a new "
                  "request), or a concurrent write to the same data could not be retried past (retry it)")
INVALID = ("a parameter, header or body field is not valid: `errors` lists each one; or a value the database "
           "cannot store")
UNAVAILABLE = ("the database is busy or its connection was lost (`database-busy`, `database-unavailable`): "
               "retry, with the same Idempotency-Key for a write")
# Reasons that hold for the operation whatever its endpoint says of its own 409s and 422s.
GENERAL_STATUSES = frozenset({409, 422})
STORE_BOUND_ROLES = frozenset({"store", "agent", "manager"})  # keys that act for some stores only

# Statuses and reasons the route cannot show: look-ups of records named in the query or the body, and
# outcomes of an operation's own rules (taken from the services' raises). An entry's text replaces the
# derived one, except for the general 409 and 422 reasons, which it adds to.
NOT_IN_ROUTE: dict[tuple[str, str], dict[int, str]] = {
    ("GET", "/v1/customers"): {404: "no customer with this identity"},
    ("POST", "/v1/transactions"): {404: "no such customer, store or hold"},
    ("POST", "/v1/transactions/{transaction_id}/returns"): {
        404: "no such purchase or store", 409: "the transaction_id was already recorded at this store"},
    ("POST", "/v1/customers/{customer_id}/holds"): {404: "no such customer or store"},
    ("POST", "/v1/adjustments"): {404: "no such customer", 409: "removing more points than the member has"},
    ("POST", "/v1/stores"): {409: "a store with this id exists"},
    ("POST", "/v1/staff"): {404: "no such store", 409: "a staff member with this e-mail exists"},
    ("PATCH", "/v1/staff/{staff_id}"): {404: "no such staff member or store"},
    ("GET", "/v1/customer-tickets/{token}"): {404: "forged or damaged link", 410: "the link has expired"},
}


@dataclass(frozen=True, slots=True)
class DocumentedRoute:
    """An operation of the document with what its route says about it."""

    method: str
    path: str
    dependant: Dependant
    declared: dict[int, str]  # statuses the endpoint documents itself (`responses=`), with their text


def _documented_routes(app: FastAPI) -> Iterator[DocumentedRoute]:
    # Recent FastAPI keeps included routers lazily: its route contexts give each route's full path.
    contexts: Callable[[Any], Iterable[Any]] | None = getattr(fastapi_routing, "iter_route_contexts", None)
    routes: Iterable[Any] = contexts(app.routes) if contexts else app.routes
    for route in routes:
        if not isinstance(getattr(route, "original_route", route), APIRoute) or not route.include_in_schema:
            continue
        declared = {int(status): str(response.get("description", "")) for status, response
                    in route.responses.items() if str(status).isdigit() and response.get("description")}
        for method in route.methods:
            yield DocumentedRoute(method, route.path_format, route.dependant, declared)


def _dependants(dependant: Dependant) -> Iterator[Dependant]:
    yield dependant
    for sub in dependant.dependencies:
        yield from _dependants(sub)


def _allowed_roles(calls: list[Callable[..., Any]]) -> tuple[str, ...]:
    """The roles every `require_roles` check of the route lets through (all roles when there is none)."""
    allowed: tuple[str, ...] = ROLES
    for call in calls:
        if getattr(call, "__code__", None) is _ROLE_CHECK_CODE:
            roles: tuple[str, ...] = inspect.getclosurevars(call).nonlocals["roles"]
            allowed = tuple(role for role in allowed if role in roles)
    return allowed


def error_statuses(route: DocumentedRoute) -> dict[int, str]:
    """The error statuses the operation can answer, each with why."""
    dependants = list(_dependants(route.dependant))
    calls = [d.call for d in dependants if d.call is not None]
    takes_body = any(d.body_params for d in dependants)
    takes_parameters = takes_body or any(d.path_params or d.query_params or d.header_params or d.cookie_params
                                         for d in dependants)
    path_names = [field.alias for d in dependants for field in d.path_params]
    derived: dict[int, str] = {}
    if takes_body:
        derived[400] = UNREADABLE_BODY
    if current_principal in calls:
        derived[401] = UNAUTHENTICATED
        allowed = _allowed_roles(calls)
        if allowed != ROLES:
            needed = f"the {allowed[0]} role" if len(allowed) == 1 else f"one of the roles {', '.join(allowed)}"
            derived[403] = f"the key may not do this: it needs {needed}"
            if STORE_BOUND_ROLES & set(allowed):
                derived[403] += "; a key tied to stores acts only for those stores"
    if path_names:
        derived[404] = NOT_FOUND.format(names=" and ".join(dict.fromkeys(path_names)))
    if writer in calls:
        derived[409] = WRITE_CONFLICT
    if takes_parameters:
        derived[422] = INVALID
    # The endpoint itself may reach the engine through the Request (app.state.engine).
    if {read_session, writer, current_principal} & set(calls) or route.dependant.request_param_name:
        derived[503] = UNAVAILABLE

    specific = route.declared | NOT_IN_ROUTE.get((route.method, route.path), {})
    statuses: dict[int, str] = {}
    for status in sorted(derived.keys() | {s for s in specific if s >= 400}):
        reasons = [specific[status]] if status in specific else []
        if status in derived and (not reasons or status in GENERAL_STATUSES):
            reasons.append(derived[status])
        statuses[status] = "; or ".join(reasons)
    return statuses


def _problem_response(status: int, description: str) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description[:1].upper() + description[1:],
        "content": {MEDIA_TYPE: {"schema": {"$ref": SCHEMA_REF.format(model=Problem.__name__)}}},
    }
    if status == 401:
        response["headers"] = {"WWW-Authenticate": {"description": "`Bearer`", "schema": {"type": "string"}}}
    return response


def describe_errors(app: FastAPI, document: dict[str, Any]) -> None:
    """Puts each operation's error statuses in `document`, in place; run it once per generated document."""
    schemas: dict[str, Any] = document.setdefault("components", {}).setdefault("schemas", {})
    _, definitions = models_json_schema([(Problem, "serialization")], ref_template=SCHEMA_REF)
    for name, schema in definitions.get("$defs", {}).items():
        if schemas.setdefault(name, schema) != schema:
            raise RuntimeError(f"two different schemas are named {name} in the OpenAPI document")
    for route in _documented_routes(app):
        operation = document.get("paths", {}).get(route.path, {}).get(route.method.lower())
        if operation is None:
            continue
        responses: dict[str, Any] = operation.setdefault("responses", {})
        for status, description in error_statuses(route).items():
            responses[str(status)] = _problem_response(status, description)
        operation["responses"] = dict(sorted(responses.items()))  # in status order, as a reader looks them up
    for name in FASTAPI_VALIDATION_SCHEMAS:  # HTTPValidationError first: it refers to ValidationError
        if json.dumps(SCHEMA_REF.format(model=name)) not in json.dumps(document):
            schemas.pop(name, None)


def install(app: FastAPI) -> None:
    """Makes `app.openapi()` (and so /openapi.json and /docs) describe the problem+json error answers."""
    generate = app.openapi
    described: list[dict[str, Any]] = []  # the document last described: FastAPI caches and reuses it

    def openapi() -> dict[str, Any]:
        document = generate()
        if not described or described[0] is not document:
            describe_errors(app, document)
            described[:] = [document]
        return document

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to extend the document
