"""Core operations on students, events and attendances (plain functions, keyword-only)."""

from __future__ import annotations

from sqlalchemy import func, select

from autocheckin.attendance.models import Attendance, Event, Student
from autocheckin.extensions import db


def counts() -> dict[str, int]:
    """How many students, events and attendances are stored."""
    session = db.session
    return {
        "students": session.scalar(select(func.count()).select_from(Student)) or 0,
        "events": session.scalar(select(func.count()).select_from(Event)) or 0,
        "attendances": session.scalar(select(func.count()).select_from(Attendance)) or 0,
    }
