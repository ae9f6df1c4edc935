"""The schedule as data, and the scheduler that runs it.

Every process (gunicorn worker, replica, or a `python -m autocheckin.jobs` clock) may
run a scheduler; a leader lease in the database lets exactly one of them run the jobs.
The lease lasts two thirds of SCHEDULER_LEASE_SECONDS and is renewed every third, so a
holder that dies is replaced within one SCHEDULER_LEASE_SECONDS.
"""

from __future__ import annotations

import atexit
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.events import EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED, JobEvent
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from flask import Flask

from autocheckin import metrics, ratelimits, settings, state
from autocheckin.alerts import evaluation as alerts
from autocheckin.attendance import origins, series
from autocheckin.database import UNAVAILABLE_ERRORS, outage_summary
from autocheckin.findings import detector
from autocheckin.jobs import lease
from autocheckin.jobs.runner import (
    JobBusy,
    job_health,
    join_run,
    prune_runs,
    record_skipped,
    run_recorded,
)
from autocheckin.processes import process_identity
from autocheckin.sync import connection, sessions, users
from autocheckin.times import iso, utcnow
from autocheckin.webhooks import request_log as webhooks

log = logging.getLogger("autocheckin.jobs")

LEADER_LEASE = "scheduler-leader"
SCHEDULE_KEY = "schedule"


@dataclass(frozen=True)
class JobDefinition:
    job_id: str
    run: Callable[[Flask], Any]
    interval_setting: str
    first_run_after: float  # seconds after start-up


def fetch_users(app: Flask) -> dict[str, int]:
    return users.fetch_users(connection.client_for(app))


def refresh_sessions(app: Flask) -> sessions.RefreshResult:
    client = connection.client_for(app)
    return sessions.refresh_all(
        app,
        client,
        concurrency=app.config["REFRESH_CONCURRENCY"],
        breaker_threshold=app.config["REFRESH_BREAKER_THRESHOLD"],
    )


def connection_check(app: Flask) -> dict[str, Any]:
    return connection.check_connection(connection.client_for(app))


def prune(app: Flask) -> dict[str, int]:
    webhook_days = app.config["WEBHOOK_LOG_RETENTION_DAYS"]
    run_days = app.config["JOB_RUN_RETENTION_DAYS"]
    return {
        "webhook_requests": webhooks.prune(retention=timedelta(days=webhook_days)),
        "check_in_origins": origins.prune(retention=timedelta(days=webhook_days)),
        "job_runs": prune_runs(retention=timedelta(days=run_days)),
        "rate_limit_hits": ratelimits.prune_hits(),
    }


def generate_series(app: Flask) -> dict[str, int]:
    """Every series' occurrences up to SERIES_HORIZON ahead; idempotent (unique keys)."""
    return series.generate_all(now=utcnow(), rules=settings.of(app).series)


def detect_findings(app: Flask) -> dict[str, int]:
    """The suspicious-check-in rules over what was stored since the last pass."""
    result = detector.detect(now=utcnow(), rules=settings.of(app).findings)
    return {"seen": result.seen, "created": result.created, "merged": result.merged}


def evaluate_alerts(app: Flask) -> dict[str, int]:
    """Absence alerts for the people whose events ended or marks changed since the last run."""
    return alerts.evaluate_changed(now=utcnow(), rules=settings.of(app).alerts)


JOBS: tuple[JobDefinition, ...] = (
    JobDefinition("fetch_users", fetch_users, "FETCH_USERS_INTERVAL", first_run_after=1),
    JobDefinition("refresh_sessions", refresh_sessions, "REFRESH_INTERVAL", first_run_after=5),
    JobDefinition("connection_check", connection_check, "CONNECTION_CHECK_INTERVAL", 1),
    JobDefinition("prune", prune, "PRUNE_INTERVAL", first_run_after=60),
    JobDefinition("generate_series", generate_series, "SERIES_GENERATE_INTERVAL", 30),
    JobDefinition("detect_findings", detect_findings, "FRAUD_DETECT_INTERVAL", 20),
    JobDefinition(
        "evaluate_alerts", evaluate_alerts, "ALERT_EVALUATE_INTERVAL", first_run_after=45
    ),
)
JOB_IDS = [job.job_id for job in JOBS]
JOBS_BY_ID = {job.job_id: job for job in JOBS}


def trigger(app: Flask, job_id: str, *, holder: str = "api") -> Any:
    """Run a job now, by hand (the API's triggers): the same function, the same lock."""
    job = JOBS_BY_ID[job_id]
    return run_recorded(job_id, lambda: job.run(app), trigger="manual", holder=holder)


def trigger_or_join(app: Flask, job_id: str, *, holder: str = "api") -> Any:
    """`trigger`, or, when the job is running already (the scheduler's tick, another
    worker's trigger), that run's outcome once it ends: a `Joined`, finished or, past
    TRIGGER_WAIT_SECONDS, still running."""
    try:
        return trigger(app, job_id, holder=holder)
    except JobBusy:
        return join_run(job_id, timeout=app.config["TRIGGER_WAIT_SECONDS"])


# --- the scheduler ------------------------------------------------------------------------


class _Process:
    """This process's scheduler and identity; a scheduler is started at most once."""

    lock = threading.Lock()
    scheduler: BaseScheduler | None = None
    holder: str = ""
    app: Flask | None = None


def _lease_timings(app: Flask) -> tuple[timedelta, float]:
    ttl = float(app.config["SCHEDULER_LEASE_SECONDS"])
    return timedelta(seconds=ttl * 2 / 3), ttl / 3


def is_leader(app: Flask) -> bool:
    """Take or renew the leader lease; True when this process holds it."""
    duration, _ = _lease_timings(app)
    is_held = lease.acquire(LEADER_LEASE, _Process.holder, duration)
    metrics.LEADER.labels(_Process.holder).set(1 if is_held else 0)
    return is_held


def _renew_leadership(app: Flask) -> None:
    with app.app_context():
        try:
            is_leader(app)
        except UNAVAILABLE_ERRORS as error:
            log.error(
                "leader lease renewal failed: database unavailable: %s", outage_summary(error)
            )
        except Exception:  # noqa: BLE001 - a database blip must not kill the scheduler thread
            log.exception("leader lease renewal failed")


def _run_scheduled(app: Flask, job: JobDefinition) -> None:
    """The scheduler's entry: only the leader runs; nothing escapes into APScheduler."""
    with app.app_context():
        try:
            if not is_leader(app):
                return
            run_recorded(
                job.job_id, lambda: job.run(app), trigger="schedule", holder=_Process.holder
            )
        except JobBusy as busy:
            _record_skipped_tick(job.job_id, f"busy: {busy.message}")
        except UNAVAILABLE_ERRORS as error:
            log.error("job %s skipped: database unavailable: %s", job.job_id, outage_summary(error))
        except Exception:  # noqa: BLE001 - recorded by run_recorded; the scheduler goes on
            log.warning(
                "job %s did not complete", job.job_id, exc_info=log.isEnabledFor(logging.DEBUG)
            )
        finally:
            _publish_schedule()


def _record_skipped_tick(job_id: str, reason: str) -> None:
    try:
        record_skipped(job_id, holder=_Process.holder, reason=reason)
    except UNAVAILABLE_ERRORS as error:
        log.error("job %s skipped (%s); not recorded: %s", job_id, reason, outage_summary(error))
    except Exception:  # noqa: BLE001 - bookkeeping must not kill the scheduler thread
        log.exception("recording a skipped tick of %s failed", job_id)


def _note_scheduler_skip(app: Flask, event: JobEvent) -> None:
    """APScheduler dropped a tick: the previous one still runs here, or it came too late.

    Recorded by the leader only; the other processes skip every tick by design.
    """
    if event.job_id not in JOBS_BY_ID:
        return
    if event.code == EVENT_JOB_MAX_INSTANCES:
        reason = "busy: the previous run is still going in this process"
    else:
        reason = f"missed: due at {iso(event.scheduled_run_time)}, started too late to run"
    with app.app_context():
        try:
            leader = lease.current(LEADER_LEASE)
        except Exception:  # noqa: BLE001 - the tick's own failure is logged where it happens
            return
        if leader is not None and leader.holder == _Process.holder:
            _record_skipped_tick(event.job_id, reason)


def _publish_schedule() -> None:
    """Store each job's next run time, as the leader's scheduler sees it."""
    scheduler = _Process.scheduler
    if scheduler is None:
        return
    next_runs = {
        job.id: iso(job.next_run_time) for job in scheduler.get_jobs() if job.id in JOBS_BY_ID
    }
    try:
        state.set(SCHEDULE_KEY, next_runs)
    except UNAVAILABLE_ERRORS:
        return  # the tick that failed has said so already, in one line
    except Exception:  # noqa: BLE001
        log.exception("publishing the schedule failed")


def build_scheduler(app: Flask, scheduler_class: type[BaseScheduler]) -> BaseScheduler:
    """A scheduler with every job of `JOBS` plus the lease renewal."""
    _Process.holder = _Process.holder or process_identity()
    _Process.app = app
    scheduler = scheduler_class(timezone=UTC, job_defaults={"coalesce": True, "max_instances": 1})
    scheduler.add_listener(
        lambda event: _note_scheduler_skip(app, event), EVENT_JOB_MAX_INSTANCES | EVENT_JOB_MISSED
    )
    now = datetime.now(UTC)
    _, renew_every = _lease_timings(app)
    scheduler.add_job(
        _renew_leadership,
        "interval",
        args=(app,),
        seconds=renew_every,
        id="lease_renewal",
        next_run_time=now,
        misfire_grace_time=max(1, int(renew_every)),
    )
    for job in JOBS:
        seconds = float(app.config[job.interval_setting])
        scheduler.add_job(
            _run_scheduled,
            "interval",
            args=(app, job),
            seconds=seconds,
            id=job.job_id,
            next_run_time=now + timedelta(seconds=min(job.first_run_after, seconds)),
            misfire_grace_time=max(1, int(seconds / 2)),
        )
    return scheduler


def start_scheduler(app: Flask) -> BaseScheduler | None:
    """Start this process's background scheduler once, when SCHEDULER_ENABLED."""
    if not app.config["SCHEDULER_ENABLED"]:
        log.info("scheduler disabled (SCHEDULER_ENABLED=false)")
        return None
    with _Process.lock:
        if _Process.scheduler is None:
            scheduler = build_scheduler(app, BackgroundScheduler)
            scheduler.start()
            _Process.scheduler = scheduler
            atexit.register(stop_scheduler)
            log.info("scheduler started as %s", _Process.holder)
        return _Process.scheduler


def stop_scheduler(*, wait: bool = False) -> None:
    """Stop the scheduler and hand the leader lease back, so another takes over at once.

    `wait=True` lets running jobs finish first; at exit we do not wait (gunicorn's graceful
    timeout bounds us, and every job is idempotent).
    """
    with _Process.lock:
        scheduler, app = _Process.scheduler, _Process.app
        _Process.scheduler = _Process.app = None
    if scheduler is None:
        return
    if scheduler.running:
        scheduler.shutdown(wait=wait)
    if app is not None and _Process.holder:
        with app.app_context():
            try:
                lease.release(LEADER_LEASE, _Process.holder)
            except Exception:  # noqa: BLE001 - best effort at exit; the lease expires anyway
                log.warning("could not release the leader lease at shutdown")


def overview() -> dict[str, Any]:
    """The schedule part of `/api/v1/state`: next cycle, leader, each job's last and next run."""
    schedule = state.get(SCHEDULE_KEY, {})
    leader = lease.current(LEADER_LEASE)
    health = job_health(JOB_IDS)
    return {
        "next_cycle_run_time": schedule.get("refresh_sessions"),
        "leader": (
            {"holder": leader.holder, "expires_at": iso(leader.expires_at)} if leader else None
        ),
        "jobs": {
            job_id: {**health[job_id], "next_run_time": schedule.get(job_id)} for job_id in JOB_IDS
        },
    }
