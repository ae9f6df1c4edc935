"""Corrections: an admin sets a status (with or without a check-in), voids or restores a
check-in, changes its time, or marks everyone still unmarked at an event.

Every correction names its actor and a reason, runs in one write transaction with the
attendance's row locked, bumps the attendance's `version` (a stale `expected_version` is
refused, as an `If-Match` would be), appends one hash-chained history entry per changed
attendance, and announces what changed (`signals.attendance_corrected`, the outbound
`attendance.updated`) in the same transaction. No Flask here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, bindparam, select, update
from sqlalchemy.orm import Session

from autocheckin.attendance import history, signals
from autocheckin.attendance.errors import (
    Conflict,
    Invalid,
    NotFound,
    PreconditionFailed,
    Unprocessable,
)
from autocheckin.attendance.models import (
    ATTENDED_STATUSES,
    STATUS_ABSENT,
    STATUS_EXCUSED,
    STATUSES,
    Attendance,
    Enrolment,
    Event,
    Student,
)
from autocheckin.attendance.windows import CheckInRules, attendance_status
from autocheckin.database import dialect_insert, write_transaction
from autocheckin.times import iso, utcnow

ATTENDANCES = Attendance.__table__
EVENTS = Event.__table__
STUDENTS = Student.__table__
ENROLMENTS = Enrolment.__table__
MAX_REASON = 2000
CORRECTION_SOURCE = "correction"
BULK_STATUSES = (STATUS_ABSENT, STATUS_EXCUSED)


@dataclass(frozen=True)
class Correction:
    """Who corrects, why, and (optionally) the version they saw (`If-Match`)."""

    actor: str
    reason: str | None
    expected_version: int | None = None


@dataclass(frozen=True)
class Change:
    """One attendance's change, as the history entry and `attendance.updated` tell it."""

    attendance_id: int
    event_id: int
    action: str
    before: dict[str, Any] | None
    after: dict[str, Any]
    actor: str
    reason: str | None
    version: int


def required_reason(reason: str | None) -> str:
    """Every correction says why: a reason of 1 to MAX_REASON characters."""
    text = (reason or "").strip()
    if not text:
        raise Unprocessable("A reason is required for every correction", code="reason_required")
    if len(text) > MAX_REASON:
        raise Unprocessable(
            f"The reason is longer than {MAX_REASON} characters", code="reason_too_long"
        )
    return text


def _status(status: str) -> str:
    if status not in STATUSES:
        raise Unprocessable(f"status must be one of {', '.join(STATUSES)}", code="invalid_status")
    return status


def _locked(connection: Connection, attendance_id: int) -> Any:
    query = select(ATTENDANCES).where(ATTENDANCES.c.id == attendance_id)
    if connection.dialect.name == "postgresql":
        query = query.with_for_update()
    row = connection.execute(query).first()
    if row is None:
        raise NotFound(f"Attendance {attendance_id} not found", code="attendance_not_found")
    return row


def _event(connection: Connection, event_id: int) -> Any:
    row = connection.execute(select(EVENTS).where(EVENTS.c.id == event_id)).first()
    if row is None:
        raise NotFound(f"Event {event_id} not found", code="event_not_found")
    return row


def _person(connection: Connection, person_id: int) -> Any:
    row = connection.execute(select(STUDENTS).where(STUDENTS.c.id == person_id)).first()
    if row is None:
        raise NotFound(f"Person {person_id} not found", code="person_not_found")
    return row


def _check_version(row: Any, expected: int | None) -> None:
    if expected is not None and expected != row.version:
        raise PreconditionFailed(
            f"Attendance {row.id} is at version {row.version}, not {expected}: "
            "read it again and retry",
            code="version_mismatch",
        )


def _check_started(event: Any, status: str, now: datetime, rules: CheckInRules) -> None:
    """A status other than excused says what happened at the event: not before it opens."""
    if status != STATUS_EXCUSED and now < event.start_time - rules.opens_before:
        raise Conflict(
            f"Event {event.id} has not started (it starts {iso(event.start_time)}): only "
            "excused can be set before an event starts",
            code="event_not_started",
        )


def _apply(
    connection: Connection,
    row: Any,
    *,
    values: dict[str, Any],
    action: str,
    correction: Correction,
    reason: str,
) -> Change:
    """Write `values` onto the locked row at its next version, with its history entry."""
    version = row.version + 1
    now = utcnow()
    updated = connection.execute(
        update(ATTENDANCES)
        .where(ATTENDANCES.c.id == row.id, ATTENDANCES.c.version == row.version)
        .values(**values, version=version, updated_at=now)
    ).rowcount
    if updated != 1:  # cannot happen with the row locked; never write a forked chain
        raise PreconditionFailed(
            f"Attendance {row.id} changed while it was being corrected; retry",
            code="version_mismatch",
        )
    merged = {**row._mapping, **values}
    after = history.state(
        student_id=merged["student_id"],
        status=merged["status"],
        checked_in_at=merged["checked_in_at"],
        voided=merged["voided_at"] is not None,
        status_explicit=bool(merged["status_explicit"]),
    )
    before = history.state_of(row)
    seq, previous = history.last_link(connection, row.id)
    if seq != row.version:
        raise Invalid(
            f"Attendance {row.id}'s history ends at {seq}, its row is at {row.version}: run "
            "`flask audit verify`",
            code="history_broken",
        )
    history.write(
        connection,
        [
            history.entry(
                attendance_id=row.id,
                seq=version,
                event_id=row.event_id,
                action=action,
                before=before,
                after=after,
                actor=correction.actor,
                reason=reason,
                previous_hash=previous,
                recorded_at=now,
            )
        ],
    )
    return Change(row.id, row.event_id, action, before, after, correction.actor, reason, version)


def _announce(session: Session, changes: Sequence[Change]) -> None:
    if changes:
        signals.attendance_corrected.send(session, changes=list(changes))


def _insert_marks(
    connection: Connection, rows: Sequence[dict[str, Any]], correction: Correction, reason: str
) -> list[Change]:
    """New marks (no check-in behind them unless a time is given), each with its first
    entry; a pair a concurrent door stored first inserts nothing and is left out."""
    if not rows:
        return []
    statement = (
        dialect_insert(connection)(ATTENDANCES)
        .on_conflict_do_nothing(index_elements=["student_id", "event_id"])
        .returning(ATTENDANCES.c.id, ATTENDANCES.c.student_id, ATTENDANCES.c.event_id)
    )
    ordered = sorted(rows, key=lambda row: (row["student_id"], row["event_id"]))
    stored = {
        (row.student_id, row.event_id): row.id for row in connection.execute(statement, ordered)
    }
    entries, changes = [], []
    for row in ordered:
        attendance_id = stored.get((row["student_id"], row["event_id"]))
        if attendance_id is None:
            continue
        after = history.state(
            student_id=row["student_id"],
            status=row["status"],
            checked_in_at=row["checked_in_at"],
            voided=False,
            status_explicit=True,
        )
        entries.append(
            history.entry(
                attendance_id=attendance_id,
                seq=1,
                event_id=row["event_id"],
                action=history.STATUS_SET,
                before=None,
                after=after,
                actor=correction.actor,
                reason=reason,
                previous_hash=history.GENESIS,
                recorded_at=row["created_at"],
            )
        )
        changes.append(
            Change(
                attendance_id,
                row["event_id"],
                history.STATUS_SET,
                None,
                after,
                correction.actor,
                reason,
                1,
            )
        )
    history.write(connection, entries)
    return changes


def _new_mark(
    person_id: int, event_id: int, status: str, checked_in_at: datetime | None
) -> dict[str, Any]:
    now = utcnow()
    return {
        "student_id": person_id,
        "event_id": event_id,
        "checked_in_at": checked_in_at,
        "status": status,
        "source": CORRECTION_SOURCE,
        "metadata": {},
        "created_at": now,
        "version": 1,
        "status_explicit": True,
        "voided_at": None,
    }


_PAIR = select(ATTENDANCES).where(
    ATTENDANCES.c.student_id == bindparam("person"), ATTENDANCES.c.event_id == bindparam("event")
)


def set_status(
    *,
    event_id: int,
    person_id: int,
    status: str,
    correction: Correction,
    rules: CheckInRules,
    now: datetime | None = None,
    checked_in_at: datetime | None = None,
) -> Change:
    """Set the person's status at the event: a manual mark when there is none yet, else a
    change of the mark (a voided one is restored by it). The status stays as set when its
    time changes later. A present or late mark with no time is dated at the event's start;
    excused and absent marks need none."""
    reason = required_reason(correction.reason)
    status = _status(status)
    now = now or utcnow()
    with write_transaction() as session:
        connection = session.connection()
        event = _event(connection, event_id)
        _person(connection, person_id)
        _check_started(event, status, now, rules)
        if checked_in_at is not None and checked_in_at > now + rules.max_future:
            raise Unprocessable("checked_in_at is in the future", code="checked_in_at_in_future")
        row = connection.execute(_PAIR, {"person": person_id, "event": event_id}).first()
        if checked_in_at is None and status in ATTENDED_STATUSES:
            # A present or late mark says when; without a time, the event's start.
            checked_in_at = row.checked_in_at if row is not None else None
            checked_in_at = checked_in_at or event.start_time
        if row is None:
            if correction.expected_version is not None:
                raise PreconditionFailed(
                    f"Person {person_id} has no attendance at event {event_id} yet",
                    code="version_mismatch",
                )
            changes = _insert_marks(
                connection,
                [_new_mark(person_id, event_id, status, checked_in_at)],
                correction,
                reason,
            )
            if changes:
                _announce(session, changes)
                return changes[0]
            row = connection.execute(_PAIR, {"person": person_id, "event": event_id}).first()
        row = _locked(connection, row.id)
        _check_version(row, correction.expected_version)
        values: dict[str, Any] = {"status": status, "status_explicit": True, "voided_at": None}
        if checked_in_at is not None:
            values["checked_in_at"] = checked_in_at
        change = _apply(
            connection,
            row,
            values=values,
            action=history.STATUS_SET,
            correction=correction,
            reason=reason,
        )
        _announce(session, [change])
    return change


def void(*, attendance_id: int, correction: Correction) -> Change:
    """Withdraw a check-in: it stays, in its history too, and stops counting."""
    return _set_voided(attendance_id, correction, voided=True)


def restore(*, attendance_id: int, correction: Correction) -> Change:
    """Undo a void: the mark counts again, as it was."""
    return _set_voided(attendance_id, correction, voided=False)


def _set_voided(attendance_id: int, correction: Correction, *, voided: bool) -> Change:
    reason = required_reason(correction.reason)
    with write_transaction() as session:
        connection = session.connection()
        row = _locked(connection, attendance_id)
        _check_version(row, correction.expected_version)
        if (row.voided_at is not None) == voided:
            if voided:
                raise Conflict(
                    f"Attendance {attendance_id} is already voided", code="already_voided"
                )
            raise Conflict(f"Attendance {attendance_id} is not voided", code="not_voided")
        change = _apply(
            connection,
            row,
            values={"voided_at": utcnow() if voided else None},
            action=history.VOIDED if voided else history.RESTORED,
            correction=correction,
            reason=reason,
        )
        _announce(session, [change])
    return change


def change_time(
    *,
    attendance_id: int,
    checked_in_at: datetime,
    correction: Correction,
    rules: CheckInRules,
    now: datetime | None = None,
) -> Change:
    """Move a check-in's time; present or late follows the window rules again unless the
    status was set by a correction."""
    reason = required_reason(correction.reason)
    now = now or utcnow()
    if checked_in_at > now + rules.max_future:
        raise Unprocessable("checked_in_at is in the future", code="checked_in_at_in_future")
    with write_transaction() as session:
        connection = session.connection()
        row = _locked(connection, attendance_id)
        _check_version(row, correction.expected_version)
        values: dict[str, Any] = {"checked_in_at": checked_in_at}
        if not row.status_explicit:
            event = _event(connection, row.event_id)
            values["status"] = attendance_status(event, checked_in_at, rules)
        change = _apply(
            connection,
            row,
            values=values,
            action=history.TIME_CHANGED,
            correction=correction,
            reason=reason,
        )
        _announce(session, [change])
    return change


def mark_unmarked(
    *,
    event_id: int,
    status: str,
    correction: Correction,
    rules: CheckInRules,
    now: datetime | None = None,
) -> list[Change]:
    """Mark everyone enrolled at the event who has no mark yet as absent or excused (one
    statement, one entry each). People with a mark, voided ones included, are left as
    they are; a voided check-in already counts as absent."""
    reason = required_reason(correction.reason)
    if status not in BULK_STATUSES:
        raise Unprocessable(
            f"status must be one of {', '.join(BULK_STATUSES)}", code="invalid_status"
        )
    now = now or utcnow()
    with write_transaction() as session:
        connection = session.connection()
        event = _event(connection, event_id)
        _check_started(event, status, now, rules)
        unmarked = connection.execute(
            select(ENROLMENTS.c.student_id)
            .join(STUDENTS, STUDENTS.c.id == ENROLMENTS.c.student_id)
            .outerjoin(
                ATTENDANCES,
                and_(
                    ATTENDANCES.c.student_id == ENROLMENTS.c.student_id,
                    ATTENDANCES.c.event_id == ENROLMENTS.c.event_id,
                ),
            )
            .where(
                ENROLMENTS.c.event_id == event_id,
                ATTENDANCES.c.id.is_(None),
                STUDENTS.c.deactivated_at.is_(None),
            )
        ).scalars()
        rows = [_new_mark(person_id, event_id, status, None) for person_id in unmarked]
        changes = _insert_marks(connection, rows, correction, reason)
        _announce(session, changes)
    return changes


def move_marks(
    session: Session, *, from_person: int, to_person: int, actor: str, reason: str
) -> tuple[int, int]:
    """Move `from_person`'s marks to `to_person` (a merge), in the caller's transaction: a
    mark for an event `to_person` has none at moves over; one for an event they have their
    own mark at is voided and stays with `from_person`. Returns (moved, voided)."""
    connection = session.connection()
    correction = Correction(actor=actor, reason=reason)
    taken = set(
        connection.execute(
            select(ATTENDANCES.c.event_id).where(ATTENDANCES.c.student_id == to_person)
        ).scalars()
    )
    ids = connection.execute(
        select(ATTENDANCES.c.id)
        .where(ATTENDANCES.c.student_id == from_person)
        .order_by(ATTENDANCES.c.id)
    ).scalars()
    changes = []
    moved = voided = 0
    for attendance_id in list(ids):
        row = _locked(connection, attendance_id)
        if row.event_id not in taken:
            values, action = {"student_id": to_person}, history.MOVED
            moved += 1
        elif row.voided_at is None:
            values, action = {"voided_at": utcnow()}, history.VOIDED
            voided += 1
        else:
            continue
        changes.append(
            _apply(
                connection, row, values=values, action=action, correction=correction, reason=reason
            )
        )
    session.expire_all()
    _announce(session, changes)
    return moved, voided


def attends(row: Any) -> bool:
    """Whether a mark says the person was there (present or late, not voided)."""
    return row.voided_at is None and row.status in ATTENDED_STATUSES
