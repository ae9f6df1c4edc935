"""CheckOut sync: the client, users, check-in sessions, the triggers and the run records."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import create_engine

from autocheckin import jobs, state
from autocheckin.attendance.models import Event, Student
from autocheckin.config import database_uri
from autocheckin.extensions import db
from autocheckin.jobs import lease
from autocheckin.jobs.models import JobRun
from autocheckin.sync import connection, sessions, users
from autocheckin.sync.client import CheckOutClient, CheckOutError, CheckOutSettings
from autocheckin.sync.models import Enrolment, UserRefresh
from autocheckin.times import iso, utcnow
from tests.conftest import API_KEY, is_postgres
from tests.fake_checkout import DROP, GARBLED, HANG, SUCCESS_FALSE
from tests.helpers import make_event, make_student


def session(external_id, name, start, end, **extra):
    return {
        "id": external_id,
        "name": name,
        "start_time": iso(start),
        "end_time": iso(end),
        **extra,
    }


def client_for(checkout, **overrides) -> CheckOutClient:
    settings = CheckOutSettings(
        base_url=checkout.url, api_key=API_KEY, read_timeout=0.5, retries=2, backoff_factor=0
    )
    return CheckOutClient(CheckOutSettings(**{**settings.__dict__, **overrides}))


# --- the client -------------------------------------------------------------------------------


def test_client_sends_the_key_and_user_agent(checkout):
    checkout.add_user("a@example.com")
    client = client_for(checkout)
    assert client.users() == [{"email": "a@example.com"}]
    headers = checkout.headers[-1]
    assert headers["x-checkout-key"] == API_KEY
    assert headers["user-agent"] == "AutoCheckin/1.0.0"


@pytest.mark.parametrize("failure", [500, 502, 503, 504, DROP])
def test_client_retries_connection_errors_and_5xx(checkout, failure):
    checkout.fail_next("/users", failure)
    assert client_for(checkout).users() == []
    assert checkout.calls["/users"] == 2


def test_client_honours_429_retry_after(checkout):
    checkout.retry_after = "0"
    checkout.fail_next("/test", 429, 429)
    client_for(checkout).test()
    assert checkout.calls["/test"] == 3


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_client_never_retries_other_4xx(checkout, status):
    checkout.fail_next("/users", status)
    with pytest.raises(CheckOutError) as caught:
        client_for(checkout).users()
    assert caught.value.status == status
    assert checkout.calls["/users"] == 1


def test_client_gives_up_after_the_retries(checkout):
    checkout.failing["/users"] = 503
    with pytest.raises(CheckOutError, match="answered 503"):
        client_for(checkout).users()
    assert checkout.calls["/users"] == 3


@pytest.mark.parametrize(
    ("mode", "message"),
    [(GARBLED, "not JSON"), (SUCCESS_FALSE, "refused: maintenance"), (HANG, "ReadTimeout")],
)
def test_client_turns_bad_answers_into_one_error(checkout, mode, message):
    checkout.hang_seconds = 1.5
    checkout.failing["/users"] = mode
    with pytest.raises(CheckOutError, match=message):
        client_for(checkout, retries=0).users()


def test_client_rejects_a_malformed_users_list(checkout):
    checkout.users = [{"name": "no email"}]
    with pytest.raises(CheckOutError, match="malformed /users"):
        client_for(checkout).users()


def test_client_unreachable_upstream(checkout):
    checkout.stop()
    with pytest.raises(CheckOutError, match="ConnectionError") as raised:
        client_for(checkout, retries=0).test()
    assert raised.value.unreachable


@pytest.mark.parametrize(
    ("failure", "unreachable"), [(503, True), (504, True), (500, False), (404, False)]
)
def test_client_says_which_failures_mean_nobody_is_there(checkout, failure, unreachable):
    checkout.failing["/test"] = failure
    with pytest.raises(CheckOutError) as raised:
        client_for(checkout, retries=0).test()
    assert raised.value.unreachable is unreachable


# --- users ------------------------------------------------------------------------------------


def test_fetch_users_upserts_students_and_stores_only_contract_fields(
    sync_app, checkout, auth_headers
):
    checkout.add_user("ann@example.com", student_identifier="a1", first_name="Ann", token="s3cr3t")
    checkout.add_user("bob@example.com", first_name="Bob", last_name="Ray")
    client = sync_app.test_client()
    response = client.get("/api/v1/fetch-users", headers=auth_headers)
    assert response.status_code == 200
    assert response.get_json() == {
        "success": True,
        "message": "User fetch completed",
        "data": {"success": True, "users": 2, "created": 2, "updated": 0},
    }
    checkout.users[1]["last_name"] = "Rae"
    again = client.get("/api/v1/fetch-users", headers=auth_headers).get_json()["data"]
    assert (again["created"], again["updated"]) == (0, 1)
    with sync_app.app_context():
        students = db.session.query(Student).order_by(Student.id).all()
        assert [(s.email, s.identifier, s.source) for s in students] == [
            ("ann@example.com", "a1", "checkout"),
            ("bob@example.com", None, "checkout"),
        ]
    body = client.get("/api/v1/state", headers=auth_headers)
    data = body.get_json()["data"]
    assert data["connected"] is True
    assert data["stored_data"]["autoCheckinUsers"][0] == {
        "email": "ann@example.com",
        "student_identifier": "a1",
        "first_name": "Ann",
    }
    assert data["stored_data"]["last_users_fetch"].endswith("Z")
    assert "s3cr3t" not in body.get_data(as_text=True)
    assert data["jobs"]["fetch_users"]["last_run"]["status"] == "ok"
    assert data["jobs"]["fetch_users"]["last_run"]["counts"]["users"] == 2


def test_fetch_users_failure_keeps_the_last_good_list(sync_app, checkout, auth_headers):
    checkout.add_user("ann@example.com")
    client = sync_app.test_client()
    client.get("/api/v1/fetch-users", headers=auth_headers)
    checkout.failing["/users"] = 500
    response = client.get("/api/v1/fetch-users", headers=auth_headers)
    assert response.status_code == 502
    assert response.get_json()["success"] is False
    assert response.get_json()["error"] == "GET /users answered 500"
    data = client.get("/api/v1/state", headers=auth_headers).get_json()["data"]
    assert data["connected"] is False
    assert data["upstream"]["reason"] == "GET /users answered 500"
    assert data["stored_data"]["autoCheckinUsers"] == [{"email": "ann@example.com"}]
    assert data["jobs"]["fetch_users"]["last_run"]["status"] == "failed"


def test_fetch_users_links_users_that_webhooks_created(sync_app, checkout):
    with sync_app.app_context():
        make_student(identifier="a1", email="Ann@Example.com")
        checkout.add_user("ann@example.com", student_identifier="a1", first_name="Ann")
        assert users.fetch_users(connection.client_for(sync_app)) == {
            "users": 1,
            "created": 0,
            "updated": 1,
        }
        assert db.session.query(Student).count() == 1


@pytest.mark.skipif(not is_postgres(), reason="SQLite serializes writers: no such race there")
def test_fetch_users_survives_a_webhook_creating_the_same_person_mid_write(
    sync_app, checkout, database_url, monkeypatch
):
    checkout.add_user("ann@example.com", first_name="Ann")
    engine = create_engine(database_uri({"DATABASE_URL": database_url}, ""))
    original, raced = users._new_student, []

    def racing_new_student(session, user):
        if not raced:  # another process commits the same email first
            raced.append(True)
            with engine.begin() as other:
                other.execute(
                    Student.__table__.insert().values(
                        email="ann@example.com",
                        email_key="ann@example.com",
                        first_name="",
                        last_name="",
                        is_admin=False,
                        source="webhook",
                        created_at=utcnow(),
                        updated_at=utcnow(),
                    )
                )
        return original(session, user)

    monkeypatch.setattr(users, "_new_student", racing_new_student)
    with sync_app.app_context():
        counts = users.fetch_users(connection.client_for(sync_app))
        assert counts == {"users": 1, "created": 0, "updated": 1}
        assert db.session.query(Student).one().first_name == "Ann"
    engine.dispose()


# --- sessions ---------------------------------------------------------------------------------


def test_refresh_session_builds_events_enrolments_and_statuses(sync_app, checkout, auth_headers):
    now = utcnow().replace(microsecond=0)
    past = session(
        "s-past", "Monday lab", now - timedelta(days=1), now - timedelta(days=1, hours=-1)
    )
    attended = session("s-went", "Tuesday lab", now - timedelta(hours=3), now - timedelta(hours=2))
    upcoming = session(
        "s-next", "Friday lab", now + timedelta(days=2), now + timedelta(days=2, hours=1)
    )
    huge = {**upcoming, "id": "s-huge", "points": 10**12}  # stored, with the points dropped
    checkout.add_user("ann@example.com", [past, attended, upcoming, {"id": "bad"}, huge])
    checkout.add_user("bob@example.com", [upcoming])
    client = sync_app.test_client()
    client.get("/api/v1/fetch-users", headers=auth_headers)
    with sync_app.app_context():
        sessions.refresh_user(connection.client_for(sync_app), "ann@example.com")
        event = db.session.query(Event).filter_by(external_id="s-went").one()
    checkin = client.post(
        "/api/webhook/attendance/",
        json={
            "student_identifier": "ann@example.com",
            "event_identifier": str(event.id),
            "check_in_time": iso(now - timedelta(hours=3)),
        },
    )
    assert checkin.status_code == 201
    response = client.get("/api/v1/refresh-session/ann@example.com", headers=auth_headers)
    assert response.status_code == 200
    body = response.get_json()
    assert body["message"] == "Checkin session refreshed successfully"
    record = body["data"]["session"]
    assert record["ok"] is True
    assert record["error"] == "1 malformed upstream sessions skipped"
    statuses = {entry["id"]: entry["status"] for entry in record["sessions"]}
    assert statuses == {
        "s-past": "absent",
        "s-went": "present",
        "s-next": "pending",
        "s-huge": "pending",
    }
    client.get("/api/v1/refresh-session/bob@example.com", headers=auth_headers)
    with sync_app.app_context():
        assert db.session.query(Event).filter_by(external_id="s-next").count() == 1
        assert db.session.query(Enrolment).count() == 5
        assert db.session.query(Event).filter_by(external_id="s-huge").one().points == 0
        assert state.get("last_individual_session_refresh") is not None
    logged = [entry for entry in checkout.logs if entry["email"] == "ann@example.com"]
    assert logged[-1]["state"] == "refreshed"
    assert logged[-1]["message"] == "4 sessions: 1 present, 0 late, 2 pending, 1 absent"


def test_unchanged_outcome_is_not_logged_again(sync_app, checkout):
    checkout.add_user("ann@example.com", [])
    with sync_app.app_context():
        client = connection.client_for(sync_app)
        users.fetch_users(client)
        sessions.refresh_user(client, "ann@example.com")
        sessions.refresh_user(client, "ann@example.com")
    assert checkout.calls["/log"] == 1


def test_refresh_session_of_an_unknown_user_is_404(sync_app, auth_headers):
    response = sync_app.test_client().get(
        "/api/v1/refresh-session/nobody@example.com", headers=auth_headers
    )
    assert response.status_code == 404
    assert response.get_json()["error"] == "User with email nobody@example.com not found"


def test_refresh_failure_is_recorded_and_keeps_the_last_sessions(sync_app, checkout, auth_headers):
    now = utcnow()
    checkout.add_user("ann@example.com", [session("s1", "Lab", now, now + timedelta(hours=1))])
    client = sync_app.test_client()
    client.get("/api/v1/refresh", headers=auth_headers)
    checkout.failing["/sessions"] = 503
    response = client.get("/api/v1/refresh-session/ann@example.com", headers=auth_headers)
    assert response.status_code == 502
    assert response.get_json()["success"] is False
    assert response.get_json()["error"] == "GET /sessions answered 503"
    with sync_app.app_context():
        record = db.session.query(UserRefresh).one()
        assert (record.ok, record.error) == (False, "GET /sessions answered 503")
        assert db.session.query(Enrolment).count() == 1  # the last known session stays
    state_of_ann = client.get("/api/v1/state", headers=auth_headers)  # still answers
    assert state_of_ann.status_code == 200
    assert checkout.logs[-1]["state"] == "refresh_failed"


def test_refresh_all_concurrently(sync_app, checkout, auth_headers):
    now = utcnow()
    shared = session("shared", "Assembly", now + timedelta(hours=1), now + timedelta(hours=2))
    for n in range(12):
        checkout.add_user(
            f"user{n}@example.com",
            [shared, session(f"own{n}", f"Tutorial {n}", now, now + timedelta(hours=1))],
        )
    checkout.fail_next("/sessions", 404)  # one user's refresh fails, the rest go on
    with sync_app.app_context():
        state.set_connection(connected=False, reason="down a moment ago")
    response = sync_app.test_client().get("/api/v1/refresh", headers=auth_headers)
    assert response.status_code == 200
    body = response.get_json()
    assert body["message"] == "Checkin sessions refreshed successfully"
    assert body["data"]["counts"] == {"users": 12, "ok": 11, "failed": 1}
    assert len(body["data"]["sessions"]) == 12
    with sync_app.app_context():
        assert db.session.query(Event).filter_by(external_id="shared").count() == 1
        assert db.session.query(Event).count() == 12  # the failed user's own is unknown
        assert state.get("last_all_session_refresh") is not None
        assert state.connection()["connected"] is True  # noted from the pool threads


def test_synced_users_check_in_to_synced_sessions_through_webhooks(
    sync_app, checkout, auth_headers
):
    now = utcnow()
    checkout.add_user(
        "ann@example.com",
        [session("s1", "Seminar", now - timedelta(minutes=5), now + timedelta(hours=1))],
        student_identifier="a77",
    )
    client = sync_app.test_client()
    client.get("/api/v1/refresh", headers=auth_headers)
    checkin = client.post(
        "/api/webhook/onetap/",
        json={
            "action": "record_attendance",
            "data": {"student_identifier": "a77", "event_identifier": "Seminar"},
        },
    )
    assert checkin.status_code == 201, checkin.get_json()
    assert checkin.get_json()["status"] == "present"
    record = client.get("/api/v1/refresh-session/ann@example.com", headers=auth_headers).get_json()
    assert record["data"]["session"]["sessions"][0]["status"] == "present"


# --- triggers, runs and no upstream ----------------------------------------------------------


def test_without_upstream_triggers_say_not_configured_and_jobs_skip(app, auth_headers):
    client = app.test_client()
    for path in ("/api/v1/fetch-users", "/api/v1/refresh"):
        response = client.get(path, headers=auth_headers)
        assert response.status_code == 503
        assert response.get_json()["success"] is False
        assert response.get_json()["error"] == "CheckOut API not configured"
    data = client.get("/api/v1/state", headers=auth_headers).get_json()["data"]
    assert data["jobs"]["fetch_users"]["last_run"]["status"] == "skipped"
    assert data["jobs"]["fetch_users"]["last_run"]["error"] == "CheckOut API not configured"
    assert data["connected"] is False


def test_a_trigger_while_a_dead_holder_keeps_the_lock_answers_202(make_app, checkout, auth_headers):
    """The lock of a process that died mid-run lives until its lease ends: the trigger waits
    TRIGGER_WAIT_SECONDS for it, then says the job is still running."""
    app = make_app(CHECKOUT_API_URL=checkout.url, TRIGGER_WAIT_SECONDS="0.2")
    with app.app_context():
        assert lease.acquire("job:fetch_users", "another-process", timedelta(minutes=5))
    response = app.test_client().get("/api/v1/fetch-users", headers=auth_headers)
    assert response.status_code == 202
    assert response.get_json()["message"] == "User fetch still running"
    assert checkout.calls["/users"] == 0


def test_upstream_down_answers_within_the_timeout_and_records_it(sync_app, checkout, auth_headers):
    checkout.hang_seconds = 3
    checkout.failing["/test"] = HANG
    with sync_app.app_context():
        with pytest.raises(connection.UpstreamFailed, match="ReadTimeout"):
            jobs.trigger(sync_app, "connection_check")
        run = db.session.query(JobRun).one()
        assert (run.job, run.status, run.trigger) == ("connection_check", "failed", "manual")
        assert state.connection()["connected"] is False


def test_prune_job(sync_app):
    with sync_app.app_context():
        assert jobs.trigger(sync_app, "prune") == {
            "webhook_requests": 0,
            "check_in_origins": 0,
            "job_runs": 0,
            "rate_limit_hits": 0,
        }


# --- honest outcomes and the circuit breaker ---------------------------------------------------


def _users(checkout, count: int) -> None:
    now = utcnow()
    for n in range(count):
        checkout.add_user(f"user{n}@example.com", [session(f"s{n}", "Lab", now, now)])


def _refresh_run(app) -> JobRun:
    with app.app_context():
        return db.session.scalars(
            db.select(JobRun).where(JobRun.job == "refresh_sessions").order_by(JobRun.id.desc())
        ).first()


@pytest.mark.parametrize(
    ("failing_users", "status", "error"),
    [
        (0, "ok", None),
        (1, "partial", "1 of 3 users failed"),
        (3, "failed", "all 3 users failed: GET /sessions answered 404"),
    ],
)
def test_a_refresh_says_ok_partial_or_failed(sync_app, checkout, failing_users, status, error):
    _users(checkout, 3)
    checkout.fail_next("/sessions", *[404] * failing_users)
    with sync_app.app_context():
        result = jobs.trigger(sync_app, "refresh_sessions")
    run = _refresh_run(sync_app)
    assert (run.status, run.error) == (status, error)
    assert run.counts == {"users": 3, "ok": 3 - failing_users, "failed": failing_users}
    assert result.outcome == status
    assert run.ok is (status == "ok")


BREAKER = {"REFRESH_BREAKER_THRESHOLD": "3", "REFRESH_CONCURRENCY": "2", "CHECKOUT_RETRIES": "0"}


@pytest.fixture
def down_app(make_app, checkout):
    """50 known users, then upstream goes down (a gateway answering 503 to everything)."""
    app = make_app(CHECKOUT_API_URL=checkout.url, CHECKOUT_READ_TIMEOUT="1", **BREAKER)
    _users(checkout, 50)
    with app.app_context():
        users.fetch_users(connection.client_for(app))
    for path in ("/test", "/sessions", "/log", "/users"):
        checkout.failing[path] = 503
    return app


def test_a_refresh_stops_early_when_upstream_is_down(down_app, checkout, auth_headers):
    response = down_app.test_client().get("/api/v1/refresh", headers=auth_headers)
    assert response.status_code == 502
    assert response.get_json()["error"].startswith("upstream unreachable: 3 calls in a row failed")
    # The breaker opens after 3 failures; at most the 2 calls then in flight follow.
    assert 3 <= checkout.calls["/sessions"] <= 3 + 2
    assert checkout.calls["/log"] == 0  # nothing reported to a down upstream
    run = _refresh_run(down_app)
    assert run.status == "failed"
    assert run.counts["users"] == 50
    assert run.counts["ok"] == 0
    assert run.counts["failed"] + run.counts["not_attempted"] == 50
    assert run.counts["not_attempted"] >= 45
    with down_app.app_context():
        assert state.get("last_all_session_refresh") is None  # nothing was refreshed
        assert state.get(sessions.BREAKER_KEY)["reason"] == "GET /sessions answered 503"


def test_after_the_breaker_opened_the_next_refresh_probes_first(down_app, checkout):
    with down_app.app_context():
        jobs.trigger(down_app, "refresh_sessions")
        calls = dict(checkout.calls)
        still_down = jobs.trigger(down_app, "refresh_sessions")
    assert still_down.outcome == "failed"
    assert still_down.error == (
        "upstream still unreachable, no user refreshed: GET /test answered 503"
    )
    assert checkout.calls["/test"] == calls.get("/test", 0) + 1  # one probe, nothing else
    assert checkout.calls["/sessions"] == calls["/sessions"]
    checkout.failing.clear()  # upstream is back
    with down_app.app_context():
        back = jobs.trigger(down_app, "refresh_sessions")
        assert state.get(sessions.BREAKER_KEY) is None
        assert state.get("last_all_session_refresh") is not None
    assert (back.outcome, back.counts) == ("ok", {"users": 50, "ok": 50, "failed": 0})
    assert len(checkout.logs) == 50  # the reports held back are sent now


# --- enrolments are the truth; the roster is a table ---------------------------------------------


def test_a_session_upstream_drops_loses_its_enrolment(sync_app, checkout):
    now = utcnow()
    lab, talk = (
        session(f"s{n}", name, now, now + timedelta(hours=1))
        for n, name in ((1, "Lab"), (2, "Talk"))
    )
    checkout.add_user("ann@example.com", [lab, talk])
    with sync_app.app_context():
        client = connection.client_for(sync_app)
        users.fetch_users(client)
        first = sessions.refresh_user(client, "ann@example.com")
        checkout.sessions["ann@example.com"] = [talk]
        second = sessions.refresh_user(client, "ann@example.com")
        enrolled = db.session.scalars(db.select(Enrolment.event_id)).all()
        talk_id = db.session.scalar(db.select(Event.id).where(Event.external_id == "s2"))
    assert [entry.external_id for entry in first.sessions] == ["s1", "s2"]
    assert [entry.external_id for entry in second.sessions] == ["s2"]
    assert enrolled == [talk_id]  # the event stays; only the expectation went
    assert checkout.logs[-1]["message"] == "1 sessions: 0 present, 0 late, 1 pending, 0 absent"


def test_enrolments_from_elsewhere_survive_a_refresh(sync_app, checkout):
    now = utcnow()
    checkout.add_user("ann@example.com", [])
    with sync_app.app_context():
        client = connection.client_for(sync_app)
        users.fetch_users(client)
        ann = db.session.scalar(db.select(Student).where(Student.email == "ann@example.com"))
        event = make_event(
            name="Office hours", start_time=now, end_time=now + timedelta(hours=1)
        ).id
        db.session.add(Enrolment(student_id=ann.id, event_id=event, source="manual"))
        db.session.commit()
        view = sessions.refresh_user(client, "ann@example.com")
    assert [entry.event_id for entry in view.sessions] == [event]


def test_the_roster_follows_the_latest_user_list(sync_app, checkout, auth_headers):
    checkout.add_user("ann@example.com")
    checkout.add_user("bob@example.com")
    with sync_app.app_context():
        client = connection.client_for(sync_app)
        users.fetch_users(client)
        checkout.users = [{"email": "bob@example.com"}]  # ann left upstream's list
        users.fetch_users(client)
        result = sessions.refresh_all(sync_app, client, concurrency=2)
        still_a_student = db.session.scalar(
            db.select(Student.id).where(Student.email == "ann@example.com")
        )
    assert [entry.email for entry in result.sessions] == ["bob@example.com"]
    assert still_a_student is not None  # her attendance history is kept
    data = sync_app.test_client().get("/api/v1/state", headers=auth_headers).get_json()["data"]
    assert data["stored_data"]["autoCheckinUsers"] == [{"email": "bob@example.com"}]
    assert data["users_page"]["total"] == 1
