"""Every setting, read once from an environment mapping with typed helpers.

`load_config(environ)` turns the process environment (or the dict a test passes)
into Flask config keys. A bad value fails at start-up with a message naming the
variable, never later inside a request.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from limits import parse

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$", re.IGNORECASE)
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


class ConfigError(RuntimeError):
    """A setting is missing or malformed; raised at start-up."""


def env_str(environ: Mapping[str, Any], name: str, default: str | None = None) -> str | None:
    value = environ.get(name)
    if value is None:
        return default
    value = str(value).strip()
    return value or default


def env_bool(environ: Mapping[str, Any], name: str, default: bool) -> bool:
    value = environ.get(name)
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ConfigError(f"{name} must be true or false, got {value!r}")


def env_int(
    environ: Mapping[str, Any],
    name: str,
    default: int,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
) -> int:
    value = environ.get(name)
    if value is None or value == "":
        return default
    try:
        number = int(str(value).strip())
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {value!r}") from None
    if minimum is not None and number < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {number}")
    if maximum is not None and number > maximum:
        raise ConfigError(f"{name} must be at most {maximum}, got {number}")
    return number


def env_seconds(
    environ: Mapping[str, Any], name: str, default: float, *, minimum: float = 0
) -> float:
    """A duration: plain seconds ("90") or with a unit ("500ms", "15m", "1h", "30d"), at
    least `minimum` seconds (an interval of 0 would run a job without pause)."""
    value = environ.get(name)
    if value is None or value == "":
        return float(default)
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise ConfigError(f"{name} must be a duration like 90, 15m or 1h, got {value!r}")
        amount, unit = match.groups()
        seconds = float(amount) * _UNIT_SECONDS[(unit or "s").lower()]
    if seconds < minimum:
        raise ConfigError(f"{name} must be at least {minimum:g} seconds, got {value!r}")
    return seconds


def env_url(environ: Mapping[str, Any], name: str) -> str | None:
    """An http(s) URL with a host, or unset."""
    value = env_str(environ, name)
    if value is None:
        return None
    parsed = urlsplit(value)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ConfigError(f"{name} must be an http(s) URL with a host, got {value!r}")
    return value.rstrip("/")


def env_secret(environ: Mapping[str, Any], name: str, *, min_bytes: int = 32) -> str | None:
    """A signing secret: unset, or at least `min_bytes` bytes (a short one can be guessed)."""
    value = env_str(environ, name)
    if value is not None and len(value.encode()) < min_bytes:
        raise ConfigError(
            f"{name} is {len(value.encode())} bytes; use at least {min_bytes} random bytes, e.g. "
            '`python -c "import secrets; print(secrets.token_urlsafe(48))"`'
        )
    return value


LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


def env_rate(environ: Mapping[str, Any], name: str, default: str | None) -> str | None:
    """A rate limit as `limits` reads it ("100/hour", "10/second"); unset → `default`."""
    value = env_str(environ, name, default)
    if not value:
        return None
    try:
        parse(value)
    except ValueError:
        raise ConfigError(
            f"{name} must be a rate like 100/hour or 10/second, got {value!r}"
        ) from None
    return value


def _choice(environ: Mapping[str, Any], name: str, choices: tuple[str, ...], default: str) -> str:
    value = (env_str(environ, name, default) or default).lower()
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


def database_uri(environ: Mapping[str, Any], instance_path: str) -> str:
    """DATABASE_URL (Railway's postgres:// accepted, psycopg 3), else SQLite in instance/."""
    url = env_str(environ, "DATABASE_URL")
    if not url:
        return "sqlite:///" + os.path.join(instance_path, "autocheckin.db")
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    if not url.startswith(("sqlite:", "postgresql+")):
        raise ConfigError(
            "DATABASE_URL must be a postgres://, postgresql:// or sqlite:/// URL, "
            f"got {url.split('@')[-1]!r}"
        )
    return url


WEAK_KEY_LENGTH = 16


def weak_settings(config: Mapping[str, Any]) -> list[str]:
    """Settings that work but should not reach production, said at start-up and in status."""
    key = config.get("CHECKOUT_API_KEY")
    if key is None:
        return []
    if key == "change-me":
        return ["CHECKOUT_API_KEY is the development placeholder change-me"]
    if len(key) < WEAK_KEY_LENGTH:
        return [f"CHECKOUT_API_KEY is shorter than {WEAK_KEY_LENGTH} characters"]
    return []


def open_setups(config: Mapping[str, Any]) -> dict[str, bool]:
    """The documented opt-ins that open a door to anonymous callers, and whether each is on."""
    return {
        "WEBHOOK_REQUIRE_SIGNATURE=false": not config["WEBHOOK_REQUIRE_SIGNATURE"],
        "DISCORD_ALLOW_KEYLESS=true": bool(
            config["DISCORD_ALLOW_KEYLESS"] and not config["DISCORD_API_KEY"]
        ),
    }


def load_config(environ: Mapping[str, Any], *, instance_path: str) -> dict[str, Any]:
    """Flask config from an environment mapping; every key is listed in .env.example."""
    return {
        "SQLALCHEMY_DATABASE_URI": database_uri(environ, instance_path),
        "SQLITE_BUSY_TIMEOUT": env_seconds(environ, "SQLITE_BUSY_TIMEOUT", 30, minimum=0.1),
        "HOST": env_str(environ, "HOST", "127.0.0.1"),
        "PORT": env_int(environ, "PORT", 5000, minimum=1, maximum=65535),
        "LOG_LEVEL": _choice(environ, "LOG_LEVEL", LOG_LEVELS, "info").upper(),
        # JSON lines on Railway (its log explorer reads the fields), text elsewhere.
        "LOG_FORMAT": _choice(
            environ,
            "LOG_FORMAT",
            ("text", "json"),
            "json" if env_str(environ, "RAILWAY_ENVIRONMENT") else "text",
        ),
        "MAX_CONTENT_LENGTH": env_int(environ, "MAX_CONTENT_LENGTH", 1024 * 1024, minimum=1024),
        "CHECKOUT_API_KEY": env_str(environ, "CHECKOUT_API_KEY"),
        "CHECKOUT_API_URL": env_url(environ, "CHECKOUT_API_URL"),
        "CHECKOUT_CONNECT_TIMEOUT": env_seconds(
            environ, "CHECKOUT_CONNECT_TIMEOUT", 3, minimum=0.1
        ),
        "CHECKOUT_READ_TIMEOUT": env_seconds(environ, "CHECKOUT_READ_TIMEOUT", 10, minimum=0.1),
        "CHECKOUT_RETRIES": env_int(environ, "CHECKOUT_RETRIES", 2, minimum=0),
        "SCHEDULER_ENABLED": env_bool(environ, "SCHEDULER_ENABLED", True),
        "SCHEDULER_LEASE_SECONDS": env_seconds(environ, "SCHEDULER_LEASE_SECONDS", 60, minimum=3),
        "FETCH_USERS_INTERVAL": env_seconds(environ, "FETCH_USERS_INTERVAL", 3600, minimum=1),
        "REFRESH_INTERVAL": env_seconds(environ, "REFRESH_INTERVAL", 15 * 60, minimum=1),
        "REFRESH_CONCURRENCY": env_int(environ, "REFRESH_CONCURRENCY", 16, minimum=1),
        "REFRESH_BREAKER_THRESHOLD": env_int(environ, "REFRESH_BREAKER_THRESHOLD", 5, minimum=1),
        "CONNECTION_CHECK_INTERVAL": env_seconds(
            environ, "CONNECTION_CHECK_INTERVAL", 60, minimum=1
        ),
        "PRUNE_INTERVAL": env_seconds(environ, "PRUNE_INTERVAL", 3600, minimum=1),
        "JOB_RUN_RETENTION_DAYS": env_int(environ, "JOB_RUN_RETENTION_DAYS", 7, minimum=1),
        "CHECKIN_OPENS_BEFORE": env_seconds(environ, "CHECKIN_OPENS_BEFORE", 15 * 60),
        "LATE_AFTER": env_seconds(environ, "LATE_AFTER", 10 * 60),
        "CHECKIN_MAX_FUTURE": env_seconds(environ, "CHECKIN_MAX_FUTURE", 5 * 60),
        "CHECKIN_MAX_BACKDATE": (
            env_seconds(environ, "CHECKIN_MAX_BACKDATE", 0)
            if env_str(environ, "CHECKIN_MAX_BACKDATE")
            else None
        ),
        "STATE_COUNTS_MAX_AGE": env_seconds(environ, "STATE_COUNTS_MAX_AGE", 5),
        "WEBHOOK_SECRET": env_str(environ, "WEBHOOK_SECRET"),
        "WEBHOOK_REQUIRE_SIGNATURE": env_bool(environ, "WEBHOOK_REQUIRE_SIGNATURE", True),
        "WEBHOOK_LOG_RETENTION_DAYS": env_int(environ, "WEBHOOK_LOG_RETENTION_DAYS", 30, minimum=1),
        "IDEMPOTENCY_TTL": env_seconds(environ, "IDEMPOTENCY_TTL", 24 * 3600),
        "JWT_SECRET_KEY": env_secret(environ, "JWT_SECRET_KEY"),
        "SECRET_KEY": env_secret(environ, "SECRET_KEY"),
        "SESSION_COOKIE_SECURE": env_bool(
            environ, "SESSION_COOKIE_SECURE", bool(env_str(environ, "RAILWAY_ENVIRONMENT"))
        ),
        "JWT_EXPIRES": env_seconds(environ, "JWT_EXPIRES", 24 * 3600, minimum=60),
        "EVENT_CREATE_ROLE": _choice(environ, "EVENT_CREATE_ROLE", ("user", "admin"), "user"),
        "DISCORD_API_KEY": env_str(environ, "DISCORD_API_KEY"),
        "DISCORD_ALLOW_KEYLESS": env_bool(environ, "DISCORD_ALLOW_KEYLESS", False),
        "DISCORD_ADMIN_PASSWORD": env_secret(environ, "DISCORD_ADMIN_PASSWORD", min_bytes=12),
        "REDIS_URL": env_str(environ, "REDIS_URL"),
        "METRICS_TOKEN": env_secret(environ, "METRICS_TOKEN", min_bytes=16),
        "TRUSTED_PROXY_HOPS": env_int(environ, "TRUSTED_PROXY_HOPS", 0, minimum=0),
        "INTEGRATION_USER_RATE": env_rate(environ, "INTEGRATION_USER_RATE", "100/hour"),
        "INTEGRATION_ADMIN_RATE": env_rate(environ, "INTEGRATION_ADMIN_RATE", "1000/hour"),
        "WEBHOOK_RATE_LIMIT": env_rate(environ, "WEBHOOK_RATE_LIMIT", None),
        "OUTBOUND_SENDER_ENABLED": env_bool(environ, "OUTBOUND_SENDER_ENABLED", True),
        "OUTBOUND_CONCURRENCY": env_int(environ, "OUTBOUND_CONCURRENCY", 8, minimum=1, maximum=256),
        "OUTBOUND_POLL_INTERVAL": env_seconds(environ, "OUTBOUND_POLL_INTERVAL", 1, minimum=0.05),
        "OUTBOUND_BACKOFF_BASE": env_seconds(environ, "OUTBOUND_BACKOFF_BASE", 10, minimum=0.01),
        "OUTBOUND_BACKOFF_MAX": env_seconds(environ, "OUTBOUND_BACKOFF_MAX", 3600, minimum=0.01),
        "OUTBOUND_DISABLE_AFTER": env_int(environ, "OUTBOUND_DISABLE_AFTER", 10, minimum=1),
        "OUTBOUND_WEBHOOKS_ALLOW_PRIVATE": env_bool(
            environ, "OUTBOUND_WEBHOOKS_ALLOW_PRIVATE", False
        ),
        "OUTBOUND_RETENTION_DAYS": env_int(environ, "OUTBOUND_RETENTION_DAYS", 30, minimum=1),
    }
