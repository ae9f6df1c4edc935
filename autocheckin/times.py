"""Time in one place: UTC now, ISO 8601 rendering with `Z`, and lenient ISO parsing."""

from __future__ import annotations

import re
from datetime import UTC, datetime

_DOUBLE_ZONE = re.compile(r"([+-]\d{2}:?\d{2})Z$")


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime | None) -> str | None:
    """ISO 8601 in UTC with a trailing `Z`, the one rendering of times across the API."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_iso(text: str) -> datetime:
    """Parse ISO 8601 with `Z`, an offset, fractional seconds, or none (taken as UTC).

    Also accepts Python's `aware.isoformat() + "Z"` ("…+00:00Z"), a common client slip.
    Raises ValueError on anything else.
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError("not a date string")
    cleaned = _DOUBLE_ZONE.sub(r"\1", text.strip())
    moment = datetime.fromisoformat(cleaned)
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)
