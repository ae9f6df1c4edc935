"""The operator's commands: create-admin, fetch-users, refresh (with progress), prune."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import func, select

from autocheckin.attendance.models import Attendance, Excuse, Student
from autocheckin.auth import accounts
from autocheckin.extensions import db
from autocheckin.jobs.models import JobRun
from autocheckin.sync.models import UserRefresh
from autocheckin.times import iso, utcnow

PASSWORD = "correct horse battery staple 42"


def test_create_admin_prompts_for_a_strong_password_and_makes_an_admin(app):
    runner = app.test_cli_runner()
    weak = runner.invoke(args=["create-admin", "boss@example.com"], input="password\npassword\n")
    assert weak.exit_code != 0 and "password" in weak.output
    made = runner.invoke(
        args=["create-admin", "boss@example.com"], input=f"{PASSWORD}\n{PASSWORD}\n"
    )
    assert made.exit_code == 0, made.output
    assert "boss@example.com: admin" in made.output
    with app.app_context():
        user = accounts.authenticate(email="boss@example.com", password=PASSWORD)
        assert user is not None and user.is_admin
    again = runner.invoke(
        args=["create-admin", "boss@example.com"], input=f"{PASSWORD}\n{PASSWORD}\n"
    )
    assert again.exit_code == 0 and "already" in again.output


def test_fetch_users_and_refresh_run_the_jobs_with_their_records(sync_app, checkout):
    now = utcnow()
    for n in range(3):
        checkout.add_user(
            f"u{n}@example.com",
            [
                {
                    "id": "s1",
                    "name": "Lab",
                    "start_time": iso(now),
                    "end_time": iso(now + timedelta(hours=1)),
                }
            ],
        )
    runner = sync_app.test_cli_runner()
    fetched = runner.invoke(args=["fetch-users"])
    assert fetched.exit_code == 0, fetched.output
    assert "3 users: 3 new, 0 updated" in fetched.output
    refreshed = runner.invoke(args=["refresh"])
    assert refreshed.exit_code == 0, refreshed.output
    assert "ok: {'users': 3, 'ok': 3, 'failed': 0}" in refreshed.output
    one = runner.invoke(args=["refresh", "--email", "u1@example.com"])
    assert one.exit_code == 0 and "u1@example.com: 1 sessions, ok=True" in one.output
    with sync_app.app_context():
        assert db.session.query(UserRefresh).count() == 3
        triggers = {(run.job, run.trigger, run.holder) for run in db.session.query(JobRun)}
    assert ("refresh_sessions", "manual", "cli") in triggers
    assert ("fetch_users", "manual", "cli") in triggers


def test_refresh_with_upstream_down_says_failed_and_exits_nonzero(sync_app, checkout):
    checkout.add_user("u@example.com")
    runner = sync_app.test_cli_runner()
    runner.invoke(args=["fetch-users"])
    checkout.failing["/sessions"] = 404
    failed = runner.invoke(args=["refresh"])
    assert failed.exit_code == 1
    assert "failed" in failed.output


def test_without_upstream_the_sync_commands_say_so(app):
    answer = app.test_cli_runner().invoke(args=["fetch-users"])
    assert answer.exit_code != 0
    assert "CheckOut API not configured" in answer.output


def test_prune(app):
    answer = app.test_cli_runner().invoke(args=["prune"])
    assert answer.exit_code == 0, answer.output
    assert "webhook_requests: 0 removed" in answer.output


def test_demo_fills_a_living_data_set_once(app, auth_headers):
    runner = app.test_cli_runner()
    filled = runner.invoke(args=["demo"])
    assert filled.exit_code == 0, filled.output
    assert "40 students, 6 events" in filled.output
    data = app.test_client().get("/api/v1/state", headers=auth_headers).get_json()["data"]
    assert data["counts"]["students"] == 40  # the demo's admin is an account, not a person
    # Six events, a weekly series of twelve, and three tutorials one person missed.
    assert data["counts"]["events"] == 6 + 12 + 3
    assert data["counts"]["attendances"] > 60
    assert data["users_page"]["total"] == 40
    with app.app_context():
        names = {student.name for student in db.session.scalars(select(Student))}
    assert len(names) == 40  # no two demo students alike on the page
    password = re.search(r"as admin@demo\.example with the password (\S+) ", filled.output)[1]
    with app.app_context():
        admin = accounts.authenticate(email="admin@demo.example", password=password)
        assert admin is not None and admin.is_admin
    deliveries = app.test_client().get(
        "/api/v1/webhooks/deliveries?status=failed", headers=auth_headers
    )
    assert deliveries.get_json()["data"]["count"] >= 3
    statuses = {e["status"] for e in app.test_client().get("/events/").get_json()}
    assert statuses == {"ended", "active", "upcoming"}
    # Corrections: a voided check-in, a manual mark, an excuse approved and one pending.
    assert "1 check-in voided, 1 manual mark, 1 excuse approved and 1 pending" in filled.output
    with app.app_context():
        assert db.session.query(Attendance).filter(Attendance.voided_at.is_not(None)).count() == 1
        assert db.session.query(Attendance).filter_by(source="correction").count() == 2
        assert {e.state for e in db.session.query(Excuse)} == {"approved", "pending"}
    verified = runner.invoke(args=["audit", "verify"])
    assert verified.exit_code == 0 and verified.output.startswith("ok: ")
    weekly = app.test_client().get("/events/series").get_json()["series"]
    assert [(s["title"], s["timezone"]) for s in weekly] == [
        ("Weekly Lab Meeting", "Europe/London")
    ]
    occurrences = app.test_client().get(f"/events/series/{weekly[0]['id']}").get_json()
    occurrences = occurrences["occurrences"]
    assert sum(o["is_cancelled"] for o in occurrences) == 1
    assert sum(o["location"] == "Auditorium" for o in occurrences) == 1
    # A finding through the real rules: the scanner with a slow clock.
    assert "1 suspicious check-in finding(s) open for review" in filled.output
    found = app.test_client().get("/api/v1/findings", headers=auth_headers).get_json()["data"]
    assert [f["rule"] for f in found["findings"]] == ["clock_skew"]
    assert found["findings"][0]["evidence"]["source"] == "gate-scanner-2"
    # The missed tutorials raise an absence alert through the rules, open on the API.
    open_alerts = app.test_client().get("/api/v1/alerts", headers=auth_headers).get_json()
    streaks = [a for a in open_alerts["data"]["alerts"] if a["rule"] == "consecutive_absences"]
    assert any(a["person_identifier"] == "DEMO0040" for a in streaks)
    again = runner.invoke(args=["demo"])
    assert again.exit_code != 0 and "already" in again.output


def test_demo_will_not_fill_a_deployment_unless_told(app, monkeypatch):
    monkeypatch.setenv("RAILWAY_ENVIRONMENT", "production")
    runner = app.test_cli_runner()
    refused = runner.invoke(args=["demo"])
    assert refused.exit_code != 0 and "--on-a-deployment" in refused.output
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Student)) == 0
    assert runner.invoke(args=["demo", "--on-a-deployment"]).exit_code == 0
