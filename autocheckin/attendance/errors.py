"""The core's errors: what went wrong with students, events and check-ins.

Each is one of the general kinds in `autocheckin/errors.py` (which gives it its status)
and a `DomainError`, the core's own family: a batch keeps a `DomainError` as the result of
its item instead of failing the whole request. No HTTP status here.
"""

from __future__ import annotations

from autocheckin import errors


class DomainError(errors.Invalid):
    """Base of the core's errors; one that is none of the kinds below is an invalid request."""

    code = "invalid"


class Invalid(DomainError):
    code = "invalid"


class NotFound(errors.NotFound, DomainError):
    code = "not_found"


class AlreadyExists(errors.AlreadyExists, DomainError):
    code = "already_exists"


class AlreadyCheckedIn(DomainError):
    code = "already_checked_in"


class OutsideWindow(DomainError):
    code = "outside_window"


class TooLarge(errors.TooLarge, DomainError):
    """More than the service accepts in one go (items in a batch)."""

    code = "payload_too_large"


class Conflict(errors.Conflict, DomainError):
    code = "conflict"


class Unprocessable(errors.Unprocessable, DomainError):
    """A request the core cannot carry out as sent: a correction with no reason or an
    unknown status, a series' rule or zone."""

    code = "unprocessable"


class PreconditionFailed(errors.PreconditionFailed, DomainError):
    code = "precondition_failed"
