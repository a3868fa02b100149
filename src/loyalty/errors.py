"""One error hierarchy for expected failures; api/problems.py maps it to RFC 9457 responses."""

from __future__ import annotations

from typing import Any


class LoyaltyError(Exception):
    """An expected failure with an HTTP status, a stable type slug and a human message."""

    status: int = 400
    type_slug: str = "bad-request"
    title: str = "Bad request"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class ValidationFailed(LoyaltyError):
    status = 422
    type_slug = "validation-error"
    title = "The request is not valid"


class NotFound(LoyaltyError):
    status = 404
    type_slug = "not-found"
    title = "Not found"


class Conflict(LoyaltyError):
    status = 409
    type_slug = "conflict"
    title = "Conflict"


class IdempotencyConflict(Conflict):
    type_slug = "idempotency-key-reused"
    title = "Idempotency-Key reused with a different request"


class RequestInProgress(Conflict):
    type_slug = "request-in-progress"
    title = "A request with this Idempotency-Key is still in progress"


class InsufficientPoints(LoyaltyError):
    status = 409
    type_slug = "insufficient-points"
    title = "Not enough points"


class HoldNotActive(LoyaltyError):
    status = 409
    type_slug = "hold-not-active"
    title = "The hold is no longer active"


class Unauthenticated(LoyaltyError):
    status = 401
    type_slug = "unauthenticated"
    title = "Missing or invalid API key"


class Forbidden(LoyaltyError):
    status = 403
    type_slug = "forbidden"
    title = "Not allowed"


class ConfigError(LoyaltyError):
    """A configuration or program file is invalid; `detail` names the path inside the file."""

    status = 422
    type_slug = "invalid-program"
    title = "The program file is not valid"
