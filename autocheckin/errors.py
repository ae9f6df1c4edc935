"""Errors say what went wrong, in words and a stable code; never which HTTP status.

The general kinds live here, at the bottom, with the one table of the status each kind
answers with. Every package's errors subclass a kind (`JobBusy` is a `Conflict`,
`UpstreamFailed` a `BadGateway`), so a module never reaches up for a status, and the same
refusal reads the same wherever it is raised (a route, a webhook, a job, the CLI).
`api/errors.py` only renders them, in each API family's shape.
"""

from __future__ import annotations

from collections.abc import Mapping


class ServiceError(Exception):
    """A refusal or failure the caller should hear about: `code` is stable and
    machine-readable, `message` is for people, `details` is optional context."""

    code = "error"

    def __init__(self, message: str, *, code: str | None = None, details: str | None = None):
        super().__init__(message)
        self.message = message
        self.details = details
        if code:
            self.code = code


class Invalid(ServiceError):
    """A request that does not make sense as sent (a field, a value, a shape)."""

    code = "invalid"


class Unauthorized(ServiceError):
    """No credentials, or bad ones."""

    code = "unauthorized"


class Forbidden(ServiceError):
    """Known caller, not allowed."""

    code = "forbidden"


class NotFound(ServiceError):
    code = "not_found"


class AlreadyExists(ServiceError):
    """A second one of something there may be only one of (answered 400, as the guides do)."""

    code = "already_exists"


class Conflict(ServiceError):
    """The request clashes with the current state (a job already running, a name taken)."""

    code = "conflict"


class PreconditionFailed(ServiceError):
    """An `If-Match` that names a version the resource has moved on from."""

    code = "precondition_failed"


class TooLarge(ServiceError):
    """More than the service accepts in one go (items in a batch)."""

    code = "payload_too_large"


class Unprocessable(ServiceError):
    """A body the events, accounts and Discord clients sent that does not fit its model
    (FastAPI's 422, which those clients were written against)."""

    code = "unprocessable"


class Unsupported(ServiceError):
    """Something this server does not offer (HTTP's 501 Not Implemented)."""

    code = "not_implemented"


class BadGateway(ServiceError):
    """A service we depend on failed: unreachable, refused, or answered nonsense."""

    code = "bad_gateway"


class NotConfigured(ServiceError):
    """A feature whose setting is missing on this server (a key, a secret, an upstream).

    Not a failure of the work that needed it: a job that meets it is recorded skipped.
    """

    code = "not_configured"


# The status of each kind; a subclass answers with its nearest listed ancestor's.
_STATUSES: dict[type[ServiceError], int] = {
    ServiceError: 400,
    Invalid: 400,
    AlreadyExists: 400,
    Unauthorized: 401,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    PreconditionFailed: 412,
    TooLarge: 413,
    Unprocessable: 422,
    Unsupported: 501,
    BadGateway: 502,
    NotConfigured: 503,
}


def status_table() -> Mapping[type[ServiceError], int]:
    """The one table of statuses, by kind."""
    return _STATUSES


def status_of(error: ServiceError) -> int:
    """The status `error` answers with: its nearest kind's in the MRO."""
    return next(_STATUSES[kind] for kind in type(error).__mro__ if kind in _STATUSES)
