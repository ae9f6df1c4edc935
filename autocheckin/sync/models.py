"""What sync keeps: which users are expected at which events, and each user's session record."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from autocheckin.attendance.models import Student
from autocheckin.database import JSONValue, UTCDateTime
from autocheckin.extensions import db
from autocheckin.times import utcnow


class Enrolment(db.Model):
    """A student is expected at an event (an upstream session lists them)."""

    __tablename__ = "enrolments"
    __table_args__ = (UniqueConstraint("student_id", "event_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    student_id: Mapped[int] = mapped_column(ForeignKey("students.id", ondelete="CASCADE"))
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), index=True)
    source: Mapped[str] = mapped_column(String(100), default="checkout")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CheckInSession(db.Model):
    """What AutoCheckin knows of one user now: their sessions and the last refresh."""

    __tablename__ = "checkin_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    student_id: Mapped[int] = mapped_column(
        ForeignKey("students.id", ondelete="CASCADE"), unique=True
    )
    refreshed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ok: Mapped[bool] = mapped_column(default=False)
    error: Mapped[str | None] = mapped_column(Text)
    sessions: Mapped[list[dict[str, Any]]] = mapped_column(JSONValue, default=list)
    # The last state reported upstream with POST /log, so only changes are reported.
    reported_state: Mapped[str | None] = mapped_column(String(50))

    student: Mapped[Student] = relationship()
