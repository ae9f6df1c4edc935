"""Evaluating the rules and raising alerts: one alert each time a rule starts to hold.

`alert_rule_states` keeps, per person and rule, whether it holds. A new alert is written
only by the statement that turns that row from not holding to holding (a conditional
UPDATE, or an INSERT … ON CONFLICT DO NOTHING for a first row), in the transaction that
inserts the alert and announces it: two processes evaluating the same person at once, or
a restart, give one alert, never two. When a rule stops holding the row is reset, so the
next time it holds is a new alert.

The job (`evaluate_changed`) reads only the people who might have changed since its last
run (the watermark in the state store), with an overlap margin for transactions that
committed late; re-evaluating a person changes nothing when nothing changed. People are
read and written in chunks, so the work stays bounded whatever the roster's size.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, insert, select, union, update

from autocheckin import state
from autocheckin.alerts.models import RULES, Alert, AlertRuleState
from autocheckin.alerts.rules import AlertRules, Expected, Verdict, outcome_of, verdicts
from autocheckin.attendance import signals
from autocheckin.attendance.models import (
    Attendance,
    AttendanceChange,
    Enrolment,
    Event,
    Student,
)
from autocheckin.database import dialect_insert, highest_id_before, write_transaction
from autocheckin.extensions import db
from autocheckin.times import iso, parse_iso

log = logging.getLogger("autocheckin.alerts")

WATERMARK_KEY = "alerts_evaluated_at"
HISTORY_KEY = "alerts_history_after_id"
# Changes recorded up to this long before the last run are looked at again: a transaction
# that wrote its history entry before the run started but committed after it is not missed.
OVERLAP = timedelta(minutes=10)
CHUNK = 200  # people read and written per transaction (× their events: the rows read)

STATES = AlertRuleState.__table__
ALERTS = Alert.__table__


@dataclass(frozen=True)
class NewAlert:
    """An alert just inserted, with what `alert.created` tells about it."""

    alert_id: int
    rule: str
    student_id: int
    student_identifier: str | None
    student_email: str | None
    student_name: str
    figures: dict[str, Any]
    event_ids: list[int]
    created_at: datetime


@dataclass(frozen=True)
class _Person:
    student_id: int
    identifier: str | None
    email: str | None
    name: str
    verdicts: list[Verdict]
    held: dict[str, bool]  # as stored when read


# --- the job ------------------------------------------------------------------------------------


def evaluate_changed(*, now: datetime, rules: AlertRules) -> dict[str, int]:
    """Evaluate everyone who might have changed since the last run (everyone on the first)."""
    last = state.get(WATERMARK_KEY)
    after_history_id = int(state.get(HISTORY_KEY) or 0)
    if last is None:
        people = everyone()
    else:
        people = changed_people(
            since=parse_iso(last) - OVERLAP,
            now=now,
            rules=rules,
            after_history_id=after_history_id,
        )
    counts = evaluate_people(student_ids=people, now=now, rules=rules)
    # History ids up to the last entry OVERLAP old are read no more (a primary-key range:
    # no index on `recorded_at` slows every check-in).
    settled = highest_id_before(
        AttendanceChange.id, AttendanceChange.recorded_at, now - OVERLAP, after=after_history_id
    )
    state.set_many({WATERMARK_KEY: iso(now), HISTORY_KEY: settled})
    return counts


def everyone() -> list[int]:
    """Every person on the roster who is not deactivated."""
    return list(
        db.session.scalars(
            select(Student.id).where(Student.deactivated_at.is_(None)).order_by(Student.id)
        )
    )


def changed_people(
    *, since: datetime, now: datetime, rules: AlertRules, after_history_id: int = 0
) -> list[int]:
    """People whose verdicts may differ from the last run's: expected at an event that ended
    since, or that left the rate's period since, or that was changed since (cancelled,
    moved); enrolled since; or whose marks changed since (every history entry after
    `after_history_id`, which stays OVERLAP behind the last run)."""
    touched_events = select(Event.id).where(
        Event.end_time.is_not(None),
        Event.end_time < now,
        (Event.end_time >= since)
        | and_(Event.end_time >= since - rules.period, Event.end_time < now - rules.period)
        | (Event.updated_at >= since),
    )
    query = union(
        select(Enrolment.student_id).where(Enrolment.event_id.in_(touched_events)),
        select(Attendance.student_id).where(Attendance.event_id.in_(touched_events)),
        select(Enrolment.student_id).where(Enrolment.created_at >= since),
        select(Attendance.student_id)
        .join(AttendanceChange, AttendanceChange.attendance_id == Attendance.id)
        .where(AttendanceChange.id > after_history_id),
    )
    return sorted(set(db.session.scalars(query)))


# --- evaluating people --------------------------------------------------------------------------


def evaluate_people(
    *, student_ids: Iterable[int], now: datetime, rules: AlertRules
) -> dict[str, int]:
    """Evaluate these people, CHUNK at a time: a new alert for each rule that starts to
    hold, a reset for each that stops; idempotent."""
    counts = {"people": 0, "alerts": 0, "reset": 0}
    ids = sorted(set(student_ids))
    for start in range(0, len(ids), CHUNK):
        people = _read(ids[start : start + CHUNK], now=now, rules=rules)
        raised, reset = _write(people, now=now)
        counts["people"] += len(people)
        counts["alerts"] += raised
        counts["reset"] += reset
    if counts["alerts"]:
        log.info("absence alerts: %(alerts)d raised, %(reset)d reset, %(people)d people", counts)
    return counts


_PEOPLE = select(
    Student.id,
    Student.identifier,
    Student.email,
    Student.first_name,
    Student.last_name,
    Student.deactivated_at,
).where(Student.id.in_(bindparam("ids", expanding=True)))
_HELD = select(STATES.c.student_id, STATES.c.rule, STATES.c.holds).where(
    STATES.c.student_id.in_(bindparam("ids", expanding=True))
)


def _expected_query() -> Any:
    """Each person's expected events that ended (active, not cancelled), with the mark."""
    ids = bindparam("ids", expanding=True)
    pairs = union(
        select(Enrolment.student_id, Enrolment.event_id).where(Enrolment.student_id.in_(ids)),
        select(Attendance.student_id, Attendance.event_id).where(Attendance.student_id.in_(ids)),
    ).subquery()
    return (
        select(
            pairs.c.student_id, Event.id, Event.end_time, Attendance.status, Attendance.voided_at
        )
        .join(Event, Event.id == pairs.c.event_id)
        .outerjoin(
            Attendance,
            and_(
                Attendance.student_id == pairs.c.student_id,
                Attendance.event_id == pairs.c.event_id,
            ),
        )
        .where(
            Event.end_time.is_not(None),
            Event.end_time < bindparam("now"),
            Event.is_active.is_(True),
            Event.is_cancelled.is_(False),
        )
        .order_by(pairs.c.student_id, Event.end_time, Event.id)
    )


_EXPECTED = _expected_query()


def _read(ids: list[int], *, now: datetime, rules: AlertRules) -> list[_Person]:
    """The verdicts of these people from their current marks, and what is stored."""
    session = db.session
    # What is stored first, then the marks: a verdict is never older than the state it
    # is compared with (another evaluation may change the state between the two reads).
    held: dict[int, dict[str, bool]] = defaultdict(dict)
    for row in session.execute(_HELD, {"ids": ids}):
        held[row.student_id][row.rule] = bool(row.holds)
    expected: dict[int, list[Expected]] = defaultdict(list)
    for row in session.execute(_EXPECTED, {"ids": ids, "now": now}):
        expected[row.student_id].append(
            Expected(
                event_id=row.id,
                ended_at=row.end_time,
                outcome=outcome_of(row.status, row.voided_at),
            )
        )
    people = []
    for row in session.execute(_PEOPLE, {"ids": ids}):
        if row.deactivated_at is not None:  # no alerts for a removed person
            found = [Verdict(rule=rule, holds=False) for rule in RULES]
        else:
            found = verdicts(expected.get(row.id, []), rules, now=now)
        people.append(
            _Person(
                student_id=row.id,
                identifier=row.identifier,
                email=row.email,
                name=f"{row.first_name} {row.last_name}".strip(),
                verdicts=found,
                held=held.get(row.id, {}),
            )
        )
    return people


def _starts_to_hold(connection: Any, student_id: int, rule: str, now: datetime) -> bool:
    """Turn the row to holding; True only for the one statement that made the change.

    RETURNING says what changed: a DO NOTHING insert's rowcount is not 0 on every driver."""
    turned = connection.execute(
        update(STATES)
        .where(STATES.c.student_id == student_id, STATES.c.rule == rule, STATES.c.holds.is_(False))
        .values(holds=True, changed_at=now)
        .returning(STATES.c.id)
    ).first()
    if turned is not None:
        return True
    inserted = connection.execute(
        dialect_insert(connection)(STATES)
        .values(student_id=student_id, rule=rule, holds=True, changed_at=now)
        .on_conflict_do_nothing(index_elements=["student_id", "rule"])
        .returning(STATES.c.id)
    ).first()
    return inserted is not None


def _write(people: Sequence[_Person], *, now: datetime) -> tuple[int, int]:
    """Store each changed verdict; insert and announce an alert for each that started."""
    changes = [
        (person, verdict)
        for person in people
        for verdict in person.verdicts
        if verdict.holds != person.held.get(verdict.rule, False)
    ]
    if not changes:
        return 0, 0
    raised: list[NewAlert] = []
    reset = 0
    with write_transaction() as session:
        connection = session.connection()
        for person, verdict in changes:  # in (person, rule) order: rows locked in one order
            if not verdict.holds:
                stopped = connection.execute(
                    update(STATES)
                    .where(
                        STATES.c.student_id == person.student_id,
                        STATES.c.rule == verdict.rule,
                        STATES.c.holds.is_(True),
                    )
                    .values(holds=False, changed_at=now)
                )
                reset += stopped.rowcount
                continue
            if not _starts_to_hold(connection, person.student_id, verdict.rule, now):
                continue  # another evaluation raised it first
            alert_id = connection.execute(
                insert(ALERTS)
                .values(
                    student_id=person.student_id,
                    rule=verdict.rule,
                    figures=verdict.figures,
                    event_ids=verdict.event_ids,
                    created_at=now,
                )
                .returning(ALERTS.c.id)
            ).scalar_one()
            connection.execute(
                update(STATES)
                .where(STATES.c.student_id == person.student_id, STATES.c.rule == verdict.rule)
                .values(alert_id=alert_id)
            )
            raised.append(
                NewAlert(
                    alert_id=alert_id,
                    rule=verdict.rule,
                    student_id=person.student_id,
                    student_identifier=person.identifier,
                    student_email=person.email,
                    student_name=person.name,
                    figures=verdict.figures,
                    event_ids=verdict.event_ids,
                    created_at=now,
                )
            )
        if raised:
            signals.alert_created.send(session, alerts=raised)
    return len(raised), reset
