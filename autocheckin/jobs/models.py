"""Job run records and the leases that let one process at a time run each job."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from autocheckin.database import JSONValue, UTCDateTime
from autocheckin.extensions import db
from autocheckin.times import utcnow

RUNNING, OK, FAILED, SKIPPED = "running", "ok", "failed", "skipped"
PARTIAL = "partial"  # it ran to the end, and some of its items failed
ABANDONED = "abandoned"  # its process died mid-run: its lock was not renewed


class Lease(db.Model):
    """A named lease: `holder` owns it until `expires_at`, unless renewed."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))
    acquired_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class JobRun(db.Model):
    """One run of one job, scheduled or triggered by hand."""

    __tablename__ = "job_runs"
    # Each job's newest run of each status, read by every poll of the state (job_health).
    __table_args__ = (Index("ix_job_runs_job_status_id", "job", "status", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    job: Mapped[str] = mapped_column(String(50))
    trigger: Mapped[str] = mapped_column(String(20), default="schedule")
    holder: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20), default=RUNNING)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    counts: Mapped[dict[str, Any]] = mapped_column(JSONValue, default=dict)
    error: Mapped[str | None] = mapped_column(Text)

    @property
    def ok(self) -> bool | None:
        return None if self.status == RUNNING else self.status in (OK, SKIPPED)
