"""What absence alerts keep: each alert raised, and whether each rule holds for each person."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from autocheckin.attendance.models import Student
from autocheckin.database import JSONValue, UTCDateTime
from autocheckin.extensions import db
from autocheckin.times import utcnow

CONSECUTIVE_ABSENCES = "consecutive_absences"
ATTENDANCE_RATE = "attendance_rate"
RULES = (CONSECUTIVE_ABSENCES, ATTENDANCE_RATE)


class Alert(db.Model):
    """One alert: the rule started to hold for the person; open until acknowledged."""

    __tablename__ = "alerts"
    __table_args__ = (
        Index("ix_alerts_acknowledged_at_created_at", "acknowledged_at", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    student_id: Mapped[int] = mapped_column(
        ForeignKey("students.id", ondelete="RESTRICT"), index=True
    )
    rule: Mapped[str] = mapped_column(String(32))
    # The numbers behind it: {"absences", "threshold"} or {"rate", "attended", "expected",
    # "threshold", "period_days"}; event_ids: the missed events those figures count.
    figures: Mapped[dict[str, Any]] = mapped_column(JSONValue)
    event_ids: Mapped[list[int]] = mapped_column(JSONValue)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    acknowledged_by: Mapped[str | None] = mapped_column(String(200))
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    acknowledgement_note: Mapped[str | None] = mapped_column(Text)

    student: Mapped[Student] = relationship()


class AlertRuleState(db.Model):
    """Whether a rule holds for a person now: the unique pair makes "a new alert only when
    it starts to hold" one row change, whichever process evaluates."""

    __tablename__ = "alert_rule_states"
    __table_args__ = (UniqueConstraint("student_id", "rule"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    student_id: Mapped[int] = mapped_column(ForeignKey("students.id", ondelete="CASCADE"))
    rule: Mapped[str] = mapped_column(String(32))
    holds: Mapped[bool] = mapped_column(default=False)
    # The alert raised when it last started to hold.
    alert_id: Mapped[int | None] = mapped_column(ForeignKey("alerts.id", ondelete="SET NULL"))
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
