"""Shared by the events, accounts and Discord families: the `{"detail"}` error shape,
JSON bodies validated by pydantic, the logged-in user, and the JSON renderings."""

from __future__ import annotations

import hmac
from datetime import datetime, timedelta
from typing import Annotated, Any, TypeVar

from flask import Response, current_app, jsonify, request
from pydantic import AfterValidator, BaseModel, ValidationError

from autocheckin import settings
from autocheckin.api.errors import Unprocessable
from autocheckin.api.validation import parse_query
from autocheckin.attendance import service
from autocheckin.attendance.errors import Invalid
from autocheckin.attendance.models import Attendance, Event, Student
from autocheckin.attendance.windows import CheckInRules, EventStatus, event_status
from autocheckin.auth import accounts
from autocheckin.auth.errors import Unauthorized
from autocheckin.auth.tokens import claims_from_token
from autocheckin.errors import NotConfigured
from autocheckin.times import iso, to_utc, utcnow
from autocheckin.validation import field_with_control_character, invalid_from

ModelT = TypeVar("ModelT", bound=BaseModel)
DETAIL_PREFIXES = ("/auth", "/users", "/events", "/discord")


def render_detail_error(status: int, message: str, code: str, details: str | None) -> Response:
    """FastAPI's shape, which these clients were written against: {"detail": …}."""
    response = jsonify({"detail": message})
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = "Bearer"
    return response


# Naive times in these APIs are taken as UTC; the accepted range is the webhooks' own.
UTCDatetime = Annotated[datetime, AfterValidator(to_utc)]


def parse_body(model: type[ModelT]) -> ModelT:
    """The JSON body validated against `model`; 422 naming the field when it does not fit."""
    payload = request.get_json(silent=True)
    if not isinstance(payload, dict):
        raise Unprocessable("Request body must be a JSON object")
    refuse_control_characters(payload)
    try:
        return model.model_validate(payload)
    except ValidationError as error:
        raise Unprocessable(invalid_from(error).message) from None


def parse_args(model: type[ModelT]) -> ModelT:
    """The query string, as `parse_query` reads it, refused with 422 like the bodies here."""
    refuse_control_characters(request.args.to_dict())
    try:
        return parse_query(model)
    except Invalid as error:
        raise Unprocessable(error.message) from None


def refuse_control_characters(values: Any) -> None:
    """422 naming the field: a NUL is refused by PostgreSQL, a newline forges log lines."""
    field = field_with_control_character(values)
    if field is not None:
        raise Unprocessable(f"Invalid value for {field}: control characters are not allowed")


def jwt_secret() -> str:
    secret = current_app.config["JWT_SECRET_KEY"]
    if not secret:
        raise NotConfigured("JWT_SECRET_KEY is not configured on this server")
    return secret


def token_lifetime() -> timedelta:
    return timedelta(seconds=current_app.config["JWT_EXPIRES"])


def current_user() -> Student:
    """The user the bearer token names; 401 without a valid token."""
    secret = jwt_secret()
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Not authenticated", code="not_authenticated")
    user_id, token_key = claims_from_token(token.strip(), secret=secret)
    user = accounts.get_user(user_id)
    if user is None or not user.is_active or not user.token_key:
        raise Unauthorized("Could not validate credentials", code="invalid_token")
    if not hmac.compare_digest(user.token_key.encode(), token_key.encode()):
        raise Unauthorized("Could not validate credentials", code="invalid_token")
    return user


def create_event_from(body: Any, *, created_by_id: int, source: str) -> Event:
    """An event from an `EventCreate` body, for the web and the Discord bot alike."""
    return service.create_event(
        name=body.title,
        description=body.description,
        start_time=body.start_time,
        end_time=body.end_time,
        location=body.location,
        discord_channel_id=body.discord_channel_id,
        created_by_id=created_by_id,
        source=source,
    )


def rules() -> CheckInRules:
    return settings.current().rules


def user_json(user: Student) -> dict[str, Any]:
    """A user as the events API shows it; never the password hash."""
    return {
        "id": user.id,
        "email": user.email,
        "name": user.name,
        "discord_user_id": user.discord_user_id,
        "discord_username": user.discord_username,
        "is_active": user.is_active,
        "is_admin": user.is_web_admin,
        "created_at": iso(user.created_at),
    }


def status_json(event: Event, status: EventStatus) -> dict[str, Any]:
    return {
        "id": event.id,
        "title": event.name,
        "status": status.status,
        "start_time": iso(event.start_time),
        "end_time": iso(event.end_time),
        "can_attend": status.can_attend,
        "time_until_start": status.seconds_until_start,
        "time_until_end": status.seconds_until_end,
    }


def event_json(event: Event, *, now: datetime | None = None) -> dict[str, Any]:
    status = event_status(event, now or utcnow(), rules())
    return {
        "id": event.id,
        "title": event.name,
        "description": event.description,
        "start_time": iso(event.start_time),
        "end_time": iso(event.end_time),
        "location": event.location,
        "discord_channel_id": event.discord_channel_id,
        "is_active": event.is_active,
        "created_by": event.created_by_id,
        "created_at": iso(event.created_at),
        "status": status.status,
        "can_attend": status.can_attend,
    }


def attendee_json(attendance: Attendance) -> dict[str, Any]:
    """An attendee on a public list: no email address."""
    student = attendance.student
    return {
        "id": student.id,
        "name": student.name,
        "discord_username": student.discord_username,
        "attended_at": iso(attendance.checked_in_at),
        "status": attendance.status,
    }
