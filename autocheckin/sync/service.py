"""User and check-in session sync with CheckOut.

`fetch_users` upserts the roster; `refresh_user` turns one user's upstream sessions into
events (one per upstream id, however many users share it), an enrolment, and the user's
check-in session record; `refresh_all` does that for every user, concurrently. Each is
idempotent, so a job and a manual trigger run the very same code.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flask import Flask
from sqlalchemy import select

from autocheckin import state
from autocheckin.attendance.errors import DomainError, NotFound
from autocheckin.attendance.models import Attendance, Event, Student, normalize_key
from autocheckin.database import dialect_insert, upsert, write_transaction
from autocheckin.extensions import db
from autocheckin.sync.client import CheckOutClient, CheckOutError, CheckOutSettings
from autocheckin.sync.models import CheckInSession, Enrolment
from autocheckin.times import iso, parse_iso, utcnow

log = logging.getLogger(__name__)

NOT_CONFIGURED = "CheckOut API not configured"
USER_FIELDS = ("email", "student_identifier", "first_name", "last_name")
PRESENT, LATE, PENDING, ABSENT = "present", "late", "pending", "absent"


class UpstreamNotConfigured(DomainError):
    status = 503
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
        client = CheckOutClient(settings, on_result=state.note_upstream_result)
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
                if student is not None:
                    by_email[student.email_key] = student
                    created += 1
                continue
            if _update_names(student, user):
                updated += 1
        state.set_many({"autoCheckinUsers": users, "last_users_fetch": iso(utcnow())})
    return {"users": len(users), "created": created, "updated": updated}


def _new_student(session: Any, user: dict[str, Any]) -> Student | None:
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
    return {
        "external_id": external_id[:100],
        "name": name[:200],
        "start_time": start_time,
        "end_time": end_time,
        "event_type": str(raw.get("event_type") or "General")[:100],
        "location": str(raw.get("location") or "")[:200],
        "points": points if isinstance(points, int) and not isinstance(points, bool) else 0,
    }


def _session_status(
    event_end: datetime | None, attendance: Attendance | None, now: datetime
) -> str:
    if attendance is not None:
        return attendance.status
    if event_end is None or now <= event_end:
        return PENDING
    return ABSENT


def describe_session(record: CheckInSession) -> dict[str, Any]:
    return {
        "email": record.student.email,
        "student_identifier": record.student.identifier,
        "refreshed_at": iso(record.refreshed_at),
        "ok": record.ok,
        "error": record.error,
        "sessions": record.sessions,
    }


def _store_sessions(
    student: Student, upstream: list[dict[str, Any]], now: datetime
) -> CheckInSession:
    valid = [fields for fields in map(_upstream_session, upstream) if fields is not None]
    skipped = len(upstream) - len(valid)
    with write_transaction() as session:
        insert = dialect_insert(session)
        event_ids = []
        for fields in valid:
            event_ids.append(
                upsert(
                    session,
                    Event.__table__,
                    {**fields, "source": "checkout", "description": "", "updated_at": now},
                    key=["external_id"],
                    returning=Event.__table__.c.id,
                )
            )
            session.execute(
                insert(Enrolment.__table__)
                .values(student_id=student.id, event_id=event_ids[-1], source="checkout")
                .on_conflict_do_nothing(index_elements=["student_id", "event_id"])
            )
        attendances = {
            a.event_id: a
            for a in session.scalars(
                select(Attendance).where(
                    Attendance.student_id == student.id, Attendance.event_id.in_(event_ids)
                )
            )
        }
        sessions = []
        for fields, event_id in zip(valid, event_ids, strict=True):
            attendance = attendances.get(event_id)
            sessions.append(
                {
                    "event_id": event_id,
                    "id": fields["external_id"],
                    "name": fields["name"],
                    "start_time": iso(fields["start_time"]),
                    "end_time": iso(fields["end_time"]),
                    "status": _session_status(fields["end_time"], attendance, now),
                    "checked_in_at": iso(attendance.checked_in_at) if attendance else None,
                }
            )
        record = _session_record(session, student)
        record.refreshed_at, record.ok, record.sessions = now, True, sessions
        record.error = f"{skipped} malformed upstream sessions skipped" if skipped else None
    return record


def _session_record(session: Any, student: Student) -> CheckInSession:
    record = session.scalar(select(CheckInSession).where(CheckInSession.student_id == student.id))
    if record is None:
        record = CheckInSession(student_id=student.id, student=student, sessions=[])
        session.add(record)
    return record


def _store_failure(student: Student, message: str, now: datetime) -> CheckInSession:
    """The refresh failed: say so, keep the last good sessions."""
    with write_transaction() as session:
        record = _session_record(session, student)
        record.refreshed_at, record.ok, record.error = now, False, message
    return record


def _report_upstream(client: CheckOutClient, record: CheckInSession) -> None:
    """POST /log when the user's outcome changed since the last report; never fails a refresh."""
    tally = {status: 0 for status in (PRESENT, LATE, PENDING, ABSENT)}
    for entry in record.sessions or []:
        tally[entry["status"]] = tally.get(entry["status"], 0) + 1
    outcome = "refreshed" if record.ok else "refresh_failed"
    summary = f"{outcome}|" + "|".join(str(tally[s]) for s in (PRESENT, LATE, PENDING, ABSENT))
    if summary == record.reported_state:
        return
    message = (
        f"{len(record.sessions or [])} sessions: {tally[PRESENT]} present, {tally[LATE]} late, "
        f"{tally[PENDING]} pending, {tally[ABSENT]} absent"
        if record.ok
        else f"refresh failed: {record.error}"
    )
    try:
        client.log(email=record.student.email or "", state=outcome, message=message)
    except CheckOutError as error:
        log.warning("POST /log for %s failed: %s", record.student.email, error.message)
        return
    with write_transaction():
        record.reported_state = summary


def refresh_user(client: CheckOutClient, email: str, *, now: datetime | None = None) -> dict:
    """Refresh one user's check-in session; an upstream failure is recorded and raised."""
    student = db.session.scalar(select(Student).where(Student.email_key == normalize_key(email)))
    if student is None:
        raise NotFound(f"User with email {email} not found", code="user_not_found")
    now = now or utcnow()
    try:
        upstream = client.sessions(student.email or email)
    except CheckOutError as error:
        record = _store_failure(student, error.message, now)
        _report_upstream(client, record)
        raise UpstreamFailed(error.message) from None
    record = _store_sessions(student, upstream, now)
    _report_upstream(client, record)
    return describe_session(record)


def refresh_one(client: CheckOutClient, email: str) -> dict:
    """The manual single refresh: refresh_user, then stamp `last_individual_session_refresh`."""
    session = refresh_user(client, email)
    state.set("last_individual_session_refresh", iso(utcnow()))
    return session


def refresh_all(app: Flask, client: CheckOutClient, *, concurrency: int) -> RefreshResult:
    """Refresh every known user, `concurrency` at a time, one app context and DB session each."""
    if state.get("last_users_fetch") is None:
        fetch_users(client)
    emails = [user["email"] for user in state.get("autoCheckinUsers", [])]

    def refresh_in_thread(email: str) -> dict[str, Any]:
        with app.app_context():
            try:
                return refresh_user(client, email)
            except DomainError as error:
                return {"email": email, "ok": False, "error": error.message, "sessions": []}

    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="refresh") as pool:
        sessions = list(pool.map(refresh_in_thread, emails))
    state.set("last_all_session_refresh", iso(utcnow()))
    succeeded = sum(1 for entry in sessions if entry["ok"])
    return RefreshResult(
        counts={"users": len(sessions), "ok": succeeded, "failed": len(sessions) - succeeded},
        sessions=sessions,
    )
