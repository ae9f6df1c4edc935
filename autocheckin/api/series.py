"""Recurring events (`/events/series…`): create, read, edit, cancel, enrol.

Who may call: reading is open, like `GET /events`. Creating takes a web user's bearer token
(an admin's when EVENT_CREATE_ROLE=admin) or `x-checkout-key` (an integration key). Edits
and cancellations take the key, the series' creator or an admin; enrolments the key or an
admin. Errors are the events family's `{"detail": …}`.
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app, request

from autocheckin import settings
from autocheckin.api.login import current_user
from autocheckin.api.openapi import documented
from autocheckin.api.parsing import parse_args, parse_body
from autocheckin.api.representations import answer
from autocheckin.api.schemas_series import (
    OccurrenceEdit,
    OccurrenceOut,
    SeriesBrief,
    SeriesBriefList,
    SeriesCreate,
    SeriesEdit,
    SeriesEdited,
    SeriesEnrol,
    SeriesEnrolled,
    SeriesOut,
    SeriesQuery,
)
from autocheckin.api.security import key_accepted
from autocheckin.attendance import series
from autocheckin.attendance.models import EventSeries
from autocheckin.auth.errors import Forbidden, Unauthorized
from autocheckin.auth.models import Account
from autocheckin.times import utcnow

bp = Blueprint("series", __name__, url_prefix="/events/series")

KEY_HEADER = "x-checkout-key"
BOTH = ("bearerAuth", "checkoutKey")
INTEGRATION_SOURCE, WEB_SOURCE = "integration", "web"


def _caller() -> Account | None:
    """None for a live `x-checkout-key`; else the bearer token's account (401 without)."""
    if KEY_HEADER in request.headers:
        if not key_accepted(
            request.headers.get(KEY_HEADER), current_app.config["CHECKOUT_API_KEY"]
        ):
            raise Unauthorized(f"Invalid {KEY_HEADER}", code="bad_key")
        return None
    return current_user()


def _may_change(found: EventSeries) -> None:
    user = _caller()
    if user is not None and not user.is_admin and found.created_by_id != user.id:
        raise Forbidden("Only the series' creator, an admin or an API key may change it")


def _out(found: EventSeries, notice: str | None = None) -> SeriesOut:
    return SeriesOut.of(
        found,
        series.occurrences_of(found.id),
        now=utcnow(),
        rules=settings.current().rules,
        notice=notice,
    )


@bp.post("", strict_slashes=False)
@documented(
    "Create a series (a user per EVENT_CREATE_ROLE, or x-checkout-key); its occurrences "
    "up to the horizon are made at once",
    body=SeriesCreate,
    response=SeriesOut,
    security=BOTH,
    status=201,
    errors=(401, 403, 422),
)
def create_series() -> Response:
    user = _caller()
    if user is not None and current_app.config["EVENT_CREATE_ROLE"] == "admin":
        if not user.is_admin:
            raise Forbidden("Only admins may create events")
    body = parse_body(SeriesCreate)
    rules = settings.current().series
    tz_name = body.timezone or rules.default_timezone
    start, duration = body.start_and_duration(tz_name)
    created = series.create_series(
        **body.fields(),
        start_time=start,
        duration=duration,
        timezone=tz_name,
        rules=rules,
        now=utcnow(),
        source=INTEGRATION_SOURCE if user is None else WEB_SOURCE,
        created_by_id=None if user is None else user.id,
    )
    return answer(_out(created.series, created.notice), 201)


@bp.get("", strict_slashes=False)
@documented(
    "Every series, paged (open, like GET /events)",
    query=SeriesQuery,
    response=SeriesBriefList,
    errors=(422,),
)
def list_series() -> Response:
    query = parse_args(SeriesQuery)
    found = series.list_series(skip=query.skip, limit=query.limit)
    return answer(SeriesBriefList(series=[SeriesBrief.model_validate(item) for item in found]))


@bp.get("/<int:series_id>")
@documented(
    "A series and its occurrences (open, like GET /events)", response=SeriesOut, errors=(404,)
)
def get_series(series_id: int) -> Response:
    return answer(_out(series.get_series(series_id)))


@bp.patch("/<int:series_id>")
@documented(
    "Change the whole series (its creator, an admin or x-checkout-key); occurrences with "
    "check-ins that would move: 409 naming them, unless keep=true",
    body=SeriesEdit,
    response=SeriesEdited,
    security=BOTH,
    errors=(401, 403, 404, 409, 422),
)
def edit_series(series_id: int) -> Response:
    _may_change(series.get_series(series_id))
    body = parse_body(SeriesEdit)
    edited = series.edit_series(
        series_id=series_id, changes=body.changes(), keep=body.keep, rules=settings.current().series
    )
    return _edited(edited)


def _edited(edited: series.Edited) -> Response:
    return answer(
        SeriesEdited(
            series=_out(edited.series),
            changed=[event.id for event in edited.changed],
            kept=[event.id for event in edited.kept],
        )
    )


@bp.patch("/<int:series_id>/occurrences/<int:event_id>")
@documented(
    "Change one occurrence (scope=this) or it and the following ones (scope=following; "
    "its creator, an admin or x-checkout-key); 409 as for the series, unless keep=true",
    body=OccurrenceEdit,
    response=SeriesEdited,
    security=BOTH,
    errors=(401, 403, 404, 409, 422),
)
def edit_occurrence(series_id: int, event_id: int) -> Response:
    found = series.get_series(series_id)
    _may_change(found)
    body = parse_body(OccurrenceEdit)
    changes = body.moment_changes(found.timezone)
    rules = settings.current().series
    if body.scope == "following":
        edited = series.edit_series(
            series_id=series_id,
            changes=changes,
            keep=body.keep,
            rules=rules,
            from_event_id=event_id,
        )
    else:
        edited = series.edit_occurrence(
            series_id=series_id, event_id=event_id, changes=changes, keep=body.keep, rules=rules
        )
    return _edited(edited)


@bp.post("/<int:series_id>/occurrences/<int:event_id>/cancel")
@documented(
    "Cancel one occurrence (its creator, an admin or x-checkout-key): out of calendars, "
    "never counted absent; one with check-ins is 409",
    response=OccurrenceOut,
    security=BOTH,
    errors=(401, 403, 404, 409),
)
def cancel_occurrence(series_id: int, event_id: int) -> Response:
    _may_change(series.get_series(series_id))
    event = series.cancel_occurrence(series_id=series_id, event_id=event_id)
    out = _out(series.get_series(series_id))
    return answer(next(item for item in out.occurrences if item.id == event.id))


@bp.post("/<int:series_id>/enrolments")
@documented(
    "Enrol students in every occurrence not ended yet and every later one (an admin or "
    "x-checkout-key)",
    body=SeriesEnrol,
    response=SeriesEnrolled,
    security=BOTH,
    errors=(401, 403, 404, 422),
)
def enrol(series_id: int) -> Response:
    user = _caller()
    if user is not None and not user.is_admin:
        raise Forbidden("Only admins or an API key may enrol students", code="admin_required")
    series.get_series(series_id)
    body = parse_body(SeriesEnrol)
    enrolled, _ = series.enrol(series_id=series_id, student_refs=body.students, now=utcnow())
    return answer(SeriesEnrolled(series_id=series_id, enrolled=enrolled))
