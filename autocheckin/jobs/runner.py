"""Running a job: one run at a time per job (a lease), a run record, and nothing escapes.

`run_recorded` is what both the scheduler and the API's manual triggers call, so a
trigger while the job runs answers 409 instead of running it twice.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from flask import current_app
from sqlalchemy import bindparam, delete, func, select, update

from autocheckin import metrics
from autocheckin.attendance.errors import Conflict, DomainError
from autocheckin.database import write_transaction
from autocheckin.extensions import db
from autocheckin.jobs import lease
from autocheckin.jobs.models import ABANDONED, FAILED, OK, RUNNING, SKIPPED, JobRun
from autocheckin.sync.service import UpstreamNotConfigured
from autocheckin.times import iso, utcnow

log = logging.getLogger("autocheckin.jobs")

ResultT = TypeVar("ResultT")


class JobBusy(Conflict):
    code = "job_running"


def process_identity() -> str:
    """host:pid:random, computed after fork so every worker differs."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def counts_of(result: Any) -> dict[str, Any]:
    if isinstance(result, dict):
        return result
    return dict(getattr(result, "counts", {}) or {})


def run_recorded(
    job_id: str,
    work: Callable[[], ResultT],
    *,
    trigger: str,
    holder: str,
    lock_name: str | None = None,
) -> ResultT:
    """Run `work` under the job's lock and record the run; errors are recorded, then re-raised.

    The lock lives one SCHEDULER_LEASE_SECONDS and is renewed every third of that while the
    work runs, so a process killed mid-run frees it within one lease; the run it left
    behind is then marked abandoned by the next run.
    """
    lock = f"job:{lock_name or job_id}"
    lock_holder = f"{holder}:{uuid.uuid4().hex[:8]}"
    ttl = timedelta(seconds=current_app.config["SCHEDULER_LEASE_SECONDS"])
    if not lease.acquire(lock, lock_holder, ttl):
        started = running_since(job_id)
        raise JobBusy(
            f"{job_id} is already running (started {iso(started) if started else 'just now'})",
            details=iso(started) if started else None,
        )
    with write_transaction() as session:
        _abandon_dead_runs(session, job_id)
        run = JobRun(job=job_id, trigger=trigger, holder=holder, status=RUNNING)
        session.add(run)
    status, error, result = FAILED, None, None
    heartbeat = _Heartbeat(lock, lock_holder, ttl)
    try:
        result = work()
        status = OK
        return result
    except UpstreamNotConfigured as skipped:
        status, error = SKIPPED, skipped.message
        raise
    except DomainError as failure:
        error = failure.message
        raise
    except Exception as failure:
        error = f"{type(failure).__name__}: {failure}"
        raise
    finally:
        heartbeat.stop()
        _finish(run, status, counts_of(result) if status == OK else {}, error)
        lease.release(lock, lock_holder)


def _abandon_dead_runs(session: Any, job_id: str) -> None:
    """We hold the job's lock, so any run of it still marked running has lost its process."""
    session.execute(
        update(JobRun)
        .where(JobRun.job == job_id, JobRun.status == RUNNING)
        .values(
            status=ABANDONED,
            finished_at=utcnow(),
            error="its process stopped renewing the job's lock (killed or lost mid-run)",
        )
    )


class _Heartbeat:
    """Renews a job's lock every third of its TTL while the job runs, in its own thread."""

    def __init__(self, lock: str, holder: str, ttl: timedelta):
        self._app = current_app._get_current_object()  # type: ignore[attr-defined]
        self._lock, self._holder, self._ttl = lock, holder, ttl
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._renew, name=f"heartbeat {lock}", daemon=True)
        self._thread.start()

    def _renew(self) -> None:
        with self._app.app_context():
            while not self._stopped.wait(self._ttl.total_seconds() / 3):
                try:
                    lease.acquire(self._lock, self._holder, self._ttl)
                except Exception:  # noqa: BLE001 - the next beat tries again
                    log.warning("could not renew the lock %s", self._lock)
            db.session.remove()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join()


def _finish(run: JobRun, status: str, counts: dict[str, Any], error: str | None) -> None:
    db.session.rollback()  # a failed unit of work may have left the session unusable
    with write_transaction() as session:
        session.add(run)
        run.status, run.counts, run.error, run.finished_at = status, counts, error, utcnow()
    metrics.JOB_RUNS.labels(run.job, status).inc()
    metrics.JOB_SECONDS.labels(run.job).observe((run.finished_at - run.started_at).total_seconds())
    log.info(
        "job=%s trigger=%s status=%s counts=%s error=%s",
        run.job,
        run.trigger,
        status,
        counts,
        error,
    )


def running_since(job_id: str) -> datetime | None:
    return db.session.scalar(
        select(JobRun.started_at)
        .where(JobRun.job == job_id, JobRun.status == RUNNING)
        .order_by(JobRun.id.desc())
        .limit(1)
    )


def last_runs(job_ids: list[str]) -> dict[str, JobRun]:
    """Each job's newest run, in one statement (the state endpoint is polled)."""
    newest = (
        select(func.max(JobRun.id))
        .where(JobRun.job.in_(bindparam("jobs", expanding=True)))
        .group_by(JobRun.job)
    )
    runs = db.session.scalars(select(JobRun).where(JobRun.id.in_(newest)), {"jobs": job_ids})
    return {run.job: run for run in runs}


def describe_run(run: JobRun) -> dict[str, Any]:
    return {
        "id": run.id,
        "status": run.status,
        "ok": run.ok,
        "trigger": run.trigger,
        "holder": run.holder,
        "started_at": iso(run.started_at),
        "finished_at": iso(run.finished_at),
        "counts": run.counts,
        "error": run.error,
    }


def prune_runs(*, retention: timedelta) -> int:
    with write_transaction() as session:
        result = session.execute(delete(JobRun).where(JobRun.started_at < utcnow() - retention))
    return result.rowcount or 0
