"""The Discord bot's endpoints (`/discord/…`): `X-Discord-Key` must match DISCORD_API_KEY.

The events guide's keyless bot is the opt-in DISCORD_ALLOW_KEYLESS=true (a bot on a
private network); with neither set, these endpoints answer 503 naming both.
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify, request

from autocheckin.api import web
from autocheckin.api.openapi import documented
from autocheckin.api.schemas_web import DiscordAttendQuery, DiscordRegister
from autocheckin.attendance import events as event_queries
from autocheckin.attendance import service
from autocheckin.attendance.errors import (
    AlreadyCheckedIn,
    NotConfigured,
    NotFound,
    OutsideWindow,
)
from autocheckin.attendance.windows import ACTIVE, event_status
from autocheckin.auth import accounts
from autocheckin.auth.keys import key_matches
from autocheckin.auth.tokens import Unauthorized
from autocheckin.times import iso, utcnow

bp = Blueprint("discord", __name__, url_prefix="/discord")

NOT_REGISTERED = "Discord user not registered. Please register first."


@bp.before_request
def require_discord_key() -> None:
    """The one guard of this family, run before every route in it."""
    configured = current_app.config["DISCORD_API_KEY"]
    if configured:
        if not key_matches(request.headers.get("X-Discord-Key"), configured):
            raise Unauthorized("Invalid or missing X-Discord-Key header", code="bad_discord_key")
        return
    if not current_app.config["DISCORD_ALLOW_KEYLESS"]:
        raise NotConfigured(
            "Discord endpoints are closed: set DISCORD_API_KEY (the bot sends it as "
            "X-Discord-Key), or DISCORD_ALLOW_KEYLESS=true for a bot on a private network",
            code="discord_not_configured",
        )


def _registered(discord_user_id: str):
    user = accounts.find_discord_user(discord_user_id)
    if user is None:
        raise NotFound(NOT_REGISTERED, code="discord_user_not_registered")
    return user


def _discord_user_json(user) -> dict:
    return {
        "id": user.id,
        "name": user.name,
        "discord_user_id": user.discord_user_id,
        "discord_username": user.discord_username,
        "is_active": user.is_active,
        "created_at": iso(user.created_at),
    }


@bp.post("/users/register")
@documented(
    "Register a Discord user (an existing id returns that user)",
    body=DiscordRegister,
    status=201,
    errors=(422,),
)
def register() -> tuple[Response, int]:
    body = web.parse_body(DiscordRegister)
    user = accounts.register_discord_user(
        discord_user_id=body.discord_user_id,
        name=body.name,
        discord_username=body.discord_username,
    )
    return jsonify(_discord_user_json(user)), 201


@bp.get("/users/<discord_user_id>")
@documented("A Discord user", errors=(404,))
def get_user(discord_user_id: str) -> Response:
    return jsonify(_discord_user_json(_registered(discord_user_id)))


@bp.get("/events/active")
@documented("Events open for check-in now")
def active_events() -> Response:
    now = utcnow()
    found = event_queries.list_events(
        event_queries.EventFilter(status=ACTIVE), now=now, rules=web.rules()
    )
    return jsonify([web.event_json(event, now=now) for event in found])


@bp.get("/events/channel/<channel_id>")
@documented("A Discord channel's events")
def channel_events(channel_id: str) -> Response:
    now = utcnow()
    found = event_queries.list_events(
        event_queries.EventFilter(channel=channel_id), now=now, rules=web.rules()
    )
    return jsonify([web.event_json(event, now=now) for event in found])


@bp.post("/attend/<int:event_id>")
@documented(
    "Attend an event as a Discord user (?discord_user_id=); refusals are 200 success false",
    query=DiscordAttendQuery,
    errors=(404, 422),
)
def attend(event_id: int) -> Response:
    query = web.parse_args(DiscordAttendQuery)
    user = _registered(query.discord_user_id)
    event = event_queries.get_event(event_id)
    now = utcnow()
    try:
        service.attend(
            student_id=user.id, event_id=event.id, at=now, rules=web.rules(), source="discord"
        )
    except (OutsideWindow, AlreadyCheckedIn) as refusal:
        status = web.status_json(event, event_status(event, now, web.rules()))
        return jsonify({"success": False, "message": refusal.message, "event_status": status})
    return jsonify(
        {
            "success": True,
            "message": f"Successfully attended '{event.name}'!",
            "event": {"id": event.id, "title": event.name, "end_time": iso(event.end_time)},
            "user": {"name": user.name, "discord_username": user.discord_username},
        }
    )


@bp.get("/attendance/<discord_user_id>")
@documented("A Discord user's attendance history", errors=(404,))
def attendance_history(discord_user_id: str) -> Response:
    user = _registered(discord_user_id)
    attended = [
        {
            "event_id": attendance.event.id,
            "title": attendance.event.name,
            "start_time": iso(attendance.event.start_time),
            "end_time": iso(attendance.event.end_time),
            "attended_at": iso(attendance.checked_in_at),
            "status": attendance.status,
        }
        for attendance in event_queries.history(user)
    ]
    return jsonify({"attended_events": attended, "total_attended": len(attended)})


@bp.get("/event/<int:event_id>/status")
@documented("An event's status for the bot", errors=(404,))
def event_status_for_bot(event_id: int) -> Response:
    event = event_queries.get_event(event_id)
    return jsonify(web.status_json(event, event_status(event, utcnow(), web.rules())))


@bp.get("/event/<int:event_id>/attendees")
@documented("Who attended an event", errors=(404,))
def event_attendees(event_id: int) -> Response:
    event = event_queries.get_event(event_id)
    found = [web.attendee_json(a) for a in event_queries.attendees(event_id)]
    return jsonify(
        {"event_id": event.id, "title": event.name, "attendees": found, "total": len(found)}
    )
