"""NUL characters are refused at the API's door, on both databases alike.

PostgreSQL cannot store U+0000 in text at all, while SQLite stores it and hands it back; without
this check the same request was a 422 on one database and a stored record on the other (and a
record that a later move to PostgreSQL could not copy). The CSV import refuses them too.

It is a plain ASGI middleware rather than a FastAPI dependency: a router-wide dependency cost
the no-op endpoint 5-10 % of its rate (measured), this costs a prefix test and two byte scans.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from loyalty.api.problems import validation_problem

MESSAGE = "must not contain the NUL character (\\u0000)"
# `\u0000` in JSON text, not itself escaped (an even number of backslashes before it is text).
_ESCAPED_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")
_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})


def _error(loc: tuple[str | int, ...]) -> dict[str, Any]:
    return {"type": "string_nul", "loc": loc, "msg": MESSAGE, "input": None}


def _nul_paths(value: Any, path: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    """Where in a JSON document a key or a string holds a NUL character."""
    if isinstance(value, str):
        return [path] if "\x00" in value else []
    if isinstance(value, dict):
        found: list[tuple[str | int, ...]] = []
        for key, item in value.items():
            found += [(*path, key)] if "\x00" in key else _nul_paths(item, (*path, key))
        return found
    if isinstance(value, list):
        return [p for i, item in enumerate(value) for p in _nul_paths(item, (*path, i))]
    return []


def body_nul_errors(body: bytes) -> list[dict[str, Any]]:
    """The fields of a JSON body that hold a NUL character (none for almost every body: one scan)."""
    # In UTF-8 (as good as every body) a NUL can only come as the escape. A body with zero bytes
    # is UTF-16 or UTF-32, which json.loads reads too (and so FastAPI): it is parsed to be sure.
    if b"\x00" not in body and (b"u0000" not in body or _ESCAPED_NUL.search(body) is None):
        return []
    try:
        document = json.loads(body)
    except ValueError:
        return []  # not JSON: the body's own validation answers it
    return [_error(("body", *path)) for path in _nul_paths(document)]


def url_nul_errors(scope: Scope) -> list[dict[str, Any]]:
    """NUL characters in the path, the query or a header (an Idempotency-Key is stored)."""
    errors = [_error(("path",))] if "\x00" in scope["path"] else []
    errors += [_error(("header", name.decode("latin-1"))) for name, value in scope["headers"] if b"\x00" in value]
    query: bytes = scope.get("query_string", b"")
    if b"%00" in query or b"\x00" in query:
        errors += [_error(("query", name)) for name, value in parse_qsl(query.decode("latin-1"),
                                                                         keep_blank_values=True)
                   if "\x00" in name or "\x00" in value]
    return errors


class RefuseNul:
    """A NUL in the path, the query or a JSON body of a /v1 request is a 422 naming the field."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        errors = url_nul_errors(scope)
        if scope["method"] in _WITH_BODY:
            body = await Request(scope, receive).body()
            errors += body_nul_errors(body)
            receive = _replay(body, receive)
        if errors:
            await validation_problem(errors, scope["path"])(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _replay(body: bytes, receive: Receive) -> Receive:
    """The body read here, handed to the app as if it came from the client (then the client again)."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}
    return replayed
