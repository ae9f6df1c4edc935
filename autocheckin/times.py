"""Time in one place: UTC now, ISO 8601 rendering with `Z`, and lenient ISO parsing."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated

from pydantic import PlainSerializer

_DOUBLE_ZONE = re.compile(r"([+-]\d{2}:?\d{2})Z$")
# Accepted instants: wide enough for any real schedule, and far enough from datetime's own
# limits that window arithmetic (start - 15 min, + days) can never overflow.
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


def _iso_text(moment: datetime) -> str:
    return iso(moment) or ""


# A time in a response model: rendered by `iso` (UTC, trailing Z) like every time we send.
IsoTime = Annotated[datetime, PlainSerializer(_iso_text, return_type=str)]


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
    return to_utc(datetime.fromisoformat(cleaned))


def to_utc(moment: datetime) -> datetime:
    """Aware UTC (naive taken as UTC) within EARLIEST..LATEST; ValueError outside."""
    try:
        moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except OverflowError:
        raise ValueError("date is out of range") from None
    if not EARLIEST <= moment <= LATEST:
        raise ValueError(f"date must be between {EARLIEST.year} and {LATEST.year}")
    return moment
