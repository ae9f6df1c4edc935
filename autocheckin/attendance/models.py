"""Students, events and attendances: the tables every way in shares."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from autocheckin.database import JSONValue, NullableJSON, UTCDateTime
from autocheckin.extensions import db
from autocheckin.times import utcnow

STATUS_PRESENT = "present"
STATUS_LATE = "late"
STATUS_EXCUSED = "excused"
STATUS_ABSENT = "absent"
STATUSES = (STATUS_PRESENT, STATUS_LATE, STATUS_EXCUSED, STATUS_ABSENT)
# A mark that says the person was there (counts as attending, for rates and attendee lists).
ATTENDED_STATUSES = (STATUS_PRESENT, STATUS_LATE)


def normalize_key(value: str | None) -> str | None:
    """The case-insensitive form used for uniqueness and look-ups."""
    if value is None:
        return None
    value = value.strip().lower()
    return value or None


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Student(TimestampMixin, db.Model):
    """A person on the roster: someone attendance is recorded for, and nothing more.

    Check-in apps and the upstream sync create and update people; who may sign in or act
    is an account (`auth.models.Account`), which may be linked to one person. `is_admin`
    is the roster's own data (what a check-in app sent), never a power here. A person an
    account created for itself has neither identifier nor email: no scanner or sync can
    address it, so no matching email can capture it.
    """

    __tablename__ = "students"

    id: Mapped[int] = mapped_column(primary_key=True)
    identifier: Mapped[str | None] = mapped_column(String(64))
    identifier_key: Mapped[str | None] = mapped_column(String(64), unique=True)
    email: Mapped[str | None] = mapped_column(String(254))
    email_key: Mapped[str | None] = mapped_column(String(254), unique=True)
    first_name: Mapped[str] = mapped_column(String(100), default="")
    last_name: Mapped[str] = mapped_column(String(100), default="")
    is_admin: Mapped[bool] = mapped_column(default=False)
    source: Mapped[str | None] = mapped_column(String(100))
    # Set when the person is removed: the row (and every attendance and history entry that
    # names it) stays, so nothing recorded about them is lost; see `people.remove_person`.
    deactivated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    # passive_deletes="all": the ORM never nulls or deletes a person's marks; the foreign
    # key refuses the delete instead (anonymise or deactivate a person; see the README).
    attendances: Mapped[list[Attendance]] = relationship(
        back_populates="student", passive_deletes="all"
    )

    @validates("identifier")
    def _keep_identifier_key(self, _field: str, value: str | None) -> str | None:
        value = value.strip() if value else None
        self.identifier_key = normalize_key(value)
        return value or None

    @validates("email")
    def _keep_email_key(self, _field: str, value: str | None) -> str | None:
        value = value.strip() if value else None
        self.email_key = normalize_key(value)
        return value or None

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()


class EventSeries(TimestampMixin, db.Model):
    """A recurring event: a rule expanded in local wall time in `timezone` (`series.py`).

    Its occurrences are ordinary events (`Event.series_id`), each keyed by the local start
    the rule gave it (`Event.occurrence_key`), so generating them twice makes them once.
    `starts_local` and the rule's UNTIL are naive local times, as `YYYY-MM-DDTHH:MM:SS`.
    """

    __tablename__ = "event_series"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    event_type: Mapped[str] = mapped_column(String(100), default="General")
    points: Mapped[int] = mapped_column(default=0)
    description: Mapped[str] = mapped_column(Text, default="")
    location: Mapped[str] = mapped_column(String(200), default="")
    timezone: Mapped[str] = mapped_column(String(64))
    starts_local: Mapped[str] = mapped_column(String(19))
    duration_seconds: Mapped[int] = mapped_column()
    # The rule as stored: FREQ, INTERVAL, BYDAY and UNTIL (local) or COUNT, always bounded.
    rule: Mapped[str] = mapped_column(String(300))
    # The rule had neither UNTIL nor COUNT: UNTIL is the horizon's end at creation.
    is_capped: Mapped[bool] = mapped_column(default=False)
    # Occurrences starting up to this instant exist (the job moves it to now + horizon).
    generated_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    discord_channel_id: Mapped[str | None] = mapped_column(String(32))
    source: Mapped[str | None] = mapped_column(String(100))
    created_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("accounts.id", ondelete="SET NULL")
    )
    # "This and the following" edits split a series: the new one names the old.
    split_from_id: Mapped[int | None] = mapped_column(
        ForeignKey("event_series.id", ondelete="SET NULL")
    )


class SeriesEnrolment(db.Model):
    """A student expected at every occurrence of a series, also those generated later."""

    __tablename__ = "series_enrolments"
    __table_args__ = (UniqueConstraint("series_id", "student_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    series_id: Mapped[int] = mapped_column(
        ForeignKey("event_series.id", ondelete="CASCADE"), index=True
    )
    student_id: Mapped[int] = mapped_column(ForeignKey("students.id", ondelete="CASCADE"))
    source: Mapped[str] = mapped_column(String(100), default="series")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Event(TimestampMixin, db.Model):
    """Something to check in to; `end_time`, when set, bounds the check-in window."""

    __tablename__ = "events"
    __table_args__ = (
        CheckConstraint("end_time IS NULL OR end_time > start_time", name="end_after_start"),
        # One event per occurrence of a series: generation inserts with ON CONFLICT DO NOTHING.
        UniqueConstraint("series_id", "occurrence_key"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), index=True)
    event_type: Mapped[str] = mapped_column(String(100), default="General")
    points: Mapped[int] = mapped_column(default=0)
    description: Mapped[str] = mapped_column(Text, default="")
    location: Mapped[str] = mapped_column(String(200), default="")
    start_time: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    end_time: Mapped[datetime | None] = mapped_column(UTCDateTime)
    external_id: Mapped[str | None] = mapped_column(String(100), unique=True)
    source: Mapped[str | None] = mapped_column(String(100))
    discord_channel_id: Mapped[str | None] = mapped_column(String(32), index=True)
    is_active: Mapped[bool] = mapped_column(default=True)
    # The account that made it through the events API or the Discord bot, if one did.
    created_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("accounts.id", ondelete="SET NULL")
    )
    # An occurrence of a series: the series, and the local start its rule gave it.
    series_id: Mapped[int | None] = mapped_column(
        ForeignKey("event_series.id", ondelete="SET NULL"), index=True
    )
    occurrence_key: Mapped[str | None] = mapped_column(String(19))
    # A cancelled occurrence: inactive, out of calendars, never counted absent.
    is_cancelled: Mapped[bool] = mapped_column(default=False, server_default=false())

    attendances: Mapped[list[Attendance]] = relationship(
        back_populates="event", passive_deletes="all"
    )


class Attendance(db.Model):
    """One person's mark at one event: a check-in a door recorded, or a status an admin
    set (then `checked_in_at` may be empty). The unique pair is the duplicate guard.

    Corrections change it in place and bump `version` (the ETag an `If-Match` names); every
    change, the first mark included, is an `AttendanceChange` in its hash chain. A voided
    mark stays and stops counting. Nothing deletes a row: the foreign keys restrict.
    """

    __tablename__ = "attendances"
    __table_args__ = (UniqueConstraint("student_id", "event_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    student_id: Mapped[int] = mapped_column(ForeignKey("students.id", ondelete="RESTRICT"))
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="RESTRICT"), index=True)
    checked_in_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(16), default=STATUS_PRESENT)
    source: Mapped[str | None] = mapped_column(String(100))
    check_in_metadata: Mapped[dict[str, Any]] = mapped_column("metadata", JSONValue, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    version: Mapped[int] = mapped_column(default=1, server_default=text("1"))
    voided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The status was set by a correction: a later change of time keeps it (no recomputed late).
    status_explicit: Mapped[bool] = mapped_column(default=False, server_default=false())
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    student: Mapped[Student] = relationship(back_populates="attendances")
    event: Mapped[Event] = relationship(back_populates="attendances")

    @property
    def counts(self) -> bool:
        """Whether the mark says the person attended (present or late, not voided)."""
        return self.voided_at is None and self.status in ATTENDED_STATUSES


class AttendanceChange(db.Model):
    """One append-only entry of an attendance's history, hash-chained to the one before.

    `entry_hash` is SHA-256 of `previous_hash` and the entry's canonical content
    (`history.canonical`); the first entry of an attendance chains to `history.GENESIS`.
    Each attendance has its own chain, so two check-ins never wait for one another.
    Nothing updates or deletes a row; `flask audit verify` recomputes every chain.
    """

    __tablename__ = "attendance_history"
    __table_args__ = (UniqueConstraint("attendance_id", "seq"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # No foreign key: PostgreSQL checks one per inserted row, with a lock on the attendance
    # (a third of a batch's time); `flask audit verify` checks that every entry's attendance
    # exists, and nothing deletes an attendance.
    attendance_id: Mapped[int]
    seq: Mapped[int]  # the attendance's version after this change: 1, 2, …
    event_id: Mapped[int] = mapped_column(index=True)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    action: Mapped[str] = mapped_column(String(32))
    before: Mapped[dict[str, Any] | None] = mapped_column(NullableJSON)
    after: Mapped[dict[str, Any]] = mapped_column(JSONValue)
    actor: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str | None] = mapped_column(Text)
    previous_hash: Mapped[str] = mapped_column(String(64))
    entry_hash: Mapped[str] = mapped_column(String(64))


EXCUSE_PENDING, EXCUSE_APPROVED, EXCUSE_DECLINED = "pending", "approved", "declined"


class Excuse(db.Model):
    """A person's reason for missing an event, submitted before or after it; an admin
    approves it (the attendance becomes excused, through a correction) or declines it.
    One per person and event."""

    __tablename__ = "excuses"
    __table_args__ = (UniqueConstraint("student_id", "event_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    student_id: Mapped[int] = mapped_column(ForeignKey("students.id", ondelete="RESTRICT"))
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="RESTRICT"), index=True)
    reason: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16), default=EXCUSE_PENDING, index=True)
    submitted_by: Mapped[str] = mapped_column(String(200))
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    decided_by: Mapped[str | None] = mapped_column(String(200))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decision_reason: Mapped[str | None] = mapped_column(Text)

    student: Mapped[Student] = relationship()
    event: Mapped[Event] = relationship()


class Enrolment(db.Model):
    """A student is expected at an event. Sync keeps them (an upstream session that lists
    the user adds one; a refresh in which upstream no longer lists it removes it); the core
    reads them to know who is absent."""

    __tablename__ = "enrolments"
    __table_args__ = (UniqueConstraint("student_id", "event_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    student_id: Mapped[int] = mapped_column(ForeignKey("students.id", ondelete="CASCADE"))
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), index=True)
    source: Mapped[str] = mapped_column(String(100), default="checkout")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CheckInOrigin(db.Model):
    """Where a check-in through a personal door (web, Discord) came from: the client that
    sent it. Check-in apps are not here: their request log keeps their address.

    `client` is what tells one sender from another: the address for the web door (an IPv6
    client is its /64), the Discord account that asked for the Discord bot's doors (every
    Discord check-in comes from the bot's one address). `findings` reads it, after commit.
    """

    __tablename__ = "check_in_origins"
    __table_args__ = (Index("ix_check_in_origins_client_recorded_at", "client", "recorded_at"),)

    attendance_id: Mapped[int] = mapped_column(
        ForeignKey("attendances.id", ondelete="RESTRICT"), primary_key=True
    )
    door: Mapped[str] = mapped_column(String(20))
    client: Mapped[str] = mapped_column(String(100))
    user_agent: Mapped[str] = mapped_column(String(200), default="")
    account_id: Mapped[int | None]
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
