"""The guides' sample clients and curl examples, unchanged, against a live server."""

from __future__ import annotations

from datetime import UTC, datetime

import requests

from tests import guide_clients
from tests.guide_clients import HustleWebhookClient, OneTapIntegration, generate_signature
from tests.servers import serving

# The guides' curl bodies, verbatim (000: OneTap guide; 001: attendance guide).
ONETAP_CURL = [
    """{
    "action": "create_student",
    "data": {
        "student_identifier": "a12345678",
        "email": "john@example.com",
        "first_name": "John",
        "last_name": "Doe",
        "is_admin": false
    },
    "source": "onetap_checkin"
  }""",
    """{
    "action": "create_event",
    "data": {
        "event_name": "Weekly Meeting",
        "event_date": "2024-01-15T10:00:00Z",
        "event_type": "Meeting",
        "points": 5,
        "description": "Weekly team meeting"
    },
    "source": "onetap_checkin"
  }""",
    """{
    "action": "record_attendance",
    "data": {
        "student_identifier": "a12345678",
        "event_identifier": "1"
    },
    "source": "onetap_checkin"
  }""",
]
ONETAP_TEST_ALL = [
    '{"action": "create_student", "data": {"student_identifier": "test123", "email": "test@example.com", "first_name": "Test", "last_name": "User"}, "source": "test"}',  # noqa: E501
    '{"action": "create_event", "data": {"event_name": "Test Event", "event_date": "2024-01-15T10:00:00Z"}, "source": "test"}',  # noqa: E501
    '{"action": "record_attendance", "data": {"student_identifier": "test123", "event_identifier": "Test Event"}, "source": "test"}',  # noqa: E501
]
UNIFIED_CURL = [
    """{
    "type": "student",
    "action": "create",
    "data": {
      "student_identifier": "a12345678",
      "email": "john.doe@usu.edu",
      "first_name": "John",
      "last_name": "Doe",
      "is_admin": false
    },
    "source": "curl_test"
  }""",
    """{
    "type": "event",
    "action": "create",
    "data": {
      "event_name": "Weekly Meeting",
      "event_date": "2024-01-15T10:00:00Z",
      "event_type": "Meeting",
      "points": 5,
      "description": "Weekly team meeting",
      "location": "Room 101"
    },
    "source": "curl_test"
  }""",
    """{
    "type": "attendance",
    "action": "create",
    "data": {
      "student_identifier": "a12345678",
      "event_identifier": "Weekly Meeting"
    },
    "source": "curl_test"
  }""",
]
LEGACY_CURL = """{
    "student_identifier": "a12345678",
    "event_identifier": "1",
    "source": "scanner_app"
  }"""


def curl(url: str, body: str) -> requests.Response:
    """What `curl -X POST URL -H "Content-Type: application/json" -d BODY` sends."""
    return requests.post(
        url, data=body.encode(), headers={"Content-Type": "application/json"}, timeout=10
    )


def test_onetap_python_client(live_server):
    onetap = OneTapIntegration(f"{live_server}/api/webhook/onetap/")
    student = onetap.create_student("a12345678", "john@example.com", "John", "Doe")
    assert student["success"] is True
    assert student["student"]["identifier"] == "a12345678"
    # The guide labels a naive time "Z": what it means is the UTC wall clock. Pinned so the
    # test means the same under any TZ (datetime.now() in Denver is seven hours "early").
    utc_wall_clock = datetime.now(UTC).replace(tzinfo=None)
    event = onetap.create_event("Weekly Meeting", utc_wall_clock, "Meeting", 5)
    assert event["message"] == "Event created successfully"
    attendance = onetap.record_attendance("a12345678", "1")
    assert attendance["message"] == "Attendance recorded successfully"
    assert attendance["status"] == "present"
    assert onetap.record_attendance("a12345678", "1") == {
        "error": "Student already checked in to this event",
        "code": "already_checked_in",
        "request_id": 4,
    }


def test_unified_python_client(live_server):
    client = HustleWebhookClient(f"{live_server}/api/webhook/unified/")
    assert client.create_student("a12345678", "john.doe@usu.edu", "John", "Doe")["success"]
    event = client.create_event(
        "Weekly Meeting", datetime.now(), "Meeting", 5, "Weekly team meeting", "Room 101"
    )
    assert event["event"]["location"] == "Room 101"
    attendance = client.record_attendance("a12345678", "Weekly Meeting")
    assert attendance["success"] is True
    assert attendance["source"] == "python_client"


def test_legacy_python_function(live_server, monkeypatch):
    onetap = OneTapIntegration(f"{live_server}/api/webhook/onetap/")
    onetap.create_student("a12345678", "john@example.com", "John", "Doe")
    onetap.create_event("Weekly Meeting", datetime.now())
    monkeypatch.setattr(guide_clients, "LEGACY_URL", f"{live_server}/api/webhook/attendance/")
    result = guide_clients.record_attendance("a12345678", "1")
    assert result["success"] is True
    assert result["source"] == "my_attendance_app"


def test_onetap_curl_examples_and_test_all(live_server):
    url = f"{live_server}/api/webhook/onetap/"
    statuses = [curl(url, body).status_code for body in ONETAP_CURL + ONETAP_TEST_ALL]
    assert statuses == [201] * 6
    health = requests.get(f"{live_server}/api/webhook/onetap/status/", timeout=5)
    assert health.json()["status"] == "healthy"


def test_unified_and_legacy_curl_examples(live_server):
    url = f"{live_server}/api/webhook/unified/"
    assert [curl(url, body).status_code for body in UNIFIED_CURL] == [201, 201, 201]
    second_event = (
        '{"type": "event", "data": {"event_name": "Other", "event_date": "2024-02-01T10:00:00Z"}}'
    )
    assert curl(url, second_event).json()["event"]["id"] == 2
    legacy = curl(f"{live_server}/api/webhook/attendance/", LEGACY_CURL)
    assert legacy.status_code == 400  # already checked in to event 1 by the unified example
    assert legacy.json()["error"] == "Student already checked in to this event"
    for path in ("/api/webhook/status/", "/api/webhook/unified/status/"):
        assert requests.get(live_server + path, timeout=5).json()["status"] == "healthy"


def test_guide_signature_helper_against_the_secure_endpoint(make_app):
    with serving(make_app(WEBHOOK_SECRET="your-secret-key-here")) as base:
        onetap = OneTapIntegration(f"{base}/api/webhook/onetap/")
        onetap.create_student("a12345678", "john@example.com", "John", "Doe")
        onetap.create_event("Weekly Meeting", datetime.now())
        payload = '{"student_identifier": "a12345678", "event_identifier": "1"}'
        signature = generate_signature(payload, "your-secret-key-here")
        response = requests.post(
            f"{base}/api/webhook/attendance/secure/",
            data=payload,
            headers={
                "Content-Type": "application/json",
                "X-Webhook-Signature": f"sha256={signature}",
            },
            timeout=10,
        )
    assert response.status_code == 201, response.text
