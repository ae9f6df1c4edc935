"""Webhook commands: what a payload asks for, how the core runs it, and the success bodies.

Every format (OneTap, unified, legacy, secure) parses into one of these commands, so
the success bodies are the same whichever format asked.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from autocheckin.attendance import service
from autocheckin.attendance.checkins import CheckIn, Recorded, record_check_in, record_check_ins
from autocheckin.attendance.errors import AlreadyCheckedIn, DomainError, NotFound
from autocheckin.attendance.models import Event, Student
from autocheckin.attendance.windows import CheckInRules
from autocheckin.errors import status_of
from autocheckin.webhooks.answers import (
    AttendanceAnswer,
    AttendanceBatchAnswer,
    AttendanceEvent,
    AttendanceStudent,
    BatchItemResult,
    BatchTotals,
    EventAnswer,
    StudentAnswer,
    WebhookEvent,
    WebhookStudent,
)


@dataclass(frozen=True)
class CreateStudent:
    identifier: str
    email: str
    first_name: str
    last_name: str
    is_admin: bool
    source: str


@dataclass(frozen=True)
class UpdateStudent:
    ref: str
    changes: dict[str, Any]
    source: str


@dataclass(frozen=True)
class CreateEvent:
    name: str
    start_time: datetime
    end_time: datetime | None
    event_type: str
    points: int
    description: str
    location: str
    source: str


@dataclass(frozen=True)
class UpdateEvent:
    ref: str
    changes: dict[str, Any]
    source: str


@dataclass(frozen=True)
class RecordAttendance:
    student_ref: str
    event_ref: str
    check_in_time: datetime | None
    source: str
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RecordAttendanceBatch:
    """An offline scanner's backlog: each item a check-in, or the error its parsing earned."""

    items: tuple[RecordAttendance | DomainError, ...]
    source: str


Command = (
    CreateStudent
    | UpdateStudent
    | CreateEvent
    | UpdateEvent
    | RecordAttendance
    | RecordAttendanceBatch
)
BATCH_RESULTS = ("recorded", "duplicate", "not_found", "rejected")


@dataclass(frozen=True)
class Rendered:
    """An answer: status and body; `has_unmatched` marks check-ins kept for a later replay."""

    status: int
    body: dict[str, Any]
    has_unmatched: bool = False


def error_rendered(status: int, message: str, code: str, details: str | None = None) -> Rendered:
    """The webhook error shape: {"error", "details"?, "code"}."""
    body: dict[str, Any] = {"error": message, "code": code}
    if details:
        body["details"] = details
    return Rendered(status, body)


def _attendance_answer(recorded: Recorded, source: str | None) -> dict[str, Any]:
    return AttendanceAnswer(
        attendance_id=recorded.attendance_id,
        student=AttendanceStudent(
            id=recorded.student_id, name=recorded.student_name, email=recorded.student_email
        ),
        event=AttendanceEvent(
            id=recorded.event_id,
            name=recorded.event_name,
            date=recorded.event_start.astimezone(UTC).date(),
            start_time=recorded.event_start,
        ),
        checked_in_at=recorded.checked_in_at,
        status=recorded.status,
        source=source,
    ).model_dump(mode="json")


def _batch_item(index: int, result: Recorded | DomainError) -> BatchItemResult:
    if isinstance(result, Recorded):
        return BatchItemResult(
            index=index,
            status=201,
            result="recorded",
            attendance_id=result.attendance_id,
            student_id=result.student_id,
            event_id=result.event_id,
            checked_in_at=result.checked_in_at,
            attendance_status=result.status,
        )
    if isinstance(result, AlreadyCheckedIn):
        outcome = "duplicate"
    elif isinstance(result, NotFound):
        outcome = "not_found"
    else:
        outcome = "rejected"
    return BatchItemResult(
        index=index,
        status=status_of(result),
        result=outcome,
        error=result.message,
        code=result.code,
        details=result.details or None,
    )


def batch_rendered(results: list[Recorded | DomainError]) -> Rendered:
    """200 with every item's result in order, and totals by result."""
    items = [_batch_item(index, result) for index, result in enumerate(results)]
    totals = dict.fromkeys(BATCH_RESULTS, 0)
    for item in items:
        totals[item.result] += 1
    answer = AttendanceBatchAnswer(
        message=f"Batch processed: {totals['recorded']} of {len(items)} check-ins recorded",
        totals=BatchTotals(items=len(items), **totals),
        results=items,
    )
    # An item answers only the fields its result has (a recorded one has no error).
    body = answer.model_dump(mode="json", exclude_none=True)
    return Rendered(200, body, has_unmatched=totals["not_found"] > 0)


def _check_in(command: RecordAttendance) -> CheckIn:
    return CheckIn(
        student_ref=command.student_ref,
        event_ref=command.event_ref,
        checked_in_at=command.check_in_time,
        source=command.source,
        metadata=command.metadata,
    )


def execute(command: Command, *, arrived_at: datetime, rules: CheckInRules, actor: str) -> Rendered:
    """Run the command through the core, as `actor`, and render the documented success body."""
    match command:
        case CreateStudent():
            student = service.create_student(
                identifier=command.identifier,
                email=command.email,
                first_name=command.first_name,
                last_name=command.last_name,
                is_admin=command.is_admin,
                source=command.source,
            )
            message = "Student created successfully"
            return Rendered(201, _student_answer(message, student, command))
        case UpdateStudent():
            student = service.update_student(ref=command.ref, changes=command.changes)
            message = "Student updated successfully"
            return Rendered(200, _student_answer(message, student, command))
        case CreateEvent():
            event = service.create_event(
                name=command.name,
                start_time=command.start_time,
                end_time=command.end_time,
                event_type=command.event_type,
                points=command.points,
                description=command.description,
                location=command.location,
                source=command.source,
            )
            message = "Event created successfully"
            return Rendered(201, _event_answer(message, event, command))
        case UpdateEvent():
            event = service.update_event(
                ref=command.ref, at=arrived_at, changes=command.changes, rules=rules
            )
            message = "Event updated successfully"
            return Rendered(200, _event_answer(message, event, command))
        case RecordAttendance():
            recorded = record_check_in(
                _check_in(command), arrived_at=arrived_at, rules=rules, actor=actor
            )
            return Rendered(201, _attendance_answer(recorded, command.source))
        case RecordAttendanceBatch():
            results = record_check_ins(
                (
                    item if isinstance(item, DomainError) else _check_in(item)
                    for item in command.items
                ),
                arrived_at=arrived_at,
                rules=rules,
                actor=actor,
            )
            return batch_rendered(results)
    raise TypeError(f"not a webhook command: {command!r}")


def _student_answer(message: str, student: Student, command: Any) -> dict[str, Any]:
    student_view = WebhookStudent.model_validate(student)
    answer = StudentAnswer(message=message, student=student_view, source=command.source)
    return answer.model_dump(mode="json")


def _event_answer(message: str, event: Event, command: Any) -> dict[str, Any]:
    event_view = WebhookEvent.model_validate(event)
    return EventAnswer(message=message, event=event_view, source=command.source).model_dump(
        mode="json"
    )
