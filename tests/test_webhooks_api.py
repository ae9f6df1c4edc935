"""The webhook endpoints through the Flask client: bodies, errors, windows, the request log."""

from __future__ import annotations

import json
import logging
from datetime import timedelta

import pytest

from autocheckin.attendance.models import Attendance, Student
from autocheckin.extensions import db
from autocheckin.times import iso, utcnow
from autocheckin.webhooks import request_log
from autocheckin.webhooks.models import WebhookRequest
from tests.helpers import LEGACY, ONETAP, UNIFIED, make_event, make_student, post, rows


def create_student(client, identifier="a12345678", email="john@example.com", **extra):
    data = {
        "student_identifier": identifier,
        "email": email,
        "first_name": "John",
        "last_name": "Doe",
        **extra,
    }
    return post(client, ONETAP, {"action": "create_student", "data": data, "source": "test"})


def create_event(client, name="Weekly Meeting", date="2024-01-15T10:00:00Z", **extra):
    data = {"event_name": name, "event_date": date, **extra}
    return post(client, ONETAP, {"action": "create_event", "data": data, "source": "test"})


def attend(client, student="a12345678", event="1", path=ONETAP, **extra):
    data = {"student_identifier": student, "event_identifier": event, **extra}
    if path == LEGACY:
        return post(client, path, data)
    return post(client, path, {"action": "record_attendance", "data": data})


# --- the OneTap guide's flow -------------------------------------------------------------------


def test_onetap_flow_bodies(client):
    student = create_student(client)
    assert student.status_code == 201
    body = student.get_json()
    assert body == {
        "success": True,
        "message": "Student created successfully",
        "student": {
            "id": 1,
            "identifier": "a12345678",
            "name": "John Doe",
            "email": "john@example.com",
            "is_admin": False,
        },
        "source": "test",
        "request_id": 1,
    }
    event = create_event(client, event_type="Meeting", points=5, description="Weekly team meeting")
    assert event.status_code == 201
    assert event.get_json()["event"] == {
        "id": 1,
        "name": "Weekly Meeting",
        "date": "2024-01-15T10:00:00Z",
        "end_time": None,
        "event_type": "Meeting",
        "points": 5,
        "description": "Weekly team meeting",
        "location": "",
    }
    attendance = attend(client)
    assert attendance.status_code == 201
    answer = attendance.get_json()
    assert answer["message"] == "Attendance recorded successfully"
    assert answer["attendance_id"] == 1
    assert answer["student"] == {"id": 1, "name": "John Doe", "email": "john@example.com"}
    # The guide's day, and the full start beside it.
    assert answer["event"] == {
        "id": 1,
        "name": "Weekly Meeting",
        "date": "2024-01-15",
        "start_time": "2024-01-15T10:00:00Z",
    }
    assert answer["status"] == "late"  # arrival is long after 2024-01-15T10:10Z
    assert answer["source"] == "onetap_webhook"
    assert answer["checked_in_at"].endswith("Z")


def test_documented_errors_verbatim_with_codes(app, client):
    create_student(client)
    create_event(client)
    cases = [
        (
            create_student(client, identifier="other"),
            400,
            "Student with email john@example.com already exists",
            "student_exists",
        ),
        (
            create_student(client, email="else@example.com"),
            400,
            "Student with identifier a12345678 already exists",
            "student_exists",
        ),
        (
            attend(client, student="a99"),
            404,
            "Student with identifier a99 not found",
            "student_not_found",
        ),
        (
            attend(client, student="ghost@example.com"),
            404,
            "Student with email ghost@example.com not found",
            "student_not_found",
        ),
        (
            attend(client, event="999"),
            404,
            "Event with identifier 999 not found",
            "event_not_found",
        ),
        (attend(client), 201, None, None),
        (attend(client), 400, "Student already checked in to this event", "already_checked_in"),
        (
            attend(client, path=LEGACY),
            400,
            "Student already checked in to this event",
            "already_checked_in",
        ),
    ]
    for response, status, message, code in cases:
        assert response.status_code == status, response.get_json()
        if message:
            assert response.get_json()["error"] == message
            assert response.get_json()["code"] == code
    assert rows(app, Attendance) == 1
    assert rows(app, Student) == 1


def test_identifiers_match_case_insensitively_and_by_email(client):
    create_student(client, identifier="A12345678", email="John@Example.com")
    create_event(client, name="Standup")
    assert attend(client, student=" a12345678 ", event="Standup").status_code == 201
    create_event(client, name="Retro")
    assert attend(client, student="JOHN@example.COM", event="Retro").status_code == 201


def test_trailing_slash_is_optional_without_redirect(client):
    for path in ("/api/webhook/onetap", "/api/webhook/unified", "/api/webhook/attendance"):
        response = post(client, path, {})
        assert response.status_code == 400, path
    assert client.get("/api/webhook/status").status_code == 200
    assert client.get("/api/webhook/onetap/status").status_code == 200


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"{not json", "application/json"),
        (b"\xff\xfe\xfa", "application/json"),
        (b'{"action": NaN}', "application/json"),
        (b"", "application/json"),
        (b'{"action": "create_student"}', "text/plain"),
    ],
)
def test_not_json_is_400_and_recorded(app, client, body, content_type):
    response = client.post(ONETAP, data=body, headers={"Content-Type": content_type})
    if content_type == "text/plain":
        # The guides' clients always send JSON; a JSON body with another type still parses.
        assert response.status_code == 400
        assert response.get_json()["error"] == (
            "student_identifier, email, first_name, and last_name are required"
        )
        return
    assert response.status_code == 400
    assert response.get_json()["error"] == "Invalid JSON payload"
    assert response.get_json()["code"] == "invalid_json"
    with app.app_context():
        record = db.session.query(WebhookRequest).one()
        assert record.body == body
        assert record.outcome == "failed"


def test_nul_characters_are_refused_not_stored(client):
    response = create_student(client, first_name="Jo\u0000hn")
    assert response.status_code == 400
    assert response.get_json()["details"] == "strings may not contain NUL"


def test_oversized_body_is_413_and_recorded(make_app):
    app = make_app(MAX_CONTENT_LENGTH="2048")
    client = app.test_client()
    response = post(client, LEGACY, {"student_identifier": "x" * 5000, "event_identifier": "1"})
    assert response.status_code == 413
    assert response.get_json()["code"] == "payload_too_large"
    with app.app_context():
        record = db.session.query(WebhookRequest).one()
        assert (record.status_code, record.endpoint, record.is_replayable) == (
            413,
            "attendance",
            False,
        )


def test_unicode_round_trips(client):
    response = create_student(
        client, identifier="ü1", email="zoë@example.com", first_name="Zoë", last_name="Ødegård 山田"
    )
    assert response.status_code == 201
    assert response.get_json()["student"]["name"] == "Zoë Ødegård 山田"
    create_event(client, name="Café ☕")
    assert attend(client, student="ZOË@example.com", event="Café ☕").status_code == 201


# --- unified ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("opens_before", "updated"), [("15m", "ended"), ("2h", "coming")])
def test_an_update_by_a_shared_name_picks_the_event_by_the_configured_window(
    make_app, opens_before, updated
):
    """Two events named Lab: one ended 5 minutes ago, one starts in an hour. Whether the
    coming one's window is open now depends on CHECKIN_OPENS_BEFORE, and so does which
    one an update by name changes."""
    app = make_app(CHECKIN_OPENS_BEFORE=opens_before)
    now = utcnow()
    with app.app_context():
        ended = make_event(
            name="Lab", start_time=now - timedelta(minutes=50), end_time=now - timedelta(minutes=5)
        ).id
        coming = make_event(
            name="Lab", start_time=now + timedelta(hours=1), end_time=now + timedelta(hours=2)
        ).id
    data = {"event_name": "Lab", "points": 9}
    response = post(app.test_client(), UNIFIED, {"type": "event", "action": "update", "data": data})
    assert response.status_code == 200
    assert response.get_json()["event"]["id"] == {"ended": ended, "coming": coming}[updated]


def test_unified_create_and_update(app, client):
    created = post(
        client,
        UNIFIED,
        {
            "type": "student",
            "data": {
                "student_identifier": "a1",
                "email": "a1@example.com",
                "first_name": "Ann",
                "last_name": "Lee",
            },
        },
    )
    assert created.status_code == 201
    assert created.get_json()["source"] == "unified_webhook"
    updated = post(
        client,
        UNIFIED,
        {
            "type": "student",
            "action": "update",
            "data": {"email": "A1@example.com", "last_name": "Li"},
        },
    )
    assert updated.status_code == 200
    assert updated.get_json() == {
        "success": True,
        "message": "Student updated successfully",
        "student": {
            "id": 1,
            "identifier": "a1",
            "name": "Ann Li",
            "email": "a1@example.com",
            "is_admin": False,
        },
        "source": "unified_webhook",
        "request_id": 2,
    }
    post(
        client,
        UNIFIED,
        {
            "type": "event",
            "data": {"event_name": "Lab", "event_date": "2024-01-15T10:00:00Z", "points": 2},
        },
    )
    event = post(
        client,
        UNIFIED,
        {
            "type": "event",
            "action": "update",
            "data": {"event_identifier": "Lab", "location": "Room 5"},
        },
    )
    assert event.status_code == 200
    assert event.get_json()["event"]["location"] == "Room 5"
    assert event.get_json()["event"]["points"] == 2
    missing = post(
        client,
        UNIFIED,
        {"type": "student", "action": "update", "data": {"email": "no@example.com"}},
    )
    assert missing.status_code == 404
    assert missing.get_json()["error"] == "Student with email no@example.com not found"
    clash = post(
        client,
        UNIFIED,
        {
            "type": "student",
            "data": {
                "student_identifier": "b2",
                "email": "b2@example.com",
                "first_name": "B",
                "last_name": "C",
            },
        },
    )
    assert clash.status_code == 201
    taken = post(
        client,
        UNIFIED,
        {
            "type": "student",
            "action": "update",
            "data": {"student_identifier": "b2", "email": "a1@example.com"},
        },
    )
    assert taken.status_code == 400
    assert taken.get_json()["error"] == "Student with email a1@example.com already exists"


def test_unified_attendance(client):
    create_student(client)
    create_event(client)
    response = post(
        client,
        UNIFIED,
        {
            "type": "attendance",
            "action": "create",
            "data": {"student_identifier": "a12345678", "event_identifier": "Weekly Meeting"},
        },
    )
    assert response.status_code == 201
    assert response.get_json()["source"] == "unified_webhook"


# --- event resolution and windows -------------------------------------------------------------


def test_numeric_id_wins_over_a_same_named_event(app, client):
    with app.app_context():
        make_student(identifier="s1", email="s1@example.com")
        first = make_event(name="First")
        make_event(name=str(first.id))  # an event literally named "1"
    response = attend(client, student="s1", event=str(first.id))
    assert response.get_json()["event"]["name"] == "First"


def test_same_name_prefers_the_window_then_the_nearest_start_and_refuses_a_tie(app, client):
    now = utcnow().replace(microsecond=0)
    with app.app_context():
        for n in range(3):
            make_student(identifier=f"s{n}", email=f"s{n}@example.com")
        make_event(
            name="Class",
            start_time=now - timedelta(days=7),
            end_time=now - timedelta(days=7) + timedelta(hours=1),
        )
        open_now = make_event(
            name="Class", start_time=now - timedelta(minutes=5), end_time=now + timedelta(hours=1)
        )
        make_event(
            name="Class",
            start_time=now + timedelta(days=7),
            end_time=now + timedelta(days=7, hours=1),
        )
        make_event(name="Talk", start_time=now - timedelta(days=2))
        near = make_event(name="Talk", start_time=now - timedelta(hours=1))
        twin = make_event(name="Talk", start_time=now - timedelta(hours=1))
    assert attend(client, student="s0", event="Class").get_json()["event"]["id"] == open_now.id
    refused = attend(client, student="s1", event="Talk")  # equal distance: never by age
    assert refused.status_code == 400
    assert refused.get_json()["code"] == "ambiguous_event"
    assert refused.get_json()["error"] == (
        f"Several events are named Talk (ids {near.id}, {twin.id}); "
        "send the event's id as event_identifier"
    )
    assert attend(client, student="s1", event=str(twin.id)).status_code == 201


def test_window_edges_on_the_clients_check_in_time(app, client):
    start = utcnow().replace(microsecond=0) - timedelta(hours=2)
    end = start + timedelta(hours=1)
    with app.app_context():
        event = make_event(name="Lecture", start_time=start, end_time=end)
        for n in range(7):
            make_student(identifier=f"e{n}", email=f"e{n}@example.com")

    def at(student, moment):
        return attend(client, student=student, event=str(event.id), check_in_time=iso(moment))

    early = at("e0", start - timedelta(minutes=15, seconds=1))
    assert early.status_code == 400
    assert early.get_json()["error"] == "Event hasn't started yet. Starts in 16 minutes"
    assert early.get_json()["code"] == "event_not_started"
    opening = at("e1", start - timedelta(minutes=15))
    assert (opening.status_code, opening.get_json()["status"]) == (201, "present")
    assert at("e2", start).get_json()["status"] == "present"
    assert at("e3", start + timedelta(minutes=10)).get_json()["status"] == "present"
    assert at("e4", start + timedelta(minutes=10, seconds=1)).get_json()["status"] == "late"
    closing = at("e5", end)
    assert (closing.status_code, closing.get_json()["status"]) == (201, "late")
    after = at("e6", end + timedelta(seconds=1))
    assert after.status_code == 400
    assert after.get_json() == {
        "error": "Event has already ended",
        "code": "event_ended",
        "request_id": 7,
    }


def test_event_without_end_time_accepts_any_time(app, client):
    with app.app_context():
        make_student(identifier="w1", email="w1@example.com")
        event = make_event(name="Open", start_time=utcnow() + timedelta(days=30))
    response = attend(client, student="w1", event=str(event.id))
    assert (response.status_code, response.get_json()["status"]) == (201, "present")


def test_check_in_time_bounds(make_app):
    app = make_app(CHECKIN_MAX_BACKDATE="1h")
    client = app.test_client()
    with app.app_context():
        make_student(identifier="t1", email="t1@example.com")
        event = make_event(name="Any")
    ahead = attend(
        client,
        student="t1",
        event=str(event.id),
        check_in_time=iso(utcnow() + timedelta(minutes=6)),
    )
    assert ahead.status_code == 400
    assert ahead.get_json()["code"] == "check_in_time_in_future"
    old = attend(
        client, student="t1", event=str(event.id), check_in_time=iso(utcnow() - timedelta(hours=2))
    )
    assert old.status_code == 400
    assert old.get_json()["error"] == "check_in_time is more than 3600 seconds in the past"
    bad = attend(client, student="t1", event=str(event.id), check_in_time="yesterday")
    assert (
        bad.get_json()["error"]
        == "Invalid check_in_time format. Use ISO format (e.g., 2024-01-15T10:00:00Z)"
    )
    skew = attend(
        client,
        student="t1",
        event=str(event.id),
        check_in_time=iso(utcnow() + timedelta(minutes=4)),
    )
    assert skew.status_code == 201


# --- status endpoints -------------------------------------------------------------------------


def test_status_endpoints(client):
    create_student(client)
    create_student(client)  # duplicate: a failure
    onetap = client.get("/api/webhook/onetap/status/").get_json()
    assert onetap["status"] == "healthy"
    assert onetap["supported_actions"] == ["create_student", "create_event", "record_attendance"]
    assert onetap["last_24h"] == {"received": 2, "succeeded": 1, "failed": 1, "processing": 0}
    unified = client.get("/api/webhook/unified/status/").get_json()
    assert unified["supported_types"] == ["student", "event", "attendance"]
    assert unified["last_24h"]["received"] == 0
    overall = client.get("/api/webhook/status/").get_json()
    assert overall["endpoints"]["onetap"] == "/api/webhook/onetap/"
    assert overall["last_24h"]["received"] == 2


def test_webhook_routing_errors_use_the_webhook_shape(client):
    response = client.get(ONETAP)
    assert response.status_code == 405
    assert response.get_json() == {
        "error": "The method is not allowed for the requested URL.",
        "code": "method_not_allowed",
    }
    assert client.get("/api/webhook/nope/").get_json()["code"] == "not_found"


# --- idempotency ------------------------------------------------------------------------------


def test_idempotency_key_replays_the_stored_answer(app, client):
    create_student(client)
    create_event(client)
    first = attend(client, **{})
    assert first.status_code == 201
    payload = {
        "action": "record_attendance",
        "data": {"student_identifier": "a12345678", "event_identifier": "Weekly Meeting"},
    }
    create_event(client, name="Second")
    payload["data"]["event_identifier"] = "Second"
    original = post(client, ONETAP, payload, **{"Idempotency-Key": "k-1"})
    again = post(client, ONETAP, payload, **{"Idempotency-Key": "k-1"})
    assert original.status_code == again.status_code == 201
    assert original.get_json() == again.get_json()
    assert rows(app, Attendance) == 2
    changed = post(client, ONETAP, {**payload, "source": "other"}, **{"Idempotency-Key": "k-1"})
    assert changed.status_code == 422
    assert changed.get_json()["code"] == "idempotency_key_reused"
    by_webhook_id = post(client, ONETAP, payload, **{"webhook-id": "k-1"})
    assert by_webhook_id.get_json() == original.get_json()


def test_idempotency_key_while_the_first_is_processing_is_409(app, client):
    """A record left "processing" by a version that committed it before its work."""
    payload = {
        "action": "create_event",
        "data": {"event_name": "X", "event_date": "2024-01-15T10:00:00Z"},
    }
    body = json.dumps(payload).encode()
    with app.app_context():
        db.session.add(
            WebhookRequest(
                endpoint="onetap",
                body=body,
                body_sha256=request_log.fingerprint("onetap", body),
                idempotency_key="busy",
                idempotency_scope=request_log.idempotency_scope("onetap", "busy", signer=None),
                outcome="processing",
                received_at=utcnow(),
            )
        )
        db.session.commit()
    response = post(client, ONETAP, body, **{"Idempotency-Key": "busy"})
    assert response.status_code == 409
    assert response.get_json()["code"] == "idempotency_in_progress"


def test_expired_idempotency_key_is_processed_afresh(make_app):
    app = make_app(IDEMPOTENCY_TTL="0")
    client = app.test_client()
    payload = {
        "action": "create_event",
        "data": {"event_name": "X", "event_date": "2024-01-15T10:00:00Z"},
    }
    first = post(client, ONETAP, payload, **{"Idempotency-Key": "old"})
    second = post(client, ONETAP, payload, **{"Idempotency-Key": "old"})
    assert first.get_json()["event"]["id"] == 1
    assert second.get_json()["event"]["id"] == 2


# --- nothing lost: the log, replay, unmatched ------------------------------------------------


def test_every_request_is_recorded_and_failures_can_be_replayed(app, client, auth_headers):
    attend(client, path=LEGACY)  # unknown student and event: unmatched
    create_student(client, first_name=5)  # invalid: failed
    listed = client.get(
        "/api/v1/webhooks/deliveries?status=failed", headers=auth_headers
    ).get_json()
    assert listed["data"]["count"] == 2
    invalid, unmatched = listed["data"]["deliveries"]  # newest first
    assert invalid["outcome"] == "failed"
    assert invalid["error"] == "Invalid value for first_name: Input should be a valid string"
    assert unmatched["outcome"] == "unmatched"
    assert unmatched["status_code"] == 404
    assert json.loads(unmatched["body"])["student_identifier"] == "a12345678"

    create_student(client)
    create_event(client)
    replayed = client.post(
        f"/api/v1/webhooks/deliveries/{unmatched['id']}/replay", headers=auth_headers
    )
    assert replayed.status_code == 200
    delivery = replayed.get_json()["data"]["delivery"]
    assert (delivery["outcome"], delivery["attempts"], delivery["status_code"]) == (
        "resolved",
        2,
        201,
    )
    assert replayed.get_json()["data"]["response"]["message"] == "Attendance recorded successfully"
    again = client.post(
        f"/api/v1/webhooks/deliveries/{unmatched['id']}/replay", headers=auth_headers
    )
    assert again.status_code == 409
    assert again.get_json()["error"] == f"Webhook request {unmatched['id']} already succeeded"
    missing = client.post("/api/v1/webhooks/deliveries/999/replay", headers=auth_headers)
    assert missing.status_code == 404
    assert (
        client.get("/api/v1/webhooks/deliveries?status=bogus", headers=auth_headers).status_code
        == 400
    )
    assert (
        client.get("/api/v1/webhooks/deliveries?limit=0", headers=auth_headers).status_code == 400
    )
    assert client.get("/api/v1/webhooks/deliveries").status_code == 401


def test_replayed_check_in_is_judged_at_its_first_arrival(app, client, auth_headers):
    now = utcnow()
    attend(client, student="late@example.com", event="Short", path=LEGACY)
    with app.app_context():
        # It arrived 30 minutes ago, while the event was open; the event has ended since.
        record = db.session.query(WebhookRequest).one()
        record.received_at = now - timedelta(minutes=30)
        db.session.commit()
        make_student(identifier="l1", email="late@example.com")
        make_event(
            name="Short",
            start_time=now - timedelta(minutes=40),
            end_time=now - timedelta(minutes=10),
        )
    tally = client.post("/api/v1/webhooks/unmatched/resolve", headers=auth_headers).get_json()[
        "data"
    ]
    assert tally == {"checked": 1, "resolved": 1, "unmatched": 0, "failed": 0}
    with app.app_context():
        attendance = db.session.query(Attendance).one()
        assert attendance.checked_in_at == now - timedelta(minutes=30)
        assert attendance.status == "present"  # exactly start + LATE_AFTER is not late


def test_resolve_leaves_what_still_does_not_match(client, auth_headers):
    attend(client, student="nobody", event="nothing", path=LEGACY)
    tally = client.post("/api/v1/webhooks/unmatched/resolve", headers=auth_headers).get_json()[
        "data"
    ]
    assert tally == {"checked": 1, "resolved": 0, "unmatched": 1, "failed": 0}


def test_cli_list_replay_resolve_prune(app, client, runner):
    attend(client, path=LEGACY)
    listed = runner.invoke(args=["webhooks", "list", "--failed"])
    assert "unmatched" in listed.output and "404" in listed.output
    as_json = runner.invoke(args=["webhooks", "list", "--json"])
    record_id = json.loads(as_json.output.splitlines()[0])["id"]
    failed_replay = runner.invoke(args=["webhooks", "replay", str(record_id)])
    assert failed_replay.exit_code == 1
    create_student(client)
    create_event(client)
    replay = runner.invoke(args=["webhooks", "replay", str(record_id)])
    assert replay.exit_code == 0, replay.output
    assert "resolved (201)" in replay.output
    assert "resolved=0" in runner.invoke(args=["webhooks", "resolve"]).output
    assert "deleted 0" in runner.invoke(args=["webhooks", "prune"]).output
    with app.app_context():
        request_log.prune(retention=timedelta(days=30), now=utcnow() + timedelta(days=31))
        assert db.session.query(WebhookRequest).count() == 0
    assert runner.invoke(args=["webhooks", "replay", "12345"]).exit_code != 0


def test_one_structured_log_line_per_webhook(client, caplog):
    with caplog.at_level(logging.INFO, logger="autocheckin.webhooks"):
        create_student(client)
    lines = [r.getMessage() for r in caplog.records if r.name == "autocheckin.webhooks"]
    assert len(lines) == 1
    assert lines[0].startswith(
        "webhook endpoint=onetap source='test' outcome=succeeded status=201 ms="
    )


def test_the_attendance_answer_gives_the_events_day_in_utc_and_its_full_start(app, client):
    with app.app_context():
        make_student(identifier="n1")
    post(
        client,
        ONETAP,
        {
            "action": "create_event",
            "data": {"event_name": "Night", "event_date": "2024-01-15T23:30:00-05:00"},
        },
    )
    answer = post(client, LEGACY, {"student_identifier": "n1", "event_identifier": "Night"})
    assert answer.get_json()["event"]["date"] == "2024-01-16"
    assert answer.get_json()["event"]["start_time"] == "2024-01-16T04:30:00Z"
