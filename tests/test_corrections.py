"""Corrections, excuses and the tamper-evident history (issue 23).

Every correction door (the API with a key or an admin's token, the dashboard, the CLI)
needs a reason, bumps the attendance's version, and lands in the attendance's hash chain;
every reader (attendee lists, exports, the state, a person's own history) reads the
corrected truth; `flask audit verify` names the first entry edited behind our back.
"""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from autocheckin.attendance.models import Attendance, AttendanceChange, Enrolment, Student
from autocheckin.extensions import db
from autocheckin.outbound.models import OutboxEntry
from autocheckin.times import utcnow
from tests.helpers import LEGACY, make_event, make_student, post, rows

KEY = {"x-checkout-key": "test-checkout-key"}
DISCORD_ID = "123456789012345678"


@pytest.fixture
def app(make_app):
    """The dashboard's forms need a secret key; everything else is the tests' usual app."""
    return make_app(SECRET_KEY="corrections-test-secret-" + "x" * 16)


def _event(app, *, starts_in=timedelta(minutes=-5), lasts=timedelta(hours=1), name=None):
    with app.app_context():
        start = utcnow() + starts_in
        return make_event(
            name=name or f"Class {start:%H%M%S%f}", start_time=start, end_time=start + lasts
        ).id


def _person(app, identifier="s1", email=None):
    with app.app_context():
        return make_student(identifier=identifier, email=email or f"{identifier}@school.example").id


def _scan(client, identifier, event_id):
    answer = post(client, LEGACY, {"student_identifier": identifier, "event_identifier": event_id})
    assert answer.status_code == 201, answer.get_json()
    return answer


def _attendance_id(app, person_id, event_id):
    with app.app_context():
        return (
            db.session.query(Attendance.id)
            .filter_by(student_id=person_id, event_id=event_id)
            .scalar()
        )


def _history(client, attendance_id):
    answer = client.get(f"/api/v1/attendances/{attendance_id}/history", headers=KEY)
    assert answer.status_code == 200, answer.get_json()
    return answer.get_json()["data"]["entries"]


def _admin(client, auth, runner, email="boss@example.com"):
    headers = auth.headers(email=email, name="Boss")
    assert runner.invoke(args=["users", "promote", email]).exit_code == 0
    return headers


def _verify(runner):
    return runner.invoke(args=["audit", "verify"])


# --- who may correct --------------------------------------------------------------------------


def _new_routes(event_id, person_id, attendance_id, excuse_id):
    body = {"reason": "r", "status": "excused"}
    return [
        ("get", f"/api/v1/attendances/{attendance_id}", None),
        ("get", f"/api/v1/attendances/{attendance_id}/history", None),
        ("patch", f"/api/v1/attendances/{attendance_id}", body),
        ("post", f"/api/v1/attendances/{attendance_id}/void", {"reason": "r"}),
        ("post", f"/api/v1/attendances/{attendance_id}/restore", {"reason": "r"}),
        ("get", f"/api/v1/events/{event_id}/attendances", None),
        ("put", f"/api/v1/events/{event_id}/attendances/{person_id}", body),
        ("post", f"/api/v1/events/{event_id}/attendances/mark-unmarked", body),
        ("get", "/api/v1/excuses", None),
        ("post", f"/api/v1/excuses/{excuse_id}/approve", {}),
        ("post", f"/api/v1/excuses/{excuse_id}/decline", {"reason": "r"}),
    ]


def test_every_correction_route_refuses_the_anonymous_and_plain_users(app, client, auth, runner):
    event_id, person_id = _event(app), _person(app)
    _scan(client, "s1", event_id)
    attendance_id = _attendance_id(app, person_id, event_id)
    user = auth.headers(email="plain@example.com", name="Plain")
    excuse = client.post(
        "/users/me/excuses", json={"event_id": event_id, "reason": "ill"}, headers=user
    )
    assert excuse.status_code == 201, excuse.get_json()
    for method, path, body in _new_routes(event_id, person_id, attendance_id, excuse.json["id"]):
        anonymous = getattr(client, method)(path, json=body)
        assert anonymous.status_code == 401, (method, path, anonymous.get_json())
        assert anonymous.get_json()["success"] is False  # the v1 family's shape
        plain = getattr(client, method)(path, json=body, headers=user)
        assert plain.status_code == 403, (method, path, plain.get_json())
        wrong_key = getattr(client, method)(path, json=body, headers={"x-checkout-key": "nope"})
        assert wrong_key.status_code in (401, 429)  # wrong keys are rate-limited too
    # The people's own doors: a web token, the Discord bot's key.
    assert client.post("/users/me/excuses", json={"event_id": event_id}).status_code == 401
    assert client.get("/users/me/excuses").status_code == 401
    with app.app_context():
        assert db.session.get(Attendance, attendance_id).version == 1  # nothing changed
        assert db.session.query(AttendanceChange).count() == 1


def test_the_discord_excuse_route_needs_the_bot_key(make_app):
    client = make_app(DISCORD_API_KEY="bot-key", DISCORD_ALLOW_KEYLESS="false").test_client()
    answer = client.post(
        "/discord/excuse/1", query_string={"discord_user_id": DISCORD_ID}, json={"reason": "ill"}
    )
    assert answer.status_code == 401 and "detail" in answer.get_json()


def test_the_dashboards_correction_forms_refuse_without_an_admin_session(app, client):
    event_id, person_id = _event(app), _person(app)
    _scan(client, "s1", event_id)
    attendance_id = _attendance_id(app, person_id, event_id)
    for path in (
        f"/dashboard/events/{event_id}/people/{person_id}/status",
        f"/dashboard/events/{event_id}/mark-unmarked",
        f"/dashboard/attendances/{attendance_id}/void",
        f"/dashboard/attendances/{attendance_id}/restore",
        "/dashboard/excuses/1/approve",
        "/dashboard/excuses/1/decline",
    ):
        answer = client.post(path, data={"reason": "r", "status": "absent"})
        assert answer.status_code == 302 and "/dashboard/login" in answer.headers["Location"]
    with app.app_context():
        assert db.session.get(Attendance, attendance_id).version == 1


# --- corrections through the API ----------------------------------------------------------


def test_a_voided_check_in_stops_counting_everywhere_and_can_be_restored(app, client, runner):
    event_id, person_id = _event(app), _person(app)
    _scan(client, "s1", event_id)
    attendance_id = _attendance_id(app, person_id, event_id)
    assert len(client.get(f"/events/{event_id}/attendees", headers=KEY).get_json()) == 1
    counted = client.get("/api/v1/state", headers=KEY).get_json()["data"]["counts"]
    assert counted["attendances"] == 1

    no_reason = client.post(f"/api/v1/attendances/{attendance_id}/void", json={}, headers=KEY)
    assert no_reason.status_code == 422 and "reason" in no_reason.get_json()["error"]
    voided = client.post(
        f"/api/v1/attendances/{attendance_id}/void", json={"reason": "scanned twice"}, headers=KEY
    )
    assert voided.status_code == 200, voided.get_json()
    assert voided.get_json()["data"]["voided"] is True and voided.headers["ETag"] == '"2"'
    again = client.post(
        f"/api/v1/attendances/{attendance_id}/void", json={"reason": "again"}, headers=KEY
    )
    assert again.status_code == 409 and again.get_json()["code"] == "already_voided"

    assert client.get(f"/events/{event_id}/attendees", headers=KEY).get_json() == []
    counted = client.get("/api/v1/state", headers=KEY).get_json()["data"]["counts"]
    assert counted["attendances"] == 0
    moodle = client.get(
        "/api/integrations/lms/moodle/export", query_string={"event_id": event_id}, headers=KEY
    )
    assert list(csv.reader(io.StringIO(moodle.get_data(as_text=True))))[1:] == []

    restored = client.post(
        f"/api/v1/attendances/{attendance_id}/restore", json={"reason": "was right"}, headers=KEY
    )
    assert restored.status_code == 200 and restored.get_json()["data"]["version"] == 3
    assert len(client.get(f"/events/{event_id}/attendees", headers=KEY).get_json()) == 1
    unvoided = client.post(
        f"/api/v1/attendances/{attendance_id}/restore", json={"reason": "x"}, headers=KEY
    )
    assert unvoided.status_code == 409 and unvoided.get_json()["code"] == "not_voided"
    entries = _history(client, attendance_id)
    assert [e["action"] for e in entries] == ["marked", "voided", "restored"]
    assert entries[0]["actor"].startswith("webhook:attendance:")
    assert [e["actor"] for e in entries[1:]] == ["checkout_key", "checkout_key"]
    assert entries[1]["reason"] == "scanned twice"
    assert entries[1]["before"]["voided"] is False and entries[1]["after"]["voided"] is True
    assert _verify(runner).exit_code == 0


def test_unknown_ids_are_404_and_bad_input_is_4xx_in_the_v1_shape(app, client):
    event_id, person_id = _event(app), _person(app)
    for method, path, body in _new_routes(event_id, person_id, 999_999, 999_999):
        if "999999" not in path:
            continue
        answer = getattr(client, method)(path, json=body, headers=KEY)
        assert answer.status_code in (404, 422), (path, answer.get_json())
    assert client.get("/api/v1/events/999999/attendances", headers=KEY).status_code == 404
    unknown_person = client.put(
        f"/api/v1/events/{event_id}/attendances/999999",
        json={"status": "excused", "reason": "r"},
        headers=KEY,
    )
    assert unknown_person.status_code == 404
    assert unknown_person.get_json()["code"] == "person_not_found"
    for body in (
        {"status": "vanished", "reason": "r"},
        {"status": "present"},
        {"status": "present", "reason": "   "},
        {"status": "present", "reason": "r", "extra": 1},
        {"status": "present", "reason": "x" * 2001},
        {"status": "present", "reason": "r", "checked_in_at": "yesterday"},
    ):
        answer = client.put(
            f"/api/v1/events/{event_id}/attendances/{person_id}", json=body, headers=KEY
        )
        assert answer.status_code == 422, (body, answer.get_json())
        assert answer.get_json()["success"] is False
    not_json = client.put(
        f"/api/v1/events/{event_id}/attendances/{person_id}", data="[", headers=KEY
    )
    assert not_json.status_code == 422
    assert rows(app, Attendance) == 0


def test_a_stale_if_match_is_412_and_the_last_writer_wins_without_one(app, client, auth, runner):
    admin = _admin(client, auth, runner)
    event_id, person_id = _event(app), _person(app)
    _scan(client, "s1", event_id)
    attendance_id = _attendance_id(app, person_id, event_id)
    seen = client.get(f"/api/v1/attendances/{attendance_id}", headers=KEY)
    assert seen.headers["ETag"] == '"1"'
    first = client.patch(
        f"/api/v1/attendances/{attendance_id}",
        json={"status": "late", "reason": "came in after the roll call"},
        headers={**admin, "If-Match": seen.headers["ETag"]},
    )
    assert first.status_code == 200 and first.get_json()["data"]["status"] == "late"
    stale = client.patch(
        f"/api/v1/attendances/{attendance_id}",
        json={"status": "excused", "reason": "a stale form"},
        headers={**KEY, "If-Match": '"1"'},
    )
    assert stale.status_code == 412 and stale.get_json()["code"] == "version_mismatch"
    garbage = client.post(
        f"/api/v1/attendances/{attendance_id}/void",
        json={"reason": "r"},
        headers={**KEY, "If-Match": "not-a-version"},
    )
    assert garbage.status_code == 412
    blind = client.patch(
        f"/api/v1/attendances/{attendance_id}",
        json={"status": "present", "reason": "the roll call was wrong"},
        headers=KEY,
    )
    assert blind.status_code == 200 and blind.get_json()["data"]["version"] == 3
    entries = _history(client, attendance_id)
    assert [e["after"]["status"] for e in entries] == ["present", "late", "present"]
    with app.app_context():
        admin_id = db.session.execute(text("SELECT id FROM accounts")).scalar()
    assert entries[1]["actor"] == f"account:{admin_id}"


def test_a_status_for_an_event_not_started_is_409_but_excused_is_allowed(app, client):
    later = _event(app, starts_in=timedelta(days=2))
    person_id = _person(app)
    early = client.put(
        f"/api/v1/events/{later}/attendances/{person_id}",
        json={"status": "absent", "reason": "r"},
        headers=KEY,
    )
    assert early.status_code == 409 and early.get_json()["code"] == "event_not_started"
    assert "only excused" in early.get_json()["error"]
    excused = client.put(
        f"/api/v1/events/{later}/attendances/{person_id}",
        json={"status": "excused", "reason": "away at a conference"},
        headers=KEY,
    )
    assert excused.status_code == 200, excused.get_json()
    data = excused.get_json()["data"]
    assert (data["status"], data["checked_in_at"], data["source"]) == (
        "excused",
        None,
        "correction",
    )


def test_a_manual_mark_and_a_changed_time_follow_the_window_rules(app, client):
    event_id, person_id = _event(app, starts_in=timedelta(minutes=-30)), _person(app)
    manual = client.put(
        f"/api/v1/events/{event_id}/attendances/{person_id}",
        json={"status": "present", "reason": "the scanner was down"},
        headers=KEY,
    )
    assert manual.status_code == 200
    attendance_id = manual.get_json()["data"]["id"]
    with app.app_context():
        start = db.session.get(Attendance, attendance_id).event.start_time
    assert manual.get_json()["data"]["checked_in_at"].startswith(start.strftime("%Y-%m-%dT%H:%M"))

    other = _person(app, "s2")
    _scan(client, "s2", event_id)  # now: 30 minutes after the start, so late
    scanned_id = _attendance_id(app, other, event_id)
    assert client.get(f"/api/v1/attendances/{scanned_id}", headers=KEY).json["data"]["status"] == (
        "late"
    )
    moved = client.patch(
        f"/api/v1/attendances/{scanned_id}",
        json={"checked_in_at": (start + timedelta(minutes=2)).isoformat(), "reason": "clock"},
        headers=KEY,
    )
    assert moved.status_code == 200 and moved.get_json()["data"]["status"] == "present"
    # A status set by a correction stays when the time moves again.
    client.patch(
        f"/api/v1/attendances/{scanned_id}",
        json={"status": "late", "reason": "the teacher says so"},
        headers=KEY,
    )
    kept = client.patch(
        f"/api/v1/attendances/{scanned_id}",
        json={"checked_in_at": (start + timedelta(minutes=1)).isoformat(), "reason": "clock"},
        headers=KEY,
    )
    assert kept.get_json()["data"]["status"] == "late"
    future = client.patch(
        f"/api/v1/attendances/{scanned_id}",
        json={"checked_in_at": (utcnow() + timedelta(days=1)).isoformat(), "reason": "x"},
        headers=KEY,
    )
    assert future.status_code == 422
    nothing = client.patch(f"/api/v1/attendances/{scanned_id}", json={"reason": "x"}, headers=KEY)
    assert nothing.status_code == 422 and nothing.get_json()["code"] == "nothing_to_change"


def _enrol(app, event_id, *person_ids):
    with app.app_context():
        db.session.add_all(Enrolment(student_id=p, event_id=event_id) for p in person_ids)
        db.session.commit()


def test_marking_everyone_unmarked_absent_and_what_the_summaries_say(app, client):
    event_id = _event(app, starts_in=timedelta(hours=-3))  # ended an hour ago
    people = [_person(app, f"s{n}") for n in range(4)]
    _enrol(app, event_id, *people)
    with app.app_context():
        from autocheckin.attendance import corrections

        for index, status in ((0, "present"), (1, "excused")):
            corrections.set_status(
                event_id=event_id,
                person_id=people[index],
                status=status,
                correction=corrections.Correction(actor="test", reason="setup"),
                rules=_rules(app),
            )
    no_status = client.post(
        f"/api/v1/events/{event_id}/attendances/mark-unmarked",
        json={"status": "late", "reason": "r"},
        headers=KEY,
    )
    assert no_status.status_code == 422
    marked = client.post(
        f"/api/v1/events/{event_id}/attendances/mark-unmarked",
        json={"status": "absent", "reason": "roll call at the end"},
        headers=KEY,
    )
    assert marked.status_code == 200 and marked.get_json()["data"]["marked"] == 2
    again = client.post(
        f"/api/v1/events/{event_id}/attendances/mark-unmarked",
        json={"status": "absent", "reason": "roll call at the end"},
        headers=KEY,
    )
    assert again.get_json()["data"]["marked"] == 0  # nobody is unmarked any more
    summary = client.get(
        f"/api/integrations/hr/attendance-summary/{people[1]}", headers=KEY
    ).get_json()
    assert (summary["total_sessions"], summary["excused"], summary["attendance_rate"]) == (
        1,
        1,
        0.0,
    )
    first = client.get(
        f"/api/integrations/hr/attendance-summary/{people[0]}", headers=KEY
    ).get_json()
    assert (first["present"], first["absent"], first["attendance_rate"]) == (1, 0, 100.0)
    third = client.get(
        f"/api/integrations/hr/attendance-summary/{people[2]}", headers=KEY
    ).get_json()
    assert (third["absent"], third["attendance_rate"]) == (1, 0.0)
    moodle = client.get(
        "/api/integrations/lms/moodle/export", query_string={"event_id": event_id}, headers=KEY
    )
    statuses = sorted(row[3] for row in csv.reader(io.StringIO(moodle.get_data(as_text=True))))
    assert statuses == ["Status", "absent", "absent", "excused", "present"]


def _rules(app):
    from autocheckin import settings

    with app.app_context():
        return settings.current().rules


# --- excuses ----------------------------------------------------------------------------------


def test_excuses_from_the_web_and_discord_are_approved_or_declined(app, client, auth, runner):
    event_id = _event(app, starts_in=timedelta(days=1))
    web = auth.headers(email="ann@example.com", name="Ann Lee")
    empty = client.post("/users/me/excuses", json={"event_id": event_id, "reason": ""}, headers=web)
    assert empty.status_code == 422
    unknown = client.post("/users/me/excuses", json={"event_id": 999, "reason": "x"}, headers=web)
    assert unknown.status_code == 404
    submitted = client.post(
        "/users/me/excuses", json={"event_id": event_id, "reason": "dentist"}, headers=web
    )
    assert submitted.status_code == 201 and submitted.get_json()["state"] == "pending"
    twice = client.post(
        "/users/me/excuses", json={"event_id": event_id, "reason": "dentist"}, headers=web
    )
    assert twice.status_code == 409

    registered = client.post(
        "/discord/users/register", json={"name": "Dee", "discord_user_id": DISCORD_ID}
    )
    assert registered.status_code in (200, 201)
    by_bot = client.post(
        f"/discord/excuse/{event_id}",
        query_string={"discord_user_id": DISCORD_ID},
        json={"reason": "travelling"},
    )
    assert by_bot.status_code == 200 and by_bot.get_json()["success"] is True
    bot_twice = client.post(
        f"/discord/excuse/{event_id}",
        query_string={"discord_user_id": DISCORD_ID},
        json={"reason": "travelling"},
    )
    assert bot_twice.status_code == 200 and bot_twice.get_json()["success"] is False

    pending = client.get("/api/v1/excuses", query_string={"state": "pending"}, headers=KEY)
    assert pending.get_json()["data"]["total"] == 2
    web_excuse, bot_excuse = submitted.get_json()["id"], by_bot.get_json()["excuse"]["id"]
    admin = _admin(client, auth, runner)
    approved = client.post(f"/api/v1/excuses/{web_excuse}/approve", json={}, headers=admin)
    assert approved.status_code == 200 and approved.get_json()["data"]["state"] == "approved"
    assert (
        client.post(f"/api/v1/excuses/{web_excuse}/approve", json={}, headers=admin).status_code
        == 409
    )
    no_reason = client.post(f"/api/v1/excuses/{bot_excuse}/decline", json={}, headers=KEY)
    assert no_reason.status_code == 422
    declined = client.post(
        f"/api/v1/excuses/{bot_excuse}/decline", json={"reason": "not a reason"}, headers=KEY
    )
    assert declined.get_json()["data"]["state"] == "declined"
    mine = client.get("/users/me/excuses", headers=web).get_json()
    assert [(e["id"], e["state"]) for e in mine] == [(web_excuse, "approved")]
    with app.app_context():
        (mark,) = db.session.query(Attendance).all()
        assert (mark.status, mark.checked_in_at, mark.version) == ("excused", None, 1)
        (entry,) = db.session.query(AttendanceChange).all()
        assert entry.reason.startswith(f"excuse {web_excuse} approved: dentist")
    checked = client.get(f"/events/{event_id}/check-attendance", headers=web).get_json()
    assert (checked["attended"], checked["status"]) == (False, "excused")
    assert client.get("/users/me/events", headers=web).get_json() == []
    assert _verify(runner).exit_code == 0


# --- the history ------------------------------------------------------------------------------


def test_audit_verify_names_an_entry_edited_behind_the_services_back(app, client, runner):
    event_id = _event(app)
    for n in range(3):
        _person(app, f"s{n}")
        _scan(client, f"s{n}", event_id)
    with app.app_context():
        ids = [a.id for a in db.session.query(Attendance).order_by(Attendance.id)]
    client.post(f"/api/v1/attendances/{ids[1]}/void", json={"reason": "twice"}, headers=KEY)
    client.post(f"/api/v1/attendances/{ids[1]}/restore", json={"reason": "no"}, headers=KEY)
    ok = _verify(runner)
    assert ok.exit_code == 0 and ok.output.startswith("ok: 5 entries over 3 attendances")
    with app.app_context():
        entry_id = db.session.execute(
            text("SELECT id FROM attendance_history WHERE attendance_id = :a AND seq = 2"),
            {"a": ids[1]},
        ).scalar()
        db.session.execute(
            text("UPDATE attendance_history SET reason = 'forged' WHERE id = :id"), {"id": entry_id}
        )
        db.session.commit()
    tampered = _verify(runner)
    assert tampered.exit_code == 1
    assert f"first entry that does not match: entry {entry_id} (attendance {ids[1]}, seq 2)" in (
        tampered.output
    )
    assert "does not match its hash" in tampered.output


def test_audit_verify_notices_a_row_changed_or_an_entry_removed(app, client, runner):
    event_id = _event(app)
    person_id = _person(app)
    _scan(client, "s1", event_id)
    attendance_id = _attendance_id(app, person_id, event_id)
    with app.app_context():
        db.session.execute(
            text("UPDATE attendances SET status = 'late' WHERE id = :id"), {"id": attendance_id}
        )
        db.session.commit()
    changed = _verify(runner)
    assert changed.exit_code == 1 and "differs from its last entry" in changed.output
    with app.app_context():
        db.session.execute(
            text("UPDATE attendances SET status = 'present' WHERE id = :id"), {"id": attendance_id}
        )
        db.session.commit()
    assert _verify(runner).exit_code == 0
    client.post(f"/api/v1/attendances/{attendance_id}/void", json={"reason": "x"}, headers=KEY)
    with app.app_context():
        db.session.execute(
            text("DELETE FROM attendance_history WHERE attendance_id = :a AND seq = 2"),
            {"a": attendance_id},
        )
        db.session.commit()
    removed = _verify(runner)
    assert removed.exit_code == 1 and "history ends at 1" in removed.output


def test_removing_a_person_keeps_their_marks_and_history(app, client, runner):
    event_id, person_id = _event(app), _person(app)
    _scan(client, "s1", event_id)
    with app.app_context(), pytest.raises(IntegrityError):
        db.session.execute(text("DELETE FROM students WHERE id = :id"), {"id": person_id})
        db.session.commit()
    removed = runner.invoke(args=["people", "remove", "s1"])
    assert removed.exit_code == 0, removed.output
    with app.app_context():
        person = db.session.get(Student, person_id)
        assert person.identifier is None and person.email is None
        assert person.deactivated_at is not None
        assert db.session.query(Attendance).count() == 1
    again = post(client, LEGACY, {"student_identifier": "s1", "event_identifier": event_id})
    assert again.status_code == 404  # no scanner can address a removed person
    assert _verify(runner).exit_code == 0


def test_the_cli_corrects_with_a_reason_and_shows_the_history(app, client, runner):
    event_id, person_id = _event(app), _person(app)
    _scan(client, "s1", event_id)
    attendance_id = _attendance_id(app, person_id, event_id)
    missing = runner.invoke(args=["attendance", "void", str(attendance_id)])
    assert missing.exit_code != 0 and "--reason" in missing.output
    voided = runner.invoke(args=["attendance", "void", str(attendance_id), "--reason", "twice"])
    assert voided.exit_code == 0 and "v2: voided" in voided.output
    stale = runner.invoke(
        args=["attendance", "restore", str(attendance_id), "--reason", "x", "--if-version", "1"]
    )
    assert stale.exit_code != 0 and "version 2" in stale.output
    assert (
        runner.invoke(
            args=["attendance", "restore", str(attendance_id), "--reason", "ok"]
        ).exit_code
        == 0
    )
    status = runner.invoke(
        args=["attendance", "status", str(event_id), "s1", "late", "--reason", "r"]
    )
    assert status.exit_code == 0 and "now late" in status.output
    moved = runner.invoke(
        args=["attendance", "time", str(attendance_id), utcnow().isoformat(), "--reason", "clock"]
    )
    assert moved.exit_code == 0, moved.output
    bulk = runner.invoke(
        args=["attendance", "mark-unmarked", str(event_id), "absent", "--reason", "r"]
    )
    assert bulk.exit_code == 0 and "0 marked absent" in bulk.output
    shown = runner.invoke(args=["attendance", "history", str(attendance_id)])
    lines = shown.output.strip().splitlines()
    assert len(lines) == 5 and re.search(r"voided .* by cli:\S+: twice", lines[1])
    assert _verify(runner).exit_code == 0


def test_a_correction_writes_attendance_updated_in_its_own_transaction(app, client, runner):
    subscribed = client.post(
        "/api/webhooks",
        json={
            "name": "corrections",
            "url": "http://127.0.0.1:9/hook",
            "event_type": "attendance.updated",
        },
        headers=KEY,
    )
    assert subscribed.status_code == 201, subscribed.get_json()
    event_id, person_id = _event(app), _person(app)
    _scan(client, "s1", event_id)  # attendance.marked: nobody subscribes to it
    assert rows(app, OutboxEntry) == 0
    attendance_id = _attendance_id(app, person_id, event_id)
    client.post(f"/api/v1/attendances/{attendance_id}/void", json={"reason": "dup"}, headers=KEY)
    with app.app_context():
        (row,) = db.session.query(OutboxEntry).all()
        assert row.event_type == "attendance.updated"
        (item,) = json.loads(row.items) if isinstance(row.items, str) else row.items
        assert (item["before"]["voided"], item["after"]["voided"]) == (False, True)
        assert (item["actor"], item["reason"], item["version"]) == ("checkout_key", "dup", 2)


def test_the_dashboard_event_page_corrects_and_shows_the_history(app, client, auth, runner):
    _admin(client, auth, runner)
    event_id, person_id = _event(app), _person(app)
    _scan(client, "s1", event_id)
    attendance_id = _attendance_id(app, person_id, event_id)
    page = client.get("/dashboard/login")
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page.text)[1]
    signed_in = client.post(
        "/dashboard/login",
        data={
            "email": "boss@example.com",
            "password": "correct horse battery",
            "csrf_token": token,
        },
    )
    assert signed_in.status_code == 302
    event_page = client.get(f"/dashboard/events/{event_id}").text
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', event_page)[1]
    no_reason = client.post(
        f"/dashboard/attendances/{attendance_id}/void", data={"csrf_token": token}
    )
    assert no_reason.status_code == 302
    with app.app_context():
        assert db.session.get(Attendance, attendance_id).voided_at is None
    voided = client.post(
        f"/dashboard/attendances/{attendance_id}/void",
        data={"csrf_token": token, "reason": "scanned by mistake"},
        follow_redirects=True,
    )
    assert f"Attendance {attendance_id} voided" in voided.text
    assert "scanned by mistake" in voided.text and "(check-in voided)" in voided.text
    marked = client.post(
        f"/dashboard/events/{event_id}/people/{person_id}/status",
        data={"csrf_token": token, "status": "excused", "reason": "doctor's note"},
        follow_redirects=True,
    )
    assert "Marked excused" in marked.text and "1 excused" in marked.text
    with app.app_context():
        mark = db.session.get(Attendance, attendance_id)
        assert (mark.status, mark.voided_at, mark.version) == ("excused", None, 3)


def test_the_fast_canonical_form_is_the_generic_one():
    """`history.canonical` builds by template what `canonical_generic` defines; a state
    with an extra key or a wrong type falls back to the generic form (so a tampered entry
    is judged by the definition)."""
    from datetime import UTC, datetime

    from autocheckin.attendance import history

    moment = datetime(2026, 3, 29, 1, 30, 5, 123, tzinfo=UTC)
    state = history.state(
        student_id=7, status="late", checked_in_at=moment, voided=False, status_explicit=True
    )
    cases = [
        {"before": None, "after": state, "actor": "webhook:onetap:ab-1", "reason": None},
        {
            "before": state,
            "after": {**state, "voided": True},
            "actor": "api_key:zoë ✓",
            "reason": 'said "no"\\ ok \u2028 \x7f',
        },
        {"before": state, "after": {**state, "checked_in_at": None}, "actor": "a", "reason": ""},
        {"before": {**state, "extra": 1}, "after": state, "actor": "a", "reason": None},
        {"before": state, "after": {**state, "voided": 1}, "actor": "a", "reason": None},
        {"before": state, "after": state, "actor": "a", "reason": 5},
    ]
    for case in cases:
        entry = {
            "attendance_id": 12,
            "seq": 3,
            "event_id": 4,
            "recorded_at": moment,
            "action": "status_set",
            **case,
        }
        assert history.canonical(entry) == history.canonical_generic(entry), case


def test_a_first_mark_written_by_the_check_in_path_verifies(app, client, runner):
    """`history.write_first_marks` (the check-in path's template) hashes what `canonical`
    defines: entries from every door verify, odd actor text included."""
    event_id = _event(app)
    _person(app, "s1")
    answer = client.post(
        LEGACY,
        json={"student_identifier": "s1", "event_identifier": event_id},
        headers={"X-Request-ID": "req.1:a-b_c"},
    )
    assert answer.status_code == 201
    with app.app_context():
        from autocheckin.attendance import history

        (entry,) = history.entries_of(db.session.connection(), answer.get_json()["attendance_id"])
        assert entry.actor == "webhook:attendance:req.1:a-b_c"
        assert entry.entry_hash == history.chained(history.GENESIS, dict(entry._mapping))
        assert entry.before is None and entry.after["status"] == "present"
    assert _verify(runner).exit_code == 0
