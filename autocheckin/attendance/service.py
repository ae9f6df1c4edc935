"""Core operations on people (students) and events; check-ins are in `checkins`.

Every way in (webhook formats, events API, Discord, upstream sync) calls these
plain functions; they own the transaction and raise domain errors, never HTTP ones.
Uniqueness is guaranteed by constraints: a look-up first gives the clear message, and a
constraint violation from a concurrent twin is mapped to the same domain error.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError

from autocheckin.attendance import origins, signals
from autocheckin.attendance.checkins import event_not_found, student_not_found
from autocheckin.attendance.errors import AlreadyExists, Conflict, Invalid, NotFound
from autocheckin.attendance.models import (
    ATTENDED_STATUSES,
    Attendance,
    Event,
    Student,
    normalize_key,
)
from autocheckin.attendance.windows import CheckInRules, pick_event
from autocheckin.database import MAX_DB_INTEGER, write_transaction
from autocheckin.extensions import db
from autocheckin.times import utcnow

STUDENT_FIELDS = ("identifier", "email", "first_name", "last_name", "is_admin")
EVENT_FIELDS = (
    "name",
    "discord_channel_id",
    "is_active",
    "start_time",
    "end_time",
    "event_type",
    "points",
    "description",
    "location",
)


_COUNTS = select(
    select(func.count()).select_from(Student).scalar_subquery().label("students"),
    select(func.count()).select_from(Event).scalar_subquery().label("events"),
    select(func.count())
    .select_from(Attendance)
    .where(Attendance.voided_at.is_(None), Attendance.status.in_(ATTENDED_STATUSES))
    .scalar_subquery()
    .label("attendances"),
)


def counts() -> dict[str, int]:
    """How many students and events are stored, and how many attendances count (present
    or late, not voided: the corrected truth), in one statement."""
    return dict(db.session.execute(_COUNTS).one()._mapping)


# --- students -----------------------------------------------------------------------------


def find_student(ref: str) -> Student | None:
    """By identifier or email, case-insensitively after trimming; an identifier match wins."""
    key = normalize_key(ref)
    if key is None:
        return None
    matches = db.session.scalars(
        select(Student).where(or_(Student.identifier_key == key, Student.email_key == key))
    ).all()
    for student in matches:
        if student.identifier_key == key:
            return student
    return matches[0] if matches else None


def resolve_student(ref: str) -> Student:
    student = find_student(ref)
    if student is None:
        raise student_not_found(ref)
    return student


def _ensure_unique_student(
    *, identifier: str | None, email: str | None, exclude_id: int | None = None
) -> None:
    """Raise AlreadyExists naming the email or identifier another student holds."""
    checks = (("email", "email_key", email), ("identifier", "identifier_key", identifier))
    for label, column, value in checks:
        key = normalize_key(value)
        if key is None:
            continue
        query = select(Student.id).where(getattr(Student, column) == key)
        if exclude_id is not None:
            query = query.where(Student.id != exclude_id)
        if db.session.scalar(query) is not None:
            raise AlreadyExists(
                f"Student with {label} {value} already exists", code="student_exists"
            )


def create_student(
    *,
    identifier: str | None,
    email: str | None,
    first_name: str = "",
    last_name: str = "",
    is_admin: bool = False,
    source: str | None = None,
) -> Student:
    """Create a student; a taken email or identifier raises AlreadyExists."""
    if not normalize_key(identifier) and not normalize_key(email):
        raise Invalid("A student needs an identifier or an email", code="missing_fields")
    with write_transaction() as session:
        _ensure_unique_student(identifier=identifier, email=email)
        student = Student(
            identifier=identifier,
            email=email,
            first_name=first_name,
            last_name=last_name,
            is_admin=is_admin,
            source=source,
        )
        try:
            # A savepoint, so the caller's transaction survives a lost race (PostgreSQL).
            with session.begin_nested():
                session.add(student)
        except IntegrityError:
            # A concurrent twin took the email or identifier between our check and insert.
            _ensure_unique_student(identifier=identifier, email=email)
            raise AlreadyExists("Student already exists", code="student_exists") from None
    return student


def update_student(*, ref: str, changes: dict[str, Any]) -> Student:
    """Change only the given roster fields of the student `ref` names (identifier or email).

    A person's email is roster data: changing it moves no login (accounts are apart).
    """
    unknown = set(changes) - set(STUDENT_FIELDS)
    if unknown:
        raise Invalid(f"Unknown student fields: {', '.join(sorted(unknown))}")
    try:
        with write_transaction():
            student = resolve_student(ref)
            _ensure_unique_student(
                identifier=changes.get("identifier"),
                email=changes.get("email"),
                exclude_id=student.id,
            )
            for field, value in changes.items():
                setattr(student, field, value)
            if not student.identifier_key and not student.email_key:
                raise Invalid("A student needs an identifier or an email", code="missing_fields")
    except IntegrityError:
        raise AlreadyExists(
            "Another student already has that email or identifier", code="student_exists"
        ) from None
    return student


def resolve_person(ref: str | int) -> Student:
    """By id (digits), else by identifier or email: the operator's way to name anyone,
    people only an account can address (no identifier, no email) included."""
    text = str(ref).strip()
    if text.isascii() and text.isdigit() and int(text) <= MAX_DB_INTEGER:
        person = db.session.get(Student, int(text))
        if person is not None:
            return person
    person = find_student(text)
    if person is None:
        raise NotFound(f"Person {text} not found", code="person_not_found")
    return person


def remove_person(ref: str | int) -> Student:
    """Remove a person without losing anything recorded about them: what identifies them
    (identifier, email, name) is cleared and the row is deactivated; their attendances,
    history and excuses stay, under their id, without the clients they checked in from. No
    scanner or sync can address them again."""
    with write_transaction() as session:
        person = resolve_person(ref)
        origins.forget_person(session, person.id)
        person.identifier = None
        person.email = None
        person.first_name, person.last_name = "Removed", f"person {person.id}"
        person.deactivated_at = person.deactivated_at or utcnow()
    return person


# --- events -------------------------------------------------------------------------------


def _check_times(start_time: datetime, end_time: datetime | None) -> None:
    if end_time is not None and end_time <= start_time:
        raise Invalid("end_time must be after start_time", code="invalid_time_range")


def create_event(
    *,
    name: str,
    start_time: datetime,
    end_time: datetime | None = None,
    event_type: str = "General",
    points: int = 0,
    description: str = "",
    location: str = "",
    external_id: str | None = None,
    source: str | None = None,
    discord_channel_id: str | None = None,
    created_by_id: int | None = None,
) -> Event:
    _check_times(start_time, end_time)
    with write_transaction() as session:
        event = Event(
            name=name,
            start_time=start_time,
            end_time=end_time,
            event_type=event_type,
            points=points,
            description=description,
            location=location,
            external_id=external_id,
            source=source,
            discord_channel_id=discord_channel_id,
            created_by_id=created_by_id,
        )
        session.add(event)
        signals.event_created.send(session, event=event)
    return event


def update_event(*, ref: str, at: datetime, changes: dict[str, Any], rules: CheckInRules) -> Event:
    """Change only the given fields of the event `ref` names (id or name, picked by the
    configured window rules when several share the name)."""
    unknown = set(changes) - set(EVENT_FIELDS)
    if unknown:
        raise Invalid(f"Unknown event fields: {', '.join(sorted(unknown))}")
    with write_transaction() as session:
        event = resolve_event(ref, at=at, rules=rules)
        _check_times(
            changes.get("start_time", event.start_time), changes.get("end_time", event.end_time)
        )
        changed = [field for field, value in changes.items() if getattr(event, field) != value]
        _refuse_moving_a_checked_in_occurrence(event, changed)
        for field, value in changes.items():
            setattr(event, field, value)
        signals.event_updated.send(session, event=event, changed=changed)
    return event


def _refuse_moving_a_checked_in_occurrence(event: Event, changed: list[str]) -> None:
    """An occurrence of a series with check-ins is never moved silently (`series.py`): 409
    naming it; the series' edit routes can leave it as it is (keep=true)."""
    if event.series_id is None or not {"start_time", "end_time"} & set(changed):
        return
    has_check_ins = db.session.scalar(
        select(Attendance.id).where(Attendance.event_id == event.id).limit(1)
    )
    if has_check_ins is not None:
        raise Conflict(
            f"Occurrence #{event.id} of series {event.series_id} has check-ins; it is not "
            "moved (edit it through /events/series/…/occurrences/… with keep=true to leave "
            "the checked-in ones as they are)",
            code="occurrences_have_checkins",
        )


def resolve_event(ref: str | int, *, at: datetime, rules: CheckInRules) -> Event:
    """An existing numeric id wins; then the exact name.

    Several events sharing the name: the one whose window contains `at`, else the one
    whose start is nearest to `at`; events no account made come first, and a tie is refused
    (`windows.pick_event`).
    """
    text = str(ref).strip()
    if text.isascii() and text.isdigit() and int(text) <= MAX_DB_INTEGER:
        event = db.session.get(Event, int(text))
        if event is not None:
            return event
    candidates = db.session.scalars(select(Event).where(Event.name == text)).all()
    if not candidates:
        raise event_not_found(text)
    return pick_event(candidates, at, rules)
