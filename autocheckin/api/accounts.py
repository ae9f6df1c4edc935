"""Web users: `/auth/register`, `/auth/login` (JSON, OAuth2 form or Basic), `/users/me…`."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from autocheckin import ratelimits
from autocheckin.api import web
from autocheckin.api.openapi import documented
from autocheckin.api.schemas_web import LoginBody, PageQuery, ProfileUpdate, RegisterBody
from autocheckin.attendance import queries as event_queries
from autocheckin.attendance.errors import NotFound
from autocheckin.attendance.models import normalize_key
from autocheckin.auth import accounts
from autocheckin.auth.errors import Forbidden, Unauthorized
from autocheckin.auth.tokens import issue_token
from autocheckin.times import iso

bp = Blueprint("accounts", __name__)


@bp.post("/auth/register")
@documented("Register a web user", body=RegisterBody, status=201, errors=(400, 422, 429))
def register() -> tuple[Response, int]:
    ratelimits.count(ratelimits.REGISTRATIONS, "register", ratelimits.client_address())
    body = web.parse_body(RegisterBody)
    user = accounts.register_user(email=body.email, name=body.name, password=body.password)
    return jsonify(web.user_json(user)), 201


def _credentials() -> tuple[str, str]:
    """JSON {email, password}, an OAuth2 form {username, password}, or HTTP Basic."""
    if request.authorization and request.authorization.type == "basic":
        credentials = request.authorization.username or "", request.authorization.password or ""
    elif request.form:
        credentials = request.form.get("username", ""), request.form.get("password", "")
    else:
        body = web.parse_body(LoginBody)
        credentials = body.email, body.password
    web.refuse_control_characters({"email": credentials[0], "password": credentials[1]})
    return credentials


@bp.post("/auth/login")
@documented(
    "Log in: a bearer token (JSON, OAuth2 form or Basic)", body=LoginBody, errors=(401, 422, 429)
)
def login() -> Response:
    secret = web.jwt_secret()
    email, password = _credentials()
    account, client = normalize_key(email) or "", ratelimits.client_address()
    ratelimits.ensure_allowed(ratelimits.LOGIN_FAILURES, "login", account, client)
    ratelimits.ensure_allowed(ratelimits.LOGIN_FAILURES_PER_ACCOUNT, "login", account)
    user = accounts.authenticate(email=email, password=password)
    if user is None:
        ratelimits.count_quietly(ratelimits.LOGIN_FAILURES, "login", account, client)
        ratelimits.count_quietly(ratelimits.LOGIN_FAILURES_PER_ACCOUNT, "login", account)
        raise Unauthorized("Incorrect email or password", code="bad_credentials")
    token = issue_token(
        user_id=user.id, token_key=user.token_key, secret=secret, lifetime=web.token_lifetime()
    )
    response = jsonify({"access_token": token, "token_type": "bearer"})
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response


@bp.get("/users/me")
@documented("The logged-in user", security=("bearerAuth",), errors=(401,))
def me() -> Response:
    return jsonify(web.user_json(web.current_user()))


@bp.put("/users/me")
@documented(
    "Update the logged-in user", body=ProfileUpdate, security=("bearerAuth",), errors=(400, 401)
)
def update_me() -> Response:
    user = web.current_user()
    body = web.parse_body(ProfileUpdate)
    changes = body.model_dump(exclude_unset=True, exclude_none=True)
    return jsonify(web.user_json(accounts.update_profile(user_id=user.id, changes=changes)))


@bp.get("/users/me/events")
@documented("Events the logged-in user attended", security=("bearerAuth",), errors=(401,))
def my_events() -> Response:
    user = web.current_user()
    return jsonify(
        [
            {
                **web.event_json(attendance.event),
                "attended_at": iso(attendance.checked_in_at),
                "attendance_status": attendance.status,
            }
            for attendance in event_queries.history(user)
        ]
    )


@bp.get("/users/", strict_slashes=False)
@documented(
    "Every account, paged (web admins)",
    query=PageQuery,
    security=("bearerAuth",),
    errors=(401, 403, 422),
)
def list_users() -> Response:
    _require_admin()
    page = web.parse_args(PageQuery)
    users, total = accounts.list_accounts(skip=page.skip, limit=page.limit)
    return jsonify({"users": [web.user_json(user) for user in users], "total": total})


@bp.get("/users/<int:user_id>")
@documented("One account (web admins)", security=("bearerAuth",), errors=(401, 403, 404))
def get_user(user_id: int) -> Response:
    _require_admin()
    user = accounts.get_user(user_id)
    if user is None or not (user.password_hash or user.discord_user_id):
        raise NotFound("User not found", code="user_not_found")
    return jsonify(web.user_json(user))


def _require_admin() -> None:
    if not web.current_user().is_web_admin:
        raise Forbidden("Only admins may list users")
