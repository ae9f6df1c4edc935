"""Who may not: no or bad credentials (Unauthorized), or not allowed (Forbidden)."""

from __future__ import annotations

from autocheckin.errors import ServiceError


class Unauthorized(ServiceError):
    code = "unauthorized"


class Forbidden(ServiceError):
    code = "forbidden"
