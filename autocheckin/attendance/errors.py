"""The core's errors: what went wrong with students, events and check-ins.

No HTTP status here: `api/errors.py` maps each kind to one, and each API family renders
it in its own shape.
"""

from __future__ import annotations

from autocheckin.errors import ServiceError


class DomainError(ServiceError):
    """Base of the core's errors."""

    code = "invalid"


class Invalid(DomainError):
    code = "invalid"


class NotFound(DomainError):
    code = "not_found"


class AlreadyExists(DomainError):
    code = "already_exists"


class AlreadyCheckedIn(DomainError):
    code = "already_checked_in"


class OutsideWindow(DomainError):
    code = "outside_window"


class TooLarge(DomainError):
    """More than the service accepts in one go (items in a batch)."""

    code = "payload_too_large"


class Conflict(DomainError):
    code = "conflict"
