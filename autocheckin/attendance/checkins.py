"""The one check-in path: every door records its check-ins here, one or a thousand.

A webhook names its student and event by reference (identifier or email, id or name); the
web and Discord doors by id (the account's person, the event in the URL). Either way the
same rules run (active, inside the window, late or present, once only), on SQLAlchemy Core
statements: a fixed handful whatever the batch size (people by key or id, events by id or
name, one INSERT … ON CONFLICT DO NOTHING RETURNING). The unique (student, event) pair is
the duplicate guard; a pair that inserts nothing was already there, concurrent twin or
not. What was stored gets its first history entry and is announced once, through
`signals.attendances_recorded`, in the same transaction. Each function runs in the
caller's write transaction (`write_transaction()` joins an open one).
"""

from __future__ import annotations

import functools
import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, bindparam, or_, select

from autocheckin.attendance import history, signals
from autocheckin.attendance.errors import (
    AlreadyCheckedIn,
    DomainError,
    Invalid,
    NotFound,
    OutsideWindow,
)
from autocheckin.attendance.models import Attendance, Event, Student, normalize_key
from autocheckin.attendance.windows import (
    CheckInRules,
    attendance_status,
    check_window,
    pick_event,
)
from autocheckin.database import MAX_DB_INTEGER, bound_time, write_transaction
from autocheckin.times import utcnow

STUDENTS = Student.__table__
EVENTS = Event.__table__
ATTENDANCES = Attendance.__table__
_STUDENT_COLUMNS = (
    STUDENTS.c.id,
    STUDENTS.c.identifier,
    STUDENTS.c.identifier_key,
    STUDENTS.c.email_key,
    STUDENTS.c.email,
    STUDENTS.c.first_name,
    STUDENTS.c.last_name,
)
_EVENT_COLUMNS = (
    EVENTS.c.id,
    EVENTS.c.name,
    EVENTS.c.start_time,
    EVENTS.c.end_time,
    EVENTS.c.is_active,
    EVENTS.c.created_by_id,
)


@dataclass(frozen=True)
class CheckIn:
    """One check-in: who, where, and when it was seen.

    A scanner names the student (`student_ref`: identifier or email) and the event
    (`event_ref`: id or name); a door that knows them by id gives `person_id` and
    `event_id` instead, which win over the references.
    """

    student_ref: str = ""
    event_ref: str = ""
    checked_in_at: datetime | None = None
    source: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    person_id: int | None = None
    event_id: int | None = None


@dataclass(frozen=True)
class Recorded:
    """A stored check-in, with what an answer says of its student and event."""

    attendance_id: int
    student_id: int
    student_identifier: str | None
    student_name: str
    student_email: str | None
    event_id: int
    event_name: str
    event_start: datetime
    checked_in_at: datetime
    status: str
    source: str | None


def student_not_found(ref: str) -> NotFound:
    kind = "email" if "@" in ref else "identifier"
    return NotFound(f"Student with {kind} {ref} not found", code="student_not_found")


def event_not_found(ref: str) -> NotFound:
    return NotFound(f"Event with identifier {ref} not found", code="event_not_found")


def check_client_time(checked_in_at: datetime, arrived_at: datetime, rules: CheckInRules) -> None:
    """A scanner's own time may lag (synced later) but not lead beyond clock skew."""
    if checked_in_at > arrived_at + rules.max_future:
        seconds = int(rules.max_future.total_seconds())
        raise Invalid(
            f"check_in_time is more than {seconds} seconds in the future",
            code="check_in_time_in_future",
        )
    if rules.max_backdate is not None and checked_in_at < arrived_at - rules.max_backdate:
        seconds = int(rules.max_backdate.total_seconds())
        raise Invalid(
            f"check_in_time is more than {seconds} seconds in the past",
            code="check_in_time_too_old",
        )


# Built once: on the hot path, building and caching a statement costs more than running it.
_STUDENTS_BY_KEYS = select(*_STUDENT_COLUMNS).where(
    or_(
        STUDENTS.c.identifier_key.in_(bindparam("keys", expanding=True)),
        STUDENTS.c.email_key.in_(bindparam("keys", expanding=True)),
    )
)
_STUDENT_BY_KEY = select(*_STUDENT_COLUMNS).where(
    or_(STUDENTS.c.identifier_key == bindparam("key"), STUDENTS.c.email_key == bindparam("key"))
)
_STUDENTS_BY_IDS = select(*_STUDENT_COLUMNS).where(
    STUDENTS.c.id.in_(bindparam("ids", expanding=True))
)
_EVENTS_BY_IDS = select(*_EVENT_COLUMNS).where(EVENTS.c.id.in_(bindparam("ids", expanding=True)))
_EVENTS_BY_NAMES = select(*_EVENT_COLUMNS).where(
    EVENTS.c.name.in_(bindparam("names", expanding=True))
)
_EVENTS_BY_IDS_OR_NAMES = select(*_EVENT_COLUMNS).where(
    or_(
        EVENTS.c.id.in_(bindparam("ids", expanding=True)),
        EVENTS.c.name.in_(bindparam("names", expanding=True)),
    )
)
_EVENTS_BY_NAME = select(*_EVENT_COLUMNS).where(EVENTS.c.name == bindparam("name"))
_EVENTS_BY_ID_OR_NAME = select(*_EVENT_COLUMNS).where(
    or_(EVENTS.c.id == bindparam("id"), EVENTS.c.name == bindparam("name"))
)
_ROWS_PER_INSERT = 1000  # 7,000 values: within SQLite's 32,766 variables
_CONFLICT = " ON CONFLICT (student_id, event_id) DO NOTHING RETURNING id, student_id, event_id"
# PostgreSQL: one array per column, so the statement stays short and the same whatever the
# batch size (psycopg caches and prepares it, and the arrays keep the (student, event) order).
_INSERT_POSTGRESQL = (
    "INSERT INTO attendances (student_id, event_id, checked_in_at, status, source, metadata, "
    "created_at) SELECT * FROM unnest(%b::integer[], %b::integer[], %b::timestamptz[], "
    "%b::text[], %b::text[], %b::jsonb[], %b::timestamptz[]) "
    "ON CONFLICT (student_id, event_id) DO NOTHING RETURNING id, student_id, event_id"
)


@functools.lru_cache(maxsize=64)
def _insert_sql(rows: int) -> str:
    """SQLite: INSERT … ON CONFLICT DO NOTHING RETURNING for `rows` rows, built from
    constants only, once per size (SQLite caches the prepared statement by its text)."""
    values = ", ".join(["(?, ?, ?, ?, ?, ?, ?)"] * rows)
    return (
        "INSERT INTO attendances (student_id, event_id, checked_in_at, status, source, "  # noqa: S608
        f"metadata, created_at) VALUES {values}" + _CONFLICT
    )


@dataclass(frozen=True)
class _Known:
    """What one transaction looked up: people by key and by id, events by id and name."""

    people_by_key: dict[str, Row]
    people_by_id: dict[int, Row]
    events_by_id: dict[int, Row]
    events_by_name: dict[str, list[Row]]


def _look_up(connection: Connection, wanted: Sequence[CheckIn]) -> _Known:
    """Everything `wanted` names, in at most four statements (two on a webhook's path)."""
    keys = {
        key
        for item in wanted
        if item.person_id is None and (key := normalize_key(item.student_ref))
    }
    person_ids = {item.person_id for item in wanted if item.person_id is not None}
    refs = {item.event_ref.strip() for item in wanted if item.event_id is None}
    event_ids = {item.event_id for item in wanted if item.event_id is not None}
    by_id, by_name = _events_by_ref(connection, refs)
    if event_ids - by_id.keys():
        rows = connection.execute(_EVENTS_BY_IDS, {"ids": list(event_ids - by_id.keys())})
        by_id.update({row.id: row for row in rows})
    people_by_id = {}
    if person_ids:
        rows = connection.execute(_STUDENTS_BY_IDS, {"ids": list(person_ids)})
        people_by_id = {row.id: row for row in rows}
    return _Known(_students_by_key(connection, keys), people_by_id, by_id, by_name)


def _students_by_key(connection: Connection, keys: set[str]) -> dict[str, Row]:
    """Each key's student; a key that is one student's identifier and another's email
    names the identifier's owner."""
    if not keys:
        return {}
    if len(keys) == 1:
        rows = connection.execute(_STUDENT_BY_KEY, {"key": next(iter(keys))}).all()
    else:
        rows = connection.execute(_STUDENTS_BY_KEYS, {"keys": list(keys)}).all()
    found = {row.email_key: row for row in rows if row.email_key in keys}
    found.update({row.identifier_key: row for row in rows if row.identifier_key in keys})
    return found


def _event_id(ref: str) -> int | None:
    is_number = ref.isascii() and ref.isdigit()  # "²" is a digit to str.isdigit, not to int
    return int(ref) if is_number and int(ref) <= MAX_DB_INTEGER else None


def _events_by_ref(
    connection: Connection, refs: set[str]
) -> tuple[dict[int, Row], dict[str, list[Row]]]:
    """Events an id among `refs` names, and every event bearing one of `refs` as its name."""
    if not refs:
        return {}, {}
    ids = {number for number in map(_event_id, refs) if number is not None}
    if len(refs) == 1:
        (name,) = refs
        rows = (
            connection.execute(_EVENTS_BY_ID_OR_NAME, {"id": next(iter(ids)), "name": name})
            if ids
            else connection.execute(_EVENTS_BY_NAME, {"name": name})
        )
    elif ids:
        rows = connection.execute(_EVENTS_BY_IDS_OR_NAMES, {"ids": list(ids), "names": list(refs)})
    else:
        rows = connection.execute(_EVENTS_BY_NAMES, {"names": list(refs)})
    by_id: dict[int, Row] = {}
    by_name: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        if row.id in ids:
            by_id[row.id] = row
        if row.name in refs:
            by_name[row.name].append(row)
    return by_id, by_name


@dataclass
class _Planned:
    """A check-in that passed every rule and waits for its INSERT."""

    student: Row
    event: Row
    moment: datetime
    status: str
    values: dict[str, Any]


def _student_of(check_in: CheckIn, known: _Known) -> Row:
    if check_in.person_id is not None:
        student = known.people_by_id.get(check_in.person_id)
        if student is None:
            raise NotFound("Person not found", code="person_not_found")
        return student
    student = known.people_by_key.get(normalize_key(check_in.student_ref) or "")
    if student is None:
        raise student_not_found(check_in.student_ref)
    return student


def _event_of(check_in: CheckIn, known: _Known, moment: datetime, rules: CheckInRules) -> Row:
    if check_in.event_id is not None:
        event = known.events_by_id.get(check_in.event_id)
        if event is None:
            raise NotFound("Event not found", code="event_not_found")
        return event
    ref = check_in.event_ref.strip()
    event_id = _event_id(ref)
    event = known.events_by_id.get(event_id) if event_id is not None else None
    if event is None:
        candidates = known.events_by_name.get(ref)
        if not candidates:
            raise event_not_found(ref)
        event = pick_event(candidates, moment, rules)
    return event


def _plan(
    check_in: CheckIn,
    *,
    known: _Known,
    arrived_at: datetime,
    rules: CheckInRules,
    stored_at: datetime,
) -> _Planned:
    """Resolve and judge one check-in without writing: raises the domain error it earns."""
    if check_in.checked_in_at is not None:
        check_client_time(check_in.checked_in_at, arrived_at, rules)
    moment = check_in.checked_in_at or arrived_at
    student = _student_of(check_in, known)
    event = _event_of(check_in, known, moment, rules)
    if not event.is_active:
        raise OutsideWindow("Event is not active", code="event_inactive")
    check_window(event, moment, rules)
    status = attendance_status(event, moment, rules)
    values = {
        "student_id": student.id,
        "event_id": event.id,
        "checked_in_at": moment,
        "status": status,
        "source": check_in.source,
        "metadata": check_in.metadata or {},
        "created_at": stored_at,
    }
    return _Planned(student, event, moment, status, values)


def _recorded(planned: _Planned, attendance_id: int) -> Recorded:
    student, event = planned.student, planned.event
    return Recorded(
        attendance_id=attendance_id,
        student_id=student.id,
        student_identifier=student.identifier,
        student_name=f"{student.first_name} {student.last_name}".strip(),
        student_email=student.email,
        event_id=event.id,
        event_name=event.name,
        event_start=event.start_time,
        checked_in_at=planned.moment,
        status=planned.status,
        source=planned.values["source"],
    )


def _insert(connection: Connection, rows: Sequence[dict[str, Any]]) -> dict[tuple[int, int], int]:
    """Insert the new pairs; returns the id of each pair that was not stored already.

    Rows go in (student, event) order, so two batches sharing pairs take their row locks in
    the same order and wait for each other instead of deadlocking (PostgreSQL). The values
    are bound on the driver's own cursor, as the columns' types would bind them: on this
    path SQLAlchemy's per-value processing cost more than the insert.
    """
    ordered = sorted(rows, key=lambda row: (row["student_id"], row["event_id"]))
    sqlite = connection.dialect.name == "sqlite"
    values = [
        (
            row["student_id"],
            row["event_id"],
            bound_time(row["checked_in_at"], sqlite=sqlite),
            row["status"],
            row["source"],
            json.dumps(row["metadata"], separators=(",", ":")) if row["metadata"] else "{}",
            bound_time(row["created_at"], sqlite=sqlite),
        )
        for row in ordered
    ]
    if not sqlite:
        columns = tuple(list(column) for column in zip(*values, strict=True))
        result = connection.exec_driver_sql(_INSERT_POSTGRESQL, columns)
        return {(student, event): id_ for id_, student, event in result}
    stored: dict[tuple[int, int], int] = {}
    for start in range(0, len(values), _ROWS_PER_INSERT):
        chunk = values[start : start + _ROWS_PER_INSERT]
        flat = tuple(value for row in chunk for value in row)
        result = connection.exec_driver_sql(_insert_sql(len(chunk)), flat)
        stored.update({(student, event): id_ for id_, student, event in result})
    return stored


def record_check_in(
    check_in: CheckIn, *, arrived_at: datetime, rules: CheckInRules, actor: str
) -> Recorded:
    """Record one check-in: window, lateness and once-only, judged on the scanner's time."""
    (result,) = record_check_ins([check_in], arrived_at=arrived_at, rules=rules, actor=actor)
    if isinstance(result, DomainError):
        raise result
    return result


def _first_marks(
    plans: Sequence[_Planned | DomainError], stored: dict[tuple[int, int], int]
) -> list[history.FirstMark]:
    """Each stored check-in, as its first history entry tells it."""
    marks = []
    for plan in plans:
        if isinstance(plan, DomainError):
            continue
        attendance_id = stored.get((plan.student.id, plan.event.id))
        if attendance_id is not None:
            marks.append(
                history.FirstMark(
                    attendance_id, plan.event.id, plan.student.id, plan.status, plan.moment
                )
            )
    return marks


def record_check_ins(
    check_ins: Iterable[CheckIn | DomainError],
    *,
    arrived_at: datetime,
    rules: CheckInRules,
    actor: str,
) -> list[Recorded | DomainError]:
    """Record many check-ins in one statement each for people, events and inserts.

    Results come back in order; an item that was already a parse error, or that fails a
    rule, is its domain error and spoils no other. The first of two items naming the same
    pair wins; the second is a duplicate, as it would be sent one after the other. Each
    stored check-in gets its first history entry, by `actor`, in the same transaction
    (one more statement, whatever the batch size).
    """
    items = list(check_ins)
    wanted = [item for item in items if isinstance(item, CheckIn)]
    with write_transaction() as session:
        connection = session.connection()
        stored_at = utcnow()  # one moment for the transaction's rows and their entries
        known = _look_up(connection, wanted)
        plans: list[_Planned | DomainError] = []
        claimed: set[tuple[int, int]] = set()
        for item in items:
            if not isinstance(item, CheckIn):
                plans.append(item)
                continue
            try:
                planned = _plan(
                    item, known=known, arrived_at=arrived_at, rules=rules, stored_at=stored_at
                )
            except DomainError as error:
                plans.append(error)
                continue
            pair = (planned.student.id, planned.event.id)
            if pair in claimed:
                plans.append(AlreadyCheckedIn("Student already checked in to this event"))
                continue
            claimed.add(pair)
            plans.append(planned)
        to_insert = [plan.values for plan in plans if isinstance(plan, _Planned)]
        stored = _insert(connection, to_insert) if to_insert else {}
        results: list[Recorded | DomainError] = []
        for plan in plans:
            if isinstance(plan, DomainError):
                results.append(plan)
                continue
            attendance_id = stored.get((plan.student.id, plan.event.id))
            if attendance_id is None:
                results.append(AlreadyCheckedIn("Student already checked in to this event"))
            else:
                results.append(_recorded(plan, attendance_id))
        if stored:
            history.write_first_marks(
                connection, _first_marks(plans, stored), actor=actor, recorded_at=stored_at
            )
            recorded = [result for result in results if isinstance(result, Recorded)]
            signals.attendances_recorded.send(session, records=recorded)
    return results
