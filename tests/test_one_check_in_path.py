"""Every door that records a check-in goes through the one core function: the same person at
the same event gives the same stored row, status and outbound `attendance.marked` data,
whichever door it came through (only `source`, the door's own name, differs)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from autocheckin.attendance.models import Attendance
from autocheckin.extensions import db
from autocheckin.outbound.models import OutboxEntry
from autocheckin.times import utcnow
from autocheckin.webhooks.signatures import sign_legacy
from tests.helpers import LEGACY, ONETAP, UNIFIED, make_event, make_student, post

SECRET = "a-webhook-secret-of-at-least-32-bytes!"
ADMIN, MEMBER = "1001", "1002"
CHECK_IN = {"student_identifier": "A1", "event_identifier": "Lab"}


def _webhook(path, body):
    return lambda client, _event_id: post(client, path, body)


def _secure(client, _event_id):
    raw = json.dumps(CHECK_IN).encode()
    return post(
        client,
        "/api/webhook/attendance/secure/",
        raw,
        **{"X-Webhook-Signature": sign_legacy(raw, SECRET)},
    )


def _web(client, event_id):
    token = client.post("/auth/login", json={"email": "ann@example.com", "password": PASSWORD})
    headers = {"Authorization": f"Bearer {token.get_json()['access_token']}"}
    return client.post(f"/events/{event_id}/attend", headers=headers)


PASSWORD = "long enough password"
DOORS = {
    "onetap": (
        _webhook(ONETAP, {"action": "record_attendance", "data": CHECK_IN}),
        "onetap_webhook",
    ),
    "unified": (_webhook(UNIFIED, {"type": "attendance", "data": CHECK_IN}), "unified_webhook"),
    "legacy": (_webhook(LEGACY, CHECK_IN), "webhook"),
    "secure": (_secure, "webhook"),
    "batch": (_webhook("/api/webhook/attendance/batch/", {"items": [CHECK_IN]}), "webhook"),
    "web": (_web, "web"),
    "discord attend": (
        lambda client, event_id: client.post(
            f"/discord/attend/{event_id}?discord_user_id={MEMBER}"
        ),
        "discord",
    ),
    "events discord attend": (
        lambda client, event_id: client.post(
            "/events/discord/attend", json={"discord_user_id": MEMBER, "event_id": event_id}
        ),
        "discord",
    ),
    "discord attend auto": (
        lambda client, _event_id: client.post(f"/discord/attend/auto?discord_user_id={MEMBER}"),
        "discord",
    ),
    "discord attend for user": (
        lambda client, _event_id: client.post(
            f"/discord/admin/attend-for-user?admin_discord_user_id={ADMIN}",
            json={"target_name": "member-handle"},
        ),
        "discord_admin",
    ),
}


@pytest.fixture
def door_app(make_app):
    """A roster person A1, the accounts that record for A1 (linked by the operator), an
    event running now, and a subscriber to `attendance.marked` so the outbox is written."""
    app = make_app(WEBHOOK_SECRET=SECRET)
    client = app.test_client()
    with app.app_context():
        make_student(identifier="A1", email="a1@school.example", first_name="Ada", last_name="One")
        event_id = make_event(
            name="Lab",
            start_time=utcnow() - timedelta(minutes=1),
            end_time=utcnow() + timedelta(hours=1),
        ).id
    client.post(
        "/auth/register", json={"email": "ann@example.com", "name": "Ann", "password": PASSWORD}
    )
    client.post("/discord/users/register", json={"discord_user_id": ADMIN, "name": "Boss"})
    client.post(
        "/discord/users/register",
        json={"discord_user_id": MEMBER, "name": "Member", "discord_username": "member-handle"},
    )
    runner = app.test_cli_runner()
    for account in ("ann@example.com", MEMBER):
        assert runner.invoke(args=["users", "link", account, "A1"]).exit_code == 0
    assert runner.invoke(args=["discord", "admin", "grant", ADMIN]).exit_code == 0
    subscribed = client.post(
        "/api/webhooks",
        json={"name": "R", "url": "http://127.0.0.1:9/", "event_type": "attendance.marked"},
        headers={"x-checkout-key": "test-checkout-key"},
    )
    assert subscribed.status_code == 201, subscribed.get_json()
    return app, event_id


@pytest.mark.parametrize("door", DOORS)
def test_every_door_records_the_same_check_in(door_app, door):
    app, event_id = door_app
    send, source = DOORS[door]
    answer = send(app.test_client(), event_id)
    assert answer.status_code in (200, 201), answer.get_json()
    assert answer.get_json().get("success", True) is True, answer.get_json()
    with app.app_context():
        (stored,) = db.session.query(Attendance).all()
        row = (stored.student.identifier, stored.event_id, stored.status, stored.source)
        (entry,) = db.session.query(OutboxEntry).all()
        (item,) = json.loads(entry.items)
    assert row == ("A1", event_id, "present", source)
    assert entry.event_type == "attendance.marked"
    assert item.pop("attendance_id") == stored.id
    assert item.pop("checked_in_at")
    assert item == {
        "student_id": stored.student_id,
        "student_identifier": "A1",
        "student_email": "a1@school.example",
        "student_name": "Ada One",
        "session_id": event_id,
        "session_name": "Lab",
        "status": "present",
        "method": source,
    }
    # Once only, at every door: refused in the door's own words, or (a signed body sent
    # again) the first answer replayed.
    again = send(app.test_client(), event_id).get_json()
    assert "already checked in to this event" in json.dumps(again) or again == answer.get_json()
    with app.app_context():
        assert db.session.query(Attendance).count() == 1
