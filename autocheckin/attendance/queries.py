"""Event queries for the events and Discord APIs: windows, channels, attendees, history."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import joinedload

from autocheckin.attendance.errors import NotFound
from autocheckin.attendance.models import ATTENDED_STATUSES, Attendance, Event
from autocheckin.attendance.windows import ACTIVE, UPCOMING, CheckInRules
from autocheckin.extensions import db


@dataclass(frozen=True)
class EventFilter:
    starts_from: datetime | None = None
    starts_to: datetime | None = None
    status: str | None = None
    channel: str | None = None
    skip: int = 0
    limit: int = 100


def find_event(event_id: int) -> Event | None:
    return db.session.get(Event, event_id)


def get_event(event_id: int) -> Event:
    event = find_event(event_id)
    if event is None:
        raise NotFound("Event not found", code="event_not_found")
    return event


def _status_clause(status: str, now: datetime, rules: CheckInRules):
    """SQL for upcoming / active / ended, the same boundaries as windows.event_status."""
    # start - opens_before <= now  ⇔  start <= now + opens_before
    opening_cutoff = now + rules.opens_before
    if status == UPCOMING:
        return Event.start_time > opening_cutoff
    if status == ACTIVE:
        return and_(
            Event.start_time <= opening_cutoff,
            or_(Event.end_time.is_(None), Event.end_time >= now),
        )
    return and_(Event.end_time.is_not(None), Event.end_time < now)


def list_events(filters: EventFilter, *, now: datetime, rules: CheckInRules) -> list[Event]:
    query = select(Event).where(Event.is_active.is_(True))
    if filters.starts_from is not None:
        query = query.where(Event.start_time >= filters.starts_from)
    if filters.starts_to is not None:
        query = query.where(Event.start_time <= filters.starts_to)
    if filters.channel is not None:
        query = query.where(Event.discord_channel_id == filters.channel)
    if filters.status is not None:
        query = query.where(_status_clause(filters.status, now, rules))
    query = query.order_by(Event.start_time, Event.id).offset(filters.skip).limit(filters.limit)
    return list(db.session.scalars(query))


# A mark that says the person was there: present or late, and not voided (corrected truth).
COUNTED = and_(Attendance.voided_at.is_(None), Attendance.status.in_(ATTENDED_STATUSES))


def attendees(event_id: int) -> list[Attendance]:
    """Who attended: present or late, not voided (excused and absent marks are not here)."""
    get_event(event_id)
    return list(
        db.session.scalars(
            select(Attendance)
            .where(Attendance.event_id == event_id, COUNTED)
            .options(joinedload(Attendance.student))
            .order_by(Attendance.checked_in_at)
        )
    )


def attendance_of(*, person_id: int | None, event_id: int) -> Attendance | None:
    """The person's live mark at the event (a voided one is none; None for no person: an
    account that never checked in); NotFound for an unknown event."""
    get_event(event_id)
    if person_id is None:
        return None
    return db.session.scalar(
        select(Attendance).where(
            Attendance.student_id == person_id,
            Attendance.event_id == event_id,
            Attendance.voided_at.is_(None),
        )
    )


def history(person_id: int | None) -> list[Attendance]:
    """The events a person attended (present or late, not voided), newest first, with their
    events (none for no person)."""
    if person_id is None:
        return []
    return list(
        db.session.scalars(
            select(Attendance)
            .where(Attendance.student_id == person_id, COUNTED)
            .options(joinedload(Attendance.event))
            .order_by(Attendance.checked_in_at.desc())
        )
    )
