"""One exception family for the fleet; each error carries the HTTP status it maps to."""

from __future__ import annotations

from typing import Any


class FleetError(Exception):
    """An error a person can act on. ``status`` is the HTTP status the API answers with.

    ``message`` is English and is what the API sends. ``key`` (with ``params``) names the message for
    the faces that speak other languages: the dashboard shows its catalogue's ``err.<key>`` text,
    filled with ``params``, and falls back to ``message``. Keys are stable; the API never sends them.
    """

    status: int = 400
    code: str = "bad_request"

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        details: Any = None,
        key: str | None = None,
        params: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.details = details
        self.key = key
        self.params: dict[str, Any] = dict(params or {})

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.code, "message": self.message}
        if self.field is not None:
            body["field"] = self.field
        if self.details is not None:
            body["details"] = self.details
        return body


class Invalid(FleetError):
    """The request was understood but its content is not acceptable (bad field, unsafe G-code)."""

    status = 422
    code = "invalid"


class Unauthorized(FleetError):
    status = 401
    code = "unauthorized"


class Forbidden(FleetError):
    status = 403
    code = "forbidden"


class NotFound(FleetError):
    status = 404
    code = "not_found"


class Conflict(FleetError):
    """The request clashes with the current state (a transition that is not allowed, a claimed job)."""

    status = 409
    code = "conflict"


class TooLarge(FleetError):
    status = 413
    code = "too_large"


class RateLimited(FleetError):
    status = 429
    code = "rate_limited"


class Unavailable(FleetError):
    """A resource the fleet needs is not there (disk full, database down)."""

    status = 503
    code = "unavailable"


class InsufficientStorage(Unavailable):
    """The disk that holds the fleet's files or database is full: free space, then try again."""

    status = 507
    code = "insufficient_storage"
