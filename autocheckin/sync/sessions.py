"""Refreshing users' check-in sessions from CheckOut.

Each upstream session becomes an event (one per upstream id, however many users share
it) and each user it lists an enrolment; a session upstream stops listing loses its
enrolment. A user's sessions are then read back from enrolments, events and attendances
(`session_views`), never stored apart from them. Every step is idempotent, so a job and a
manual trigger run the very same code.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from flask import Flask
from sqlalchemy import and_, bindparam, select

from autocheckin import state
from autocheckin.attendance.errors import NotFound
from autocheckin.attendance.models import Attendance, Event, Student, normalize_key
from autocheckin.database import dialect_insert, write_transaction
from autocheckin.extensions import db
from autocheckin.outbound import announcements
from autocheckin.sync import reports, users
from autocheckin.sync.client import CheckOutClient, CheckOutError
from autocheckin.sync.connection import Breaker, UpstreamFailed, never_open
from autocheckin.sync.models import Enrolment, UserRefresh
from autocheckin.sync.reports import ABSENT, PENDING
from autocheckin.times import iso, parse_iso, utcnow

log = logging.getLogger(__name__)

SOURCE = "checkout"
MAX_POINTS = 1_000_000  # as the webhooks allow; an int32 column everywhere
BATCH_SIZE = 200
# A refresh's outcome: every user refreshed, some failed, or none (or upstream unreachable).
OK, PARTIAL, FAILED = "ok", "partial", "failed"
# Set when a refresh's circuit breaker opened; the next refresh probes `GET /test` first.
BREAKER_KEY = "refresh_breaker"


@dataclass(frozen=True)
class SessionView:
    """An event the user is enrolled in, with their status there."""

    event_id: int
    external_id: str | None  # the upstream session's id
    name: str
    start_time: datetime
    end_time: datetime | None
    status: str  # present, late, pending or absent
    checked_in_at: datetime | None


@dataclass(frozen=True)
class UserSessions:
    """A user's check-in session: the last refresh's bookkeeping and their sessions."""

    email: str
    student_identifier: str | None
    refreshed_at: datetime | None
    ok: bool
    error: str | None
    sessions: list[SessionView]


@dataclass
class RefreshResult:
    counts: dict[str, int]
    sessions: list[UserSessions] = field(default_factory=list)
    outcome: str = OK
    error: str | None = None


@dataclass(frozen=True)
class Fetched:
    """One user's upstream answer, fetched by a pool thread, waiting to be stored."""

    student_id: int
    email: str
    identifier: str | None
    upstream: list[dict[str, Any]] | None = None
    error: str | None = None
    attempted: bool = True


def _event_fields(raw: dict[str, Any]) -> dict[str, Any] | None:
    """An upstream session as event fields, or None when it cannot be one."""
    try:
        start_time = parse_iso(raw["start_time"])
        end_time = parse_iso(raw["end_time"]) if raw.get("end_time") else None
        external_id, name = str(raw["id"]), str(raw["name"]).strip()
    except (KeyError, TypeError, ValueError, OverflowError):
        return None
    if not name or not external_id or (end_time is not None and end_time <= start_time):
        return None
    points = raw.get("points")
    if not isinstance(points, int) or isinstance(points, bool) or abs(points) > MAX_POINTS:
        points = 0
    return {
        "external_id": external_id[:100],
        "name": name[:200],
        "start_time": start_time,
        "end_time": end_time,
        "event_type": str(raw.get("event_type") or "General")[:100],
        "location": str(raw.get("location") or "")[:200],
        "points": points,
    }


class EventCache:
    """Upstream sessions already upserted as events in this refresh run: external id →
    (fields, event id).

    Thousands of users share a few hundred sessions; each is written once per run, and
    the new ones of a batch in one statement (the writer thread pays a GIL hand-off per
    statement while the fetch threads run, so statements are what cost).
    """

    def __init__(self) -> None:
        self._known: dict[str, tuple[tuple, int]] = {}

    def ensure(self, session: Any, upstream: list[dict[str, Any]], now: datetime) -> None:
        """Upsert every event not yet written in this run (or changed since)."""
        fresh: dict[str, dict[str, Any]] = {}
        for fields in upstream:
            known = self._known.get(fields["external_id"])
            if known is None or known[0] != tuple(fields.values()):
                fresh[fields["external_id"]] = fields
        if not fresh:
            return
        table = Event.__table__
        earlier = announcements.sessions_before_sync(session, list(fresh))
        rows = [
            {**fields, "source": SOURCE, "description": "", "updated_at": now}
            for fields in fresh.values()
        ]
        statement = dialect_insert(session)(table)
        statement = statement.on_conflict_do_update(
            index_elements=["external_id"],
            set_={name: statement.excluded[name] for name in rows[0] if name != "external_id"},
        ).returning(table.c.external_id, table.c.id)
        for external_id, event_id in session.execute(statement, rows):
            self._known[external_id] = (tuple(fresh[external_id].values()), event_id)
        announcements.sessions_synced(session, earlier, fresh, self.event_id)

    def event_id(self, external_id: str) -> int:
        return self._known[external_id][1]


# --- a user's sessions, read from enrolments, events and attendances -------------------------

_SESSION_VIEWS = (
    select(
        Enrolment.student_id,
        Event.id,
        Event.external_id,
        Event.name,
        Event.start_time,
        Event.end_time,
        Attendance.status,
        Attendance.checked_in_at,
    )
    .join(Event, Event.id == Enrolment.event_id)
    .outerjoin(
        Attendance,
        and_(
            Attendance.student_id == Enrolment.student_id,
            Attendance.event_id == Event.id,
            Attendance.voided_at.is_(None),  # a voided check-in is no mark
        ),
    )
    .where(Enrolment.student_id.in_(bindparam("students", expanding=True)))
    .order_by(Enrolment.student_id, Event.start_time, Event.id)
)


def session_views(
    session: Any, student_ids: list[int], now: datetime
) -> dict[int, list[SessionView]]:
    """Each student's sessions (the events they are enrolled in) with their status: the
    live mark's (present, late, excused, absent), else pending until the event ends, then
    absent."""
    views: dict[int, list[SessionView]] = {student_id: [] for student_id in student_ids}
    if not student_ids:
        return views
    for row in session.execute(_SESSION_VIEWS, {"students": student_ids}):
        student_id, event_id, external_id, name, start, end, attended, checked_in_at = row
        if attended is None:
            attended = PENDING if end is None or now <= end else ABSENT
        views[student_id].append(
            SessionView(event_id, external_id, name, start, end, attended, checked_in_at)
        )
    return views


def _user_sessions(user: Fetched, refresh: UserRefresh, sessions: list) -> UserSessions:
    return UserSessions(
        email=user.email,
        student_identifier=user.identifier,
        refreshed_at=refresh.refreshed_at,
        ok=refresh.ok,
        error=refresh.error,
        sessions=sessions,
    )


# --- storing a batch of answers -------------------------------------------------------------

Stored = tuple[Fetched, UserRefresh, list[SessionView]]


def _store_batch(batch: list[Fetched], now: datetime, events: EventCache) -> list[Stored]:
    """Store many users' answers in one write transaction; a failed user keeps its
    enrolments (its last known sessions) and gets the failure in its bookkeeping."""
    if not batch:
        return []
    answered = {
        user.student_id: [f for f in map(_event_fields, user.upstream) if f is not None]
        for user in batch
        if user.upstream is not None
    }
    student_ids = [user.student_id for user in batch]
    with write_transaction() as session:
        refreshes = {
            refresh.student_id: refresh
            for refresh in session.scalars(
                select(UserRefresh).where(UserRefresh.student_id.in_(student_ids))
            )
        }
        events.ensure(session, [fields for valid in answered.values() for fields in valid], now)
        expected = {
            (student_id, events.event_id(fields["external_id"]))
            for student_id, valid in answered.items()
            for fields in valid
        }
        added = _sync_enrolments(session, list(answered), expected)
        announcements.enrolments_synced(session, added, batch, answered, events.event_id)
        for user in batch:
            refresh = refreshes.get(user.student_id)
            if refresh is None:
                refresh = refreshes[user.student_id] = UserRefresh(student_id=user.student_id)
                session.add(refresh)
            refresh.refreshed_at = now
            if user.upstream is None:
                refresh.ok, refresh.error = False, user.error
            else:
                skipped = len(user.upstream) - len(answered[user.student_id])
                refresh.ok = True
                refresh.error = (
                    f"{skipped} malformed upstream sessions skipped" if skipped else None
                )
        session.flush()  # new bookkeeping rows get their ids, for the reports
        views = session_views(session, student_ids, now)
    return [(user, refreshes[user.student_id], views[user.student_id]) for user in batch]


_ENROLMENTS_OF = select(Enrolment.student_id, Enrolment.event_id).where(
    Enrolment.student_id.in_(bindparam("students", expanding=True)), Enrolment.source == SOURCE
)
_DROP_ENROLMENT = (
    Enrolment.__table__.delete()
    .where(Enrolment.student_id == bindparam("s"))
    .where(Enrolment.event_id == bindparam("e"))
    .where(Enrolment.source == SOURCE)
)


def _sync_enrolments(
    session: Any, student_ids: list[int], expected: set[tuple[int, int]]
) -> list[tuple[int, int]]:
    """Make these students' upstream enrolments exactly `expected` (student, event) pairs;
    the pairs inserted (not those another source had already)."""
    if not student_ids:
        return []
    current = {tuple(row) for row in session.execute(_ENROLMENTS_OF, {"students": student_ids})}
    added: list[tuple[int, int]] = []
    missing = expected - current
    if missing:
        table = Enrolment.__table__
        added = [
            (row.student_id, row.event_id)
            for row in session.execute(
                dialect_insert(session)(table)
                .on_conflict_do_nothing(index_elements=["student_id", "event_id"])
                .returning(table.c.student_id, table.c.event_id),
                [{"student_id": s, "event_id": e, "source": SOURCE} for s, e in sorted(missing)],
            )
        ]
    dropped = current - expected
    if dropped:
        session.execute(_DROP_ENROLMENT, [{"s": s, "e": e} for s, e in sorted(dropped)])
    return added


def _reports_due(stored: list[Stored]) -> list[reports.Report]:
    """The users whose outcome changed since it was last reported upstream."""
    due = []
    for user, refresh, sessions in stored:
        report = reports.report_of(user.email, refresh, sessions)
        if report.summary != refresh.reported_state:
            due.append(report)
    return due


def _fetch(client: CheckOutClient, user: Fetched, breaker: Breaker | None = None) -> Fetched:
    breaker = breaker or never_open()
    if breaker.is_open:
        return replace(user, attempted=False)
    try:
        upstream = client.sessions(user.email)
    except CheckOutError as error:
        breaker.record(error)
        return replace(user, error=error.message)
    breaker.record(None)
    return replace(user, upstream=upstream)


# --- the refreshes ---------------------------------------------------------------------------


def refresh_user(client: CheckOutClient, email: str) -> UserSessions:
    """Refresh one user's check-in session; an upstream failure is recorded, then raised."""
    student = db.session.scalar(select(Student).where(Student.email_key == normalize_key(email)))
    if student is None:
        raise NotFound(f"User with email {email} not found", code="user_not_found")
    user = _fetch(client, Fetched(student.id, student.email or email, student.identifier))
    stored = _store_batch([user], utcnow(), EventCache())
    reports.remember([reports.send(client, due) for due in _reports_due(stored)])
    if user.error is not None:
        raise UpstreamFailed(user.error)
    (_, refresh, sessions) = stored[0]
    return _user_sessions(user, refresh, sessions)


def stored_sessions(email: str | None = None) -> list[UserSessions]:
    """What is stored of the roster's check-in sessions (or of one user's), refreshing
    nothing: the answer of a trigger that joined a run someone else started."""
    if email is None:
        people = users.roster()
    else:
        student = db.session.scalar(
            select(Student).where(Student.email_key == normalize_key(email))
        )
        if student is None:
            raise NotFound(f"User with email {email} not found", code="user_not_found")
        people = [(student.id, student.email or email, student.identifier)]
    ids = [student_id for student_id, _, _ in people]
    refreshes = {
        refresh.student_id: refresh
        for refresh in db.session.scalars(
            select(UserRefresh).where(UserRefresh.student_id.in_(ids))
        )
    }
    views = session_views(db.session, ids, utcnow())
    return [
        UserSessions(
            email=address,
            student_identifier=identifier,
            refreshed_at=refreshes[student_id].refreshed_at if student_id in refreshes else None,
            ok=refreshes[student_id].ok if student_id in refreshes else False,
            error=refreshes[student_id].error if student_id in refreshes else None,
            sessions=views[student_id],
        )
        for student_id, address, identifier in people
    ]


def refresh_one(client: CheckOutClient, email: str) -> UserSessions:
    """The manual single refresh: refresh_user, then stamp `last_individual_session_refresh`."""
    session = refresh_user(client, email)
    state.set("last_individual_session_refresh", iso(utcnow()))
    return session


def refresh_all(
    app: Flask,
    client: CheckOutClient,
    *,
    concurrency: int,
    breaker_threshold: int = 5,
    on_progress: Callable[[int], None] | None = None,
) -> RefreshResult:
    """Refresh everyone on the roster: `concurrency` threads call upstream, this thread stores.

    SQLite has one writer at a time, so the answers are written in batches of BATCH_SIZE
    users per transaction as they arrive, instead of one transaction per user per thread;
    POST /log reports go to the same pool without waiting, and are remembered at the end.
    A circuit breaker ends the run `failed` once upstream is plainly unreachable; after
    that, the next run first probes `GET /test` and stops there if it still fails.
    """
    probe_failure = _probe_after_breaker(client)
    if probe_failure is not None:
        return probe_failure
    if state.get("last_users_fetch") is None:
        users.fetch_users(client)
    roster = [Fetched(*member) for member in users.roster()]
    now, events, breaker = utcnow(), EventCache(), Breaker(breaker_threshold)
    described: list[UserSessions] = []
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="refresh") as pool:
        pending = [pool.submit(_fetch, client, user, breaker) for user in roster]
        sent = []
        for start in range(0, len(pending), BATCH_SIZE):
            batch = [future.result() for future in pending[start : start + BATCH_SIZE]]
            stored = _store_batch([user for user in batch if user.attempted], now, events)
            sent += [
                pool.submit(reports.send, client, due, breaker) for due in _reports_due(stored)
            ]
            described.extend(_user_sessions(*entry) for entry in stored)
            if on_progress is not None:
                on_progress(len(batch))
        reports.remember([future.result() for future in sent])
    if breaker.is_open:
        state.set(BREAKER_KEY, {"opened_at": iso(utcnow()), "reason": breaker.opened_by})
    else:
        state.set("last_all_session_refresh", iso(utcnow()))
    return _refresh_result(described, len(roster), breaker)


def _probe_after_breaker(client: CheckOutClient) -> RefreshResult | None:
    """After a run whose breaker opened: one `GET /test`; a failed run if it still fails."""
    if not state.get(BREAKER_KEY):
        return None
    try:
        client.test()
    except CheckOutError as error:
        return RefreshResult(
            counts={"users": 0, "ok": 0, "failed": 0},
            outcome=FAILED,
            error=f"upstream still unreachable, no user refreshed: {error.message}",
        )
    state.set(BREAKER_KEY, None)
    return None


def _refresh_result(described: list[UserSessions], users: int, breaker: Breaker) -> RefreshResult:
    succeeded = sum(1 for entry in described if entry.ok)
    failed = len(described) - succeeded
    counts = {"users": users, "ok": succeeded, "failed": failed}
    if breaker.is_open:
        counts["not_attempted"] = users - len(described)
        error = (
            f"upstream unreachable: {breaker.threshold} calls in a row failed "
            f"(last: {breaker.opened_by}); {counts['not_attempted']} of {users} users "
            "not attempted"
        )
        return RefreshResult(counts, described, FAILED, error)
    if failed and not succeeded:
        first = next(entry.error for entry in described if not entry.ok)
        return RefreshResult(counts, described, FAILED, f"all {failed} users failed: {first}")
    if failed:
        return RefreshResult(
            counts, described, PARTIAL, f"{failed} of {len(described)} users failed"
        )
    return RefreshResult(counts, described)
