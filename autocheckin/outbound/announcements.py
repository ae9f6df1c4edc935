"""What each event's `data` carries, built from what the announcing code has at hand.

The source document names `student_id`, `session_id`, `status` and `method`; a session is
what this service calls an event, and `method` is the way the check-in came in (the
check-in app's `source`, `web`, `discord` …). The rest is what else is known, so a
receiver rarely has to call back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from autocheckin.attendance import signals
from autocheckin.attendance.models import Event
from autocheckin.outbound import outbox
from autocheckin.outbound.models import (
    ALERT_CREATED,
    ATTENDANCE_MARKED,
    ATTENDANCE_UPDATED,
    FRAUD_DETECTED,
    SESSION_CREATED,
    SESSION_UPDATED,
    STUDENT_ENROLLED,
)
from autocheckin.times import iso

EVENTS = Event.__table__


def attendance_marked(record: Any) -> dict[str, Any]:
    """A stored check-in (`attendance.checkins.Recorded`) as `attendance.marked` data."""
    return {
        "attendance_id": record.attendance_id,
        "student_id": record.student_id,
        "student_identifier": record.student_identifier,
        "student_email": record.student_email,
        "student_name": record.student_name,
        "session_id": record.event_id,
        "session_name": record.event_name,
        "status": record.status,
        "method": record.source,
        "checked_in_at": iso(record.checked_in_at),
    }


def attendance_updated(change: Any) -> dict[str, Any]:
    """A correction (`attendance.corrections.Change`) as `attendance.updated` data."""
    return {
        "attendance_id": change.attendance_id,
        "student_id": change.after["student_id"],
        "session_id": change.event_id,
        "action": change.action,
        "status": change.after["status"],
        "voided": change.after["voided"],
        "version": change.version,
        "before": change.before,
        "after": change.after,
        "actor": change.actor,
        "reason": change.reason,
    }


def alert_created(alert: Any) -> dict[str, Any]:
    """A new absence alert (`alerts.evaluation.NewAlert`) as `alert.created` data."""
    return {
        "alert_id": alert.alert_id,
        "rule": alert.rule,
        "student_id": alert.student_id,
        "student_identifier": alert.student_identifier,
        "student_email": alert.student_email,
        "student_name": alert.student_name,
        "figures": alert.figures,
        "event_ids": alert.event_ids,
        "created_at": iso(alert.created_at),
    }


def session_data(event: Any, *, changed: Iterable[str] | None = None) -> dict[str, Any]:
    """An event (ORM object or row) as a session; `changed` names what an update changed."""
    data = {
        "session_id": event.id,
        "name": event.name,
        "start_time": iso(event.start_time),
        "end_time": iso(event.end_time),
        "event_type": event.event_type,
        "points": event.points,
        "description": event.description,
        "location": event.location,
        "is_active": event.is_active,
        "discord_channel_id": event.discord_channel_id,
        "external_id": event.external_id,
        "source": event.source,
    }
    if changed is not None:
        data["changed"] = sorted(changed)
    return data


def student_enrolled(
    *,
    student_id: int,
    student_identifier: str | None,
    student_email: str | None,
    session_id: int,
    session_name: str,
    source: str,
) -> dict[str, Any]:
    return {
        "student_id": student_id,
        "student_identifier": student_identifier,
        "student_email": student_email,
        "session_id": session_id,
        "session_name": session_name,
        "source": source,
    }


# --- what the core announces (connected when this module is imported) ----------------------


@signals.event_created.connect
def session_created(session: Session, *, event: Any) -> None:
    """Announce a new event; flushes first so that it has its id."""
    if outbox.is_subscribed(session, SESSION_CREATED):
        session.flush()
        outbox.announce(session, SESSION_CREATED, [session_data(event)])


@signals.event_updated.connect
def session_updated(session: Session, *, event: Any, changed: Iterable[str]) -> None:
    changed = list(changed)
    if changed:
        outbox.announce(session, SESSION_UPDATED, lambda: [session_data(event, changed=changed)])


@signals.occurrences_created.connect
def occurrences_created(session: Session, *, event_ids: list[int]) -> None:
    """One `session.created` delivery per occurrence a series' generation made."""
    if not outbox.is_subscribed(session, SESSION_CREATED):
        return
    rows = session.execute(select(EVENTS).where(EVENTS.c.id.in_(event_ids)).order_by(EVENTS.c.id))
    outbox.announce(session, SESSION_CREATED, [session_data(row) for row in rows])


@signals.attendances_recorded.connect
def attendances_marked(session: Session, *, records: list[Any]) -> None:
    """One `attendance.marked` row for the check-ins a transaction stored, built only when
    someone subscribes."""
    outbox.announce(session, ATTENDANCE_MARKED, lambda: [attendance_marked(r) for r in records])


@signals.attendance_corrected.connect
def attendances_updated(session: Session, *, changes: list[Any]) -> None:
    """One `attendance.updated` row for what a correction changed, in its transaction."""
    outbox.announce(session, ATTENDANCE_UPDATED, lambda: [attendance_updated(c) for c in changes])


@signals.findings_created.connect
def fraud_detected(session: Session, *, findings: list[dict[str, Any]]) -> None:
    """One `fraud.detected` row for the findings a detector pass made, in its transaction."""
    outbox.announce(session, FRAUD_DETECTED, findings)


@signals.alert_created.connect
def alerts_created(session: Session, *, alerts: list[Any]) -> None:
    """One `alert.created` row for the absence alerts a transaction inserted."""
    outbox.announce(session, ALERT_CREATED, lambda: [alert_created(a) for a in alerts])


# --- sync: what an upsert of upstream sessions created or changed -----------------------------


def sessions_before_sync(session: Session, external_ids: list[str]) -> dict[str, Any] | None:
    """The stored rows of these upstream sessions, to tell new from changed after the upsert;
    None (and no query) when nobody subscribes to either."""
    if not (
        outbox.is_subscribed(session, SESSION_CREATED)
        or outbox.is_subscribed(session, SESSION_UPDATED)
    ):
        return None
    rows = session.execute(select(EVENTS).where(EVENTS.c.external_id.in_(external_ids)))
    return {row.external_id: row for row in rows}


def sessions_synced(
    session: Session,
    earlier: dict[str, Any] | None,
    synced: dict[str, dict[str, Any]],
    event_id: Callable[[str], int],
) -> None:
    """Announce the sessions the upsert created, and those whose synced fields changed."""
    if earlier is None:
        return
    created: list[int] = []
    updated: dict[int, list[str]] = {}
    for external_id, fields in synced.items():
        before = earlier.get(external_id)
        if before is None:
            created.append(event_id(external_id))
            continue
        changed = [name for name, value in fields.items() if getattr(before, name) != value]
        if changed:
            updated[event_id(external_id)] = changed
    if not created and not updated:
        return
    rows = {
        row.id: row
        for row in session.execute(select(EVENTS).where(EVENTS.c.id.in_(created + list(updated))))
    }
    if created:
        outbox.announce(session, SESSION_CREATED, [session_data(rows[i]) for i in created])
    if updated:
        outbox.announce(
            session,
            SESSION_UPDATED,
            [session_data(rows[i], changed=names) for i, names in updated.items()],
        )


def enrolments_synced(
    session: Session,
    added: list[Any],
    users: list[Any],
    sessions_by_student: dict[int, list[dict[str, Any]]],
    event_id: Callable[[str], int],
) -> None:
    """Announce the enrolments a sync inserted (`added`: (student_id, event_id) rows)."""
    if not added:
        return

    def build() -> list[dict[str, Any]]:
        students = {user.student_id: user for user in users}
        names = {
            event_id(fields["external_id"]): fields["name"]
            for valid in sessions_by_student.values()
            for fields in valid
        }
        return [
            student_enrolled(
                student_id=student_id,
                student_identifier=students[student_id].identifier,
                student_email=students[student_id].email,
                session_id=session_id,
                session_name=names.get(session_id, ""),
                source="checkout",
            )
            for student_id, session_id in added
        ]

    outbox.announce(session, STUDENT_ENROLLED, build)
