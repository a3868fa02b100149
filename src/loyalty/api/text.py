"""NUL characters are refused at the API's door, on both databases alike.

PostgreSQL cannot store U+0000 in text at all, while SQLite stores it and hands it back; without
this check the same request was a 422 on one database and a stored record on the other (and a
record that a later move to PostgreSQL could not copy). The CSV import refuses them too.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qsl

from fastapi import Request
from fastapi.exceptions import RequestValidationError

MESSAGE = "must not contain the NUL character (\\u0000)"
# `\u0000` in JSON text, not itself escaped (an even number of backslashes before it is text).
_ESCAPED_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")

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
    if b"u0000" not in body or _ESCAPED_NUL.search(body) is None:
        return []
    try:
        document = json.loads(body)
    except ValueError:
        return []  # not JSON: the body's own validation answers it
    return [_error(("body", *path)) for path in _nul_paths(document)]

async def refuse_nul(request: Request) -> None:
    """A /v1 dependency: a NUL in the path, the query or a JSON body is a 422 naming the field."""
    errors: list[dict[str, Any]] = []
    if "\x00" in request.scope["path"]:
        errors.append(_error(("path",)))
    query = request.scope.get("query_string", b"")
    if b"%00" in query or b"\x00" in query:
        errors += [_error(("query", name)) for name, value in parse_qsl(query.decode("latin-1"),
                                                                         keep_blank_values=True)
                   if "\x00" in name or "\x00" in value]
    if request.method in ("POST", "PUT", "PATCH"):
        errors += body_nul_errors(await request.body())
    if errors:
        raise RequestValidationError(errors)
