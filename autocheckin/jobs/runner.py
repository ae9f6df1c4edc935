"""Running a job: one run at a time per job (a lease), a run record, and nothing escapes.

`run_recorded` is what both the scheduler and the API's manual triggers call, so a
trigger while the job runs answers 409 instead of running it twice.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from flask import current_app
from sqlalchemy import Select, and_, delete, func, or_, select, update

from autocheckin import metrics
from autocheckin.database import write_transaction
from autocheckin.errors import Conflict, NotConfigured, ServiceError
from autocheckin.extensions import db
from autocheckin.jobs import lease
from autocheckin.jobs.models import ABANDONED, FAILED, OK, PARTIAL, RUNNING, SKIPPED, JobRun
from autocheckin.processes import process_identity as process_identity  # moved; named here too
from autocheckin.times import iso, utcnow

log = logging.getLogger("autocheckin.jobs")

ResultT = TypeVar("ResultT")


class JobBusy(Conflict):
    """The job's lock is held: a run is in progress (or its dead holder's lease is live)."""

    code = "job_running"


@dataclass(frozen=True)
class Joined:
    """What a trigger that met a run in progress learnt of it: the run (finished, or still
    running when the wait ran out)."""

    run_id: int | None
    status: str
    started_at: datetime | None
    counts: dict[str, Any]
    error: str | None

    @property
    def is_finished(self) -> bool:
        return self.status != RUNNING


# How often a waiting trigger looks at the run again: the run is in the database, and may
# be another worker's or another replica's.
JOIN_POLL_SECONDS = 0.2


def wait_for_lock(lock_name: str, *, timeout: float) -> bool:
    """Wait (at most `timeout` seconds) until nobody holds the job lock `lock_name`; True
    when it came free. Reads end their transaction each time, so each sees the newest."""
    deadline = time.monotonic() + timeout
    while True:
        db.session.rollback()
        if lease.current(f"job:{lock_name}") is None:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(JOIN_POLL_SECONDS)


def join_run(job_id: str, *, timeout: float, lock_name: str | None = None) -> Joined:
    """The run of `job_id` in progress, once it has finished (or as it stands at `timeout`)."""
    running = db.session.scalar(
        select(JobRun.id)
        .where(JobRun.job == job_id, JobRun.status == RUNNING)
        .order_by(JobRun.id.desc())
        .limit(1)
    )
    log.info("%s is running (run %s): waiting up to %g s for it", job_id, running, timeout)
    wait_for_lock(lock_name or job_id, timeout=timeout)
    db.session.rollback()
    query = select(JobRun).where(JobRun.job == job_id)
    query = query.where(JobRun.id == running) if running else query.order_by(JobRun.id.desc())
    run = db.session.scalars(query.limit(1)).first()
    if run is None:
        return Joined(None, RUNNING, None, {}, None)
    return Joined(run.id, run.status, run.started_at, dict(run.counts or {}), run.error)


def counts_of(result: Any) -> dict[str, Any]:
    if isinstance(result, dict):
        return result
    return dict(getattr(result, "counts", {}) or {})


def outcome_of(result: Any) -> tuple[str, str | None]:
    """A result may say it was `partial` or `failed` (with why) without raising: a refresh
    that reached some users, or none, still stores what it got."""
    return getattr(result, "outcome", OK), getattr(result, "error", None)


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
        status, error = outcome_of(result)
        return result
    except NotConfigured as skipped:
        status, error = SKIPPED, skipped.message
        raise
    except ServiceError as failure:
        error = failure.message
        raise
    except Exception as failure:
        error = f"{type(failure).__name__}: {failure}"
        raise
    finally:
        heartbeat.stop()
        _finish(run, status, counts_of(result) if result is not None else {}, error)
        lease.release(lock, lock_holder)


def record_skipped(job_id: str, *, holder: str, reason: str) -> None:
    """A scheduled tick that did not run, and why (busy, missed), as a finished run record."""
    now = utcnow()
    with write_transaction() as session:
        session.add(
            JobRun(
                job=job_id,
                trigger="schedule",
                holder=holder,
                status=SKIPPED,
                started_at=now,
                finished_at=now,
                error=reason,
            )
        )
    metrics.JOB_RUNS.labels(job_id, SKIPPED).inc()
    log.info("job=%s trigger=schedule status=skipped reason=%s", job_id, reason)


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


COMPLETED = (OK, PARTIAL, FAILED, ABANDONED)
FAILURES = (FAILED, ABANDONED)

STATUSES = (RUNNING, SKIPPED, *COMPLETED)


@functools.cache
def _newest_by_status(job_ids: tuple[str, ...]) -> Select:
    """One row: for each (job, status), the newest run's id, each an index probe.

    A GROUP BY would read every run of the week (11,000 at the default schedule); the
    newest id under equalities on the (job, status, id) index is one step down the index
    on SQLite and PostgreSQL alike (written as ORDER BY … LIMIT 1, which PostgreSQL reads
    backwards from the index even before its statistics know the table).
    """
    return select(
        *(
            select(JobRun.id)
            .where(JobRun.job == job, JobRun.status == status)
            .order_by(JobRun.id.desc())
            .limit(1)
            .scalar_subquery()
            .label(f"{job}:{status}")
            for job in job_ids
            for status in STATUSES
        )
    )


def job_health(job_ids: list[str]) -> dict[str, dict[str, JobRun | int | None]]:
    """Per job: the newest run, the run in progress, the last completed run, the last
    success, the last skipped tick, and the failures since the last run that got through.

    Three statements however long the history (the state endpoint is polled), on the
    (job, status, id) index. A `partial` run is not a success, but it ends a failure
    streak: it reached upstream.
    """
    newest: dict[str, dict[str, int]] = {job: {} for job in job_ids}
    row = db.session.execute(_newest_by_status(tuple(job_ids))).one()
    for label, run_id in row._mapping.items():
        job, status = label.split(":")
        if run_id is not None:
            newest[job][status] = run_id
    wanted = [run_id for by_status in newest.values() for run_id in by_status.values()]
    runs = {run.id: run for run in db.session.scalars(select(JobRun).where(JobRun.id.in_(wanted)))}
    streaks = _failure_streaks(
        {
            job: max(by_status.get(OK, 0), by_status.get(PARTIAL, 0))
            for job, by_status in newest.items()
            if any(status in FAILURES for status in by_status)
        }
    )

    def newest_of(job: str, statuses: tuple[str, ...]) -> JobRun | None:
        ids = [newest[job][status] for status in statuses if status in newest[job]]
        return runs[max(ids)] if ids else None

    return {
        job: {
            "last_run": newest_of(job, (RUNNING, SKIPPED, *COMPLETED)),
            "running": newest_of(job, (RUNNING,)),
            "last_completed": newest_of(job, COMPLETED),
            "last_success": newest_of(job, (OK,)),
            "last_skipped": newest_of(job, (SKIPPED,)),
            "consecutive_failures": streaks.get(job, 0),
        }
        for job in job_ids
    }


def _failure_streaks(failing_after: dict[str, int]) -> dict[str, int]:
    """Failed or abandoned runs of each job after the given run id, in one statement."""
    if not failing_after:
        return {}
    after_last_success = or_(
        *(and_(JobRun.job == job, JobRun.id > run_id) for job, run_id in failing_after.items())
    )
    counted = (
        select(JobRun.job, func.count())
        .where(JobRun.status.in_(FAILURES), after_last_success)
        .group_by(JobRun.job)
    )
    return dict(db.session.execute(counted).all())


def prune_runs(*, retention: timedelta) -> int:
    with write_transaction() as session:
        result = session.execute(delete(JobRun).where(JobRun.started_at < utcnow() - retention))
    return result.rowcount or 0
