"""Domain errors: the core raises these, each API family renders them in its own shape."""

from __future__ import annotations


class DomainError(Exception):
    """Base class; `code` is stable and machine-readable, the message is for people."""

    status = 400
    code = "invalid"

    def __init__(self, message: str, *, code: str | None = None, details: str | None = None):
        super().__init__(message)
        self.message = message
        self.details = details
        if code:
            self.code = code


class Invalid(DomainError):
    status = 400
    code = "invalid"


class NotFound(DomainError):
    status = 404
    code = "not_found"


class AlreadyExists(DomainError):
    status = 400
    code = "already_exists"


class AlreadyCheckedIn(DomainError):
    status = 400
    code = "already_checked_in"


class OutsideWindow(DomainError):
    status = 400
    code = "outside_window"


class TooLarge(DomainError):
    """More than the service accepts in one go (items in a batch)."""

    status = 413
    code = "payload_too_large"


class Forbidden(DomainError):
    status = 403
    code = "forbidden"


class NotConfigured(DomainError):
    """A feature whose setting is missing on this server (a key, a secret, an upstream)."""

    status = 503
    code = "not_configured"


class Conflict(DomainError):
    status = 409
    code = "conflict"
