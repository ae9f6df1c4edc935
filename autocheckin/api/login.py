"""Who is calling the events and accounts families: the user a bearer token names."""

from __future__ import annotations

import hmac
from datetime import timedelta

from flask import current_app, request

from autocheckin.attendance.models import Student
from autocheckin.auth import accounts
from autocheckin.auth.errors import Unauthorized
from autocheckin.auth.tokens import claims_from_token
from autocheckin.errors import NotConfigured


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
