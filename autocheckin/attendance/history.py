"""Every change to an attendance, as append-only, hash-chained entries.

An entry says when, what (the mark before and after), who (the actor) and why (the
reason). Its `entry_hash` is SHA-256 over the previous entry's hash and the entry's
canonical content (sorted-key, compact UTF-8 JSON), so editing, removing or reordering an
entry behind the service's back breaks the chain, and `verify` names the first entry that
no longer matches. Each attendance has its own chain (the first entry chains to
`GENESIS`): a global chain would make every check-in in every worker wait on one lock.
Verification also checks that each attendance's row is what its last entry says, so a row
edited behind the service's back shows too.

Actors are short strings: `account:<id>`, `api_key:<name>`, `checkout_key`,
`webhook:<door>:<X-Request-ID>`, `discord:<discord user id>`, `job:<name>`, `cli:<user>`,
`migration`.
"""

from __future__ import annotations

import functools
import getpass
import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, bindparam, exists, select

from autocheckin.attendance.models import Attendance, AttendanceChange
from autocheckin.database import bound_time
from autocheckin.times import utcnow

HISTORY = AttendanceChange.__table__
ATTENDANCES = Attendance.__table__
GENESIS = "0" * 64
FORMAT = 1  # the canonical content's version: an entry is verified by the rules it was made with
MAX_ACTOR = 200
MARKED, STATUS_SET, VOIDED, RESTORED, TIME_CHANGED, MOVED = (
    "marked",
    "status_set",
    "voided",
    "restored",
    "time_changed",
    "moved",
)


def cli_actor() -> str:
    """The actor a command names: the operating-system user who ran it."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (some containers)
        user = "unknown"
    return f"cli:{user}"


def timestamp(moment: datetime | None) -> str | None:
    """The one text form of a time in canonical content: UTC, microseconds, `Z`."""
    if moment is None:
        return None
    # isoformat is strftime("%Y-%m-%dT%H:%M:%S.%f") at a third of the cost (verify's loop);
    # a time already in UTC (every time the service makes or reads) needs no conversion.
    if moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC)
    return moment.isoformat(timespec="microseconds")[:-6] + "Z"


def state(
    *,
    student_id: int,
    status: str,
    checked_in_at: datetime | None,
    voided: bool,
    status_explicit: bool,
) -> dict[str, Any]:
    """A mark as an entry's `before` or `after` holds it (JSON values only)."""
    return {
        "student_id": student_id,
        "status": status,
        "checked_in_at": timestamp(checked_in_at),
        "voided": voided,
        "status_explicit": status_explicit,
    }


def state_of(row: Any) -> dict[str, Any]:
    """The mark an attendance row (ORM object or Core row) holds now."""
    return state(
        student_id=row.student_id,
        status=row.status,
        checked_in_at=row.checked_in_at,
        voided=row.voided_at is not None,
        status_explicit=bool(row.status_explicit),
    )


def canonical_generic(entry: dict[str, Any]) -> bytes:
    """The bytes an entry's hash covers: every field but its id and its own hash, as
    sorted-key compact UTF-8 JSON. The definition; `canonical` is its fast twin."""
    content = {
        "format": FORMAT,
        "attendance_id": entry["attendance_id"],
        "seq": entry["seq"],
        "event_id": entry["event_id"],
        "recorded_at": timestamp(entry["recorded_at"]),
        "action": entry["action"],
        "before": entry["before"],
        "after": entry["after"],
        "actor": entry["actor"],
        "reason": entry["reason"],
    }
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


_STATE_KEYS = frozenset(("checked_in_at", "status", "status_explicit", "student_id", "voided"))
_text = json.encoder.encode_basestring  # a str as json.dumps(ensure_ascii=False) writes it


def _state_json(value: Any) -> str | None:
    """A state's canonical JSON by template (keys in sorted order); None when `value` is not
    exactly a state (an extra key, a wrong type: the generic form must judge it)."""
    if value is None:
        return "null"
    if type(value) is not dict or value.keys() != _STATE_KEYS:
        return None
    at, status, explicit = value["checked_in_at"], value["status"], value["status_explicit"]
    student, voided = value["student_id"], value["voided"]
    if not (
        (at is None or type(at) is str)
        and type(status) is str
        and type(explicit) is bool
        and type(student) is int
        and type(voided) is bool
    ):
        return None
    return (
        '{"checked_in_at":'
        + ("null" if at is None else _text(at))
        + ',"status":'
        + _text(status)
        + ',"status_explicit":'
        + ("true" if explicit else "false")
        + ',"student_id":'
        + str(student)
        + ',"voided":'
        + ("true" if voided else "false")
        + "}"
    )


def canonical(entry: dict[str, Any]) -> bytes:
    """`canonical_generic`'s bytes, built by template: a quarter of json.dumps's cost on the
    check-in path and in `verify`. Anything but plain values falls back to the generic
    form, so both always agree (tests/test_corrections.py holds them together)."""
    before, after = _state_json(entry["before"]), _state_json(entry["after"])
    action, actor, reason = entry["action"], entry["actor"], entry["reason"]
    attendance_id, seq, event_id = entry["attendance_id"], entry["seq"], entry["event_id"]
    if (
        before is None
        or after is None
        or type(action) is not str
        or type(actor) is not str
        or not (reason is None or type(reason) is str)
        or type(attendance_id) is not int
        or type(seq) is not int
        or type(event_id) is not int
    ):
        return canonical_generic(entry)
    return (
        '{"action":'
        + _text(action)
        + ',"actor":'
        + _text(actor)
        + ',"after":'
        + after
        + ',"attendance_id":'
        + str(attendance_id)
        + ',"before":'
        + before
        + ',"event_id":'
        + str(event_id)
        + f',"format":{FORMAT},"reason":'
        + ("null" if reason is None else _text(reason))
        + ',"recorded_at":"'
        + timestamp(entry["recorded_at"])
        + '","seq":'
        + str(seq)
        + "}"
    ).encode()


def chained(previous_hash: str, entry: dict[str, Any]) -> str:
    return hashlib.sha256(previous_hash.encode() + b"\n" + canonical(entry)).hexdigest()


def entry(
    *,
    attendance_id: int,
    seq: int,
    event_id: int,
    action: str,
    before: dict[str, Any] | None,
    after: dict[str, Any],
    actor: str,
    reason: str | None,
    previous_hash: str,
    recorded_at: datetime | None = None,
) -> dict[str, Any]:
    """A new entry's row, hashed onto `previous_hash`."""
    row = {
        "attendance_id": attendance_id,
        "seq": seq,
        "event_id": event_id,
        "recorded_at": recorded_at or utcnow(),
        "action": action,
        "before": before,
        "after": after,
        "actor": actor[:MAX_ACTOR],
        "reason": reason,
        "previous_hash": previous_hash,
    }
    row["entry_hash"] = chained(previous_hash, row)
    return row


_COLUMNS = (
    "attendance_id",
    "seq",
    "event_id",
    "recorded_at",
    "action",
    "before",
    "after",
    "actor",
    "reason",
    "previous_hash",
    "entry_hash",
)
_ROWS_PER_INSERT = 1000  # 11,000 values: within SQLite's 32,766 variables
_ONE_ROW = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
# PostgreSQL: one array per column, so the statement stays short (psycopg caches and
# prepares it; it parses a query with 11,000 placeholders anew on every call).
_INSERT_POSTGRESQL = (
    "INSERT INTO attendance_history (attendance_id, seq, event_id, recorded_at, action, "
    "before, after, actor, reason, previous_hash, entry_hash) "
    "SELECT * FROM unnest(%b::integer[], %b::integer[], %b::integer[], %b::timestamptz[], "
    "%b::text[], %b::jsonb[], %b::jsonb[], %b::text[], %b::text[], %b::text[], %b::text[])"
)


@functools.lru_cache(maxsize=64)
def _insert_sql(rows: int) -> str:
    """SQLite: one multi-row INSERT for `rows` entries, built from constants only."""
    values = ", ".join([_ONE_ROW] * rows)
    return (
        "INSERT INTO attendance_history (attendance_id, seq, event_id, recorded_at, action, "  # noqa: S608
        f"before, after, actor, reason, previous_hash, entry_hash) VALUES {values}"
    )


def _json_text(state_value: dict[str, Any] | None) -> str | None:
    if state_value is None:
        return None
    return _state_json(state_value) or json.dumps(state_value)


def write(connection: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Append entries in one statement on the driver's own cursor (SQLite: per 1,000).

    Bound as the columns' types would bind them (UTC times, SQLite's naive text form;
    JSON as text), without SQLAlchemy's per-value processing: on the check-in path that
    processing cost more than the insert itself.
    """
    if not rows:
        return
    sqlite = connection.dialect.name == "sqlite"
    _insert_values(
        connection,
        [
            (
                row["attendance_id"],
                row["seq"],
                row["event_id"],
                bound_time(row["recorded_at"], sqlite=sqlite),
                row["action"],
                _json_text(row["before"]),
                _json_text(row["after"]),
                row["actor"],
                row["reason"],
                row["previous_hash"],
                row["entry_hash"],
            )
            for row in rows
        ],
        sqlite=sqlite,
    )


def _insert_values(connection: Connection, values: list[tuple], *, sqlite: bool) -> None:
    if not sqlite:
        columns = tuple(list(column) for column in zip(*values, strict=True))
        connection.exec_driver_sql(_INSERT_POSTGRESQL, columns)
        return
    for start in range(0, len(values), _ROWS_PER_INSERT):
        chunk = values[start : start + _ROWS_PER_INSERT]
        flat = tuple(value for row in chunk for value in row)
        connection.exec_driver_sql(_insert_sql(len(chunk)), flat)


@dataclass(frozen=True)
class FirstMark:
    """A check-in just stored, as its first entry says it: `marked`, by a door."""

    attendance_id: int
    event_id: int
    student_id: int
    status: str
    checked_in_at: datetime


def write_first_marks(
    connection: Connection, marks: Sequence[FirstMark], *, actor: str, recorded_at: datetime
) -> None:
    """Each new check-in's first entry, in one statement: the check-in path's own copy of
    `entry` and `write`, built straight into the bound row (no dicts, one template for
    the parts every entry of the batch shares). The bytes hashed are `canonical`'s
    (tests/test_corrections.py holds the two together)."""
    if not marks:
        return
    sqlite = connection.dialect.name == "sqlite"
    actor = actor[:MAX_ACTOR]
    stamp = timestamp(recorded_at)
    # Sorted keys: action, actor, after, attendance_id, before, event_id, format, reason,
    # recorded_at, seq; `after`'s: checked_in_at, status, status_explicit, student_id, voided.
    head = '{"action":"' + MARKED + '","actor":' + _text(actor) + ',"after":'
    tail = f',"format":{FORMAT},"reason":null,"recorded_at":"{stamp}","seq":1}}'
    bound_at = bound_time(recorded_at, sqlite=sqlite)
    genesis = (GENESIS + "\n").encode()
    values = []
    for mark in marks:
        after = (
            '{"checked_in_at":"'
            + timestamp(mark.checked_in_at)
            + '","status":'
            + _text(mark.status)
            + ',"status_explicit":false,"student_id":'
            + str(mark.student_id)
            + ',"voided":false}'
        )
        content = (
            head
            + after
            + ',"attendance_id":'
            + str(mark.attendance_id)
            + ',"before":null,"event_id":'
            + str(mark.event_id)
            + tail
        )
        digest = hashlib.sha256(genesis + content.encode()).hexdigest()
        values.append(
            (
                mark.attendance_id,
                1,
                mark.event_id,
                bound_at,
                MARKED,
                None,
                after,
                actor,
                None,
                GENESIS,
                digest,
            )
        )
    _insert_values(connection, values, sqlite=sqlite)


_LAST_HASH = (
    select(HISTORY.c.seq, HISTORY.c.entry_hash)
    .where(HISTORY.c.attendance_id == bindparam("attendance_id"))
    .order_by(HISTORY.c.seq.desc())
    .limit(1)
)


def last_link(connection: Connection, attendance_id: int) -> tuple[int, str]:
    """(seq, hash) of the attendance's newest entry; (0, GENESIS) for none."""
    row = connection.execute(_LAST_HASH, {"attendance_id": attendance_id}).first()
    return (0, GENESIS) if row is None else (row.seq, row.entry_hash)


# --- verification -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    """An entry (or an attendance with no entry) that does not match its chain."""

    entry_id: int | None
    attendance_id: int
    seq: int | None
    problem: str

    def describe(self) -> str:
        if self.entry_id is None:
            return f"attendance {self.attendance_id}: {self.problem}"
        return (
            f"entry {self.entry_id} (attendance {self.attendance_id}, seq {self.seq}): "
            f"{self.problem}"
        )


@dataclass(frozen=True)
class Verification:
    entries: int
    attendances: int
    findings: list[Finding]

    @property
    def first(self) -> Finding | None:
        """The first entry written among those that do not match (lowest id)."""
        if not self.findings:
            return None
        return min(self.findings, key=lambda f: (f.entry_id is None, f.entry_id or 0))

    @property
    def ok(self) -> bool:
        return not self.findings


_CHAIN = (
    select(
        HISTORY,
        ATTENDANCES.c.student_id.label("row_student_id"),
        ATTENDANCES.c.status.label("row_status"),
        ATTENDANCES.c.checked_in_at.label("row_checked_in_at"),
        ATTENDANCES.c.voided_at.label("row_voided_at"),
        ATTENDANCES.c.status_explicit.label("row_status_explicit"),
        ATTENDANCES.c.version.label("row_version"),
        ATTENDANCES.c.event_id.label("row_event_id"),
    )
    .outerjoin(ATTENDANCES, ATTENDANCES.c.id == HISTORY.c.attendance_id)
    .order_by(HISTORY.c.attendance_id, HISTORY.c.seq, HISTORY.c.id)
)
_WITHOUT_HISTORY = (
    select(ATTENDANCES.c.id)
    .where(~exists().where(HISTORY.c.attendance_id == ATTENDANCES.c.id))
    .order_by(ATTENDANCES.c.id)
)


def _row_state(row: Any) -> dict[str, Any]:
    return state(
        student_id=row.row_student_id,
        status=row.row_status,
        checked_in_at=row.row_checked_in_at,
        voided=row.row_voided_at is not None,
        status_explicit=bool(row.row_status_explicit),
    )


def _rows(connection: Connection, batch: int) -> Iterator[Any]:
    result = connection.execution_options(yield_per=batch).execute(_CHAIN)
    for partition in result.partitions():
        yield from partition


def verify(connection: Connection, *, batch: int = 10_000, limit: int = 100) -> Verification:
    """Recompute every chain, streaming (memory stays flat whatever the history's size).

    Up to `limit` findings are kept; the count of entries and attendances checked is exact.
    """
    findings: list[Finding] = []
    entries = attendances = 0

    def found(finding: Finding) -> None:
        if len(findings) < limit:
            findings.append(finding)

    current: int | None = None
    expected_seq, expected_previous = 1, GENESIS
    last: Any = None

    def close(row: Any) -> None:
        """The attendance's row must be what its last entry says, at its version."""
        if row.row_version is None:
            found(Finding(row.id, row.attendance_id, row.seq, "its attendance is missing"))
            return
        if row.row_version != row.seq:
            found(
                Finding(
                    row.id,
                    row.attendance_id,
                    row.seq,
                    f"the attendance is at version {row.row_version} but its history ends at "
                    f"{row.seq}",
                )
            )
        elif row.after != _row_state(row):
            found(
                Finding(
                    row.id,
                    row.attendance_id,
                    row.seq,
                    "the attendance row differs from its last entry (changed behind the "
                    "service's back)",
                )
            )

    for row in _rows(connection, batch):
        entries += 1
        if row.attendance_id != current:
            if last is not None:
                close(last)
            current, expected_seq, expected_previous = row.attendance_id, 1, GENESIS
            attendances += 1
        if row.seq != expected_seq:
            found(
                Finding(row.id, row.attendance_id, row.seq, f"expected seq {expected_seq} (a gap)")
            )
        elif row.previous_hash != expected_previous:
            found(
                Finding(
                    row.id,
                    row.attendance_id,
                    row.seq,
                    "its previous_hash is not the hash of the entry before",
                )
            )
        elif row.entry_hash != chained(row.previous_hash, row._mapping):
            found(
                Finding(
                    row.id,
                    row.attendance_id,
                    row.seq,
                    "its content does not match its hash (edited behind the service's back)",
                )
            )
        elif row.row_event_id is not None and row.event_id != row.row_event_id:
            found(Finding(row.id, row.attendance_id, row.seq, "names another event"))
        expected_seq, expected_previous = row.seq + 1, row.entry_hash
        last = row
    if last is not None:
        close(last)
    for (attendance_id,) in connection.execute(_WITHOUT_HISTORY.limit(limit)):
        found(Finding(None, attendance_id, None, "has no history"))
    return Verification(entries=entries, attendances=attendances, findings=findings)


def entries_of(connection: Connection, attendance_id: int) -> list[Any]:
    """An attendance's entries, oldest first."""
    return list(
        connection.execute(
            select(HISTORY)
            .where(HISTORY.c.attendance_id == attendance_id)
            .order_by(HISTORY.c.seq, HISTORY.c.id)
        )
    )


def entries_for_event(connection: Connection, event_id: int, *, limit: int = 200) -> list[Any]:
    """The newest entries of an event's attendances, newest first (the dashboard)."""
    return list(
        connection.execute(
            select(HISTORY)
            .where(HISTORY.c.event_id == event_id)
            .order_by(HISTORY.c.id.desc())
            .limit(limit)
        )
    )
