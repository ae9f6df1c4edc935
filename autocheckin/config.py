"""Every setting, declared once on a pydantic-settings model and read once at start-up.

`load_config()` reads the process environment (main.py and gunicorn.conf.py load `.env`
into it first); `load_config(mapping)` reads that mapping only, never os.environ nor a
`.env` file (tests pass a dict). Either way it gives Flask config keys. A bad value fails
at start-up with one line naming the variable, never later inside a request. An empty
value is the same as unset.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Callable, Mapping
from typing import Annotated, Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from limits import parse
from pydantic import BeforeValidator, ValidationError, model_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$", re.IGNORECASE)
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}

LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


class ConfigError(RuntimeError):
    """A setting is missing or malformed; raised at start-up."""


# --- the forms a value may take: each checker says what is wrong, the caller adds the name


def _check(checker: Callable[[Any], Any]) -> BeforeValidator:
    """Run `checker` on a value that is set (an unset optional one is None, and stays so)."""
    return BeforeValidator(lambda value: None if value is None else checker(value))


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"must be true or false, got {value!r}")


def _whole(minimum: int | None = None, maximum: int | None = None) -> BeforeValidator:
    def check(value: Any) -> int:
        try:
            number = int(str(value).strip())
        except ValueError:
            raise ValueError(f"must be a whole number, got {value!r}") from None
        if minimum is not None and number < minimum:
            raise ValueError(f"must be at least {minimum}, got {number}")
        if maximum is not None and number > maximum:
            raise ValueError(f"must be at most {maximum}, got {number}")
        return number

    return _check(check)


def seconds(value: Any, *, minimum: float = 0) -> float:
    """A duration: plain seconds ("90") or with a unit ("500ms", "15m", "1h", "30d"), at
    least `minimum` seconds (an interval of 0 would run a job without pause)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        amount = float(value)
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise ValueError(f"must be a duration like 90, 15m or 1h, got {value!r}")
        number, unit = match.groups()
        amount = float(number) * _UNIT_SECONDS[(unit or "s").lower()]
    if amount < minimum:
        raise ValueError(f"must be at least {minimum:g} seconds, got {value!r}")
    return amount


def _duration(minimum: float = 0) -> BeforeValidator:
    return _check(lambda value: seconds(value, minimum=minimum))


def _schedule(value: Any) -> tuple[float, ...]:
    """Durations separated by commas ("5s,5m,30m,2h"), each more than zero."""
    if isinstance(value, tuple | list):
        parts = list(value)
    else:
        parts = [part for part in str(value).split(",") if part.strip()]
    if not parts:
        raise ValueError("must list at least one duration, like 5s,5m,30m,2h")
    return tuple(seconds(part, minimum=0.01) for part in parts)


def _networks(value: Any) -> tuple[Any, ...]:
    """Networks separated by commas ("10.0.0.0/8, 2001:db8::/32"), each an address or CIDR."""
    if isinstance(value, tuple | list):
        parts = list(value)
    else:
        parts = [part.strip() for part in str(value).split(",") if part.strip()]
    found = []
    for part in parts:
        try:
            found.append(
                part if not isinstance(part, str) else ipaddress.ip_network(part, strict=False)
            )
        except ValueError:
            raise ValueError(f"must be networks like 10.0.0.0/8, got {part!r}") from None
    return tuple(found)


def _text(value: Any) -> str:
    return str(value).strip()


def _url(value: Any) -> str:
    """An http(s) URL with a host."""
    text = _text(value)
    parsed = urlsplit(text)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ValueError(f"must be an http(s) URL with a host, got {text!r}")
    return text.rstrip("/")


def _secret(min_bytes: int = 32) -> BeforeValidator:
    """A signing secret of at least `min_bytes` bytes (a short one can be guessed)."""

    def check(value: Any) -> str:
        text = _text(value)
        if len(text.encode()) < min_bytes:
            raise ValueError(
                f"is {len(text.encode())} bytes; use at least {min_bytes} random bytes, e.g. "
                '`python -c "import secrets; print(secrets.token_urlsafe(48))"`'
            )
        return text

    return _check(check)


def _rate(value: Any) -> str:
    """A rate limit as `limits` reads it ("100/hour", "10/second")."""
    text = _text(value)
    try:
        parse(text)
    except ValueError:
        raise ValueError(f"must be a rate like 100/hour or 10/second, got {text!r}") from None
    return text


def _choice(*choices: str) -> BeforeValidator:
    def check(value: Any) -> str:
        text = _text(value).lower()
        if text not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}, got {text!r}")
        return text

    return _check(check)


def _time_zone(value: Any) -> str:
    """An IANA time zone name that this machine's zoneinfo (or the tzdata package) knows."""
    text = _text(value)
    try:
        if text not in available_timezones():
            raise ZoneInfoNotFoundError(text)
        ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(f"must be an IANA time zone like Europe/London, got {text!r}") from None
    return text


def _days(value: Any) -> int:
    """A whole number of days, bare ("30") or with a `d` ("30d"), from 1 to 3650."""
    text = _text(value).lower().removesuffix("d").strip()
    if not text.isascii() or not text.isdigit():
        raise ValueError(f"must be a whole number of days like 30 (or 30d), got {value!r}")
    number = int(text)
    if not 1 <= number <= 3650:
        raise ValueError(f"must be from 1 to 3650 days, got {number}")
    return number


def _database_url(value: Any) -> str:
    """Railway's postgres:// and postgresql:// become psycopg 3's; sqlite: as it is."""
    url = _text(value)
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    if not url.startswith(("sqlite:", "postgresql+")):
        raise ValueError(
            f"must be a postgres://, postgresql:// or sqlite:/// URL, got {url.split('@')[-1]!r}"
        )
    return url


# The validator stands outside `X | None`, so a bad value is one error naming the variable.
Text = Annotated[str, _check(_text)]
OptionalText = Annotated[str | None, _check(_text)]
Boolean = Annotated[bool, _check(_boolean)]
Seconds = Annotated[float, _duration()]
Rate = Annotated[str, _check(_rate)]


class Settings(BaseSettings):
    """Every variable the service reads, with its default; `.env.example` lists each."""

    model_config = SettingsConfigDict(case_sensitive=True, extra="ignore", frozen=True)

    # Server
    # DATABASE_URL unset: SQLite in the instance folder.
    DATABASE_URL: Annotated[str | None, _check(_database_url)] = None
    SQLITE_BUSY_TIMEOUT: Annotated[float, _duration(minimum=0.1)] = 30
    # Database timeouts (PostgreSQL; SQLite waits SQLITE_BUSY_TIMEOUT for its lock). A hung
    # or unreachable server answers 503 database_unavailable within seconds, never holds a
    # request's thread for as long as it hangs. A connection attempt gives up after
    # DATABASE_CONNECT_TIMEOUT (libpq counts whole seconds, 2 at least), and so does the
    # ping on taking a pooled connection. The server cancels a statement after
    # DATABASE_STATEMENT_TIMEOUT (each FETCH of a streamed export is a statement of its
    # own, so a long export is not one) and a lock wait after DATABASE_LOCK_TIMEOUT; when
    # the server says nothing at all, the client gives up one second later. Migrations run
    # without either. Keepalives probe an idle connection after DATABASE_TCP_KEEPALIVE (3
    # probes, a third of it apart); data unacknowledged for DATABASE_TCP_USER_TIMEOUT
    # drops the connection (a partition). A request waits DATABASE_POOL_TIMEOUT for a free
    # connection; /health waits DATABASE_HEALTH_TIMEOUT for `SELECT 1`.
    DATABASE_CONNECT_TIMEOUT: Annotated[int, _whole(minimum=2)] = 5
    DATABASE_STATEMENT_TIMEOUT: Annotated[float, _duration(minimum=0.1)] = 15
    DATABASE_LOCK_TIMEOUT: Annotated[float, _duration(minimum=0.1)] = 5
    DATABASE_TCP_KEEPALIVE: Annotated[float, _duration(minimum=3)] = 30
    DATABASE_TCP_USER_TIMEOUT: Annotated[float, _duration(minimum=1)] = 20
    DATABASE_POOL_TIMEOUT: Annotated[float, _duration(minimum=0.1)] = 5
    DATABASE_HEALTH_TIMEOUT: Annotated[float, _duration(minimum=0.1)] = 3
    HOST: Text = "127.0.0.1"
    PORT: Annotated[int, _whole(minimum=1, maximum=65535)] = 5000
    LOG_LEVEL: Annotated[str, _choice(*LOG_LEVELS)] = "info"
    # Unset: json on Railway (its log explorer reads the fields), text elsewhere.
    LOG_FORMAT: Annotated[str | None, _choice("text", "json")] = None
    RAILWAY_ENVIRONMENT: OptionalText = None
    MAX_CONTENT_LENGTH: Annotated[int, _whole(minimum=1024)] = 1024 * 1024
    # CheckOut (upstream)
    CHECKOUT_API_KEY: OptionalText = None
    CHECKOUT_API_URL: Annotated[str | None, _check(_url)] = None
    CHECKOUT_CONNECT_TIMEOUT: Annotated[float, _duration(minimum=0.1)] = 3
    CHECKOUT_READ_TIMEOUT: Annotated[float, _duration(minimum=0.1)] = 10
    CHECKOUT_RETRIES: Annotated[int, _whole(minimum=0)] = 2
    # Scheduler
    SCHEDULER_ENABLED: Boolean = True
    SCHEDULER_LEASE_SECONDS: Annotated[float, _duration(minimum=3)] = 60
    FETCH_USERS_INTERVAL: Annotated[float, _duration(minimum=1)] = 3600
    REFRESH_INTERVAL: Annotated[float, _duration(minimum=1)] = 15 * 60
    REFRESH_CONCURRENCY: Annotated[int, _whole(minimum=1)] = 16
    REFRESH_BREAKER_THRESHOLD: Annotated[int, _whole(minimum=1)] = 5
    CONNECTION_CHECK_INTERVAL: Annotated[float, _duration(minimum=1)] = 60
    PRUNE_INTERVAL: Annotated[float, _duration(minimum=1)] = 3600
    JOB_RUN_RETENTION_DAYS: Annotated[int, _whole(minimum=1)] = 7
    # How long an API trigger called while its job runs waits to answer with that run's
    # outcome (then 202 with the run's id); below gunicorn's 30 s worker timeout.
    TRIGGER_WAIT_SECONDS: Annotated[float, _duration(minimum=0)] = 20
    # Check-in rules
    CHECKIN_OPENS_BEFORE: Seconds = 15 * 60
    LATE_AFTER: Seconds = 10 * 60
    CHECKIN_MAX_FUTURE: Seconds = 5 * 60
    CHECKIN_MAX_BACKDATE: Annotated[float | None, _duration()] = None  # unset: no bound
    STATE_COUNTS_MAX_AGE: Seconds = 5
    # Recurring events (series): the time zone of a series that names none; how far ahead
    # the generate_series job makes occurrences (and where a rule with neither UNTIL nor
    # COUNT is capped); the most occurrences one rule may have; how often the job runs.
    SERIES_DEFAULT_TIMEZONE: Annotated[str, _check(_time_zone)] = "UTC"
    SERIES_HORIZON: Annotated[float, _duration(minimum=86400)] = 90 * 86400
    SERIES_MAX_OCCURRENCES: Annotated[int, _whole(minimum=1, maximum=10_000)] = 500
    SERIES_GENERATE_INTERVAL: Annotated[float, _duration(minimum=1)] = 3600
    # Suspicious check-ins (findings), read after commit by the detect_findings job; the
    # README says why each default is what it is.
    FRAUD_DETECT_INTERVAL: Annotated[float, _duration(minimum=1)] = 30
    FRAUD_SETTLE: Annotated[float, _duration(minimum=0)] = 60
    FRAUD_FIRST_PASS_LOOKBACK: Annotated[float, _duration(minimum=0)] = 86400
    FRAUD_SHARED_CLIENT_PEOPLE: Annotated[int, _whole(minimum=2)] = 3
    FRAUD_SHARED_CLIENT_WINDOW: Annotated[float, _duration(minimum=1)] = 10 * 60
    FRAUD_TRUSTED_NETWORKS: Annotated[tuple[Any, ...], NoDecode, _check(_networks)] = ()
    FRAUD_OVERLAP_MINIMUM: Annotated[float, _duration(minimum=0)] = 15 * 60
    FRAUD_CLOCK_SKEW: Annotated[float, _duration(minimum=1)] = 15 * 60
    FRAUD_UNKNOWN_IDS: Annotated[int, _whole(minimum=1)] = 20
    FRAUD_UNKNOWN_WINDOW: Annotated[float, _duration(minimum=1)] = 10 * 60
    # Webhooks
    WEBHOOK_SECRET: OptionalText = None
    WEBHOOK_REQUIRE_SIGNATURE: Boolean = True
    WEBHOOK_LOG_RETENTION_DAYS: Annotated[int, _whole(minimum=1)] = 30
    IDEMPOTENCY_TTL: Seconds = 24 * 3600
    # Web users, events and Discord
    JWT_SECRET_KEY: Annotated[str | None, _secret()] = None
    SECRET_KEY: Annotated[str | None, _secret()] = None
    SESSION_COOKIE_SECURE: Annotated[bool | None, _check(_boolean)] = None  # unset: true on Railway
    JWT_EXPIRES: Annotated[float, _duration(minimum=60)] = 24 * 3600
    EVENT_CREATE_ROLE: Annotated[str, _choice("user", "admin")] = "user"
    DISCORD_API_KEY: OptionalText = None
    DISCORD_ALLOW_KEYLESS: Boolean = False
    DISCORD_ADMIN_PASSWORD: Annotated[str | None, _secret(min_bytes=12)] = None
    # Metrics, rate limits and proxies
    REDIS_URL: OptionalText = None
    METRICS_TOKEN: Annotated[str | None, _secret(min_bytes=16)] = None
    TRUSTED_PROXY_HOPS: Annotated[int, _whole(minimum=0)] = 0
    INTEGRATION_USER_RATE: Rate = "100/hour"
    INTEGRATION_ADMIN_RATE: Rate = "1000/hour"
    WEBHOOK_RATE_LIMIT: Annotated[str | None, _check(_rate)] = None
    # Outbound webhooks. Retries wait OUTBOUND_RETRY_SCHEDULE's steps in turn (Svix's
    # schedule: about 27.6 hours from the first attempt to the last, so an overnight
    # maintenance window loses nothing); turning a subscription back on offers again what
    # it did not deliver in the last OUTBOUND_RECOVER_WINDOW; a sender's claim on a delivery
    # lasts OUTBOUND_CLAIM_LEASE and is renewed while it holds it, so a dead worker's
    # deliveries are taken over within that.
    OUTBOUND_SENDER_ENABLED: Boolean = True
    OUTBOUND_CONCURRENCY: Annotated[int, _whole(minimum=1, maximum=256)] = 8
    OUTBOUND_POLL_INTERVAL: Annotated[float, _duration(minimum=0.05)] = 1
    OUTBOUND_RETRY_SCHEDULE: Annotated[tuple[float, ...], NoDecode, _check(_schedule)] = (
        5.0,
        300.0,
        1800.0,
        7200.0,
        18000.0,
        36000.0,
        36000.0,
    )
    OUTBOUND_RECOVER_WINDOW: Annotated[float, _duration(minimum=0)] = 3 * 86400
    OUTBOUND_CLAIM_LEASE: Annotated[float, _duration(minimum=1)] = 10
    OUTBOUND_DISABLE_AFTER: Annotated[int, _whole(minimum=1)] = 10
    OUTBOUND_WEBHOOKS_ALLOW_PRIVATE: Boolean = False
    OUTBOUND_RETENTION_DAYS: Annotated[int, _whole(minimum=1)] = 30
    # Absence alerts (`alerts`): a person's last ALERT_CONSECUTIVE_ABSENCES expected events
    # were all missed, or their attendance rate over the events that ended in the last
    # ALERT_PERIOD days (a whole number of days) is below ALERT_RATE_BELOW percent, once at
    # least ALERT_MIN_EXPECTED of them count (with fewer, one miss moves the rate 25+
    # points). The evaluate_alerts job looks every ALERT_EVALUATE_INTERVAL.
    ALERT_CONSECUTIVE_ABSENCES: Annotated[int, _whole(minimum=1, maximum=1000)] = 3
    ALERT_RATE_BELOW: Annotated[int, _whole(minimum=1, maximum=100)] = 75
    ALERT_PERIOD: Annotated[int, _check(_days)] = 30
    ALERT_MIN_EXPECTED: Annotated[int, _whole(minimum=1, maximum=10_000)] = 4
    ALERT_EVALUATE_INTERVAL: Annotated[float, _duration(minimum=1)] = 60

    @model_validator(mode="before")
    @classmethod
    def _blank_is_unset(cls, values: Any) -> Any:
        if isinstance(values, Mapping):
            return {
                name: value
                for name, value in values.items()
                if value is not None and not (isinstance(value, str) and not value.strip())
            }
        return values

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """The process environment only: main.py and gunicorn.conf.py load `.env` into it."""
        return (env_settings,)

    def flask_config(self, *, instance_path: str) -> dict[str, Any]:
        """The Flask config keys: the variables, with the defaults that depend on others."""
        on_railway = bool(self.RAILWAY_ENVIRONMENT)
        config = {
            "SQLALCHEMY_DATABASE_URI": self.DATABASE_URL or _sqlite_in(instance_path),
            **self.model_dump(exclude={"DATABASE_URL", "RAILWAY_ENVIRONMENT"}),
        }
        config.update(
            LOG_LEVEL=self.LOG_LEVEL.upper(),
            LOG_FORMAT=self.LOG_FORMAT or ("json" if on_railway else "text"),
            SESSION_COOKIE_SECURE=(
                on_railway if self.SESSION_COOKIE_SECURE is None else self.SESSION_COOKIE_SECURE
            ),
        )
        return config


class _GivenSettings(Settings):
    """The same settings, from the mapping passed in only (a test's dict)."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


def _one_line(error: ValidationError) -> str:
    """`NAME what is wrong` for each bad variable, on one line."""
    problems = []
    for problem in error.errors():
        cause = problem.get("ctx", {}).get("error")
        name = ".".join(str(part) for part in problem["loc"]) or "settings"
        problems.append(f"{name} {cause if cause is not None else problem['msg']}")
    return "; ".join(problems)


def read_settings(environ: Mapping[str, Any] | None = None) -> Settings:
    """The settings from the process environment, or from `environ` only when given."""
    try:
        if environ is None:
            return Settings()
        given = {name: environ[name] for name in Settings.model_fields if name in environ}
        return _GivenSettings(**given)
    except ValidationError as error:
        raise ConfigError(_one_line(error)) from None


def _sqlite_in(instance_path: str) -> str:
    return "sqlite:///" + os.path.join(instance_path, "autocheckin.db")


def database_uri(environ: Mapping[str, Any], instance_path: str) -> str:
    """DATABASE_URL (Railway's postgres:// accepted, psycopg 3), else SQLite in instance/."""
    url = environ.get("DATABASE_URL")
    if url is None or not str(url).strip():
        return _sqlite_in(instance_path)
    try:
        return _database_url(url)
    except ValueError as error:
        raise ConfigError(f"DATABASE_URL {error}") from None


def load_config(environ: Mapping[str, Any] | None = None, *, instance_path: str) -> dict[str, Any]:
    """Flask config from the process environment, or from `environ` only when given; every
    key is listed in .env.example."""
    return read_settings(environ).flask_config(instance_path=instance_path)


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
