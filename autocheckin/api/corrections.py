"""Corrections, history and excuses in the AutoCheckin API (`/api/v1/attendances/…`,
`/api/v1/events/{id}/attendances…`, `/api/v1/excuses…`).

Who may call: `x-checkout-key` (CHECKOUT_API_KEY or an integration key) or a web admin's
bearer token; a plain user's token is 403, nothing is 401. The caller is the actor every
history entry names (`checkout_key`, `api_key:<name>`, `account:<id>`). Each attendance
answers with its version as its ETag; `If-Match` with another version is 412 and changes
nothing. Errors have the v1 shape (`{"success": false, "message", "error", "code"}`).
"""

from __future__ import annotations

from typing import Any, Literal

from flask import Blueprint, Response, g, jsonify, request
from pydantic import BaseModel, Field

from autocheckin import settings
from autocheckin.api.admission import SECURITY, admit_admin_or_key
from autocheckin.api.openapi import answers, documented
from autocheckin.api.parsing import UTCDatetime, parse_body, parse_query
from autocheckin.attendance import corrections, excuses, history
from autocheckin.attendance.errors import NotFound, Unprocessable
from autocheckin.attendance.models import STATUSES, Attendance, Event, Excuse
from autocheckin.extensions import db
from autocheckin.times import IsoTime

bp = Blueprint("corrections", __name__, url_prefix="/api/v1")
Status = Literal[STATUSES]  # type: ignore[valid-type]


@bp.before_request
@answers(401, 403, 429, 503)
def require_admin_or_key() -> None:
    """`x-checkout-key` or a web admin's bearer token; the caller becomes the actor."""
    admit_admin_or_key("Only admins may correct attendance")


# --- representations -------------------------------------------------------------------------


class AttendanceView(BaseModel):
    id: int
    person_id: int
    event_id: int
    status: str
    checked_in_at: IsoTime | None
    voided: bool
    voided_at: IsoTime | None
    status_explicit: bool = Field(description="set by a correction: a time change keeps it")
    source: str | None
    version: int = Field(description="also the ETag; send it back as If-Match")
    created_at: IsoTime
    updated_at: IsoTime | None

    @classmethod
    def of(cls, row: Any) -> AttendanceView:
        return cls(
            id=row.id,
            person_id=row.student_id,
            event_id=row.event_id,
            status=row.status,
            checked_in_at=row.checked_in_at,
            voided=row.voided_at is not None,
            voided_at=row.voided_at,
            status_explicit=bool(row.status_explicit),
            source=row.source,
            version=row.version,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


class AttendanceAnswer(BaseModel):
    success: Literal[True] = True
    message: str
    data: AttendanceView


class AttendanceListAnswer(BaseModel):
    success: Literal[True] = True
    message: str
    data: list[AttendanceView]


class HistoryEntryView(BaseModel):
    id: int
    seq: int
    recorded_at: IsoTime
    action: str
    before: dict[str, Any] | None
    after: dict[str, Any]
    actor: str
    reason: str | None
    previous_hash: str
    entry_hash: str


class HistoryData(BaseModel):
    attendance_id: int
    entries: list[HistoryEntryView]


class HistoryAnswer(BaseModel):
    success: Literal[True] = True
    message: str
    data: HistoryData


class MarkedData(BaseModel):
    event_id: int
    marked: int
    attendance_ids: list[int]


class MarkedAnswer(BaseModel):
    success: Literal[True] = True
    message: str
    data: MarkedData


class ExcuseView(BaseModel):
    id: int
    person_id: int
    event_id: int
    reason: str
    state: str
    submitted_by: str
    submitted_at: IsoTime
    decided_by: str | None
    decided_at: IsoTime | None
    decision_reason: str | None

    @classmethod
    def of(cls, excuse: Excuse) -> ExcuseView:
        return cls(
            id=excuse.id,
            person_id=excuse.student_id,
            event_id=excuse.event_id,
            reason=excuse.reason,
            state=excuse.state,
            submitted_by=excuse.submitted_by,
            submitted_at=excuse.submitted_at,
            decided_by=excuse.decided_by,
            decided_at=excuse.decided_at,
            decision_reason=excuse.decision_reason,
        )


class ExcusePage(BaseModel):
    total: int
    excuses: list[ExcuseView]


class ExcuseListAnswer(BaseModel):
    success: Literal[True] = True
    message: str
    data: ExcusePage


class ExcuseDecision(BaseModel):
    success: Literal[True] = True
    message: str
    data: ExcuseView


# --- bodies ----------------------------------------------------------------------------------


class Reasoned(BaseModel):
    model_config = {"extra": "forbid"}

    reason: str = Field(
        min_length=1, max_length=2000, pattern=r"\S", description="why (kept in the history)"
    )


class MarkBody(Reasoned):
    status: Status
    checked_in_at: UTCDatetime | None = Field(
        None, description="a present or late mark without one is dated at the event's start"
    )


class AttendanceChanges(Reasoned):
    status: Status | None = None
    checked_in_at: UTCDatetime | None = None


class BulkMarkBody(Reasoned):
    status: Literal["absent", "excused"]


class ApproveBody(BaseModel):
    model_config = {"extra": "forbid"}

    note: str | None = Field(None, max_length=2000)


class ExcuseQuery(BaseModel):
    state: Literal[excuses.STATES] | None = None  # type: ignore[valid-type]
    event_id: int | None = Field(None, ge=1, le=2_147_483_647)
    person_id: int | None = Field(None, ge=1, le=2_147_483_647)
    skip: int = Field(0, ge=0, le=1_000_000)
    limit: int = Field(100, ge=1, le=500)


# --- helpers ---------------------------------------------------------------------------------


def _expected_version() -> int | None:
    """The version `If-Match` names; None without one (or `*`); -1 for one that is no
    version of ours (it can match nothing: 412)."""
    raw = request.headers.get("If-Match")
    if raw is None or raw.strip() == "*":
        return None
    tag = raw.split(",")[0].strip().removeprefix("W/").strip('"')
    return int(tag) if tag.isascii() and tag.isdigit() and len(tag) < 10 else -1


def _correction(reason: str | None) -> corrections.Correction:
    return corrections.Correction(
        actor=g.actor, reason=reason, expected_version=_expected_version()
    )


def _attendance(attendance_id: int) -> Attendance:
    row = db.session.get(Attendance, attendance_id, populate_existing=True)
    if row is None:
        raise NotFound(f"Attendance {attendance_id} not found", code="attendance_not_found")
    return row


def _answered(message: str, attendance_id: int, status: int = 200) -> Response:
    row = _attendance(attendance_id)
    body = AttendanceAnswer(message=message, data=AttendanceView.of(row))
    response = jsonify(body.model_dump(mode="json"))
    response.status_code = status
    response.set_etag(str(row.version))
    return response


def _success(model: BaseModel, status: int = 200) -> Response:
    response = jsonify(model.model_dump(mode="json"))
    response.status_code = status
    return response


def _rules() -> Any:
    return settings.current().rules


# --- attendances -----------------------------------------------------------------------------


@bp.get("/attendances/<int:attendance_id>")
@documented(
    "An attendance (a mark) with its version as ETag",
    response=AttendanceAnswer,
    security=SECURITY,
    errors=(404,),
)
def get_attendance(attendance_id: int) -> Response:
    return _answered("Attendance", attendance_id)


@bp.get("/attendances/<int:attendance_id>/history")
@documented(
    "Every change to an attendance, oldest first, each hash-chained to the one before",
    response=HistoryAnswer,
    security=SECURITY,
    errors=(404,),
)
def attendance_history(attendance_id: int) -> Response:
    _attendance(attendance_id)
    entries = history.entries_of(db.session.connection(), attendance_id)
    data = HistoryData(
        attendance_id=attendance_id,
        entries=[HistoryEntryView.model_validate(e, from_attributes=True) for e in entries],
    )
    return _success(HistoryAnswer(message="Attendance history", data=data))


@bp.patch("/attendances/<int:attendance_id>")
@documented(
    "Correct an attendance: its status and/or its time (late is recomputed unless the "
    "status is set); a reason is required; If-Match with its version",
    body=AttendanceChanges,
    response=AttendanceAnswer,
    security=SECURITY,
    errors=(404, 409, 412, 422),
)
def correct_attendance(attendance_id: int) -> Response:
    body = parse_body(AttendanceChanges)
    row = _attendance(attendance_id)
    correction = _correction(body.reason)
    if body.status is not None:
        corrections.set_status(
            event_id=row.event_id,
            person_id=row.student_id,
            status=body.status,
            correction=correction,
            rules=_rules(),
            checked_in_at=body.checked_in_at,
        )
    elif body.checked_in_at is not None:
        corrections.change_time(
            attendance_id=attendance_id,
            checked_in_at=body.checked_in_at,
            correction=correction,
            rules=_rules(),
        )
    else:
        raise Unprocessable("Send status, checked_in_at or both", code="nothing_to_change")
    return _answered("Attendance corrected", attendance_id)


@bp.post("/attendances/<int:attendance_id>/void")
@documented(
    "Void a check-in (it stays in the history and stops counting); a reason is required",
    body=Reasoned,
    response=AttendanceAnswer,
    security=SECURITY,
    errors=(404, 409, 412, 422),
)
def void_attendance(attendance_id: int) -> Response:
    body = parse_body(Reasoned)
    corrections.void(attendance_id=attendance_id, correction=_correction(body.reason))
    return _answered("Attendance voided", attendance_id)


@bp.post("/attendances/<int:attendance_id>/restore")
@documented(
    "Restore a voided check-in; a reason is required",
    body=Reasoned,
    response=AttendanceAnswer,
    security=SECURITY,
    errors=(404, 409, 412, 422),
)
def restore_attendance(attendance_id: int) -> Response:
    body = parse_body(Reasoned)
    corrections.restore(attendance_id=attendance_id, correction=_correction(body.reason))
    return _answered("Attendance restored", attendance_id)


@bp.get("/events/<int:event_id>/attendances")
@documented(
    "Every mark at an event, voided ones too, with their versions",
    response=AttendanceListAnswer,
    security=SECURITY,
    errors=(404,),
)
def event_attendances(event_id: int) -> Response:
    if db.session.get(Event, event_id) is None:
        raise NotFound(f"Event {event_id} not found", code="event_not_found")
    rows = db.session.scalars(
        db.select(Attendance).where(Attendance.event_id == event_id).order_by(Attendance.id)
    )
    views = [AttendanceView.of(row) for row in rows]
    return _success(AttendanceListAnswer(message="Attendances", data=views))


@bp.put("/events/<int:event_id>/attendances/<int:person_id>")
@documented(
    "Set a person's status at an event, with or without a check-in (a manual mark); a "
    "reason is required; status other than excused only once the event has started",
    body=MarkBody,
    response=AttendanceAnswer,
    security=SECURITY,
    errors=(404, 409, 412, 422),
)
def mark_person(event_id: int, person_id: int) -> Response:
    body = parse_body(MarkBody)
    change = corrections.set_status(
        event_id=event_id,
        person_id=person_id,
        status=body.status,
        correction=_correction(body.reason),
        rules=_rules(),
        checked_in_at=body.checked_in_at,
    )
    return _answered(f"Marked {body.status}", change.attendance_id)


@bp.post("/events/<int:event_id>/attendances/mark-unmarked")
@documented(
    "Mark everyone enrolled and still unmarked absent or excused; a reason is required",
    body=BulkMarkBody,
    response=MarkedAnswer,
    security=SECURITY,
    errors=(404, 409, 422),
)
def mark_unmarked(event_id: int) -> Response:
    body = parse_body(BulkMarkBody)
    changes = corrections.mark_unmarked(
        event_id=event_id,
        status=body.status,
        correction=corrections.Correction(actor=g.actor, reason=body.reason),
        rules=_rules(),
    )
    data = MarkedData(
        event_id=event_id,
        marked=len(changes),
        attendance_ids=[change.attendance_id for change in changes],
    )
    return _success(MarkedAnswer(message=f"{len(changes)} marked {body.status}", data=data))


# --- excuses ---------------------------------------------------------------------------------


@bp.get("/excuses")
@documented(
    "Excuses, newest first (state, event_id, person_id; skip, limit)",
    query=ExcuseQuery,
    response=ExcuseListAnswer,
    security=SECURITY,
    errors=(400,),
)
def list_excuses() -> Response:
    query = parse_query(ExcuseQuery)
    found, total = excuses.list_excuses(
        excuses.ExcuseFilter(
            state=query.state,
            event_id=query.event_id,
            person_id=query.person_id,
            skip=query.skip,
            limit=query.limit,
        )
    )
    page = ExcusePage(total=total, excuses=[ExcuseView.of(e) for e in found])
    return _success(ExcuseListAnswer(message="Excuses", data=page))


@bp.post("/excuses/<int:excuse_id>/approve")
@documented(
    "Approve a pending excuse: the person is marked excused through a correction",
    body=ApproveBody,
    response=ExcuseDecision,
    security=SECURITY,
    errors=(404, 409, 422),
)
def approve_excuse(excuse_id: int) -> Response:
    body = parse_body(ApproveBody) if request.content_length else ApproveBody()
    excuse, _ = excuses.approve(excuse_id=excuse_id, actor=g.actor, note=body.note, rules=_rules())
    return _success(ExcuseDecision(message="Excuse approved", data=ExcuseView.of(excuse)))


@bp.post("/excuses/<int:excuse_id>/decline")
@documented(
    "Decline a pending excuse; a reason is required",
    body=Reasoned,
    response=ExcuseDecision,
    security=SECURITY,
    errors=(404, 409, 422),
)
def decline_excuse(excuse_id: int) -> Response:
    body = parse_body(Reasoned)
    excuse = excuses.decline(excuse_id=excuse_id, actor=g.actor, reason=body.reason)
    return _success(ExcuseDecision(message="Excuse declined", data=ExcuseView.of(excuse)))
