"""The webhook formats: each parses a JSON payload into one command, or raises Invalid.

Pure functions, no app and no database: `PARSERS[endpoint](payload)`. Error strings
are the guides' own, verbatim; types and lengths are checked by strict pydantic models.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from autocheckin.attendance.errors import DomainError, Invalid, TooLarge
from autocheckin.times import parse_iso
from autocheckin.validation import invalid_from
from autocheckin.webhooks.commands import (
    Command,
    CreateEvent,
    CreateStudent,
    RecordAttendance,
    RecordAttendanceBatch,
    UpdateEvent,
    UpdateStudent,
)

ONETAP_ACTIONS = ("create_student", "create_event", "record_attendance")
UNIFIED_TYPES = ("student", "event", "attendance")
MAX_BATCH_ITEMS = 1000
DATE_HINT = "Use ISO format (e.g., 2024-01-15T10:00:00Z)"
ModelT = TypeVar("ModelT", bound=BaseModel)
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class _Strict(BaseModel):
    """Strict types (no "5" for 5, no 1 for true), trimmed strings, unknown keys ignored."""

    model_config = ConfigDict(strict=True, extra="ignore", str_strip_whitespace=True)


class Envelope(_Strict):
    source: str | None = Field(None, max_length=100)
    metadata: dict[str, Any] | None = None


class StudentData(_Strict):
    student_identifier: str | None = Field(None, max_length=64)
    email: str | None = Field(None, max_length=254)
    first_name: str | None = Field(None, max_length=100)
    last_name: str | None = Field(None, max_length=100)
    is_admin: bool | None = None


class EventData(_Strict):
    event_identifier: str | int | None = Field(None)
    event_name: str | None = Field(None, max_length=200)
    event_date: str | None = Field(None, max_length=64)
    end_time: str | None = Field(None, max_length=64)
    event_type: str | None = Field(None, max_length=100)
    points: int | None = Field(None, ge=-1_000_000, le=1_000_000)
    description: str | None = Field(None, max_length=10_000)
    location: str | None = Field(None, max_length=200)


class AttendanceData(_Strict):
    student_identifier: str | None = Field(None, max_length=254)
    event_identifier: str | int | None = Field(None)
    check_in_time: str | None = Field(None, max_length=64)


def _is_blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _require(data: dict[str, Any], fields: tuple[str, ...], message: str) -> None:
    if any(_is_blank(data.get(name)) for name in fields):
        raise Invalid(message, code="missing_fields")


def _validate(model: type[ModelT], data: dict[str, Any]) -> ModelT:
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise invalid_from(error, Invalid) from None


def _when(value: str, name: str) -> datetime:
    try:
        return parse_iso(value)
    except (ValueError, OverflowError):
        raise Invalid(
            f"Invalid {name} format. {DATE_HINT}", code="invalid_date", details=value
        ) from None


def _email(value: str | None) -> str | None:
    if value is not None and not _EMAIL.match(value):
        raise Invalid("Invalid value for email: not an email address", code="invalid_field")
    return value


def _object(payload: Any, name: str) -> dict[str, Any]:
    if payload is None:
        return {}
    if not isinstance(payload, dict):
        raise Invalid(f"{name} must be a JSON object", code=f"invalid_{name}")
    return payload


def _envelope(payload: dict[str, Any], default_source: str) -> tuple[str, dict[str, Any]]:
    envelope = _validate(Envelope, payload)
    return envelope.source or default_source, envelope.metadata or {}


# --- the commands, shared by every format --------------------------------------------------


def _create_student(data: dict[str, Any], source: str, _metadata: dict) -> CreateStudent:
    _require(
        data,
        ("student_identifier", "email", "first_name", "last_name"),
        "student_identifier, email, first_name, and last_name are required",
    )
    fields = _validate(StudentData, data)
    return CreateStudent(
        identifier=fields.student_identifier or "",
        email=_email(fields.email) or "",
        first_name=fields.first_name or "",
        last_name=fields.last_name or "",
        is_admin=bool(fields.is_admin),
        source=source,
    )


def _update_student(data: dict[str, Any], source: str, _metadata: dict) -> UpdateStudent:
    fields = _validate(StudentData, data)
    sent = fields.model_fields_set
    if _is_blank(fields.student_identifier) and _is_blank(fields.email):
        raise Invalid(
            "student_identifier or email is required to update a student", code="missing_fields"
        )
    for name in sent & {"first_name", "last_name", "email", "student_identifier"}:
        if _is_blank(getattr(fields, name)):
            raise Invalid(f"{name} cannot be empty", code="invalid_field")
    by_identifier = not _is_blank(fields.student_identifier)
    ref = fields.student_identifier if by_identifier else fields.email
    changes: dict[str, Any] = {
        name: getattr(fields, name)
        for name in ("first_name", "last_name", "is_admin")
        if name in sent and getattr(fields, name) is not None
    }
    if "email" in sent and by_identifier:
        changes["email"] = _email(fields.email)
    return UpdateStudent(ref=ref or "", changes=changes, source=source)


def _event_changes(fields: EventData, sent: set[str]) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    if "event_date" in sent and fields.event_date is not None:
        changes["start_time"] = _when(fields.event_date, "event_date")
    if "end_time" in sent:
        changes["end_time"] = (
            None if fields.end_time is None else _when(fields.end_time, "end_time")
        )
    for name in ("event_type", "points", "description", "location"):
        if name in sent and getattr(fields, name) is not None:
            changes[name] = getattr(fields, name)
    return changes


def _create_event(data: dict[str, Any], source: str, _metadata: dict) -> CreateEvent:
    _require(data, ("event_name", "event_date"), "event_name and event_date are required")
    fields = _validate(EventData, data)
    changes = _event_changes(fields, fields.model_fields_set)
    return CreateEvent(
        name=fields.event_name or "",
        start_time=changes["start_time"],
        end_time=changes.get("end_time"),
        event_type=fields.event_type or "General",
        points=fields.points or 0,
        description=fields.description or "",
        location=fields.location or "",
        source=source,
    )


def _update_event(data: dict[str, Any], source: str, _metadata: dict) -> UpdateEvent:
    fields = _validate(EventData, data)
    sent = fields.model_fields_set
    if _is_blank(fields.event_identifier) and _is_blank(fields.event_name):
        raise Invalid(
            "event_identifier or event_name is required to update an event",
            code="missing_fields",
        )
    by_identifier = not _is_blank(fields.event_identifier)
    changes = _event_changes(fields, sent)
    if by_identifier and "event_name" in sent:
        if _is_blank(fields.event_name):
            raise Invalid("event_name cannot be empty", code="invalid_field")
        changes["name"] = fields.event_name
    ref = str(fields.event_identifier) if by_identifier else fields.event_name
    return UpdateEvent(ref=ref or "", changes=changes, source=source)


def _record_attendance(
    data: dict[str, Any], source: str, metadata: dict[str, Any]
) -> RecordAttendance:
    _require(
        data,
        ("student_identifier", "event_identifier"),
        "student_identifier and event_identifier are required",
    )
    fields = _validate(AttendanceData, data)
    check_in_time = fields.check_in_time
    return RecordAttendance(
        student_ref=fields.student_identifier or "",
        event_ref=str(fields.event_identifier),
        check_in_time=None if _is_blank(check_in_time) else _when(check_in_time, "check_in_time"),
        source=source,
        metadata=metadata,
    )


# --- the formats ----------------------------------------------------------------------------

Builder = Callable[[dict[str, Any], str, dict[str, Any]], Command]

_ONETAP: dict[str, Builder] = {
    "create_student": _create_student,
    "create_event": _create_event,
    "record_attendance": _record_attendance,
}
_UNIFIED: dict[str, dict[str, Builder]] = {
    "student": {"create": _create_student, "update": _update_student},
    "event": {"create": _create_event, "update": _update_event},
    "attendance": {"create": _record_attendance},
}


def parse_onetap(payload: dict[str, Any], default_source: str) -> Command:
    """`{"action": create_student | create_event | record_attendance, "data": {...}}`."""
    action = payload.get("action")
    if _is_blank(action):
        raise Invalid("action field is required", code="missing_action")
    if not isinstance(action, str) or action not in _ONETAP:
        raise Invalid(
            f"Unknown action: {action}. Valid actions are: {', '.join(ONETAP_ACTIONS)}",
            code="unknown_action",
        )
    source, metadata = _envelope(payload, default_source)
    return _ONETAP[action](_object(payload.get("data"), "data"), source, metadata)


def parse_unified(payload: dict[str, Any], default_source: str) -> Command:
    """`{"type": student | event | attendance, "action": create | update, "data": {...}}`."""
    kind = payload.get("type")
    if _is_blank(kind):
        raise Invalid(
            f"type field is required. Valid types: {', '.join(UNIFIED_TYPES)}",
            code="missing_type",
        )
    if not isinstance(kind, str) or kind not in _UNIFIED:
        raise Invalid(
            f"Unknown type: {kind}. Valid types are: {', '.join(UNIFIED_TYPES)}",
            code="unknown_type",
        )
    action = payload.get("action")
    action = "create" if _is_blank(action) else action
    actions = _UNIFIED[kind]
    if not isinstance(action, str) or action not in actions:
        raise Invalid(
            f"Unknown action: {action}. Valid actions for {kind} are: {', '.join(actions)}",
            code="unknown_action",
        )
    source, metadata = _envelope(payload, default_source)
    return actions[action](_object(payload.get("data"), "data"), source, metadata)


def parse_legacy(payload: dict[str, Any], default_source: str) -> Command:
    """The flat attendance payload: student_identifier, event_identifier, check_in_time…"""
    source, metadata = _envelope(payload, default_source)
    return _record_attendance(payload, source, metadata)


def parse_batch(payload: dict[str, Any], default_source: str) -> RecordAttendanceBatch:
    """`{"items": [flat attendance payload, …]}`; a bad item is kept as its error, in place."""
    items = payload.get("items")
    if not isinstance(items, list) or not items:
        raise Invalid("items must be a non-empty list of check-ins", code="invalid_items")
    if len(items) > MAX_BATCH_ITEMS:
        raise TooLarge(
            f"Batch has {len(items)} items; at most {MAX_BATCH_ITEMS} are accepted per request",
            code="batch_too_large",
        )
    source, _metadata = _envelope(payload, default_source)
    parsed: list[RecordAttendance | DomainError] = []
    for item in items:
        try:
            if not isinstance(item, dict):
                raise Invalid("Each item must be a JSON object", code="invalid_item")
            parsed.append(parse_legacy(item, source))
        except DomainError as error:
            parsed.append(error)
    return RecordAttendanceBatch(items=tuple(parsed), source=source)
