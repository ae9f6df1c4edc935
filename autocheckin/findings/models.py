"""What the suspicious-check-in rules found, and what an admin decided about it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from autocheckin.database import JSONValue, UTCDateTime
from autocheckin.extensions import db
from autocheckin.times import utcnow

OPEN, CONFIRMED, DISMISSED = "open", "confirmed", "dismissed"
STATES = (OPEN, CONFIRMED, DISMISSED)


class Finding(db.Model):
    """One pattern one rule saw: its subject (a client, a person, a scanner), the evidence,
    and the check-ins it names (what confirming voids).

    `dedupe_key` is unique: a pass that sees the same pattern again (the next pass re-reads
    its last minute, a restart re-reads more) adds to the finding instead of making another.
    """

    __tablename__ = "findings"
    __table_args__ = (
        Index("ix_findings_rule_subject_last_seen_at", "rule", "subject", "last_seen_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    rule: Mapped[str] = mapped_column(String(40))
    subject: Mapped[str] = mapped_column(String(200))
    dedupe_key: Mapped[str] = mapped_column(String(300), unique=True)
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    evidence: Mapped[dict[str, Any]] = mapped_column(JSONValue, default=dict)
    attendance_ids: Mapped[list[int]] = mapped_column(JSONValue, default=list)
    state: Mapped[str] = mapped_column(String(16), default=OPEN, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    decided_by: Mapped[str | None] = mapped_column(String(200))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decision_reason: Mapped[str | None] = mapped_column(Text)
    voided_ids: Mapped[list[int] | None] = mapped_column(JSONValue)
