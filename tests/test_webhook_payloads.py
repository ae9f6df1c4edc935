"""The webhook formats, parsed with no app: recorded payloads and every documented error."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from autocheckin.attendance.errors import Invalid
from autocheckin.webhooks.commands import (
    CreateEvent,
    CreateStudent,
    RecordAttendance,
    UpdateEvent,
    UpdateStudent,
)
from autocheckin.webhooks.endpoints import parse

PAYLOADS = Path(__file__).parent / "payloads"


def recorded(name: str) -> dict:
    return json.loads((PAYLOADS / name).read_text())


def error_of(endpoint: str, payload) -> Invalid:
    with pytest.raises(Invalid) as caught:
        parse(endpoint, payload)
    return caught.value


def test_recorded_onetap_payloads():
    assert parse("onetap", recorded("onetap/create_student.json")) == CreateStudent(
        identifier="a12345678",
        email="student@example.com",
        first_name="John",
        last_name="Doe",
        is_admin=False,
        source="onetap_checkin",
    )
    event = parse("onetap", recorded("onetap/create_event.json"))
    assert event == CreateEvent(
        name="Weekly Meeting",
        start_time=datetime(2024, 1, 15, 10, tzinfo=UTC),
        end_time=None,
        event_type="Meeting",
        points=5,
        description="Weekly team meeting",
        location="",
        source="onetap_checkin",
    )
    attendance = parse("onetap", recorded("onetap/record_attendance.json"))
    assert attendance == RecordAttendance(
        student_ref="a12345678",
        event_ref="1",
        check_in_time=datetime(2024, 1, 15, 10, 30, tzinfo=UTC),
        source="onetap_checkin",
    )


def test_recorded_unified_and_legacy_payloads():
    assert isinstance(parse("unified", recorded("unified/student_create.json")), CreateStudent)
    event = parse("unified", recorded("unified/event_create.json"))
    assert isinstance(event, CreateEvent)
    assert event.location == "Room 101"
    assert isinstance(
        parse("unified", recorded("unified/attendance_create.json")), RecordAttendance
    )
    legacy = parse("attendance", recorded("attendance/legacy.json"))
    assert legacy.metadata == {"device": "scanner_001", "location": "main_entrance"}
    assert legacy.source == "external_app_name"


def test_default_sources():
    minimal = {"student_identifier": "a1", "event_identifier": "1"}
    assert parse("attendance", minimal).source == "webhook"
    assert parse("attendance_secure", minimal).source == "webhook"
    assert parse("onetap", {"action": "record_attendance", "data": minimal}).source == (
        "onetap_webhook"
    )
    assert parse("unified", {"type": "attendance", "data": minimal}).source == "unified_webhook"


def test_unified_missing_action_means_create():
    command = parse(
        "unified", {"type": "event", "data": {"event_name": "X", "event_date": "2024-01-15"}}
    )
    assert isinstance(command, CreateEvent)


@pytest.mark.parametrize(
    ("endpoint", "payload", "message"),
    [
        ("onetap", {"data": {}}, "action field is required"),
        (
            "onetap",
            {"action": "invalid_action"},
            "Unknown action: invalid_action. Valid actions are: "
            "create_student, create_event, record_attendance",
        ),
        (
            "onetap",
            {"action": "create_student", "data": {"email": "a@b.co", "first_name": "A"}},
            "student_identifier, email, first_name, and last_name are required",
        ),
        (
            "onetap",
            {"action": "create_event", "data": {"event_name": "X"}},
            "event_name and event_date are required",
        ),
        (
            "onetap",
            {"action": "create_event", "data": {"event_name": "X", "event_date": "next tuesday"}},
            "Invalid event_date format. Use ISO format (e.g., 2024-01-15T10:00:00Z)",
        ),
        (
            "onetap",
            {"action": "record_attendance", "data": {"student_identifier": "a1"}},
            "student_identifier and event_identifier are required",
        ),
        (
            "attendance",
            {"event_identifier": "1"},
            "student_identifier and event_identifier are required",
        ),
        (
            "unified",
            {"data": {}},
            "type field is required. Valid types: student, event, attendance",
        ),
        (
            "unified",
            {"type": "teacher"},
            "Unknown type: teacher. Valid types are: student, event, attendance",
        ),
        (
            "unified",
            {"type": "attendance", "action": "update", "data": {}},
            "Unknown action: update. Valid actions for attendance are: create",
        ),
    ],
)
def test_documented_error_strings_verbatim(endpoint, payload, message):
    assert error_of(endpoint, payload).message == message


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"first_name": ["J"]}, "first_name"),
        ({"first_name": 42}, "first_name"),
        ({"is_admin": "true"}, "is_admin"),
        ({"is_admin": 1}, "is_admin"),
        ({"last_name": "x" * 101}, "last_name"),
        ({"email": "not-an-email"}, "email"),
        ({"student_identifier": {"id": 1}}, "student_identifier"),
    ],
)
def test_wrong_types_and_lengths_name_the_field(data, field):
    student = {
        "student_identifier": "a1",
        "email": "a@example.com",
        "first_name": "A",
        "last_name": "B",
        **data,
    }
    error = error_of("onetap", {"action": "create_student", "data": student})
    assert error.code == "invalid_field"
    assert field in error.message


@pytest.mark.parametrize("points", [1.5, "5", True, 10**12])
def test_points_must_be_a_reasonable_integer(points):
    data = {"event_name": "X", "event_date": "2024-01-15T10:00:00Z", "points": points}
    error = error_of("onetap", {"action": "create_event", "data": data})
    assert "points" in error.message


@pytest.mark.parametrize("payload", [[], "text", 5, None])
def test_payload_must_be_an_object(payload):
    error = error_of("onetap", payload)
    assert error.message == "Invalid JSON payload"
    assert error.details == "expected a JSON object"


@pytest.mark.parametrize("data", [[1, 2], "x", 3])
def test_data_must_be_an_object(data):
    error = error_of("onetap", {"action": "create_student", "data": data})
    assert error.message == "data must be a JSON object"


def test_source_and_metadata_types_are_checked():
    base = {"student_identifier": "a1", "event_identifier": "1"}
    assert "source" in error_of("attendance", {**base, "source": 5}).message
    assert "metadata" in error_of("attendance", {**base, "metadata": [1]}).message


def test_empty_required_strings_are_missing():
    data = {"student_identifier": "  ", "email": "a@b.co", "first_name": "A", "last_name": "B"}
    error = error_of("onetap", {"action": "create_student", "data": data})
    assert error.message == "student_identifier, email, first_name, and last_name are required"


def test_unknown_fields_are_ignored_and_strings_trimmed():
    command = parse(
        "onetap",
        {
            "action": "create_student",
            "data": {
                "student_identifier": " a1 ",
                "email": "a@example.com",
                "first_name": "Zoë",
                "last_name": "Ødegård",
                "favourite_colour": "teal",
            },
            "unexpected": True,
        },
    )
    assert command.identifier == "a1"
    assert command.first_name == "Zoë"


@pytest.mark.parametrize(
    "text",
    [
        "2024-01-15T10:00:00Z",
        "2024-01-15T10:00:00.000Z",
        "2024-01-15T10:00:00.123456Z",
        "2024-01-15T12:00:00+02:00",
        "2024-01-15T10:00:00",
        "2024-01-15T10:00:00+00:00Z",
    ],
)
def test_event_dates_in_every_client_style(text):
    data = {"event_name": "X", "event_date": text}
    command = parse("onetap", {"action": "create_event", "data": data})
    assert command.start_time.replace(microsecond=0) == datetime(2024, 1, 15, 10, tzinfo=UTC)


def test_numeric_event_identifier_is_accepted():
    command = parse("attendance", {"student_identifier": "a1", "event_identifier": 7})
    assert command.event_ref == "7"


def test_unified_updates_carry_only_the_sent_keys():
    student = parse(
        "unified",
        {"type": "student", "action": "update", "data": {"email": "a@x.io", "last_name": "New"}},
    )
    assert student == UpdateStudent(
        ref="a@x.io", changes={"last_name": "New"}, source="unified_webhook"
    )
    event = parse(
        "unified",
        {"type": "event", "action": "update", "data": {"event_identifier": "3", "points": 9}},
    )
    assert event == UpdateEvent(ref="3", changes={"points": 9}, source="unified_webhook")


@pytest.mark.parametrize(
    "text", ["0001-01-01T00:00:00Z", "9999-12-31T23:59:59-23:59", "1899-12-31T23:59:59Z"]
)
def test_dates_outside_the_accepted_range_are_refused(text):
    data = {"event_name": "X", "event_date": text}
    error = error_of("onetap", {"action": "create_event", "data": data})
    assert error.message.startswith("Invalid event_date format")
