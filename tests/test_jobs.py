"""The leader lease and the scheduler: one process runs the jobs, another takes over."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import bindparam, create_engine, select, text

from autocheckin import jobs
from autocheckin.config import database_uri
from autocheckin.database import UTCDateTime
from autocheckin.extensions import db
from autocheckin.jobs import lease
from autocheckin.jobs.models import JobRun
from autocheckin.times import utcnow
from tests.conftest import API_KEY
from tests.servers import BIN, ROOT, free_port, gunicorn, server_env, stop

TTL = timedelta(seconds=30)


def test_lease_is_held_by_one_holder_until_it_expires(app):
    now = utcnow()
    with app.app_context():
        assert lease.acquire("leader", "a", TTL, now=now)
        assert lease.acquire("leader", "a", TTL, now=now + timedelta(seconds=10))  # renew
        assert not lease.acquire("leader", "b", TTL, now=now + timedelta(seconds=39))
        assert lease.acquire("leader", "b", TTL, now=now + timedelta(seconds=41))  # expired
        assert not lease.acquire("leader", "a", TTL, now=now + timedelta(seconds=42))
        assert lease.current("leader", now=now + timedelta(seconds=42)).holder == "b"


def test_released_lease_is_free_at_once(app):
    with app.app_context():
        assert lease.acquire("leader", "a", TTL)
        lease.release("leader", "a")
        assert lease.current("leader") is None
        assert lease.acquire("leader", "b", TTL)


def test_two_apps_on_one_database_share_the_lease(make_app):
    first, second = make_app(), make_app()
    with first.app_context():
        assert lease.acquire("leader", "first", TTL)
    with second.app_context():
        assert not lease.acquire("leader", "second", TTL)


def test_only_the_leader_runs_scheduled_jobs(make_app, monkeypatch):
    app = make_app(CHECKOUT_API_URL="")
    with app.app_context():
        assert lease.acquire(jobs.LEADER_LEASE, "someone-else", TTL)
    monkeypatch.setattr(jobs._Process, "holder", "me")
    jobs._run_scheduled(app, jobs.JOBS_BY_ID["prune"])
    with app.app_context():
        assert db.session.query(JobRun).count() == 0
        lease.release(jobs.LEADER_LEASE, "someone-else")
    jobs._run_scheduled(app, jobs.JOBS_BY_ID["prune"])
    with app.app_context():
        run = db.session.query(JobRun).one()
        assert (run.job, run.status, run.holder, run.trigger) == ("prune", "ok", "me", "schedule")


def test_scheduled_failures_never_escape(make_app, monkeypatch):
    app = make_app()  # no upstream: fetch_users is skipped, and says why
    monkeypatch.setattr(jobs._Process, "holder", "me")
    jobs._run_scheduled(app, jobs.JOBS_BY_ID["fetch_users"])
    with app.app_context():
        run = db.session.query(JobRun).one()
        assert (run.status, run.error) == ("skipped", "CheckOut API not configured")


def test_scheduler_starts_once_per_process_and_not_when_disabled(make_app):
    assert jobs.start_scheduler(make_app()) is None  # SCHEDULER_ENABLED=false in tests
    app = make_app(SCHEDULER_ENABLED="true", FETCH_USERS_INTERVAL="1h")
    try:
        first = jobs.start_scheduler(app)
        assert first is jobs.start_scheduler(app)
        assert {job.id for job in first.get_jobs()} == {*jobs.JOB_IDS, "lease_renewal"}
    finally:
        jobs.stop_scheduler(wait=True)


def _engine(database_url: str):
    return create_engine(database_uri({"DATABASE_URL": database_url}, ""))


@pytest.mark.slow
def test_three_gunicorn_workers_run_each_tick_once(database_url, checkout):
    checkout.add_user("ann@example.com")
    settings = {
        "CHECKOUT_API_URL": checkout.url,
        "CHECKOUT_API_KEY": API_KEY,
        "SCHEDULER_ENABLED": "true",
        "WEB_CONCURRENCY": "3",
        "FETCH_USERS_INTERVAL": "1",
        "REFRESH_INTERVAL": "1h",
        "CONNECTION_CHECK_INTERVAL": "1h",
        "PRUNE_INTERVAL": "1h",
        "SCHEDULER_LEASE_SECONDS": "6",
    }
    engine = _engine(database_url)

    def fetch_runs() -> list:
        with engine.connect() as connection:
            return connection.execute(
                select(JobRun.holder, JobRun.started_at)
                .where(JobRun.job == "fetch_users", JobRun.status != "skipped")
                .order_by(JobRun.id)
            ).all()

    def six_runs() -> list | None:
        found = fetch_runs()
        return found if len(found) >= 6 else None

    try:
        with gunicorn(database_url, **settings):
            runs = _poll(six_runs, 30, "fewer than 6 fetch_users runs")
    finally:
        engine.dispose()
    # Each of the three workers runs a scheduler; one process, the leader, ran every tick.
    assert len({holder for holder, _ in runs}) == 1, runs


def _clock(database_url: str, checkout_url: str) -> subprocess.Popen:
    env = server_env(
        free_port(),
        database_url,
        CHECKOUT_API_URL=checkout_url,
        CHECKOUT_API_KEY=API_KEY,
        FETCH_USERS_INTERVAL="1",
        REFRESH_INTERVAL="1h",
        CONNECTION_CHECK_INTERVAL="1h",
        PRUNE_INTERVAL="1h",
        SCHEDULER_LEASE_SECONDS="3",
    )
    return subprocess.Popen(
        [str(BIN / "python"), "-m", "autocheckin.jobs"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def _leader(engine) -> str | None:
    with engine.connect() as connection:
        # Typed, so the column type renders the time for each database (Python 3.12
        # deprecates sqlite3's own datetime adapter).
        query = text("SELECT holder FROM leases WHERE name = :name AND expires_at > :now")
        row = connection.execute(
            query.bindparams(bindparam("now", type_=UTCDateTime)),
            {"name": jobs.LEADER_LEASE, "now": utcnow()},
        ).first()
    return row[0] if row else None


@pytest.mark.slow
def test_killing_the_leader_hands_over_within_one_ttl(database_url, checkout):
    engine = _engine(database_url)
    clocks = [_clock(database_url, checkout.url) for _ in range(2)]
    try:
        deadline = time.monotonic() + 20
        while (leader := _leader(engine)) is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert leader, "no clock took the lease"
        pid = int(leader.split(":")[1])
        victim = next(clock for clock in clocks if clock.pid == pid)
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait()
        killed_at = time.monotonic()
        while (new_leader := _leader(engine)) in (
            None,
            leader,
        ) and time.monotonic() < killed_at + 10:
            time.sleep(0.05)
        handover = time.monotonic() - killed_at
        assert new_leader not in (None, leader)
        assert handover <= 3 + 0.5, handover  # SCHEDULER_LEASE_SECONDS, plus polling slack
        calls = checkout.calls["/users"]
        _poll(lambda: checkout.calls["/users"] > calls, 5, "the new leader ran no job")
    finally:
        for clock in clocks:
            stop(clock)
        engine.dispose()


def test_a_run_left_by_a_killed_process_is_abandoned_and_its_lock_expires(make_app):
    """The killed process's lock was taken for one lease and never renewed."""
    from autocheckin.jobs.runner import run_recorded

    app = make_app(SCHEDULER_LEASE_SECONDS="3")
    with app.app_context():
        long_ago = utcnow() - timedelta(minutes=1)
        lease.acquire("job:prune", "dead-worker:1", timedelta(seconds=3), now=long_ago)
        db.session.add(
            JobRun(job="prune", trigger="schedule", holder="dead-worker", status="running")
        )
        db.session.commit()
        run_recorded("prune", lambda: {"deleted": 0}, trigger="manual", holder="new-leader")
        runs = db.session.scalars(db.select(JobRun).order_by(JobRun.id)).all()
    assert [run.status for run in runs] == ["abandoned", "ok"]
    assert "stopped renewing" in runs[0].error
    assert runs[0].ok is False


def test_a_running_job_renews_its_lock(make_app):
    """While the work runs, its lock's expiry keeps moving (every third of the lease)."""
    import threading

    from autocheckin.jobs.models import Lease
    from autocheckin.jobs.runner import run_recorded

    app = make_app(SCHEDULER_LEASE_SECONDS="3")
    release = threading.Event()
    seen: list = []

    def work():
        deadline = time.monotonic() + 10
        with app.app_context():
            first = None
            while time.monotonic() < deadline:
                db.session.rollback()
                expires = db.session.get(Lease, "job:prune").expires_at
                first = first or expires
                if expires > first:
                    seen.append((first, expires))
                    break
                time.sleep(0.05)  # polling the condition, bounded by the deadline
            db.session.remove()
        release.set()
        return {}

    with app.app_context():
        run_recorded("prune", work, trigger="manual", holder="me")
    assert release.is_set()
    assert seen, "the lock was never renewed while the job ran"


# --- honest job health ------------------------------------------------------------------------


def _run(app, job: str, status: str, **fields) -> int:
    with app.app_context():
        run = JobRun(job=job, trigger="schedule", holder="me", status=status, **fields)
        db.session.add(run)
        db.session.commit()
        return run.id


def test_state_shows_each_jobs_last_success_failure_streak_and_run_in_progress(
    make_app, auth_headers
):
    app = make_app()
    ok = _run(app, "refresh_sessions", "ok")
    _run(app, "refresh_sessions", "failed", error="upstream unreachable")
    _run(app, "refresh_sessions", "abandoned")
    began = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
    failed = _run(
        app,
        "refresh_sessions",
        "failed",
        error="still down",
        started_at=began,
        finished_at=began + timedelta(seconds=12.5),
    )
    skipped = _run(app, "refresh_sessions", "skipped", error="busy: running")
    running = _run(app, "refresh_sessions", "running")
    _run(app, "fetch_users", "failed")
    _run(app, "fetch_users", "partial")
    response = app.test_client().get("/api/v1/state", headers=auth_headers)
    refresh = response.get_json()["data"]["jobs"]["refresh_sessions"]
    assert refresh["last_run"]["id"] == running
    assert refresh["running"]["id"] == running
    assert refresh["last_completed"]["id"] == failed
    assert refresh["last_completed"]["error"] == "still down"
    assert refresh["last_completed"]["duration_seconds"] == 12.5
    assert refresh["running"]["duration_seconds"] is None
    assert refresh["last_success"]["id"] == ok
    assert refresh["last_skipped"]["id"] == skipped
    assert refresh["consecutive_failures"] == 3  # failed, abandoned, failed since the ok one
    fetch = response.get_json()["data"]["jobs"]["fetch_users"]
    assert fetch["consecutive_failures"] == 0  # a partial run ends a streak…
    assert fetch["last_success"] is None  # …but is not a success
    assert fetch["last_completed"]["status"] == "partial"


def test_a_tick_skipped_because_the_job_is_busy_is_recorded_with_why(make_app, monkeypatch):
    app = make_app(CHECKOUT_API_URL="")
    monkeypatch.setattr(jobs._Process, "holder", "me")
    with app.app_context():
        assert lease.acquire("job:prune", "a-manual-trigger", TTL)
        db.session.add(JobRun(job="prune", trigger="manual", holder="api", status="running"))
        db.session.commit()
    jobs._run_scheduled(app, jobs.JOBS_BY_ID["prune"])
    with app.app_context():
        skipped = db.session.scalars(db.select(JobRun).where(JobRun.status == "skipped")).one()
    assert (skipped.job, skipped.holder, skipped.trigger) == ("prune", "me", "schedule")
    assert skipped.error.startswith("busy: prune is already running (started ")
    assert skipped.finished_at == skipped.started_at


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        ("max_instances", "busy: the previous run is still going in this process"),
        ("missed", "missed: due at 2026-12-02T09:00:00Z, started too late to run"),
    ],
)
def test_ticks_the_scheduler_drops_are_recorded_by_the_leader_only(
    make_app, code, reason, monkeypatch
):
    from datetime import UTC, datetime

    from apscheduler.events import (
        EVENT_JOB_MAX_INSTANCES,
        EVENT_JOB_MISSED,
        JobExecutionEvent,
        JobSubmissionEvent,
    )

    due = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
    if code == "missed":
        event = JobExecutionEvent(EVENT_JOB_MISSED, "refresh_sessions", "default", due)
    else:
        event = JobSubmissionEvent(EVENT_JOB_MAX_INSTANCES, "refresh_sessions", "default", [due])
    app = make_app()
    monkeypatch.setattr(jobs._Process, "holder", "me")
    with app.app_context():
        assert lease.acquire(jobs.LEADER_LEASE, "someone-else", TTL)
    jobs._note_scheduler_skip(app, event)  # not the leader: its skips are by design
    with app.app_context():
        assert db.session.query(JobRun).count() == 0
        lease.release(jobs.LEADER_LEASE, "someone-else")
        assert lease.acquire(jobs.LEADER_LEASE, "me", TTL)
    jobs._note_scheduler_skip(app, event)
    with app.app_context():
        run = db.session.query(JobRun).one()
    assert (run.job, run.status, run.error) == ("refresh_sessions", "skipped", reason)


def _refresh_runs(engine) -> list:
    with engine.connect() as connection:
        return connection.execute(
            select(JobRun.id, JobRun.holder, JobRun.status, JobRun.started_at, JobRun.error)
            .where(JobRun.job == "refresh_sessions", JobRun.status != "skipped")
            .order_by(JobRun.id)
        ).all()


def _poll(condition, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if found := condition():
            return found
        time.sleep(0.05)
    raise AssertionError(f"{what} within {seconds}s")


@pytest.mark.slow
def test_a_worker_killed_mid_refresh_is_replaced_within_one_ttl_and_a_tick(database_url, checkout):
    """Real gunicorn, two workers with schedulers; the one refreshing gets SIGKILL."""
    for n in range(40):
        checkout.add_user(f"user{n}@example.com")
    checkout.latency = 0.25  # one user at a time: a refresh takes ten seconds
    ttl, tick = 3, 1
    settings = {
        "CHECKOUT_API_URL": checkout.url,
        "CHECKOUT_API_KEY": API_KEY,
        "SCHEDULER_ENABLED": "true",
        "WEB_CONCURRENCY": "2",
        "REFRESH_CONCURRENCY": "1",
        "REFRESH_INTERVAL": str(tick),
        "FETCH_USERS_INTERVAL": "1h",
        "CONNECTION_CHECK_INTERVAL": "1h",
        "PRUNE_INTERVAL": "1h",
        "SCHEDULER_LEASE_SECONDS": str(ttl),
    }
    engine = _engine(database_url)
    try:
        with gunicorn(database_url, **settings):
            first = _poll(
                lambda: next((r for r in _refresh_runs(engine) if r.status == "running"), None),
                20,
                "no refresh started",
            )
            os.kill(int(first.holder.split(":")[1]), signal.SIGKILL)
            killed_at = utcnow()
            second = _poll(
                lambda: next((r for r in _refresh_runs(engine) if r.id > first.id), None),
                ttl + tick + 5,
                "no new refresh started",
            )
            abandoned = next(r for r in _refresh_runs(engine) if r.id == first.id)
            skipped = _skipped_refresh_reasons(engine)
    finally:
        engine.dispose()
    assert second.holder != first.holder
    # The dead run's lock expires within one lease; the next tick then takes it.
    # One lease and a tick, plus 2 s for a loaded machine's scheduling (the bug it guards
    # against held the lock for a whole job lease: 15 minutes).
    assert (second.started_at - killed_at).total_seconds() <= ttl + tick + 2
    assert abandoned.status == "abandoned"
    assert "stopped renewing" in abandoned.error
    assert all(reason.startswith("busy: refresh_sessions is already running") for reason in skipped)


def _skipped_refresh_reasons(engine) -> list[str]:
    with engine.connect() as connection:
        return connection.scalars(
            select(JobRun.error).where(JobRun.job == "refresh_sessions", JobRun.status == "skipped")
        ).all()


def test_an_abandoned_run_has_no_duration():
    """Its finish is when another process found it dead, which says nothing of how long
    it ran."""
    from autocheckin.api.schemas import JobRunData

    began = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
    fields = {
        "id": 1,
        "ok": False,
        "trigger": "schedule",
        "holder": "me",
        "started_at": began,
        "finished_at": began + timedelta(minutes=15),
        "counts": {},
        "error": None,
    }
    assert JobRunData(status="failed", **fields).duration_seconds == 900.0
    assert JobRunData(status="abandoned", **fields).duration_seconds is None
