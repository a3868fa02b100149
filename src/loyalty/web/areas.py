"""Which URL prefixes are web pages (HTML, cookie sessions, CSRF) rather than the JSON API."""

from __future__ import annotations

# Every area of the web layer registers its prefix here (see docs/web.md); /static is shared.
_PREFIXES: list[str] = ["/static/"]


def register(prefix: str) -> None:
    prefix = prefix.rstrip("/")
    if prefix not in _PREFIXES:
        _PREFIXES.append(prefix)


def is_web(path: str) -> bool:
    return any(path == p or path.startswith(p if p.endswith("/") else p + "/") for p in _PREFIXES)
