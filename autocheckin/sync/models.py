"""What sync keeps, each fact once: who CheckOut lists, who is expected at which event,
and when each user was last refreshed.

A user's check-in sessions are not stored: they are read from enrolments, events and
attendances (`sync.sessions.session_views`), so they can never disagree with them.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from autocheckin.attendance.models import Enrolment, Student
from autocheckin.database import UTCDateTime
from autocheckin.extensions import db
from autocheckin.times import utcnow

__all__ = ["Enrolment", "RosterEntry", "UserRefresh"]  # Enrolment lives in the core


class RosterEntry(db.Model):
    """The student is in CheckOut's latest user list (`autoCheckinUsers`), at `position`."""

    __tablename__ = "checkout_roster"

    student_id: Mapped[int] = mapped_column(
        ForeignKey("students.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(index=True)
    listed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class UserRefresh(db.Model):
    """The bookkeeping of refreshing one user: when, whether it worked, and what was last
    reported upstream with POST /log (so only changes are reported)."""

    __tablename__ = "user_refreshes"

    id: Mapped[int] = mapped_column(primary_key=True)
    student_id: Mapped[int] = mapped_column(
        ForeignKey("students.id", ondelete="CASCADE"), unique=True
    )
    refreshed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ok: Mapped[bool] = mapped_column(default=False)
    error: Mapped[str | None] = mapped_column(Text)
    reported_state: Mapped[str | None] = mapped_column(String(50))

    student: Mapped[Student] = relationship()
