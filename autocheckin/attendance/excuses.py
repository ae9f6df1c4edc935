"""Excuses: a person says why they miss (or missed) an event; an admin approves it, which
marks them excused through a correction, or declines it. One excuse per person and event.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from autocheckin.attendance import corrections
from autocheckin.attendance.errors import Conflict, NotFound, Unprocessable
from autocheckin.attendance.models import (
    EXCUSE_APPROVED,
    EXCUSE_DECLINED,
    EXCUSE_PENDING,
    Event,
    Excuse,
    Student,
)
from autocheckin.attendance.windows import CheckInRules
from autocheckin.database import write_transaction
from autocheckin.extensions import db
from autocheckin.times import utcnow

STATES = (EXCUSE_PENDING, EXCUSE_APPROVED, EXCUSE_DECLINED)


def submit(*, person_id: int, event_id: int, reason: str | None, actor: str) -> Excuse:
    """A person's excuse for an event, before or after it."""
    text = (reason or "").strip()
    if not text:
        raise Unprocessable("An excuse needs a reason", code="reason_required")
    if len(text) > corrections.MAX_REASON:
        raise Unprocessable(
            f"The reason is longer than {corrections.MAX_REASON} characters",
            code="reason_too_long",
        )
    with write_transaction() as session:
        if session.get(Event, event_id) is None:
            raise NotFound(f"Event {event_id} not found", code="event_not_found")
        if session.get(Student, person_id) is None:
            raise NotFound(f"Person {person_id} not found", code="person_not_found")
        _ensure_none(person_id, event_id)
        excuse = Excuse(
            student_id=person_id,
            event_id=event_id,
            reason=text,
            state=EXCUSE_PENDING,
            submitted_by=actor[:200],
            submitted_at=utcnow(),
        )
        try:
            with session.begin_nested():
                session.add(excuse)
        except IntegrityError:
            _ensure_none(person_id, event_id)
            raise Conflict(
                "An excuse for this event was already submitted", code="excuse_exists"
            ) from None
    return excuse


def _ensure_none(person_id: int, event_id: int) -> None:
    earlier = db.session.scalar(
        select(Excuse).where(Excuse.student_id == person_id, Excuse.event_id == event_id)
    )
    if earlier is not None:
        raise Conflict(
            f"An excuse for this event was already submitted (excuse {earlier.id}, "
            f"{earlier.state})",
            code="excuse_exists",
        )


@dataclass(frozen=True)
class ExcuseFilter:
    state: str | None = None
    event_id: int | None = None
    person_id: int | None = None
    skip: int = 0
    limit: int = 100


def list_excuses(filters: ExcuseFilter) -> tuple[list[Excuse], int]:
    """A page of excuses, newest first, and how many match in all."""
    query = select(Excuse)
    if filters.state is not None:
        query = query.where(Excuse.state == filters.state)
    if filters.event_id is not None:
        query = query.where(Excuse.event_id == filters.event_id)
    if filters.person_id is not None:
        query = query.where(Excuse.student_id == filters.person_id)
    total = db.session.scalar(select(func.count()).select_from(query.subquery()))
    page = db.session.scalars(
        query.order_by(Excuse.submitted_at.desc(), Excuse.id.desc())
        .offset(filters.skip)
        .limit(filters.limit)
    )
    return list(page), total or 0


def get_excuse(excuse_id: int) -> Excuse:
    excuse = db.session.get(Excuse, excuse_id)
    if excuse is None:
        raise NotFound(f"Excuse {excuse_id} not found", code="excuse_not_found")
    return excuse


def _pending(session, excuse_id: int) -> Excuse:
    query = select(Excuse).where(Excuse.id == excuse_id)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    excuse = session.scalar(query)
    if excuse is None:
        raise NotFound(f"Excuse {excuse_id} not found", code="excuse_not_found")
    if excuse.state != EXCUSE_PENDING:
        raise Conflict(f"Excuse {excuse_id} was already {excuse.state}", code="excuse_decided")
    return excuse


def approve(
    *,
    excuse_id: int,
    actor: str,
    note: str | None,
    rules: CheckInRules,
    now: datetime | None = None,
) -> tuple[Excuse, corrections.Change]:
    """Approve a pending excuse: the person is marked excused, through a correction whose
    reason is the excuse (and the admin's note)."""
    with write_transaction():
        excuse = _pending(db.session, excuse_id)
        note = (note or "").strip() or None
        reason = f"excuse {excuse.id} approved: {excuse.reason}"
        if note:
            reason += f" (note: {note})"
        change = corrections.set_status(
            event_id=excuse.event_id,
            person_id=excuse.student_id,
            status="excused",
            correction=corrections.Correction(actor=actor, reason=reason[:2000]),
            rules=rules,
            now=now,
        )
        excuse.state, excuse.decided_by, excuse.decided_at = EXCUSE_APPROVED, actor, utcnow()
        excuse.decision_reason = note
    return excuse, change


def decline(*, excuse_id: int, actor: str, reason: str | None) -> Excuse:
    """Decline a pending excuse, saying why; the attendance is left as it is."""
    text = corrections.required_reason(reason)
    with write_transaction():
        excuse = _pending(db.session, excuse_id)
        excuse.state, excuse.decided_by, excuse.decided_at = EXCUSE_DECLINED, actor, utcnow()
        excuse.decision_reason = text
    return excuse
