"""Web users: `/auth/register`, `/auth/login` (JSON, OAuth2 form or Basic), `/users/me…`."""

from __future__ import annotations

from flask import Blueprint, Response, request

from autocheckin import ratelimits, settings
from autocheckin.api.login import (
    checked_profile_update,
    current_user,
    issue_token_for,
    jwt_secret,
    log_in,
)
from autocheckin.api.openapi import documented
from autocheckin.api.parsing import parse_args, parse_body, refuse_control_characters
from autocheckin.api.representations import (
    AttendedEventList,
    AttendedEventOut,
    ExcuseList,
    ExcuseOut,
    ProfileUpdated,
    Token,
    UserOut,
    UserPage,
    answer,
    with_computed,
)
from autocheckin.api.schemas_web import (
    ExcuseBody,
    LoginBody,
    PageQuery,
    ProfileUpdate,
    RegisterBody,
)
from autocheckin.attendance import queries as event_queries
from autocheckin.attendance.errors import NotFound
from autocheckin.auth import accounts
from autocheckin.auth.errors import Forbidden
from autocheckin.times import utcnow

bp = Blueprint("accounts", __name__)


@bp.post("/auth/register")
@documented(
    "Register a web user",
    body=RegisterBody,
    response=UserOut,
    status=201,
    errors=(400, 422, 429),
)
def register() -> Response:
    ratelimits.count(ratelimits.REGISTRATIONS, "register", ratelimits.client_address())
    body = parse_body(RegisterBody)
    user = accounts.register_user(email=body.email, name=body.name, password=body.password)
    return answer(UserOut.model_validate(user), 201)


def _credentials() -> tuple[str, str]:
    """JSON {email, password}, an OAuth2 form {username, password}, or HTTP Basic."""
    if request.authorization and request.authorization.type == "basic":
        credentials = request.authorization.username or "", request.authorization.password or ""
    elif request.form:
        credentials = request.form.get("username", ""), request.form.get("password", "")
    else:
        body = parse_body(LoginBody)
        credentials = body.email, body.password
    refuse_control_characters({"email": credentials[0], "password": credentials[1]})
    return credentials


@bp.post("/auth/login")
@documented(
    "Log in: a bearer token (JSON, OAuth2 form or Basic)",
    body=LoginBody,
    response=Token,
    errors=(401, 422, 429, 503),
)
def login() -> Response:
    jwt_secret()  # 503 before reading credentials when tokens cannot be issued
    email, password = _credentials()
    response = answer(Token(access_token=log_in(email, password)))
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response


@bp.get("/users/me")
@documented("The logged-in user", response=UserOut, security=("bearerAuth",), errors=(401,))
def me() -> Response:
    return answer(UserOut.model_validate(current_user()))


@bp.put("/users/me")
@documented(
    "Update the logged-in user (the email and the password need current_password)",
    body=ProfileUpdate,
    response=ProfileUpdated,
    security=("bearerAuth",),
    errors=(400, 401, 403, 422, 429),
)
def update_me() -> Response:
    user = current_user()
    body = parse_body(ProfileUpdate)
    changes = body.model_dump(exclude_unset=True, exclude_none=True)
    current_password = changes.pop("current_password", None)
    updated = checked_profile_update(user, changes, current_password)
    token = issue_token_for(updated) if "password" in changes else None
    response = answer(ProfileUpdated.model_validate(with_computed(updated, access_token=token)))
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/users/me/events")
@documented(
    "Events the logged-in user attended",
    response=AttendedEventList,
    security=("bearerAuth",),
    errors=(401,),
)
def my_events() -> Response:
    user, now, rules = current_user(), utcnow(), settings.current().rules
    return answer(
        AttendedEventList(
            [
                AttendedEventOut.of_attendance(attendance, now=now, rules=rules)
                for attendance in event_queries.history(user.person_id)
            ]
        )
    )


@bp.get("/users/", strict_slashes=False)
@documented(
    "Every account, paged (web admins)",
    query=PageQuery,
    response=UserPage,
    security=("bearerAuth",),
    errors=(401, 403, 422),
)
def list_users() -> Response:
    _require_admin()
    page = parse_args(PageQuery)
    users, total = accounts.list_accounts(skip=page.skip, limit=page.limit)
    return answer(UserPage(users=[UserOut.model_validate(user) for user in users], total=total))


@bp.get("/users/<int:user_id>")
@documented(
    "One account (web admins)", response=UserOut, security=("bearerAuth",), errors=(401, 403, 404)
)
def get_user(user_id: int) -> Response:
    _require_admin()
    user = accounts.get_account(user_id)
    if user is None:
        raise NotFound("User not found", code="user_not_found")
    return answer(UserOut.model_validate(user))


def _require_admin() -> None:
    if not current_user().is_admin:
        raise Forbidden("Only admins may list users")


@bp.post("/users/me/excuses")
@documented(
    "Submit an excuse for an event, before or after it (one per event); an admin decides",
    body=ExcuseBody,
    response=ExcuseOut,
    security=("bearerAuth",),
    status=201,
    errors=(401, 404, 409, 422),
)
def submit_excuse() -> Response:
    user = current_user()
    body = parse_body(ExcuseBody)
    excuse = accounts.submit_excuse(account_id=user.id, event_id=body.event_id, reason=body.reason)
    return answer(ExcuseOut.model_validate(excuse), 201)


@bp.get("/users/me/excuses")
@documented(
    "The logged-in user's excuses and their decisions, newest first",
    response=ExcuseList,
    security=("bearerAuth",),
    errors=(401,),
)
def my_excuses() -> Response:
    user = current_user()
    return answer(ExcuseList([ExcuseOut.model_validate(e) for e in accounts.excuses_of(user)]))
