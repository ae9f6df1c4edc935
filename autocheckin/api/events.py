"""Events with time windows (`/events/…`): create, list, status, attend, attendees."""

from __future__ import annotations

from datetime import datetime

from flask import Blueprint, Response, current_app, jsonify, request

from autocheckin import settings
from autocheckin.api.discord import registered_discord_user, require_discord_key
from autocheckin.api.login import current_user
from autocheckin.api.openapi import documented
from autocheckin.api.parsing import parse_args, parse_body, parse_values
from autocheckin.api.representations import (
    AttendanceCheck,
    Attended,
    AttendeeList,
    AttendeeOut,
    DiscordAttendanceCheck,
    EventList,
    EventOut,
    EventStatusOut,
    RefusedInWindow,
    WebDiscordAttendAnswer,
    answer,
)
from autocheckin.api.schemas_web import DiscordEventAttend, EventCreate, EventQuery, EventUpdate
from autocheckin.api.security import key_accepted, request_origin
from autocheckin.attendance import queries as event_queries
from autocheckin.attendance import service
from autocheckin.attendance.checkins import Recorded
from autocheckin.attendance.errors import AlreadyCheckedIn, OutsideWindow
from autocheckin.attendance.models import Event
from autocheckin.attendance.windows import ACTIVE, UPCOMING, event_status
from autocheckin.auth import accounts
from autocheckin.auth.errors import Forbidden, Unauthorized
from autocheckin.auth.models import Account
from autocheckin.errors import Unprocessable
from autocheckin.times import utcnow

bp = Blueprint("events", __name__, url_prefix="/events")

WEB_SOURCE, DISCORD_SOURCE = "web", "discord"


def _event(event: Event, now: datetime | None = None) -> EventOut:
    return EventOut.of(event, now=now or utcnow(), rules=settings.current().rules)


def _window(event: Event, now: datetime) -> EventStatusOut:
    return EventStatusOut.of(event, event_status(event, now, settings.current().rules))


def _list(filters: event_queries.EventFilter) -> Response:
    now = utcnow()
    found = event_queries.list_events(filters, now=now, rules=settings.current().rules)
    return answer(EventList([_event(event, now) for event in found]))


def _attended(event: Event, recorded: Recorded, now: datetime) -> Attended:
    return Attended(
        message=f"Successfully attended '{event.name}'!",
        event=_event(event, now),
        attended_at=recorded.checked_in_at,
        status=recorded.status,
    )


def _check_in(user: Account, event: Event, now: datetime, *, source: str) -> Response:
    """The account's check-in by the one rule. A refusal is the door's own answer: 400 with
    the event's status for the web, 200 `success: false` for the Discord bot."""
    try:
        recorded = accounts.check_in(
            account_id=user.id,
            event_id=event.id,
            at=now,
            rules=settings.current().rules,
            source=source,
            actor=f"discord:{user.discord_user_id}" if source == DISCORD_SOURCE else None,
            origin=request_origin(
                source, discord_user_id=user.discord_user_id if source == DISCORD_SOURCE else None
            ),
        )
    except (OutsideWindow, AlreadyCheckedIn) as refusal:
        if source == DISCORD_SOURCE:
            return answer(
                RefusedInWindow(message=refusal.message, event_status=_window(event, now))
            )
        window = _window(event, now)
        detail = {"error": refusal.message, "event_status": window.model_dump(mode="json")}
        response = jsonify({"detail": detail})
        response.status_code = 400
        return response
    return answer(_attended(event, recorded, now))


@bp.post("/", strict_slashes=False)
@documented(
    "Create an event (logged in)",
    body=EventCreate,
    response=EventOut,
    security=("bearerAuth",),
    status=201,
    errors=(401, 403, 422),
)
def create_event() -> Response:
    user = current_user()
    if current_app.config["EVENT_CREATE_ROLE"] == "admin" and not user.is_admin:
        raise Forbidden("Only admins may create events")
    body = parse_body(EventCreate)
    event = service.create_event(**body.event_fields(), created_by_id=user.id, source=WEB_SOURCE)
    return answer(_event(event), 201)


@bp.get("/", strict_slashes=False)
@documented(
    "Events, filtered (from, to, status, channel) and paged (skip, limit)",
    query=EventQuery,
    response=EventList,
    errors=(422,),
)
def list_events() -> Response:
    query = parse_args(EventQuery)
    return _list(
        event_queries.EventFilter(
            starts_from=query.starts_from,
            starts_to=query.to,
            status=query.status,
            channel=query.channel,
            skip=query.skip,
            limit=query.limit,
        )
    )


@bp.get("/active")
@documented("Events open for check-in now", response=EventList)
def active_events() -> Response:
    return _list(event_queries.EventFilter(status=ACTIVE))


@bp.get("/upcoming")
@documented("Events not open yet", response=EventList)
def upcoming_events() -> Response:
    return _list(event_queries.EventFilter(status=UPCOMING))


@bp.get("/<int:event_id>")
@documented("One event", response=EventOut, errors=(404,))
def get_event(event_id: int) -> Response:
    return answer(_event(event_queries.get_event(event_id)))


@bp.get("/<int:event_id>/status")
@documented(
    "An event's status and time to start / end, in seconds",
    response=EventStatusOut,
    errors=(404,),
)
def get_status(event_id: int) -> Response:
    return answer(_window(event_queries.get_event(event_id), utcnow()))


@bp.put("/<int:event_id>")
@documented(
    "Update an event (its creator or an admin); an occurrence of a series with check-ins "
    "is not moved (409)",
    body=EventUpdate,
    response=EventOut,
    security=("bearerAuth",),
    errors=(400, 401, 403, 404, 409, 422),
)
def update_event(event_id: int) -> Response:
    user = current_user()
    event = event_queries.get_event(event_id)
    if event.created_by_id != user.id and not user.is_admin:
        raise Forbidden("Only the event's creator or an admin may change it")
    body = parse_body(EventUpdate)
    event = service.update_event(
        ref=str(event_id),
        at=utcnow(),
        changes=body.event_changes(),
        rules=settings.current().rules,
    )
    return answer(_event(event))


@bp.post("/<int:event_id>/attend")
@documented(
    "Check the logged-in user in (only inside the event's window)",
    response=Attended,
    security=("bearerAuth",),
    errors=(400, 401, 404),
)
def attend(event_id: int) -> Response:
    user = current_user()
    return _check_in(user, event_queries.get_event(event_id), utcnow(), source=WEB_SOURCE)


def _may_read_attendees(event: Event) -> None:
    """Who attended what is personal data: the operator's key, an admin, or the account that
    made the event (a login alone is free to get, so it proves nothing)."""
    key = request.headers.get("x-checkout-key")
    if key is not None:
        if not key_accepted(key, current_app.config["CHECKOUT_API_KEY"]):
            raise Unauthorized("Invalid x-checkout-key", code="bad_key")
        return
    user = current_user()
    if not user.is_admin and event.created_by_id != user.id:
        raise Forbidden("Only the event's creator or an admin may list its attendees")


@bp.get("/<int:event_id>/attendees")
@documented(
    "Who attended an event (its creator, an admin, or x-checkout-key)",
    response=AttendeeList,
    security=("bearerAuth", "checkoutKey"),
    errors=(401, 403, 404, 429),
)
def attendees(event_id: int) -> Response:
    _may_read_attendees(event_queries.get_event(event_id))
    found = event_queries.attendees(event_id)
    names = accounts.discord_usernames_of({attendance.student_id for attendance in found})
    return answer(
        AttendeeList([AttendeeOut.of(a, discord_username=names.get(a.student_id)) for a in found])
    )


@bp.get("/<int:event_id>/check-attendance")
@documented(
    "Whether the logged-in user attended",
    response=AttendanceCheck,
    security=("bearerAuth",),
    errors=(401, 404),
)
def check_attendance(event_id: int) -> Response:
    user = current_user()
    attendance = event_queries.attendance_of(person_id=user.person_id, event_id=event_id)
    return answer(
        AttendanceCheck(
            event_id=event_id,
            user_id=user.id,
            attended=attendance is not None and attendance.counts,
            attended_at=attendance.checked_in_at if attendance else None,
            status=attendance.status if attendance else None,
        )
    )


# --- calls the Discord bot makes in this family (guarded by the Discord key) -----------------


@bp.get("/discord-channel/<channel_id>")
@documented("A Discord channel's events", response=EventList)
def channel_events(channel_id: str) -> Response:
    return _list(event_queries.EventFilter(channel=channel_id))


@bp.post("/discord/attend")
@documented(
    "Check a Discord user in (discord_user_id, event_id); refusals are 200 success false",
    body=DiscordEventAttend,
    response=WebDiscordAttendAnswer,
    errors=(401, 404, 422, 503),
)
def discord_attend() -> Response:
    require_discord_key()
    values = request.args.to_dict()  # from the query string or a JSON body
    if request.is_json:
        payload = request.get_json(silent=True)
        if payload is not None and not isinstance(payload, dict):
            raise Unprocessable("Request body must be a JSON object")
        values.update(payload or {})
    params = parse_values(DiscordEventAttend, values)
    user = registered_discord_user(params.discord_user_id)
    return _check_in(
        user, event_queries.get_event(params.event_id), utcnow(), source=DISCORD_SOURCE
    )


@bp.get("/discord/<discord_user_id>/<int:event_id>/check-attendance")
@documented(
    "Whether a Discord user attended an event",
    response=DiscordAttendanceCheck,
    errors=(401, 404, 503),
)
def discord_check_attendance(discord_user_id: str, event_id: int) -> Response:
    require_discord_key()
    user = registered_discord_user(discord_user_id)
    attendance = event_queries.attendance_of(person_id=user.person_id, event_id=event_id)
    return answer(
        DiscordAttendanceCheck(
            event_id=event_id,
            discord_user_id=discord_user_id,
            attended=attendance is not None and attendance.counts,
            attended_at=attendance.checked_in_at if attendance else None,
            status=attendance.status if attendance else None,
        )
    )
