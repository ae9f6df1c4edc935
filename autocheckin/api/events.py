"""Events with time windows (`/events/…`): create, list, status, attend, attendees."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify, request
from pydantic import ValidationError

from autocheckin.api import web
from autocheckin.api.discord import registered_discord_user, require_discord_key
from autocheckin.api.openapi import documented
from autocheckin.api.schemas_web import DiscordEventAttend, EventCreate, EventQuery, EventUpdate
from autocheckin.attendance import queries as event_queries
from autocheckin.attendance import service
from autocheckin.attendance.errors import AlreadyCheckedIn, OutsideWindow
from autocheckin.attendance.windows import ACTIVE, UPCOMING, event_status
from autocheckin.auth.errors import Forbidden
from autocheckin.times import iso, utcnow
from autocheckin.validation import invalid_from

bp = Blueprint("events", __name__, url_prefix="/events")


def _list(filters: event_queries.EventFilter) -> Response:
    now = utcnow()
    found = event_queries.list_events(filters, now=now, rules=web.rules())
    return jsonify([web.event_json(event, now=now) for event in found])


@bp.post("/", strict_slashes=False)
@documented(
    "Create an event (logged in)",
    body=EventCreate,
    security=("bearerAuth",),
    status=201,
    errors=(401, 403, 422),
)
def create_event() -> tuple[Response, int]:
    user = web.current_user()
    if current_app.config["EVENT_CREATE_ROLE"] == "admin" and not user.is_web_admin:
        raise Forbidden("Only admins may create events")
    body = web.parse_body(EventCreate)
    event = web.create_event_from(body, created_by_id=user.id, source="web")
    return jsonify(web.event_json(event)), 201


@bp.get("/", strict_slashes=False)
@documented(
    "Events, filtered (from, to, status, channel) and paged (skip, limit)", query=EventQuery
)
def list_events() -> Response:
    query = web.parse_args(EventQuery)
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
@documented("Events open for check-in now")
def active_events() -> Response:
    return _list(event_queries.EventFilter(status=ACTIVE))


@bp.get("/upcoming")
@documented("Events not open yet")
def upcoming_events() -> Response:
    return _list(event_queries.EventFilter(status=UPCOMING))


@bp.get("/<int:event_id>")
@documented("One event", errors=(404,))
def get_event(event_id: int) -> Response:
    return jsonify(web.event_json(event_queries.get_event(event_id)))


@bp.get("/<int:event_id>/status")
@documented("An event's status and time to start / end, in seconds", errors=(404,))
def get_status(event_id: int) -> Response:
    event = event_queries.get_event(event_id)
    return jsonify(web.status_json(event, event_status(event, utcnow(), web.rules())))


@bp.put("/<int:event_id>")
@documented(
    "Update an event (its creator or an admin)",
    body=EventUpdate,
    security=("bearerAuth",),
    errors=(400, 401, 403, 404, 422),
)
def update_event(event_id: int) -> Response:
    user = web.current_user()
    event = event_queries.get_event(event_id)
    if event.created_by_id != user.id and not user.is_web_admin:
        raise Forbidden("Only the event's creator or an admin may change it")
    body = web.parse_body(EventUpdate)
    changes = body.model_dump(exclude_unset=True, exclude_none=True)
    renamed = {"title": "name"}
    changes = {renamed.get(key, key): value for key, value in changes.items()}
    event = service.update_event(ref=str(event_id), at=utcnow(), changes=changes, rules=web.rules())
    return jsonify(web.event_json(event))


@bp.post("/<int:event_id>/attend")
@documented(
    "Check the logged-in user in (only inside the event's window)",
    security=("bearerAuth",),
    errors=(400, 401, 404),
)
def attend(event_id: int) -> Response:
    user = web.current_user()
    now = utcnow()
    try:
        attendance = service.attend(
            student_id=user.id, event_id=event_id, at=now, rules=web.rules(), source="web"
        )
    except (OutsideWindow, AlreadyCheckedIn) as refusal:
        event = event_queries.get_event(event_id)
        status = web.status_json(event, event_status(event, now, web.rules()))
        response = jsonify({"detail": {"error": refusal.message, "event_status": status}})
        response.status_code = 400
        return response
    event = attendance.event
    return jsonify(
        {
            "success": True,
            "message": f"Successfully attended '{event.name}'!",
            "event": web.event_json(event, now=now),
            "attended_at": iso(attendance.checked_in_at),
            "status": attendance.status,
        }
    )


@bp.get("/<int:event_id>/attendees")
@documented("Who attended an event", errors=(404,))
def attendees(event_id: int) -> Response:
    return jsonify([web.attendee_json(a) for a in event_queries.attendees(event_id)])


@bp.get("/<int:event_id>/check-attendance")
@documented("Whether the logged-in user attended", security=("bearerAuth",), errors=(401, 404))
def check_attendance(event_id: int) -> Response:
    user = web.current_user()
    attendance = event_queries.attendance_of(student_id=user.id, event_id=event_id)
    return jsonify(
        {
            "event_id": event_id,
            "user_id": user.id,
            "attended": attendance is not None,
            "attended_at": iso(attendance.checked_in_at) if attendance else None,
            "status": attendance.status if attendance else None,
        }
    )


# --- calls the Discord bot makes in this family (guarded by the Discord key) -----------------


@bp.get("/discord-channel/<channel_id>")
@documented("A Discord channel's events")
def channel_events(channel_id: str) -> Response:
    return _list(event_queries.EventFilter(channel=channel_id))


def _discord_params() -> DiscordEventAttend:
    """`discord_user_id` and `event_id` from the query string or a JSON body."""
    values = request.args.to_dict()
    if request.is_json:
        values.update(request.get_json(silent=True) or {})
    web.refuse_control_characters(values)
    try:
        return DiscordEventAttend.model_validate(values)
    except ValidationError as error:
        raise web.Unprocessable(invalid_from(error).message) from None


@bp.post("/discord/attend")
@documented(
    "Check a Discord user in (discord_user_id, event_id); refusals are 200 success false",
    body=DiscordEventAttend,
    errors=(401, 404, 422, 503),
)
def discord_attend() -> Response:
    require_discord_key()
    params = _discord_params()
    user = registered_discord_user(params.discord_user_id)
    event = event_queries.get_event(params.event_id)
    now = utcnow()
    try:
        attendance = service.attend(
            student_id=user.id, event_id=event.id, at=now, rules=web.rules(), source="discord"
        )
    except (OutsideWindow, AlreadyCheckedIn) as refusal:
        status = web.status_json(event, event_status(event, now, web.rules()))
        return jsonify({"success": False, "message": refusal.message, "event_status": status})
    return jsonify(
        {
            "success": True,
            "message": f"Successfully attended '{event.name}'!",
            "event": web.event_json(event, now=now),
            "attended_at": iso(attendance.checked_in_at),
            "status": attendance.status,
        }
    )


@bp.get("/discord/<discord_user_id>/<int:event_id>/check-attendance")
@documented("Whether a Discord user attended an event", errors=(401, 404, 503))
def discord_check_attendance(discord_user_id: str, event_id: int) -> Response:
    require_discord_key()
    user = registered_discord_user(discord_user_id)
    event_queries.get_event(event_id)
    attendance = event_queries.attendance_of(student_id=user.id, event_id=event_id)
    return jsonify(
        {
            "event_id": event_id,
            "discord_user_id": discord_user_id,
            "attended": attendance is not None,
            "attended_at": iso(attendance.checked_in_at) if attendance else None,
            "status": attendance.status if attendance else None,
        }
    )
