"""Who is calling the events and accounts families: the user a bearer token names."""

from __future__ import annotations

import hmac
from datetime import timedelta

from flask import current_app, request

from autocheckin import ratelimits
from autocheckin.attendance.models import normalize_key
from autocheckin.auth import accounts
from autocheckin.auth.errors import Forbidden, Unauthorized
from autocheckin.auth.models import Account
from autocheckin.auth.tokens import claims_from_token, issue_token
from autocheckin.errors import NotConfigured


def jwt_secret() -> str:
    secret = current_app.config["JWT_SECRET_KEY"]
    if not secret:
        raise NotConfigured("JWT_SECRET_KEY is not configured on this server")
    return secret


def token_lifetime() -> timedelta:
    return timedelta(seconds=current_app.config["JWT_EXPIRES"])


def current_user() -> Account:
    """The account the bearer token names; 401 without a valid token."""
    secret = jwt_secret()
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Not authenticated", code="not_authenticated")
    user_id, token_key = claims_from_token(token.strip(), secret=secret)
    user = accounts.get_account(user_id)
    if user is None or not user.is_active or not user.token_key:
        raise Unauthorized("Could not validate credentials", code="invalid_token")
    if not hmac.compare_digest(user.token_key.encode(), token_key.encode()):
        raise Unauthorized("Could not validate credentials", code="invalid_token")
    return user


def log_in(email: str, password: str) -> str:
    """A bearer token for these credentials, for `/auth/login` and `/api/auth/login` alike."""
    return issue_token_for(authenticated(email, password))


def issue_token_for(account: Account) -> str:
    return issue_token(
        user_id=account.id,
        token_key=account.token_key,
        secret=jwt_secret(),
        lifetime=token_lifetime(),
    )


def checked_profile_update(
    account: Account, changes: dict, current_password: str | None
) -> Account:
    """`PUT /users/me`: a wrong current password counts as a failed login (the same limits),
    so a stolen token is no faster a way to guess it."""
    key, client = account.email_key or str(account.id), ratelimits.client_address()
    if current_password is not None:
        ratelimits.ensure_allowed(ratelimits.LOGIN_FAILURES, "login", key, client)
        ratelimits.ensure_allowed(ratelimits.LOGIN_FAILURES_PER_ACCOUNT, "login", key)
    try:
        return accounts.update_profile(
            account_id=account.id, changes=changes, current_password=current_password
        )
    except Forbidden as refusal:
        if refusal.code == "bad_current_password":
            ratelimits.count_quietly(ratelimits.LOGIN_FAILURES, "login", key, client)
            ratelimits.count_quietly(ratelimits.LOGIN_FAILURES_PER_ACCOUNT, "login", key)
        raise


def authenticated(email: str, password: str) -> Account:
    """The account these credentials open, for every sign-in (the logins, the dashboard).

    Only failures count against the limits: per account and address, and per account
    from anywhere (guesses spread over many addresses).
    """
    account, client = normalize_key(email) or "", ratelimits.client_address()
    ratelimits.ensure_allowed(ratelimits.LOGIN_FAILURES, "login", account, client)
    ratelimits.ensure_allowed(ratelimits.LOGIN_FAILURES_PER_ACCOUNT, "login", account)
    user = accounts.authenticate(email=email, password=password)
    if user is None:
        ratelimits.count_quietly(ratelimits.LOGIN_FAILURES, "login", account, client)
        ratelimits.count_quietly(ratelimits.LOGIN_FAILURES_PER_ACCOUNT, "login", account)
        raise Unauthorized("Incorrect email or password", code="bad_credentials")
    return user
