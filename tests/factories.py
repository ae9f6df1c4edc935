"""Plain factory functions for test data, going through the core as real clients do."""

from __future__ import annotations

from datetime import datetime, timedelta
from itertools import count
from typing import Any

from autocheckin.attendance import service
from autocheckin.attendance.models import Event, Student
from autocheckin.times import utcnow

_sequence = count(1)


def make_student(**overrides: Any) -> Student:
    number = next(_sequence)
    values: dict[str, Any] = {
        "identifier": f"a{number:08d}",
        "email": f"student{number}@example.com",
        "first_name": "Test",
        "last_name": f"Student{number}",
        "is_admin": False,
        "source": "test",
    }
    values.update(overrides)
    return service.create_student(**values)


def make_event(**overrides: Any) -> Event:
    number = next(_sequence)
    values: dict[str, Any] = {
        "name": f"Event {number}",
        "start_time": utcnow() - timedelta(minutes=1),
        "end_time": None,
        "source": "test",
    }
    values.update(overrides)
    return service.create_event(**values)


def at(minutes: float = 0, *, base: datetime | None = None) -> datetime:
    return (base or utcnow()) + timedelta(minutes=minutes)
