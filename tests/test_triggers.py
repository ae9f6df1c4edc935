"""API triggers called while their job runs join that run: they wait for it (bounded by
TRIGGER_WAIT_SECONDS, then 202 with the run's id) and answer with its outcome, as the
AutoCheckin document promises ("triggers a new fetch" … "User fetch completed")."""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from autocheckin import jobs
from autocheckin.extensions import db
from autocheckin.jobs.models import JobRun

WAITING = "is running (run"


@pytest.fixture
def pool():
    with ThreadPoolExecutor(max_workers=2) as executor:
        yield executor


def _poll(condition, seconds: float = 10.0) -> None:
    """Wait for `condition()` (a fact the test observes), failing after `seconds`."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the condition never held"
        time.sleep(0.01)


def _fetch_calls(checkout) -> int:
    return checkout.calls["/users"]


def test_fetch_users_called_during_a_fetch_answers_with_that_fetch(
    sync_app, checkout, auth_headers, pool, caplog
):
    caplog.set_level(logging.INFO, logger="autocheckin.jobs")
    checkout.add_user("ann@example.com", first_name="Ann")
    checkout.gates["/users"] = gate = threading.Event()
    started = pool.submit(_trigger_in_app, sync_app)
    _poll(lambda: _fetch_calls(checkout) == 1)  # the first fetch waits inside its call
    joined = pool.submit(sync_app.test_client().get, "/api/v1/fetch-users", headers=auth_headers)
    _poll(lambda: any(WAITING in record.getMessage() for record in caplog.records))
    gate.set()
    answer = joined.result(timeout=30)
    assert started.result(timeout=30)["created"] == 1
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json() == {
        "success": True,
        "message": "User fetch completed",
        "data": {"success": True, "users": 1, "created": 1, "updated": 0},
    }
    assert _fetch_calls(checkout) == 1  # joined, not fetched twice
    with sync_app.app_context():
        assert db.session.query(JobRun).filter_by(job="fetch_users").count() == 1


def test_a_trigger_that_waits_too_long_answers_202_with_the_run(
    make_app, checkout, auth_headers, pool
):
    app = make_app(CHECKOUT_API_URL=checkout.url, TRIGGER_WAIT_SECONDS="0.3")
    checkout.add_user("ann@example.com")
    checkout.gates["/users"] = gate = threading.Event()
    started = pool.submit(_trigger_in_app, app)
    _poll(lambda: _fetch_calls(checkout) == 1)
    answer = app.test_client().get("/api/v1/fetch-users", headers=auth_headers)
    gate.set()
    started.result(timeout=30)
    assert answer.status_code == 202, answer.get_json()
    body = answer.get_json()
    assert (body["success"], body["message"]) == (True, "User fetch still running")
    with app.app_context():
        (run,) = db.session.query(JobRun).filter_by(job="fetch_users").all()
    assert (body["data"]["run_id"], body["data"]["status"]) == (run.id, "running")


def test_refresh_session_during_a_fetch_finds_the_user_the_fetch_stores(
    sync_app, checkout, auth_headers, pool, caplog
):
    caplog.set_level(logging.INFO, logger="autocheckin.jobs")
    checkout.add_user("new@example.com", sessions=[])
    checkout.gates["/users"] = gate = threading.Event()
    started = pool.submit(_trigger_in_app, sync_app)
    _poll(lambda: _fetch_calls(checkout) == 1)
    asked = pool.submit(
        sync_app.test_client().get, "/api/v1/refresh-session/new@example.com", headers=auth_headers
    )
    _poll(lambda: any(WAITING in record.getMessage() for record in caplog.records))
    gate.set()
    answer = asked.result(timeout=30)
    started.result(timeout=30)
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["data"]["session"]["email"] == "new@example.com"


def test_refresh_called_during_a_refresh_answers_with_the_stored_sessions(
    sync_app, checkout, auth_headers, pool, caplog
):
    caplog.set_level(logging.INFO, logger="autocheckin.jobs")
    checkout.add_user("ann@example.com", sessions=[])
    client = sync_app.test_client()
    assert client.get("/api/v1/fetch-users", headers=auth_headers).status_code == 200
    checkout.gates["/sessions"] = gate = threading.Event()
    started = pool.submit(_trigger_in_app, sync_app, "refresh_sessions")
    _poll(lambda: checkout.calls["/sessions"] == 1)
    joined = pool.submit(client.get, "/api/v1/refresh", headers=auth_headers)
    _poll(lambda: any(WAITING in record.getMessage() for record in caplog.records))
    gate.set()
    answer = joined.result(timeout=30)
    started.result(timeout=30)
    assert answer.status_code == 200, answer.get_json()
    data = answer.get_json()["data"]
    assert [s["email"] for s in data["sessions"]] == ["ann@example.com"]
    assert data["counts"] == {"users": 1, "ok": 1, "failed": 0}
    assert checkout.calls["/sessions"] == 1


def _trigger_in_app(app, job_id: str = "fetch_users"):
    with app.app_context():
        return jobs.trigger(app, job_id, holder="scheduler")
