"""The database unreachable: every family answers 503 in its own shape, /health names the
dependency, and a scheduler tick logs one line instead of a traceback."""

from __future__ import annotations

import logging

import pytest

from autocheckin import create_app, jobs
from tests.conftest import API_KEY, base_config

UNREACHABLE = {
    "sqlite": "sqlite:////nonexistent-directory/autocheckin.db",
    "postgresql": "postgresql://postgres@127.0.0.1:1/none",  # nothing listens on port 1
}


@pytest.fixture(params=sorted(UNREACHABLE))
def outage_app(request):
    app = create_app(base_config(UNREACHABLE[request.param], CHECKOUT_CONNECT_TIMEOUT="1"))
    yield app
    with app.app_context():
        from autocheckin.extensions import db

        db.session.remove()
        db.engine.dispose()


def test_every_family_answers_503_in_its_shape(outage_app, caplog):
    client = outage_app.test_client()
    with caplog.at_level(logging.WARNING):
        state = client.get("/api/v1/state", headers={"x-checkout-key": API_KEY})
        webhook = client.post(
            "/api/webhook/attendance/", json={"student_identifier": "a", "event_identifier": "b"}
        )
        events = client.get("/events/")
        discord = client.get("/discord/attendance/1")
    assert state.status_code == 503
    assert state.get_json()["success"] is False
    assert state.get_json()["code"] == "database_unavailable"
    assert webhook.status_code == 503
    assert webhook.get_json()["code"] == "database_unavailable"
    assert events.status_code == 503
    assert "detail" in events.get_json()
    assert discord.status_code == 503
    assert state.headers["Retry-After"] == "5"
    assert not [record for record in caplog.records if record.exc_info]  # one line each


def test_health_names_the_failed_dependency(outage_app):
    response = outage_app.test_client().get("/health")
    assert response.status_code == 503
    body = response.get_json()
    assert (body["status"], body["database"], body["failed"]) == (
        "unhealthy",
        "unreachable",
        ["database"],
    )
    assert "OperationalError" in body["error"]


def test_a_scheduler_tick_logs_one_line(outage_app, caplog):
    job = jobs.JOBS_BY_ID["prune"]
    with caplog.at_level(logging.INFO, logger="autocheckin.jobs"):
        jobs._run_scheduled(outage_app, job)  # noqa: SLF001 - the scheduler's own entry
    failures = [record for record in caplog.records if record.levelno >= logging.WARNING]
    assert len(failures) == 1
    assert failures[0].exc_info is None
    assert "database unavailable" in failures[0].getMessage()
