"""Rate limits on the doors an attacker hammers: logins, sign-ups and failed signatures.

Built on `limits` (the library under Flask-Limiter, same maintainers) rather than the
Flask-Limiter extension: its decorators bind one storage to one global object, while each
app here (and each test) needs its own, and the login limit counts only failures, which a
decorator cannot see. Storage is in memory, or Redis across workers and replicas when
REDIS_URL is set.
"""

from __future__ import annotations

import functools
import ipaddress
import math
import time

from flask import Flask, Response, current_app, g, request
from limits import RateLimitItem, parse
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter
from werkzeug.exceptions import TooManyRequests

# Wrong passwords for one account from one client address; only failures count, so the
# owner is never locked out by logging in often, nor by a stranger's guesses elsewhere.
LOGIN_FAILURES = parse("10/minute")
# ... and for one account from anywhere: the ceiling for guessing spread over many addresses.
LOGIN_FAILURES_PER_ACCOUNT = parse("100/hour")
# Wrong /make_admin passwords for one Discord user.
DISCORD_ADMIN_FAILURES = parse("5/hour")
# Sign-ups from one client address.
REGISTRATIONS = parse("20/hour")
# Webhook requests refused before processing (bad or missing signature, oversized body)
# from one client address. Correctly signed requests are never held back by it.
REFUSALS = parse("30/minute")


def init_app(app: Flask) -> None:
    storage = storage_from_string(app.config["REDIS_URL"] or "memory://")
    app.extensions["rate_limits"] = MovingWindowRateLimiter(storage)


def client_address() -> str:
    """The caller's address: behind TRUSTED_PROXY_HOPS proxies, ProxyFix has set it from
    X-Forwarded-For; a raw X-Forwarded-For is never trusted. An IPv6 client is its /64,
    which one host can fill with addresses."""
    address = request.remote_addr or "unknown"
    if ":" in address:
        try:
            return str(ipaddress.ip_network(f"{address}/64", strict=False))
        except ValueError:
            return address
    return address


def _limiter() -> MovingWindowRateLimiter:
    return current_app.extensions["rate_limits"]


def _refuse(limit, *identifiers: str) -> TooManyRequests:
    reset_at = _limiter().get_window_stats(limit, *identifiers).reset_time
    retry_after = max(1, math.ceil(reset_at - time.time()))
    return TooManyRequests(
        f"Too many attempts; try again in {retry_after} seconds", retry_after=retry_after
    )


def is_allowed(limit, *identifiers: str) -> bool:
    return _limiter().test(limit, *identifiers)


def refusal(limit, *identifiers: str) -> TooManyRequests:
    return _refuse(limit, *identifiers)


def ensure_allowed(limit, *identifiers: str) -> None:
    """Raise 429 (with Retry-After) when `identifiers` used up `limit`, without counting."""
    if not _limiter().test(limit, *identifiers):
        raise _refuse(limit, *identifiers)


def count(limit, *identifiers: str) -> None:
    """Count one attempt against `limit`; raise 429 when that was one too many."""
    if not _limiter().hit(limit, *identifiers):
        raise _refuse(limit, *identifiers)


def count_quietly(limit, *identifiers: str) -> None:
    """Count one attempt; the next `ensure_allowed` refuses once the limit is used up."""
    _limiter().hit(limit, *identifiers)


@functools.cache
def _parsed(rate: str) -> RateLimitItem:
    return parse(rate)


def metered(rate: str, *identifiers: str) -> dict[str, str]:
    """Count one request against `rate` (a setting's value, "100/hour"); the
    `X-RateLimit-*` headers to answer with; 429 carrying them when it was one too many."""
    limit = _parsed(rate)
    allowed = _limiter().hit(limit, *identifiers)
    reset_at, remaining = _limiter().get_window_stats(limit, *identifiers)
    headers = {
        "X-RateLimit-Limit": str(limit.amount),
        "X-RateLimit-Remaining": str(max(0, remaining)),
        "X-RateLimit-Reset": str(math.ceil(reset_at)),
    }
    if not allowed:
        retry_after = max(1, math.ceil(reset_at - time.time()))
        refusal = TooManyRequests(
            f"Rate limit of {rate} exceeded; try again in {retry_after} seconds",
            retry_after=retry_after,
        )
        refusal.rate_limit_headers = headers  # type: ignore[attr-defined]
        raise refusal
    return headers


def with_rate_limit_headers(response: Response) -> Response:
    """After a request: the `X-RateLimit-*` headers `metered` left for it, if any."""
    headers = g.get("rate_limit_headers")
    if headers:
        response.headers.update(headers)
    return response
