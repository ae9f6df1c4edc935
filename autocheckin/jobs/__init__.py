"""The schedule as data, and the scheduler that runs it inside the web process.

`JOBS` is the table of periodic jobs; the sync work adds its entries here. `main.py`
calls `start_scheduler` when SCHEDULER_ENABLED is true.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from apscheduler.schedulers.background import BackgroundScheduler
from flask import Flask

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JobDefinition:
    job_id: str
    run: Callable[[], object]
    interval_setting: str


JOBS: tuple[JobDefinition, ...] = ()


def start_scheduler(app: Flask) -> BackgroundScheduler | None:
    """Start a BackgroundScheduler with one interval job per `JOBS` entry."""
    if not JOBS:
        log.info("scheduler: no periodic jobs defined, not started")
        return None
    scheduler = BackgroundScheduler(timezone="UTC")
    for job in JOBS:
        seconds = app.config[job.interval_setting]
        scheduler.add_job(
            job.run,
            "interval",
            seconds=seconds,
            id=job.job_id,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=max(1, int(seconds / 2)),
        )
    scheduler.start()
    return scheduler
