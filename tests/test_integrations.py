"""The integration guide's endpoints: login, iCalendar export and feeds, Moodle CSV, HR
summaries, the planned syncs (501), who may call them, and their rate limits."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
from icalendar import Calendar

from autocheckin.attendance.models import Attendance
from autocheckin.auth import accounts
from autocheckin.extensions import db
from autocheckin.integrations import exports
from autocheckin.sync.models import Enrolment
from autocheckin.times import iso, utcnow
from tests.conftest import API_KEY
from tests.helpers import make_event, make_student

PASSWORD = "correct horse battery staple 42"
KEY = {"x-checkout-key": API_KEY}


def _token(client, email: str, *, admin: bool) -> dict[str, str]:
    client.post("/auth/register", json={"email": email, "name": "Ann Lee", "password": PASSWORD})
    if admin:
        accounts.set_web_role(email=email, role="admin")
    answer = client.post("/api/auth/login", json={"email": email, "password": PASSWORD})
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["token_type"] == "bearer"
    return {"Authorization": f"Bearer {answer.get_json()['access_token']}"}


def _guide_error(response, status: int) -> dict:
    body = response.get_json()
    assert response.status_code == status, body
    assert set(body) == {"detail", "status_code", "timestamp", "code"}
    assert body["status_code"] == status
    assert body["timestamp"].endswith("Z")
    return body


# --- who may call ---------------------------------------------------------------------------


def test_an_admin_token_or_the_key_opens_the_family_a_user_token_does_not(app):
    client = app.test_client()
    with app.app_context():
        admin = _token(client, "boss@example.com", admin=True)
        user = _token(client, "ann@example.com", admin=False)
    url = "/api/integrations/calendar/ical"
    assert client.get(url, headers=admin).status_code == 200
    assert client.get(url, headers=KEY).status_code == 200
    assert _guide_error(client.get(url, headers=user), 403)["code"] == "not_admin"
    assert _guide_error(client.get(url), 401)["code"] == "not_authenticated"
    bad = {"Authorization": "Bearer not-a-token"}
    assert _guide_error(client.get(url, headers=bad), 401)["code"] == "invalid_token"
    assert _guide_error(client.get(url, headers={"x-checkout-key": "nope"}), 401)["code"] == (
        "bad_key"
    )


def test_the_login_refuses_bad_credentials_in_the_guides_shape(client):
    wrong = client.post("/api/auth/login", json={"email": "x@example.com", "password": "nope"})
    assert _guide_error(wrong, 401)["detail"] == "Incorrect email or password"
    assert _guide_error(client.post("/api/auth/login", data="{"), 422)["code"] == "unprocessable"


@pytest.mark.parametrize(
    "path",
    [
        "/api/integrations/calendar/google/sync",
        "/api/integrations/calendar/outlook/sync",
        "/api/integrations/lms/canvas/sync",
        "/api/integrations/lms/blackboard/sync",
        "/api/integrations/hr/workday/sync",
        "/api/integrations/hr/bamboohr/sync",
    ],
)
def test_the_planned_syncs_say_501_and_need_credentials(client, path):
    body = _guide_error(client.post(path, headers=KEY, json={}), 501)
    assert body["code"] == "not_implemented"
    assert "not implemented" in body["detail"]
    _guide_error(client.post(path, json={}), 401)
    spec = client.get("/openapi.json").get_json()
    assert "501" in spec["paths"][path]["post"]["responses"]


# --- iCalendar ------------------------------------------------------------------------------


def _events(app):
    base = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    with app.app_context():
        lab = make_event(
            name="Lab", start_time=base, end_time=base + timedelta(hours=2), location="Room 4"
        )
        open_ended = make_event(name="Drop-in", start_time=base + timedelta(days=1))
        make_event(name="Later", start_time=base + timedelta(days=60))
        return lab.id, open_ended.id


def test_ical_export_lists_the_periods_events_with_stable_uids_in_utc(app, client):
    lab, open_ended = _events(app)
    url = "/api/integrations/calendar/ical?start_date=2026-03-01T00:00:00&end_date=2026-03-31"
    response = client.get(url, headers=KEY)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/calendar; charset=utf-8"
    assert response.headers["Content-Disposition"].startswith("attachment; filename=")
    calendar = Calendar.from_ical(response.data)
    assert str(calendar["X-WR-CALNAME"]) == "AutoCheckin events"
    entries = {str(entry["SUMMARY"]): entry for entry in calendar.walk("VEVENT")}
    assert set(entries) == {"Lab", "Drop-in"}
    assert str(entries["Lab"]["UID"]) == f"event-{lab}@autocheckin"
    assert str(entries["Lab"]["LOCATION"]) == "Room 4"
    start, end = entries["Lab"].decoded("DTSTART"), entries["Lab"].decoded("DTEND")
    assert start == datetime(2026, 3, 2, 9, 0, tzinfo=UTC) and start.utcoffset() == timedelta(0)
    assert end - start == timedelta(hours=2)
    dropin = entries["Drop-in"]
    assert dropin.decoded("DTEND") - dropin.decoded("DTSTART") == timedelta(hours=1)
    assert "DTSTAMP" in dropin
    again = Calendar.from_ical(client.get(url, headers=KEY).data)
    assert sorted(str(e["UID"]) for e in again.walk("VEVENT")) == sorted(
        str(e["UID"]) for e in calendar.walk("VEVENT")
    )


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ("start_date=yesterday", "start_date"),
        ("end_date=2026-13-01", "end_date"),
        ("start_date=2026-03-02&end_date=2026-03-01", "end_date"),
    ],
)
def test_bad_dates_are_400_naming_the_parameter(client, query, named):
    response = client.get(f"/api/integrations/calendar/ical?{query}", headers=KEY)
    assert named in _guide_error(response, 400)["detail"]


def test_a_feed_url_works_without_a_header_until_revoked(app, client):
    _events(app)
    created = client.post(
        "/api/integrations/calendar/feeds", headers=KEY, json={"name": "Staff calendar"}
    )
    assert created.status_code == 201
    feed = created.get_json()
    path = feed["url"].removeprefix("http://localhost")
    assert path.startswith("/api/integrations/calendar/feeds/") and path.endswith(".ics")
    polled = client.get(path)
    assert polled.status_code == 200
    assert b"BEGIN:VCALENDAR" in polled.data
    listed = client.get("/api/integrations/calendar/feeds", headers=KEY).get_json()["feeds"]
    assert listed[0]["last_used_at"] is not None
    assert "url" not in listed[0]  # the secret is shown once
    token = path.rsplit("/", 1)[1].removesuffix(".ics")
    assert token not in client.get("/api/integrations/calendar/feeds", headers=KEY).get_data(
        as_text=True
    )
    revoked = client.delete(f"/api/integrations/calendar/feeds/{feed['id']}", headers=KEY)
    assert revoked.get_json()["revoked_at"] is not None
    assert _guide_error(client.get(path), 404)["code"] == "feed_not_found"
    _guide_error(client.post("/api/integrations/calendar/feeds", json={"name": "x"}), 401)
    _guide_error(client.post("/api/integrations/calendar/feeds", headers=KEY, json={}), 400)


# --- Moodle CSV -----------------------------------------------------------------------------


def _attendance_fixture(app):
    """Ann: present at Lab, late at Talk; Bob: enrolled in both, attended neither."""
    now = utcnow()
    with app.app_context():
        ann = make_student(identifier="a1", email="ann@example.com")
        bob = make_student(identifier="b2", email="bob@example.com")
        lab = make_event(
            name="Lab",
            start_time=now - timedelta(days=3),
            end_time=now - timedelta(days=3, hours=-1),
        )
        talk = make_event(
            name="Talk",
            start_time=now - timedelta(days=2),
            end_time=now - timedelta(days=2, hours=-1),
        )
        upcoming = make_event(
            name="Next",
            start_time=now + timedelta(days=1),
            end_time=now + timedelta(days=1, hours=1),
        )
        db.session.add_all(
            [
                Attendance(
                    student_id=ann.id,
                    event_id=lab.id,
                    checked_in_at=lab.start_time,
                    status="present",
                    source='=HYPERLINK("http://evil")',
                ),
                Attendance(
                    student_id=ann.id,
                    event_id=talk.id,
                    checked_in_at=talk.start_time + timedelta(minutes=20),
                    status="late",
                    source="scanner",
                ),
                *(
                    Enrolment(student_id=student.id, event_id=event.id, source="checkout")
                    for student in (ann, bob)
                    for event in (lab, talk, upcoming)
                ),
            ]
        )
        db.session.commit()
        return ann.id, bob.id, lab.id, talk.id, upcoming.id


def _csv(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(response.get_data(as_text=True))))


def test_moodle_export_rows_absences_and_escaping(app, client):
    ann, bob, lab, talk, _ = _attendance_fixture(app)
    response = client.get("/api/integrations/lms/moodle/export", headers=KEY)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert response.headers["Content-Disposition"] == 'attachment; filename="attendance_moodle.csv"'
    rows = _csv(response)
    assert rows[0] == ["Student ID", "Student Email", "Session ID", "Status", "Timestamp", "Method"]
    by_status = sorted((int(r[0]), int(r[2]), r[3]) for r in rows[1:])
    assert by_status == sorted(
        [(ann, lab, "present"), (ann, talk, "late"), (bob, lab, "absent"), (bob, talk, "absent")]
    )
    present = next(r for r in rows if r[3] == "present")
    assert present[5] == '\'=HYPERLINK("http://evil")'  # shown as text, never run
    assert present[4].endswith("Z")
    only_talk = _csv(
        client.get(f"/api/integrations/lms/moodle/export?session_id={talk}", headers=KEY)
    )
    assert {int(r[2]) for r in only_talk[1:]} == {talk}


def test_moodle_export_streams_in_batches(app, client, monkeypatch):
    monkeypatch.setattr(exports, "BATCH_ROWS", 10)
    now = utcnow()
    with app.app_context():
        event = make_event(name="Big", start_time=now - timedelta(hours=2), end_time=now)
        students = [make_student(identifier=f"s{n}", email=f"s{n}@x.io") for n in range(35)]
        db.session.add_all(
            Attendance(student_id=s.id, event_id=event.id, checked_in_at=now, status="present")
            for s in students
        )
        db.session.commit()
    response = client.get("/api/integrations/lms/moodle/export", headers=KEY)
    assert response.is_streamed
    chunks = list(response.response)
    assert len(chunks) >= 4  # header + 10 rows, then 10, 10, 5: not one buffered body
    assert chunks[0].decode().count("\r\n") == 11
    assert sum(chunk.decode().count("\r\n") for chunk in chunks) == 36


# --- HR -------------------------------------------------------------------------------------


def test_hr_summary_counts_present_late_absent_and_the_rate(app, client):
    ann, bob, *_ = _attendance_fixture(app)
    for ref in (str(ann), "a1", "ann@example.com"):
        summary = client.get(f"/api/integrations/hr/attendance-summary/{ref}", headers=KEY)
        assert summary.status_code == 200
        data = summary.get_json()
        # The last 30 days by default: Lab present, Talk late.
        counted = (data["total_sessions"], data["present"], data["late"], data["absent"])
        assert counted == (2, 1, 1, 0)
        assert data["attendance_rate"] == 100.0
        assert data["student_email"] == "ann@example.com"
    # Reaching past tomorrow, Next counts too: enrolled, not over, so not absent.
    until = iso(utcnow() + timedelta(days=2))
    ahead = client.get(
        f"/api/integrations/hr/attendance-summary/{ann}",
        query_string={"end_date": until},
        headers=KEY,
    ).get_json()
    assert (ahead["total_sessions"], ahead["absent"], ahead["attendance_rate"]) == (3, 0, 66.7)
    bob_data = client.get(f"/api/integrations/hr/attendance-summary/{bob}", headers=KEY).get_json()
    assert (bob_data["total_sessions"], bob_data["absent"], bob_data["attendance_rate"]) == (
        2,
        2,
        0.0,
    )
    period = bob_data["period_end"], bob_data["period_start"]
    assert all(moment.endswith("Z") for moment in period)
    nobody = client.get("/api/integrations/hr/attendance-summary/nobody", headers=KEY)
    assert _guide_error(nobody, 404)["code"] == "student_not_found"
    empty = client.get(
        f"/api/integrations/hr/attendance-summary/{ann}?start_date=2020-01-01&end_date=2020-02-01",
        headers=KEY,
    ).get_json()
    assert (empty["total_sessions"], empty["attendance_rate"]) == (0, 0.0)
    backwards = client.get(
        f"/api/integrations/hr/attendance-summary/{ann}?start_date=2026-02-01&end_date=2026-01-01",
        headers=KEY,
    )
    _guide_error(backwards, 400)


def test_hr_summaries_as_csv(app, client):
    ann, bob, *_ = _attendance_fixture(app)
    rows = _csv(client.get("/api/integrations/hr/attendance-summary.csv", headers=KEY))
    assert rows[0] == list(exports.HR_HEADER)
    by_student = {int(row[0]): row for row in rows[1:]}
    assert by_student[ann][4:] == ["2", "1", "0", "1", "0", "100.0"]
    assert by_student[bob][4:] == ["2", "0", "2", "0", "0", "0.0"]


# --- rate limits ----------------------------------------------------------------------------


def test_integration_callers_are_rate_limited_with_headers(make_app):
    client = make_app(INTEGRATION_ADMIN_RATE="3/minute").test_client()
    url = "/api/integrations/calendar/feeds"
    first = client.get(url, headers=KEY)
    assert first.headers["X-RateLimit-Limit"] == "3"
    assert first.headers["X-RateLimit-Remaining"] == "2"
    assert int(first.headers["X-RateLimit-Reset"]) > 0
    client.get(url, headers=KEY)
    client.get(url, headers=KEY)
    refused = client.get(url, headers=KEY)
    assert _guide_error(refused, 429)["code"] == "rate_limited"
    assert int(refused.headers["Retry-After"]) >= 1
    assert refused.headers["X-RateLimit-Remaining"] == "0"


def test_webhooks_are_not_rate_limited_unless_set(make_app):
    body = {"student_identifier": "nobody", "event_identifier": "nothing"}
    open_client = make_app().test_client()
    assert all(
        open_client.post("/api/webhook/attendance/", json=body).status_code == 404 for _ in range(5)
    )
    limited = make_app(WEBHOOK_RATE_LIMIT="2/minute").test_client()
    limited.post("/api/webhook/attendance/", json=body)
    limited.post("/api/webhook/attendance/", json=body)
    refused = limited.post("/api/webhook/attendance/", json=body)
    assert refused.status_code == 429
    assert refused.get_json()["code"] == "rate_limited"  # the webhook family's own shape
    assert "Retry-After" in refused.headers


def test_limits_are_shared_through_redis_when_configured(make_app):
    import redis

    try:
        redis.Redis.from_url("redis://127.0.0.1:6379/15", socket_timeout=1).ping()
    except redis.RedisError as error:
        pytest.skip(f"no Redis on 127.0.0.1:6379: {error}")
    settings = {"REDIS_URL": "redis://127.0.0.1:6379/15", "INTEGRATION_ADMIN_RATE": "2/minute"}
    redis.Redis.from_url(settings["REDIS_URL"]).flushdb()
    one, two = make_app(**settings).test_client(), make_app(**settings).test_client()
    url = "/api/integrations/calendar/feeds"
    assert one.get(url, headers=KEY).status_code == 200
    assert two.get(url, headers=KEY).status_code == 200
    assert one.get(url, headers=KEY).status_code == 429  # the other app's request counted
    redis.Redis.from_url(settings["REDIS_URL"]).flushdb()


def test_iso_times_in_exports_are_utc(app):
    assert iso(datetime(2026, 1, 1, 12, tzinfo=UTC)) == "2026-01-01T12:00:00Z"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/integrations/calendar/ical"),
        ("GET", "/api/integrations/calendar/feeds"),
        ("POST", "/api/integrations/calendar/feeds"),
        ("DELETE", "/api/integrations/calendar/feeds/1"),
        ("GET", "/api/integrations/lms/moodle/export"),
        ("GET", "/api/integrations/hr/attendance-summary/1"),
        ("GET", "/api/integrations/hr/attendance-summary.csv"),
    ],
)
def test_every_integration_route_wants_credentials(client, method, path):
    """Before anything is read or written (the feed URL's own secret is its credential)."""
    _guide_error(client.open(path, method=method, json={"name": "x"}), 401)
    assert client.get("/api/integrations/calendar/feeds/not-a-token.ics").status_code == 404
