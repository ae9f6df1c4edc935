"""The roster: CheckOut's user list, kept as students and their place in that list."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, insert, select
from sqlalchemy.exc import IntegrityError

from autocheckin import state
from autocheckin.attendance.models import Student, normalize_key
from autocheckin.database import write_transaction
from autocheckin.extensions import db
from autocheckin.sync.client import CheckOutClient, CheckOutError
from autocheckin.sync.connection import UpstreamFailed
from autocheckin.sync.models import RosterEntry
from autocheckin.times import iso, utcnow

# The contract's user fields: nothing else upstream sends is stored or shown.
USER_FIELDS = ("email", "student_identifier", "first_name", "last_name")


def _public_user(user: dict[str, Any]) -> dict[str, Any]:
    return {name: user[name] for name in USER_FIELDS if isinstance(user.get(name), str)}


def fetch_users(client: CheckOutClient) -> dict[str, int]:
    """Upsert students from `autoCheckinUsers` and make them the roster, in upstream's
    order; on failure the last good roster stays."""
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
    now = utcnow()
    with write_transaction() as session:
        by_email = {
            student.email_key: student
            for student in session.scalars(
                select(Student).where(
                    Student.email_key.in_([normalize_key(u["email"]) for u in users])
                )
            )
        }
        listed: list[Student] = []
        for user in users:
            student = by_email.get(normalize_key(user["email"]))
            if student is None:
                student = _new_student(session, user)
                by_email[student.email_key] = student
                created += 1
            elif _update_names(student, user):
                updated += 1
            listed.append(student)
        session.flush()  # the new students' ids, for the roster
        session.execute(delete(RosterEntry))
        positions = {}
        for student in listed:
            positions.setdefault(student.id, len(positions))
        if positions:
            session.execute(
                insert(RosterEntry),
                [
                    {"student_id": student_id, "position": position, "listed_at": now}
                    for student_id, position in positions.items()
                ],
            )
        state.set("last_users_fetch", iso(now))
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


_ROSTER = (
    select(Student.id, Student.email, Student.identifier, Student.first_name, Student.last_name)
    .join(RosterEntry, RosterEntry.student_id == Student.id)
    .order_by(RosterEntry.position)
)
_ROSTER_SIZE = select(func.count()).select_from(RosterEntry)


def roster() -> list[tuple[int, str, str | None]]:
    """(student id, email, identifier) of everyone on the roster, in upstream's order."""
    return [(row.id, row.email, row.identifier) for row in db.session.execute(_ROSTER)]


def roster_page(*, limit: int | None, offset: int) -> tuple[list[dict[str, str]], int]:
    """A page of the roster (the whole of it when `limit` is None) as `autoCheckinUsers`
    entries (the contract's fields that are set), and the roster's size."""
    rows = db.session.execute(_ROSTER.limit(limit).offset(offset))
    page = [
        {name: value for name, value in zip(USER_FIELDS, row[1:], strict=True) if value}
        for row in rows
    ]
    return page, db.session.execute(_ROSTER_SIZE).scalar_one()
