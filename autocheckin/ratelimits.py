"""Rate limits on the doors an attacker hammers: logins, keys, admin passwords, sign-ups and
failed signatures.

Built on `limits` (the library under Flask-Limiter, same maintainers) rather than the
Flask-Limiter extension: its decorators bind one storage to one global object, while each
app here (and each test) needs its own, and the login limit counts only failures, which a
decorator cannot see.

Two limiters. The *guards* count what protects a secret (failed logins and current
passwords, wrong keys, wrong Discord admin passwords, sign-ups): with REDIS_URL they live
in Redis; without it, in this database (`DatabaseStorage`), so every gunicorn worker and
every replica counts the same failures — a limit kept per worker lets N workers' worth of
guesses through. The *meters* (webhook refusals, the integrations' request rates) are
floods, not guesses, and stay in memory per worker unless REDIS_URL is set: counting each
integration request in the database would cost a write per read.
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import math
import threading
import time

from flask import Flask, Response, current_app, g, request
from limits import RateLimitItem, parse
from limits.storage import MovingWindowSupport, Storage, storage_from_string
from limits.strategies import MovingWindowRateLimiter
from sqlalchemy import Float, String, delete, func, insert, select, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Mapped, mapped_column
from werkzeug.exceptions import TooManyRequests

from autocheckin.database import write_transaction
from autocheckin.extensions import db

# Wrong passwords for one account from one client address; only failures count, so the
# owner is never locked out by logging in often, nor by a stranger's guesses elsewhere.
LOGIN_FAILURES = parse("10/minute")
# ... and for one account from anywhere: the ceiling for guessing spread over many addresses.
LOGIN_FAILURES_PER_ACCOUNT = parse("100/hour")
# Wrong /make_admin passwords for one Discord user, from one client address, and overall
# (Discord ids are free to register, so the per-id count alone caps nothing).
DISCORD_ADMIN_FAILURES = parse("5/hour")
DISCORD_ADMIN_FAILURES_PER_ADDRESS = parse("5/hour")
DISCORD_ADMIN_FAILURES_OVERALL = parse("20/hour")
# Wrong x-checkout-key values from one client address, on every key door together.
KEY_FAILURES = parse("10/minute")
# Sign-ups from one client address.
REGISTRATIONS = parse("20/hour")
# Webhook requests refused before processing (bad or missing signature, oversized body)
# from one client address. Correctly signed requests are never held back by it.
REFUSALS = parse("30/minute")


# The limits that guard a secret: shared by every worker and replica.
GUARDS = frozenset(
    {
        LOGIN_FAILURES,
        LOGIN_FAILURES_PER_ACCOUNT,
        DISCORD_ADMIN_FAILURES,
        DISCORD_ADMIN_FAILURES_PER_ADDRESS,
        DISCORD_ADMIN_FAILURES_OVERALL,
        KEY_FAILURES,
        REGISTRATIONS,
    }
)


class RateLimitHit(db.Model):
    """One counted attempt of a guarded limit, when REDIS_URL is unset (`DatabaseStorage`)."""

    __tablename__ = "rate_limit_hits"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(255), index=True)
    hit_at: Mapped[float] = mapped_column(Float, index=True)


HITS = RateLimitHit.__table__


class DatabaseStorage(Storage, MovingWindowSupport):
    """A `limits` storage in the app's database: a moving window of timestamped hits.

    Each acquisition runs in its own write transaction (SQLite's writer lock; on PostgreSQL
    a transaction-scoped advisory lock on the key), so two workers cannot both take the
    last place in a window. Rows older than their window go on the next hit of the key,
    and the `prune` job clears what is left.
    """

    STORAGE_SCHEME = ["autocheckin+database"]
    # A key seen with no hit in its window is taken as clean for this long in this process,
    # so the key doors' check before every request reads nothing: the poll of the state
    # costs no rate-limit query. A hit here forgets it at once; a hit in another process is
    # seen after at most this long (one guess per process beyond a used-up limit, at most).
    CLEAN_FOR_SECONDS = 1.0

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._clean_until: dict[str, float] = {}
        self._clean_lock = threading.Lock()

    @property
    def base_exceptions(self) -> type[Exception]:
        return SQLAlchemyError

    @staticmethod
    def _stored(key: str) -> str:
        """The key as the column holds it: a long one (a 300-character email) as its hash."""
        if len(key) <= 200:
            return key
        return "sha256:" + hashlib.sha256(key.encode()).hexdigest()

    def acquire_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        key = self._stored(key)
        if amount > limit:
            return False
        with self._clean_lock:
            self._clean_until.pop(key, None)
        now = time.time()
        with write_transaction() as session:
            connection = session.connection()
            if connection.dialect.name == "postgresql":
                connection.execute(
                    text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": key}
                )
            connection.execute(delete(HITS).where(HITS.c.key == key, HITS.c.hit_at < now - expiry))
            taken = connection.execute(
                select(func.count()).select_from(HITS).where(HITS.c.key == key)
            ).scalar_one()
            if taken + amount > limit:
                return False
            connection.execute(insert(HITS), [{"key": key, "hit_at": now}] * amount)
        return True

    def get_moving_window(self, key: str, limit: int, expiry: int) -> tuple[float, int]:
        key = self._stored(key)
        now = time.time()
        if self._clean_until.get(key, 0.0) > time.monotonic():
            return now, 0
        oldest, taken = db.session.execute(
            select(func.min(HITS.c.hit_at), func.count()).where(
                HITS.c.key == key, HITS.c.hit_at >= now - expiry
            )
        ).one()
        if not taken:
            with self._clean_lock:
                if len(self._clean_until) > 10_000:  # addresses come and go
                    self._clean_until.clear()
                self._clean_until[key] = time.monotonic() + self.CLEAN_FOR_SECONDS
        return (oldest if taken else now), taken

    # The fixed-window half of the interface, which the moving window does not use.
    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        self.acquire_entry(key, 2**31, expiry, amount)
        return self.get(key)

    def get(self, key: str) -> int:
        return db.session.execute(
            select(func.count()).select_from(HITS).where(HITS.c.key == self._stored(key))
        ).scalar_one()

    def get_expiry(self, key: str) -> float:
        return time.time()

    def check(self) -> bool:
        return True

    def reset(self) -> int | None:
        with write_transaction() as session:
            return session.execute(delete(HITS)).rowcount

    def clear(self, key: str) -> None:
        with write_transaction() as session:
            session.execute(delete(HITS).where(HITS.c.key == self._stored(key)))


def prune_hits(*, older_than_seconds: float = 86400) -> int:
    """Delete counted attempts older than any window (a day): the prune job's share."""
    with write_transaction() as session:
        cutoff = time.time() - older_than_seconds
        return session.execute(delete(HITS).where(HITS.c.hit_at < cutoff)).rowcount or 0


def init_app(app: Flask) -> None:
    shared = app.config["REDIS_URL"]
    meters = storage_from_string(shared or "memory://")
    guards = storage_from_string(shared) if shared else DatabaseStorage()
    app.extensions["rate_limits"] = MovingWindowRateLimiter(meters)
    app.extensions["rate_limit_guards"] = MovingWindowRateLimiter(guards)


def client_address() -> str:
    """The caller's address: behind TRUSTED_PROXY_HOPS proxies, ProxyFix has set it from
    X-Forwarded-For; a raw X-Forwarded-For is never trusted. An IPv6 client is its /64,
    which one host can fill with addresses; an IPv4 client that reached a dual-stack
    socket (`::ffff:a.b.c.d`) is its IPv4 address, not the one /64 all of them share."""
    address = request.remote_addr or "unknown"
    if ":" not in address:
        return address
    try:
        parsed = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return address
    if parsed.ipv4_mapped is not None:  # an IPv4 peer of gunicorn's `[::]` socket
        return str(parsed.ipv4_mapped)
    return str(ipaddress.ip_network(f"{parsed}/64", strict=False))


def _limiter(limit=None) -> MovingWindowRateLimiter:
    """The guards' limiter for a limit that guards a secret, else the meters'."""
    if limit in GUARDS:
        return current_app.extensions["rate_limit_guards"]
    return current_app.extensions["rate_limits"]


def _refuse(limit, *identifiers: str) -> TooManyRequests:
    reset_at = _limiter(limit).get_window_stats(limit, *identifiers).reset_time
    retry_after = max(1, math.ceil(reset_at - time.time()))
    return TooManyRequests(
        f"Too many attempts; try again in {retry_after} seconds", retry_after=retry_after
    )


def is_allowed(limit, *identifiers: str) -> bool:
    return _limiter(limit).test(limit, *identifiers)


def refusal(limit, *identifiers: str) -> TooManyRequests:
    return _refuse(limit, *identifiers)


def ensure_allowed(limit, *identifiers: str) -> None:
    """Raise 429 (with Retry-After) when `identifiers` used up `limit`, without counting."""
    if not _limiter(limit).test(limit, *identifiers):
        raise _refuse(limit, *identifiers)


def count(limit, *identifiers: str) -> None:
    """Count one attempt against `limit`; raise 429 when that was one too many."""
    if not _limiter(limit).hit(limit, *identifiers):
        raise _refuse(limit, *identifiers)


def count_quietly(limit, *identifiers: str) -> None:
    """Count one attempt; the next `ensure_allowed` refuses once the limit is used up."""
    _limiter(limit).hit(limit, *identifiers)


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
