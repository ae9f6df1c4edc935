"""Webhook commands: what a payload asks for, how the core runs it, and the success bodies.

Every format (OneTap, unified, legacy, secure) parses into one of these commands, so
the success bodies are the same whichever format asked.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from autocheckin.attendance import service
from autocheckin.attendance.models import Attendance, Event, Student
from autocheckin.attendance.windows import CheckInRules
from autocheckin.times import iso


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


Command = CreateStudent | UpdateStudent | CreateEvent | UpdateEvent | RecordAttendance


@dataclass(frozen=True)
class Rendered:
    status: int
    body: dict[str, Any]


def error_rendered(status: int, message: str, code: str, details: str | None = None) -> Rendered:
    """The webhook error shape: {"error", "details"?, "code"}."""
    body: dict[str, Any] = {"error": message, "code": code}
    if details:
        body["details"] = details
    return Rendered(status, body)


def student_body(student: Student) -> dict[str, Any]:
    return {
        "id": student.id,
        "identifier": student.identifier,
        "name": student.name,
        "email": student.email,
        "is_admin": student.is_admin,
    }


def event_body(event: Event) -> dict[str, Any]:
    return {
        "id": event.id,
        "name": event.name,
        "date": iso(event.start_time),
        "end_time": iso(event.end_time),
        "event_type": event.event_type,
        "points": event.points,
        "description": event.description,
        "location": event.location,
    }


def attendance_body(attendance: Attendance, source: str) -> dict[str, Any]:
    student, event = attendance.student, attendance.event
    return {
        "success": True,
        "message": "Attendance recorded successfully",
        "attendance_id": attendance.id,
        "student": {"id": student.id, "name": student.name, "email": student.email},
        "event": {"id": event.id, "name": event.name, "date": iso(event.start_time)},
        "checked_in_at": iso(attendance.checked_in_at),
        "status": attendance.status,
        "source": source,
    }


def execute(command: Command, *, arrived_at: datetime, rules: CheckInRules) -> Rendered:
    """Run the command through the core and render the documented success body."""
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
            return Rendered(201, _wrapped(message, "student", student_body(student), command))
        case UpdateStudent():
            student = service.update_student(ref=command.ref, changes=command.changes)
            message = "Student updated successfully"
            return Rendered(200, _wrapped(message, "student", student_body(student), command))
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
            return Rendered(201, _wrapped(message, "event", event_body(event), command))
        case UpdateEvent():
            event = service.update_event(ref=command.ref, at=arrived_at, changes=command.changes)
            message = "Event updated successfully"
            return Rendered(200, _wrapped(message, "event", event_body(event), command))
        case RecordAttendance():
            attendance = service.record_attendance(
                student_ref=command.student_ref,
                event_ref=command.event_ref,
                checked_in_at=command.check_in_time,
                arrived_at=arrived_at,
                rules=rules,
                source=command.source,
                metadata=command.metadata,
            )
            return Rendered(201, attendance_body(attendance, command.source))
    raise TypeError(f"not a webhook command: {command!r}")


def _wrapped(message: str, key: str, value: dict[str, Any], command: Command) -> dict[str, Any]:
    return {"success": True, "message": message, key: value, "source": command.source}
