"""User and check-in session sync with CheckOut.

`fetch_users` upserts the roster; `refresh_user` turns one user's upstream sessions into
events (one per upstream id, however many users share it), an enrolment, and the user's
check-in session record; `refresh_all` does that for every user, concurrently. Each is
idempotent, so a job and a manual trigger run the very same code.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from flask import Flask
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from autocheckin import state
from autocheckin.attendance.errors import DomainError, NotConfigured, NotFound
from autocheckin.attendance.models import Attendance, Event, Student, normalize_key
from autocheckin.database import dialect_insert, write_transaction
from autocheckin.extensions import db
from autocheckin.outbound import announcements
from autocheckin.sync.client import CheckOutClient, CheckOutError, CheckOutSettings
from autocheckin.sync.models import CheckInSession, Enrolment
from autocheckin.times import iso, parse_iso, utcnow

log = logging.getLogger(__name__)

NOT_CONFIGURED = "CheckOut API not configured"
USER_FIELDS = ("email", "student_identifier", "first_name", "last_name")
PRESENT, LATE, PENDING, ABSENT = "present", "late", "pending", "absent"
MAX_POINTS = 1_000_000  # as the webhooks allow; an int32 column everywhere


class UpstreamNotConfigured(NotConfigured):
    code = "upstream_not_configured"


class UpstreamFailed(DomainError):
    status = 502
    code = "upstream_failed"


@dataclass
class RefreshResult:
    counts: dict[str, int]
    sessions: list[dict[str, Any]] = field(default_factory=list)


def client_for(app: Flask) -> CheckOutClient:
    """The process's one CheckOut client (one connection pool), created on first use."""
    client = app.extensions.get("checkout_client")
    if client is None:
        settings = CheckOutSettings.from_config(app.config)
        if settings is None:
            raise UpstreamNotConfigured(NOT_CONFIGURED)

        def note_result(succeeded: bool, reason: str | None) -> None:
            # Calls come from pool threads too: each note gets its own app context.
            with app.app_context():
                state.note_upstream_result(succeeded, reason)

        client = CheckOutClient(settings, on_result=note_result)
        app.extensions["checkout_client"] = client
    return client


def check_connection(client: CheckOutClient) -> dict[str, Any]:
    """`GET /test`; the client's listener records `connected` either way."""
    try:
        client.test()
    except CheckOutError as error:
        raise UpstreamFailed(error.message) from None
    return {"connected": True}


# --- users --------------------------------------------------------------------------------


def _public_user(user: dict[str, Any]) -> dict[str, Any]:
    """Only the contract's fields are kept: nothing else upstream sends is stored or shown."""
    return {name: user[name] for name in USER_FIELDS if isinstance(user.get(name), str)}


def fetch_users(client: CheckOutClient) -> dict[str, int]:
    """Upsert students from `autoCheckinUsers`; on failure the last good list stays."""
    try:
        users = [_public_user(user) for user in client.users()]
    except CheckOutError as error:
        raise UpstreamFailed(error.message) from None
    users = [user for user in users if normalize_key(user.get("email"))]
    try:
        return _store_users(users)
    except IntegrityError:
        # A webhook created one of these people between our read and our insert
        # (PostgreSQL; SQLite serializes writers): the second pass sees and updates them.
        return _store_users(users)


def _store_users(users: list[dict[str, Any]]) -> dict[str, int]:
    created = updated = 0
    with write_transaction() as session:
        by_email = {
            student.email_key: student
            for student in session.scalars(
                select(Student).where(
                    Student.email_key.in_([normalize_key(u["email"]) for u in users])
                )
            )
        }
        for user in users:
            student = by_email.get(normalize_key(user["email"]))
            if student is None:
                student = _new_student(session, user)
                by_email[student.email_key] = student
                created += 1
                continue
            if _update_names(student, user):
                updated += 1
        state.set_many({"autoCheckinUsers": users, "last_users_fetch": iso(utcnow())})
    return {"users": len(users), "created": created, "updated": updated}


def _new_student(session: Any, user: dict[str, Any]) -> Student:
    identifier = user.get("student_identifier")
    taken = identifier and session.scalar(
        select(Student.id).where(Student.identifier_key == normalize_key(identifier))
    )
    student = Student(
        email=user["email"],
        identifier=None if taken else identifier,
        first_name=user.get("first_name", ""),
        last_name=user.get("last_name", ""),
        source="checkout",
    )
    session.add(student)
    return student


def _update_names(student: Student, user: dict[str, Any]) -> bool:
    changed = False
    for field_name in ("first_name", "last_name"):
        value = user.get(field_name)
        if value and getattr(student, field_name) != value:
            setattr(student, field_name, value)
            changed = True
    return changed


# --- sessions -------------------------------------------------------------------------------


def _upstream_session(raw: dict[str, Any]) -> dict[str, Any] | None:
    """A valid upstream session as event fields, or None when it cannot be one."""
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


def _session_status(
    event_end: datetime | None, attendance: Attendance | None, now: datetime
) -> str:
    if attendance is not None:
        return attendance.status
    if event_end is None or now <= event_end:
        return PENDING
    return ABSENT


@dataclass(frozen=True)
class Fetched:
    """One user's upstream answer, fetched by a pool thread, waiting to be stored."""

    student_id: int
    email: str
    identifier: str | None
    upstream: list[dict[str, Any]] | None = None
    error: str | None = None


class EventCache:
    """Upstream sessions already upserted in this refresh run: external id → (fields, id).

    Thousands of users share a few hundred sessions; each is written once per run, and
    the new ones of a batch in one statement (the writer thread pays a GIL hand-off per
    statement while the fetch threads run, so statements are what cost).
    """

    def __init__(self) -> None:
        self._known: dict[str, tuple[tuple, int]] = {}

    def ensure(self, session: Any, sessions: list[dict[str, Any]], now: datetime) -> None:
        """Upsert every session not yet written in this run (or changed since)."""
        fresh: dict[str, dict[str, Any]] = {}
        for fields in sessions:
            known = self._known.get(fields["external_id"])
            if known is None or known[0] != tuple(fields.values()):
                fresh[fields["external_id"]] = fields
        if not fresh:
            return
        table = Event.__table__
        earlier = announcements.sessions_before_sync(session, list(fresh))
        rows = [
            {**fields, "source": "checkout", "description": "", "updated_at": now}
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


def describe_session(record: CheckInSession, user: Fetched) -> dict[str, Any]:
    return {
        "email": user.email,
        "student_identifier": user.identifier,
        "refreshed_at": iso(record.refreshed_at),
        "ok": record.ok,
        "error": record.error,
        "sessions": record.sessions,
    }


def _store_batch(batch: list[Fetched], now: datetime, events: EventCache) -> list[CheckInSession]:
    """Store many users' answers in one write transaction; failures keep their last sessions."""
    student_ids = [user.student_id for user in batch]
    parsed = {
        user.student_id: [f for f in map(_upstream_session, user.upstream) if f is not None]
        for user in batch
        if user.upstream is not None
    }
    with write_transaction() as session:
        records = {
            record.student_id: record
            for record in session.scalars(
                select(CheckInSession).where(CheckInSession.student_id.in_(student_ids))
            )
        }
        events.ensure(session, [fields for valid in parsed.values() for fields in valid], now)
        event_ids = {
            student_id: [events.event_id(fields["external_id"]) for fields in valid]
            for student_id, valid in parsed.items()
        }
        enrolments = [
            {"student_id": student_id, "event_id": event_id, "source": "checkout"}
            for student_id, ids in event_ids.items()
            for event_id in set(ids) - _enrolled(records.get(student_id))
        ]
        if enrolments:
            table = Enrolment.__table__
            added = session.execute(
                dialect_insert(session)(table)
                .on_conflict_do_nothing(index_elements=["student_id", "event_id"])
                .returning(table.c.student_id, table.c.event_id),
                enrolments,
            ).all()
            announcements.enrolments_synced(session, added, batch, parsed, events.event_id)
        wanted = {event_id for ids in event_ids.values() for event_id in ids}
        attendances = (
            {
                (a.student_id, a.event_id): a
                for a in session.scalars(
                    select(Attendance).where(
                        Attendance.student_id.in_(list(parsed)), Attendance.event_id.in_(wanted)
                    )
                )
            }
            if wanted
            else {}
        )
        stored = []
        for user in batch:
            record = records.get(user.student_id)
            if record is None:
                record = CheckInSession(student_id=user.student_id, sessions=[])
                session.add(record)
            record.refreshed_at = now
            if user.upstream is None:
                record.ok, record.error = False, user.error
            else:
                valid = parsed[user.student_id]
                sessions = [
                    _session_entry(
                        fields, event_id, attendances.get((user.student_id, event_id)), now
                    )
                    for fields, event_id in zip(valid, event_ids[user.student_id], strict=True)
                ]
                skipped = len(user.upstream) - len(valid)
                record.ok = True
                record.error = f"{skipped} malformed upstream sessions skipped" if skipped else None
                if record.sessions != sessions:
                    record.sessions = sessions
            stored.append(record)
    return stored


def _enrolled(record: CheckInSession | None) -> set[int]:
    return {entry["event_id"] for entry in record.sessions or []} if record else set()


def _session_entry(
    fields: dict[str, Any], event_id: int, attendance: Attendance | None, now: datetime
) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "id": fields["external_id"],
        "name": fields["name"],
        "start_time": iso(fields["start_time"]),
        "end_time": iso(fields["end_time"]),
        "status": _session_status(fields["end_time"], attendance, now),
        "checked_in_at": iso(attendance.checked_in_at) if attendance else None,
    }


def _log_entry(record: CheckInSession) -> tuple[str, str, str]:
    """(summary to remember, state, message) of a user's outcome, for POST /log."""
    tally = dict.fromkeys((PRESENT, LATE, PENDING, ABSENT), 0)
    for entry in record.sessions or []:
        tally[entry["status"]] = tally.get(entry["status"], 0) + 1
    state_name = "refreshed" if record.ok else "refresh_failed"
    summary = f"{state_name}|" + "|".join(str(tally[s]) for s in (PRESENT, LATE, PENDING, ABSENT))
    message = (
        f"{len(record.sessions or [])} sessions: {tally[PRESENT]} present, {tally[LATE]} late, "
        f"{tally[PENDING]} pending, {tally[ABSENT]} absent"
        if record.ok
        else f"refresh failed: {record.error}"
    )
    return summary, state_name, message


@dataclass(frozen=True)
class _Report:
    email: str
    record_id: int
    summary: str
    state: str
    message: str


def _reports_due(stored: list[tuple[Fetched, CheckInSession]]) -> list[_Report]:
    """The users whose outcome changed since it was last reported upstream."""
    due = []
    for user, record in stored:
        summary, state_name, message = _log_entry(record)
        if summary != record.reported_state:
            due.append(_Report(user.email, record.id, summary, state_name, message))
    return due


def _send_report(client: CheckOutClient, report: _Report) -> dict[str, Any] | None:
    """POST /log; a failure is logged and retried on the next refresh, never raised."""
    try:
        client.log(email=report.email, state=report.state, message=report.message)
    except CheckOutError as error:
        log.warning("POST /log for %s failed: %s", report.email, error.message)
        return None
    return {"id": report.record_id, "reported_state": report.summary}


def _remember_reports(rows: list[dict[str, Any] | None]) -> None:
    sent = [row for row in rows if row is not None]
    if sent:
        with write_transaction() as session:
            session.execute(update(CheckInSession), sent)


def _fetch(client: CheckOutClient, user: Fetched) -> Fetched:
    try:
        return replace(user, upstream=client.sessions(user.email))
    except CheckOutError as error:
        return replace(user, error=error.message)


def refresh_user(client: CheckOutClient, email: str) -> dict:
    """Refresh one user's check-in session; an upstream failure is recorded, then raised."""
    student = db.session.scalar(select(Student).where(Student.email_key == normalize_key(email)))
    if student is None:
        raise NotFound(f"User with email {email} not found", code="user_not_found")
    user = _fetch(client, Fetched(student.id, student.email or email, student.identifier))
    (record,) = _store_batch([user], utcnow(), EventCache())
    _remember_reports([_send_report(client, due) for due in _reports_due([(user, record)])])
    if user.error is not None:
        raise UpstreamFailed(user.error)
    return describe_session(record, user)


def refresh_one(client: CheckOutClient, email: str) -> dict:
    """The manual single refresh: refresh_user, then stamp `last_individual_session_refresh`."""
    session = refresh_user(client, email)
    state.set("last_individual_session_refresh", iso(utcnow()))
    return session


BATCH_SIZE = 200


def refresh_all(app: Flask, client: CheckOutClient, *, concurrency: int) -> RefreshResult:
    """Refresh every known user: `concurrency` threads call upstream, this thread stores.

    SQLite has one writer at a time, so the answers are written in batches of BATCH_SIZE
    users per transaction as they arrive, instead of one transaction per user per thread;
    POST /log reports go to the same pool without waiting, and are remembered at the end.
    """
    if state.get("last_users_fetch") is None:
        fetch_users(client)
    wanted = {normalize_key(u["email"]): u["email"] for u in state.get("autoCheckinUsers", [])}
    users = [
        Fetched(student_id, email, identifier)
        for student_id, email, identifier in db.session.execute(
            select(Student.id, Student.email, Student.identifier)
            .where(Student.email_key.in_(list(wanted)))
            .order_by(Student.id)
        )
    ]
    now, events = utcnow(), EventCache()
    sessions: list[dict[str, Any]] = []
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="refresh") as pool:
        pending = [pool.submit(_fetch, client, user) for user in users]
        reports = []
        for start in range(0, len(pending), BATCH_SIZE):
            batch = [future.result() for future in pending[start : start + BATCH_SIZE]]
            stored = list(zip(batch, _store_batch(batch, now, events), strict=True))
            reports += [pool.submit(_send_report, client, due) for due in _reports_due(stored)]
            sessions.extend(describe_session(record, user) for user, record in stored)
        _remember_reports([future.result() for future in reports])
    state.set("last_all_session_refresh", iso(utcnow()))
    succeeded = sum(1 for entry in sessions if entry["ok"])
    return RefreshResult(
        counts={"users": len(sessions), "ok": succeeded, "failed": len(sessions) - succeeded},
        sessions=sessions,
    )
