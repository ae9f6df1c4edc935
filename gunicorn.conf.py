"""gunicorn settings; every value can be overridden from the environment (Railway sets PORT)."""

import gc
import os
import re
import tempfile

from dotenv import load_dotenv
from gunicorn.glogging import Logger

# The same .env as the app (main.py), read before PORT: gunicorn binds before main.py runs.
load_dotenv(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".env"))

# Railway and most hosts want every interface; GUNICORN_BIND narrows it (tests use 127.0.0.1).
bind = os.environ.get("GUNICORN_BIND") or f"[::]:{os.environ.get('PORT', '5000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
# Railway stops the old deployment RAILWAY_DEPLOYMENT_DRAINING_SECONDS after SIGTERM (0 by
# default: at once); finish in-flight requests a little before that, when it is set.
_draining = int(os.environ.get("RAILWAY_DEPLOYMENT_DRAINING_SECONDS") or 0)
graceful_timeout = int(
    os.environ.get("GUNICORN_GRACEFUL_TIMEOUT") or (max(1, _draining - 2) if _draining else 20)
)
keepalive = 5


class AccessLogger(Logger):
    """gunicorn's logger, but a request whose path holds a secret (a calendar feed's URL is
    its credential) is logged with the path the app left in its environ, the feed's id, or
    with the secret cut out. Not imported from the app: that would load it in the master."""

    SECRET_PATH = re.compile(r"(/calendar/feeds/)[^/?#\s]+\.ics")  # as autocheckin.logs

    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        path = environ.get("autocheckin.logged_path") or self.SECRET_PATH.sub(
            r"\1<secret>.ics", environ.get("PATH_INFO") or ""
        )
        raw = self.SECRET_PATH.sub(r"\1<secret>.ics", environ.get("RAW_URI") or "")
        if environ.get("autocheckin.logged_path"):
            raw = path + (f"?{environ['QUERY_STRING']}" if environ.get("QUERY_STRING") else "")
        atoms["U"] = path
        atoms["r"] = f"{environ['REQUEST_METHOD']} {raw} {environ['SERVER_PROTOCOL']}"
        return atoms


logger_class = AccessLogger
accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
# Heartbeat files on tmpfs, as gunicorn's docs advise for containers.
if os.path.isdir("/dev/shm"):  # noqa: S108 - not a temp file, gunicorn's heartbeat dir
    worker_tmp_dir = "/dev/shm"  # noqa: S108


def on_starting(server):
    """Workers write their metrics to one fresh directory, so a scrape sums them all."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="autocheckin-metrics-")


def child_exit(server, worker):
    """A dead worker's live gauges (the leader flag) stop counting."""
    # prometheus-client picks its storage (this process, or the shared directory) when first
    # imported: never at the top, before on_starting sets PROMETHEUS_MULTIPROC_DIR.
    from prometheus_client import multiprocess  # noqa: PLC0415 - see above

    multiprocess.mark_process_dead(worker.pid)


def post_worker_init(worker):
    """Start the scheduler and the outbound sender in each worker, after fork (threads do
    not survive it); the leader lease picks one scheduler to run jobs.

    The app's own objects (SQLAlchemy's metadata, compiled statements, Flask's maps) never
    die: `gc.freeze()` takes them out of the collector's sight, which cut the garbage
    collector's share of a 1,000-item batch from about a third to a tenth (BENCHMARKS.md).
    """
    # Imported in the worker, after fork, like the app: at the top they would load the app's
    # modules, prometheus-client among them (see child_exit), into the master at start-up.
    from autocheckin.jobs import start_scheduler  # noqa: PLC0415 - see above
    from autocheckin.outbound.sender import start_sender  # noqa: PLC0415 - see above

    gc.freeze()
    start_scheduler(worker.wsgi)
    start_sender(worker.wsgi)


def worker_exit(server, worker):
    """Hand the leader lease back on a clean exit, so another worker takes over at once;
    wait for the outbound attempts under way and record them, within the graceful timeout
    (the master kills the worker when it is over; a second is left for the rest)."""
    from autocheckin.jobs import stop_scheduler  # noqa: PLC0415 - the worker's, as above
    from autocheckin.outbound.sender import stop_sender  # noqa: PLC0415 - the worker's

    stop_scheduler()
    stop_sender(timeout=max(1, server.cfg.graceful_timeout - 1))
