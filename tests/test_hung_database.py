"""A hung database (a private PostgreSQL frozen with SIGSTOP) under real gunicorn: /health
answers 503 within seconds, `/` keeps answering, requests that need the database answer
503 instead of holding the threads, and all recovers once the server runs again.

The figures (time to 503, `/` during the freeze) are logged; BENCHMARKS.md has the command.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from autocheckin.config import database_uri
from autocheckin.extensions import db
from tests.private_postgres import private_postgres, server_binaries
from tests.servers import gunicorn

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        server_binaries() is None,
        reason="needs the PostgreSQL server binaries (/usr/lib/postgresql/*/bin: apt install "
        "postgresql) to run a private server it can freeze",
    ),
]

logger = logging.getLogger(__name__)

# The defaults: /health waits DATABASE_HEALTH_TIMEOUT (3 s), a pooled connection's ping
# DATABASE_CONNECT_TIMEOUT (5 s). Each bound is the request's own timeout, with room for a
# busy machine; none is a sleep.
HEALTH_BOUND = 6
NEEDS_DATABASE_BOUND = 15
INDEX_BOUND = 10
RECOVERY_BOUND = 30
DATABASE_REQUESTS = 6  # fewer than gunicorn's 8 threads, more than one worker's 4


def _timed_get(url: str, bound: float) -> tuple[int, float]:
    started = time.monotonic()
    response = requests.get(url, timeout=bound)
    return response.status_code, time.monotonic() - started


def _poll(condition, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"not within {seconds}s"
        time.sleep(0.2)


def _schema(url: str) -> None:
    from autocheckin import models  # noqa: F401, PLC0415 - every table onto db.metadata

    engine = create_engine(database_uri({"DATABASE_URL": url}, ""))
    db.metadata.create_all(engine)
    engine.dispose()


def test_a_frozen_postgres_answers_503_within_seconds_and_recovers():
    with private_postgres() as server:
        _schema(server.url)
        with gunicorn(server.url) as base, ThreadPoolExecutor(DATABASE_REQUESTS + 2) as pool:
            # Both workers hold pooled connections, so the freeze meets the checkout ping.
            warm = list(pool.map(lambda _: _timed_get(f"{base}/events/", 10), range(16)))
            assert {status for status, _ in warm} == {200}
            assert _timed_get(f"{base}/health", 10)[0] == 200

            with server.frozen(at_most=45):
                needing = [
                    pool.submit(_timed_get, f"{base}/events/", NEEDS_DATABASE_BOUND)
                    for _ in range(DATABASE_REQUESTS)
                ]
                health = _timed_get(f"{base}/health", HEALTH_BOUND)
                index = [_timed_get(f"{base}/", INDEX_BOUND) for _ in range(5)]
                answered = [future.result() for future in needing]
                health_again = _timed_get(f"{base}/health", HEALTH_BOUND)

            logger.info(
                "frozen: /health %d in %.2fs, then %d in %.2fs; / %s; /events/ %s",
                *health,
                *health_again,
                [f"{status} {seconds:.2f}s" for status, seconds in index],
                [f"{status} {seconds:.2f}s" for status, seconds in answered],
            )
            assert health[0] == 503
            assert health_again[0] == 503
            assert {status for status, _ in index} == {200}
            assert {status for status, _ in answered} == {503}

            # Running again: healthy, and the pools replaced the connections they dropped.
            _poll(lambda: _timed_get(f"{base}/health", 10)[0] == 200, RECOVERY_BOUND)
            _poll(lambda: _timed_get(f"{base}/events/", 10)[0] == 200, RECOVERY_BOUND)
            after = list(pool.map(lambda _: _timed_get(f"{base}/events/", 10), range(16)))
            assert {status for status, _ in after} == {200}


def test_a_statement_sent_to_a_frozen_postgres_fails_after_its_deadline():
    """The connection is already checked out (no ping): the client's deadline, one second
    past DATABASE_STATEMENT_TIMEOUT, shuts it down; the session rolls back cleanly, and the
    next request after the thaw gets a fresh connection."""
    from autocheckin import create_app  # noqa: PLC0415 - the factory, as conftest builds it
    from tests.conftest import base_config  # noqa: PLC0415 - conftest's own helper

    with private_postgres() as server:
        _schema(server.url)
        app = create_app(base_config(server.url, DATABASE_STATEMENT_TIMEOUT="1s"))
        try:
            with app.app_context():
                assert db.session.execute(text("SELECT 1")).scalar() == 1
                with server.frozen(at_most=20), pytest.raises(OperationalError):
                    db.session.execute(text("SELECT 2"))
                db.session.rollback()
                assert db.session.execute(text("SELECT 3")).scalar() == 3
                db.session.commit()
        finally:
            with app.app_context():
                db.session.remove()
                db.engine.dispose()
