"""The global state report (`/api/v1/state`): the upstream link, what sync stored, a page
of the roster, counts, and each job's health. One place computes it for every reader."""

from __future__ import annotations

import hashlib
import threading
import time
import weakref
from typing import Any

from sqlalchemy import func, select

from autocheckin import jobs, state
from autocheckin.attendance.models import Student
from autocheckin.attendance.service import counts
from autocheckin.extensions import db
from autocheckin.jobs.models import JobRun, Lease
from autocheckin.jobs.schemas import JobHealthData
from autocheckin.state import StateEntry
from autocheckin.sync import users

# The seed's `stored_data` times, with their empty values.
STORED_TIMES = ("last_users_fetch", "last_all_session_refresh", "last_individual_session_refresh")
NOT_CONFIGURED_REASON = "CHECKOUT_API_URL is not set: running as a webhook hub, sync jobs skipped"


class _CountsMemo:
    """Counting 100,000 attendances costs milliseconds on every poll of the state; operators
    poll it, so each process reuses its count for `max_age` seconds (per database)."""

    lock = threading.Lock()
    by_engine: weakref.WeakKeyDictionary[Any, tuple[float, dict[str, int]]] = (
        weakref.WeakKeyDictionary()
    )


def recent_counts(*, max_age: float) -> dict[str, int]:
    """`counts()`, at most `max_age` seconds old (0: always fresh)."""
    engine = db.engine
    now = time.monotonic()
    memo = _CountsMemo.by_engine.get(engine)
    if memo is not None and now - memo[0] < max_age:
        return memo[1]
    fresh = counts()
    with _CountsMemo.lock:
        _CountsMemo.by_engine[engine] = (now, fresh)
    return fresh


# Everything the report is drawn from, in one statement of index look-ups and small scans:
# the state store (stored times, the link, the schedule), the people (the roster's names
# and emails), the runs (each job's health), the leases (the leader). The roster itself
# changes only with a fetch, which stamps `last_users_fetch` in the state store.
_VERSION = select(
    select(func.max(StateEntry.updated_at)).scalar_subquery(),
    select(func.max(Student.updated_at)).scalar_subquery(),
    select(func.max(JobRun.id)).scalar_subquery(),
    select(func.max(JobRun.finished_at)).scalar_subquery(),
    select(func.max(Lease.expires_at)).where(Lease.name == jobs.LEADER_LEASE).scalar_subquery(),
    select(func.max(Lease.holder)).where(Lease.name == jobs.LEADER_LEASE).scalar_subquery(),
)


# A version is read at most this often per process: a poll at most a second old.
VERSION_MAX_AGE = 1.0


class _VersionMemo:
    lock = threading.Lock()
    by_engine: weakref.WeakKeyDictionary[Any, tuple[float, tuple]] = weakref.WeakKeyDictionary()


def _version(max_age: float) -> tuple:
    engine = db.engine
    now = time.monotonic()
    memo = _VersionMemo.by_engine.get(engine)
    if memo is not None and now - memo[0] < max_age:
        return memo[1]
    version = tuple(db.session.execute(_VERSION).one())
    with _VersionMemo.lock:
        _VersionMemo.by_engine[engine] = (now, version)
    return version


def state_etag(
    *, upstream_configured: bool, counts_max_age: float, users_limit: int | None, users_offset: int
) -> str:
    """A strong ETag of the report these arguments would give, without building it: it
    changes whenever anything the report shows changes (read at most once a second per
    process, and never older than `counts_max_age`; the counts as `recent_counts` has
    them, like the report's)."""
    version = _version(min(VERSION_MAX_AGE, counts_max_age))
    parts = (
        *version,
        tuple(sorted(recent_counts(max_age=counts_max_age).items())),
        upstream_configured,
        users_limit,
        users_offset,
    )
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:32]


def state_report(
    *,
    upstream_configured: bool,
    counts_max_age: float,
    users_limit: int | None,
    users_offset: int,
) -> dict[str, Any]:
    """The seed's `connected` and `stored_data` (its `autoCheckinUsers` the whole roster,
    or the page `users_limit`/`users_offset` ask for, with the page and total in
    `users_page`), the upstream link, counts and the jobs. No secrets."""
    stored = state.get_many([*STORED_TIMES, state.CONNECTION_KEY])
    link = stored.get(state.CONNECTION_KEY) or {}
    reason = link.get("reason") if upstream_configured else NOT_CONFIGURED_REASON
    roster, total = users.roster_page(limit=users_limit, offset=users_offset)
    return {
        "connected": bool(link.get("connected")) and upstream_configured,
        "stored_data": {
            **{key: stored.get(key) for key in STORED_TIMES},
            "autoCheckinUsers": roster,
        },
        "users_page": {"limit": users_limit, "offset": users_offset, "total": total},
        "upstream": {
            "configured": upstream_configured,
            "reason": reason,
            "checked_at": link.get("checked_at"),
        },
        "counts": recent_counts(max_age=counts_max_age),
        **_schedule(),
    }


def _schedule() -> dict[str, Any]:
    """The next cycle, the leader, and each job's health with its records rendered."""
    schedule = jobs.overview()
    schedule["jobs"] = {
        job_id: JobHealthData.model_validate(health).model_dump(mode="json")
        for job_id, health in schedule["jobs"].items()
    }
    return schedule
