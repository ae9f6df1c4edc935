"""Running a job: one run at a time per job (a lease), a run record, and nothing escapes.

`run_recorded` is what both the scheduler and the API's manual triggers call, so a
trigger while the job runs answers 409 instead of running it twice.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import bindparam, delete, func, select

from autocheckin.attendance.errors import Conflict, DomainError
from autocheckin.database import write_transaction
from autocheckin.extensions import db
from autocheckin.jobs import lease
from autocheckin.jobs.models import FAILED, OK, RUNNING, SKIPPED, JobRun
from autocheckin.sync.service import UpstreamNotConfigured
from autocheckin.times import iso, utcnow

log = logging.getLogger("autocheckin.jobs")

ResultT = TypeVar("ResultT")
# A job run may hold its lock this long before another run may start (a dead run's lock).
MAX_RUNTIME = timedelta(minutes=15)


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
    """Run `work` under the job's lock and record the run; errors are recorded, then re-raised."""
    lock = f"job:{lock_name or job_id}"
    lock_holder = f"{holder}:{uuid.uuid4().hex[:8]}"
    if not lease.acquire(lock, lock_holder, MAX_RUNTIME):
        started = running_since(job_id)
        raise JobBusy(
            f"{job_id} is already running (started {iso(started) if started else 'just now'})",
            details=iso(started) if started else None,
        )
    with write_transaction() as session:
        run = JobRun(job=job_id, trigger=trigger, holder=holder, status=RUNNING)
        session.add(run)
    status, error, result = FAILED, None, None
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
        _finish(run, status, counts_of(result) if status == OK else {}, error)
        lease.release(lock, lock_holder)


def _finish(run: JobRun, status: str, counts: dict[str, Any], error: str | None) -> None:
    db.session.rollback()  # a failed unit of work may have left the session unusable
    with write_transaction() as session:
        session.add(run)
        run.status, run.counts, run.error, run.finished_at = status, counts, error, utcnow()
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
