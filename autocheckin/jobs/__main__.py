"""`python -m autocheckin.jobs`: the same schedule as a separate `clock:` process.

For deployments that prefer the web processes to serve only (set SCHEDULER_ENABLED=false
on them). Several clocks are safe: the leader lease lets one run the jobs.
"""

from __future__ import annotations

import logging
import signal

from apscheduler.schedulers.blocking import BlockingScheduler
from dotenv import load_dotenv

from autocheckin import create_app
from autocheckin.jobs import LEADER_LEASE, _Process, build_scheduler, lease
from autocheckin.logs import configure_logging

log = logging.getLogger("autocheckin.jobs")


def main() -> None:
    load_dotenv()
    app = create_app()
    configure_logging(app.config["LOG_LEVEL"], app.config["LOG_FORMAT"])
    scheduler = build_scheduler(app, BlockingScheduler)
    _Process.scheduler = scheduler

    def stop(signum: int, _frame: object) -> None:
        log.info("clock: signal %s, stopping", signum)
        scheduler.shutdown(wait=False)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info("clock started as %s", _Process.holder)
    scheduler.start()
    with app.app_context():
        lease.release(LEADER_LEASE, _Process.holder)


if __name__ == "__main__":
    main()
