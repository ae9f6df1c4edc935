"""Errors say what went wrong, in words and a stable code; never which HTTP status.

Every package derives its errors from `ServiceError`. `api/errors.py` alone maps each
kind to a status, and each API family renders it in its own shape, so the same refusal
reads the same wherever it is raised (a route, a webhook, a job, the CLI).
"""

from __future__ import annotations


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


class NotConfigured(ServiceError):
    """A feature whose setting is missing on this server (a key, a secret, an upstream).

    Not a failure of the work that needed it: a job that meets it is recorded skipped.
    """

    code = "not_configured"
