"""The batch check-in endpoint, and the one-transaction guarantee of every webhook."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from autocheckin.attendance.models import Attendance, Event
from autocheckin.extensions import db
from autocheckin.times import utcnow
from autocheckin.webhooks import request_log
from autocheckin.webhooks.models import WebhookRequest
from autocheckin.webhooks.payloads import MAX_BATCH_ITEMS
from tests.helpers import ONETAP, count_rows, make_event, make_student, post, rows
from tests.servers import gunicorn

BATCH = "/api/webhook/attendance/batch/"


def item(student: str, event: str | int, **extra) -> dict:
    return {"student_identifier": student, "event_identifier": event, **extra}


@pytest.fixture
def roster(app):
    with app.app_context():
        for number in range(3):
            make_student(identifier=f"a{number}", email=f"s{number}@example.com")
        make_event(name="Lab", start_time=utcnow())


def test_mixed_items_each_get_their_result_in_order(app, client, roster):
    items = [
        item("a0", "Lab", source="scanner-1", metadata={"door": "north"}),
        item("S1@EXAMPLE.COM", "1"),  # by email, case-insensitively; the event by id
        item("a0", "Lab"),  # the same pair again: a duplicate of the first
        item("nobody", "Lab"),
        item("a2", "No Such Event"),
        {"student_identifier": "a2"},
        "not an object",
        item("a2", "Lab", check_in_time="not a date"),
    ]
    response = post(client, BATCH, {"items": items})
    assert response.status_code == 200
    body = response.get_json()
    assert body["totals"] == {
        "items": 8,
        "recorded": 2,
        "duplicate": 1,
        "not_found": 2,
        "rejected": 3,
    }
    results = body["results"]
    assert [result["index"] for result in results] == list(range(8))
    assert [result["status"] for result in results] == [201, 201, 400, 404, 404, 400, 400, 400]
    assert results[0]["result"] == "recorded"
    assert results[0]["attendance_status"] == "present"
    assert results[1]["student_id"] == 2
    assert results[2] == {
        "index": 2,
        "status": 400,
        "result": "duplicate",
        "error": "Student already checked in to this event",
        "code": "already_checked_in",
    }
    assert results[3]["error"] == "Student with identifier nobody not found"
    assert results[4]["error"] == "Event with identifier No Such Event not found"
    assert results[5]["error"] == "student_identifier and event_identifier are required"
    assert results[6]["code"] == "invalid_item"
    assert results[7]["code"] == "invalid_date"
    assert isinstance(body["request_id"], int)
    assert rows(app, Attendance) == 2
    with app.app_context():
        stored = db.session.scalars(db.select(Attendance).order_by(Attendance.id)).all()
        assert stored[0].source == "scanner-1"
        assert stored[0].check_in_metadata == {"door": "north"}
        assert stored[1].source == "webhook"
        record = db.session.get(WebhookRequest, body["request_id"])
        assert (record.endpoint, record.outcome, record.status_code) == (
            "attendance_batch",
            "unmatched",  # two items wait for their student or event
            200,
        )


def test_batch_already_stored_pairs_are_duplicates(app, client, roster):
    post(client, "/api/webhook/attendance/", item("a0", "Lab"))
    body = post(client, BATCH, {"items": [item("a0", "Lab"), item("a1", "Lab")]}).get_json()
    assert [result["result"] for result in body["results"]] == ["duplicate", "recorded"]
    assert rows(app, Attendance) == 2


@pytest.mark.parametrize(
    ("payload", "status", "code"),
    [
        ({"items": []}, 400, "invalid_items"),
        ({"items": "a0"}, 400, "invalid_items"),
        ({}, 400, "invalid_items"),
        ([item("a0", "Lab")], 400, "invalid_json"),
        ({"items": [item("a0", "Lab")] * (MAX_BATCH_ITEMS + 1)}, 413, "batch_too_large"),
    ],
)
def test_batch_shape_errors(app, client, roster, payload, status, code):
    response = post(client, BATCH, payload)
    assert response.status_code == status
    assert response.get_json()["code"] == code
    assert rows(app, Attendance) == 0


def test_too_many_items_names_the_limit(client, roster):
    response = post(client, BATCH, {"items": [item("a0", "Lab")] * (MAX_BATCH_ITEMS + 1)})
    assert response.get_json()["error"] == (
        f"Batch has {MAX_BATCH_ITEMS + 1} items; at most {MAX_BATCH_ITEMS} are accepted per request"
    )


def test_batch_body_over_the_size_limit_is_413(make_app):
    app = make_app(MAX_CONTENT_LENGTH="2048")
    response = post(app.test_client(), BATCH, {"items": [item("a0", "Lab")] * 100})
    assert response.status_code == 413
    assert response.get_json()["code"] == "payload_too_large"


def test_batch_with_idempotency_key_answers_the_same_once(app, client, roster):
    payload = {"items": [item("a0", "Lab"), item("a1", "Lab")]}
    first = post(client, BATCH, payload, **{"Idempotency-Key": "batch-1"})
    again = post(client, BATCH, payload, **{"Idempotency-Key": "batch-1"})
    assert first.get_json() == again.get_json()
    assert first.get_json()["totals"]["recorded"] == 2
    assert rows(app, Attendance) == 2
    changed = post(client, BATCH, {"items": [item("a2", "Lab")]}, **{"Idempotency-Key": "batch-1"})
    assert changed.status_code == 422


def test_signed_batch_when_signatures_are_required(make_app):
    from autocheckin.webhooks.signatures import sign_legacy

    secret = "batch-secret-0123456789abcdef0123456789"
    app = make_app(WEBHOOK_SECRET=secret, WEBHOOK_REQUIRE_SIGNATURE="true")
    client = app.test_client()
    with app.app_context():
        make_student(identifier="a0")
        make_event(name="Lab", start_time=utcnow())
    body = json.dumps({"items": [item("a0", "Lab")]}).encode()
    assert post(client, BATCH, body).status_code == 401
    signed = post(client, BATCH, body, **{"X-Webhook-Signature": sign_legacy(body, secret)})
    assert signed.status_code == 200
    assert signed.get_json()["totals"]["recorded"] == 1


def test_an_unmatched_batch_resolves_by_replay(app, client, auth_headers):
    with app.app_context():
        make_student(identifier="a0")
        make_event(name="Lab", start_time=utcnow())
    body = post(client, BATCH, {"items": [item("a0", "Lab"), item("late", "Lab")]}).get_json()
    assert body["totals"]["not_found"] == 1
    with app.app_context():
        make_student(identifier="late")
    tally = client.post("/api/v1/webhooks/unmatched/resolve", headers=auth_headers).get_json()
    assert tally["data"] == {"checked": 1, "resolved": 1, "unmatched": 0, "failed": 0}
    assert rows(app, Attendance) == 2
    with app.app_context():
        record = db.session.get(WebhookRequest, body["request_id"])
        assert record.outcome == "resolved"
        assert record.attempts == 2
        # Judged again as a whole: the first item is now a duplicate, the second recorded.
        results = record.response_body["results"]
        assert [result["result"] for result in results] == ["duplicate", "recorded"]


def test_batch_is_in_the_openapi_spec(client):
    spec = client.get("/openapi.json").get_json()
    operation = spec["paths"]["/api/webhook/attendance/batch/"]["post"]
    assert "200" in operation["responses"]
    assert "413" in operation["responses"]


# --- one transaction: the change and its record commit together ----------------------------


def test_a_failure_while_recording_leaves_no_change_and_a_retry_runs_once(app, client, monkeypatch):
    """Reproduces the bug where the core committed and recording its outcome failed."""
    real_write = request_log.write
    calls = {"count": 0}

    def fail_first_success(session, entry, rendered, outcome, **values):
        calls["count"] += 1
        if calls["count"] == 1:
            raise RuntimeError("injected: the database went away while recording")
        return real_write(session, entry, rendered, outcome, **values)

    monkeypatch.setattr(request_log, "write", fail_first_success)
    app.testing = False  # the client sees the 500 instead of the exception
    payload = {
        "action": "create_event",
        "data": {"event_name": "Once", "event_date": "2024-01-15T10:00:00Z"},
    }
    crashed = post(client, ONETAP, payload, **{"Idempotency-Key": "once"})
    assert crashed.status_code == 500
    assert rows(app, Event) == 0  # rolled back with its record
    retried = post(client, ONETAP, payload, **{"Idempotency-Key": "once"})
    assert retried.status_code == 201
    again = post(client, ONETAP, payload, **{"Idempotency-Key": "once"})
    assert again.get_json() == retried.get_json()
    with app.app_context():
        assert db.session.scalars(db.select(Event.name)).all() == ["Once"]
        outcomes = db.session.scalars(
            db.select(WebhookRequest.outcome).order_by(WebhookRequest.id)
        ).all()
    # The crash itself is kept (without the key) so an operator can see it happened.
    assert outcomes == ["failed", "succeeded"]


@pytest.mark.slow
def test_two_batches_sharing_items_record_each_pair_once(database_url):
    """Two concurrent batches over real gunicorn: every pair once, never a 500."""
    students = [f"s{number}" for number in range(200)]
    with gunicorn(database_url) as base:
        with requests.Session() as session:
            for identifier in students:
                response = session.post(
                    f"{base}{ONETAP}",
                    json={
                        "action": "create_student",
                        "data": {
                            "student_identifier": identifier,
                            "email": f"{identifier}@example.com",
                            "first_name": "S",
                            "last_name": identifier,
                        },
                    },
                    timeout=10,
                )
                assert response.status_code == 201
            session.post(
                f"{base}{ONETAP}",
                json={
                    "action": "create_event",
                    "data": {"event_name": "Lab", "event_date": "2024-01-15T10:00:00Z"},
                },
                timeout=10,
            )
        first = [item(student, "Lab") for student in students[:150]]
        second = [item(student, "Lab") for student in reversed(students[50:])]
        barrier = threading.Barrier(2)

        def send(items: list[dict]) -> dict:
            barrier.wait()
            response = requests.post(f"{base}{BATCH}", json={"items": items}, timeout=30)
            assert response.status_code == 200
            return response.json()

        with ThreadPoolExecutor(2) as pool:
            answers = list(pool.map(send, [first, second]))
    recorded = sum(answer["totals"]["recorded"] for answer in answers)
    duplicates = sum(answer["totals"]["duplicate"] for answer in answers)
    assert recorded == 200
    assert duplicates == 100  # students 50..149 were in both
    assert count_rows(database_url, Attendance) == 200
