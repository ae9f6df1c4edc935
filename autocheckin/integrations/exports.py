"""Attendance exported: Moodle CSV rows and HR summaries, read from the database in
batches through a server-side cursor, so an export of millions of rows runs in flat memory.

A "session" in the integration guide is an event here, and a check-in's "method" is its
source. Everything reads the corrected truth: a voided check-in is no mark; absent is an
explicit absent mark, or enrolled in an event that has ended with no (live) mark; excused
is an excused mark (an approved excuse or a correction), never absent.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, case, func, literal, select, union

from autocheckin.attendance import service
from autocheckin.attendance.models import (
    STATUS_ABSENT,
    STATUS_EXCUSED,
    STATUS_LATE,
    STATUS_PRESENT,
    Attendance,
    Enrolment,
    Event,
    Student,
)
from autocheckin.database import MAX_DB_INTEGER
from autocheckin.extensions import db
from autocheckin.times import iso

BATCH_ROWS = 2_000
MOODLE_HEADER = ("Student ID", "Student Email", "Session ID", "Status", "Timestamp", "Method")
# A cell a spreadsheet would run as a formula (OWASP's CSV injection list).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# Inside a cell, a separator some locale splits on (`,` `;` tab `|`) then a formula start:
# opened where `;` separates, `x;=WEBSERVICE(…)` is two cells, the second a formula.
_FORMULA_AFTER_SEPARATOR = re.compile(r"([,;\t|]\s*)(?=[=+\-@])")


@dataclass(frozen=True)
class Period:
    """Events whose start lies in [start, end]; an open bound is no bound."""

    start: datetime | None = None
    end: datetime | None = None

    def where(self, query: Select) -> Select:
        if self.start is not None:
            query = query.where(Event.start_time >= self.start)
        if self.end is not None:
            query = query.where(Event.start_time <= self.end)
        return query


def safe_cell(value: Any) -> Any:
    """A text cell that starts like a formula is prefixed with ' (shown, never run), and so
    is every part of it that would start a cell in a locale with another separator."""
    if not isinstance(value, str):
        return value
    value = _FORMULA_AFTER_SEPARATOR.sub(r"\1'", value)
    if value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def _streamed(query: Select) -> Iterator[Any]:
    """Rows in batches through a server-side cursor (PostgreSQL) or SQLite's own stepping."""
    result = db.session.execute(query.execution_options(yield_per=BATCH_ROWS))
    for partition in result.partitions():
        yield from partition


def csv_lines(header: tuple[str, ...], rows: Iterator[tuple]) -> Iterator[bytes]:
    """The CSV as UTF-8 chunks of about BATCH_ROWS rows each, cells made formula-safe."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    pending = 0
    for row in rows:
        writer.writerow([safe_cell(cell) for cell in row])
        pending += 1
        if pending >= BATCH_ROWS:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
            pending = 0
    yield buffer.getvalue().encode()


# --- Moodle ---------------------------------------------------------------------------------


def _live_mark_of(pair_student: Any, pair_event: Any) -> Any:
    """The join to a pair's mark, voided ones left out (they are no mark)."""
    return and_(
        Attendance.student_id == pair_student,
        Attendance.event_id == pair_event,
        Attendance.voided_at.is_(None),
    )


def moodle_rows(*, period: Period, event_id: int | None, now: datetime) -> Iterator[tuple]:
    """One row per live mark (present, late, excused or absent; its check-in time, else
    the event's end or start, and its method), then one `absent` row per enrolled student
    with no live mark at an event that has ended (at its end). Voided check-ins are left
    out: an enrolled student whose only check-in was voided is absent. A cancelled
    occurrence of a series has no absent rows."""
    attended = period.where(
        select(
            Attendance.student_id,
            Student.email,
            Attendance.event_id,
            Attendance.status,
            func.coalesce(Attendance.checked_in_at, Event.end_time, Event.start_time),
            Attendance.source,
        )
        .join(Student, Student.id == Attendance.student_id)
        .join(Event, Event.id == Attendance.event_id)
        .where(Attendance.voided_at.is_(None))
    )
    missed = period.where(
        select(Enrolment.student_id, Student.email, Enrolment.event_id, Event.end_time)
        .join(Student, Student.id == Enrolment.student_id)
        .join(Event, Event.id == Enrolment.event_id)
        .outerjoin(Attendance, _live_mark_of(Enrolment.student_id, Enrolment.event_id))
        .where(Attendance.id.is_(None), Event.end_time < now, Event.is_cancelled.is_(False))
    )
    if event_id is not None:
        attended = attended.where(Attendance.event_id == event_id)
        missed = missed.where(Enrolment.event_id == event_id)
    for student_id, email, event, status, moment, method in _streamed(
        attended.order_by(Attendance.event_id, Attendance.student_id)
    ):
        yield student_id, email or "", event, status, iso(moment), method or ""
    for student_id, email, event, ended_at in _streamed(
        missed.order_by(Enrolment.event_id, Enrolment.student_id)
    ):
        yield student_id, email or "", event, STATUS_ABSENT, iso(ended_at), ""


# --- HR summaries ---------------------------------------------------------------------------

HR_HEADER = (
    "student_id",
    "student_email",
    "period_start",
    "period_end",
    "total_sessions",
    "present",
    "absent",
    "late",
    "excused",
    "attendance_rate",
)


@dataclass(frozen=True)
class Summary:
    student_id: int
    student_email: str | None
    period_start: datetime
    period_end: datetime
    total_sessions: int
    present: int
    absent: int
    late: int
    excused: int

    @property
    def attendance_rate(self) -> float:
        """(present + late) / (total_sessions − excused) × 100, one decimal: an excused
        session is neither attended nor missed; 0.0 when nothing is left to count."""
        expected = self.total_sessions - self.excused
        if expected <= 0:
            return 0.0
        return round((self.present + self.late) / expected * 100, 1)

    def row(self) -> tuple:
        return (
            self.student_id,
            self.student_email or "",
            iso(self.period_start),
            iso(self.period_end),
            self.total_sessions,
            self.present,
            self.absent,
            self.late,
            self.excused,
            self.attendance_rate,
        )


def find_student(ref: str) -> Student | None:
    """By id, else by identifier or email (as the webhooks find people); a number beyond
    the INTEGER columns' range is no id (PostgreSQL would refuse the query)."""
    text = ref.strip()
    if text.isascii() and text.isdigit() and int(text) <= MAX_DB_INTEGER:
        student = db.session.get(Student, int(text))
        if student is not None:
            return student
    return service.find_student(text)


def _counted(status: str) -> Any:
    return func.coalesce(func.sum(case((Attendance.status == status, 1), else_=0)), 0)


def _summaries(period: Period, now: datetime, student_id: int | None) -> Select:
    """Per student: the period's events they were enrolled in or have a live mark at, by
    outcome (absent: an absent mark, or enrolled, ended and no live mark)."""
    # A cancelled occurrence of a series is nobody's session: never absent, never counted.
    enrolled = period.where(
        select(Enrolment.student_id, Enrolment.event_id)
        .join(Event, Event.id == Enrolment.event_id)
        .where(Event.is_cancelled.is_(False))
    )
    attended = period.where(
        select(Attendance.student_id, Attendance.event_id)
        .join(Event, Event.id == Attendance.event_id)
        .where(Attendance.voided_at.is_(None))
    )
    if student_id is not None:
        enrolled = enrolled.where(Enrolment.student_id == student_id)
        attended = attended.where(Attendance.student_id == student_id)
    pairs = union(enrolled, attended).subquery()
    was_enrolled = (
        select(literal(1))
        .where(Enrolment.student_id == pairs.c.student_id, Enrolment.event_id == pairs.c.event_id)
        .exists()
    )
    missed = and_(Attendance.id.is_(None), Event.end_time < now, was_enrolled)
    return (
        select(
            Student.id,
            Student.email,
            func.count(),
            _counted(STATUS_PRESENT),
            func.coalesce(
                func.sum(case((missed, 1), (Attendance.status == STATUS_ABSENT, 1), else_=0)),
                0,
            ),
            _counted(STATUS_LATE),
            _counted(STATUS_EXCUSED),
        )
        .select_from(pairs)
        .join(Student, Student.id == pairs.c.student_id)
        .join(Event, Event.id == pairs.c.event_id)
        .outerjoin(Attendance, _live_mark_of(pairs.c.student_id, pairs.c.event_id))
        .group_by(Student.id, Student.email)
        .order_by(Student.id)
    )


def summary_of(student: Student, *, start: datetime, end: datetime, now: datetime) -> Summary:
    row = db.session.execute(_summaries(Period(start, end), now, student.id)).first()
    if row is None:
        return Summary(student.id, student.email, start, end, 0, 0, 0, 0, 0)
    return Summary(row[0], row[1], start, end, *(int(value) for value in row[2:]))


def summary_rows(*, start: datetime, end: datetime, now: datetime) -> Iterator[tuple]:
    """Every student with an event in the period, one summary row each, streamed."""
    for row in _streamed(_summaries(Period(start, end), now, None)):
        yield Summary(row[0], row[1], start, end, *(int(value) for value in row[2:])).row()
