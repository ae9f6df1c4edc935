"""The CheckOut API client: the only place that calls upstream.

One `requests.Session` with a connection pool sized to the refresh concurrency,
`x-checkout-key` and a User-Agent on every call, a (connect, read) timeout always, and
urllib3 `Retry` with backoff on connection errors, 429 (honouring Retry-After) and 5xx.
Other 4xx are never retried. Every failure is one error type, `CheckOutError`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from autocheckin import metrics
from autocheckin.version import __version__

log = logging.getLogger(__name__)

RETRY_STATUSES = (429, 500, 502, 503, 504)
# Answers that mean "nothing is serving there" rather than "it refused this request".
UNREACHABLE_STATUSES = frozenset({502, 503, 504})


def _describe(error: requests.RequestException) -> str:
    """The exception's name and, when urllib3 gave up, why (e.g. a read timeout)."""
    reason = getattr(error.args[0], "reason", None) if error.args else None
    return type(error).__name__ + (f" ({type(reason).__name__})" if reason else "")


class CheckOutError(Exception):
    """An upstream call failed: unreachable, timed out, an error status, or a bad body.

    `unreachable` is what a circuit breaker counts: no connection, a timeout, or a
    gateway's 502/503/504 (after the retries), as opposed to an answer about this request.
    """

    def __init__(self, message: str, *, status: int | None = None, unreachable: bool = False):
        super().__init__(message)
        self.message = message
        self.status = status
        self.unreachable = unreachable or status in UNREACHABLE_STATUSES


@dataclass(frozen=True)
class CheckOutSettings:
    base_url: str
    api_key: str | None
    connect_timeout: float = 3
    read_timeout: float = 10
    retries: int = 2
    pool_size: int = 16
    backoff_factor: float = 0.5

    @classmethod
    def from_config(cls, config: Any) -> CheckOutSettings | None:
        """None when CHECKOUT_API_URL is unset: the service then runs as a webhook hub."""
        if not config["CHECKOUT_API_URL"]:
            return None
        return cls(
            base_url=config["CHECKOUT_API_URL"].rstrip("/"),
            api_key=config["CHECKOUT_API_KEY"],
            connect_timeout=config["CHECKOUT_CONNECT_TIMEOUT"],
            read_timeout=config["CHECKOUT_READ_TIMEOUT"],
            retries=config["CHECKOUT_RETRIES"],
            pool_size=config["REFRESH_CONCURRENCY"],
        )


# Called after every call with (succeeded, reason): how `connected` follows the last call.
ResultListener = Callable[[bool, str | None], None]


class CheckOutClient:
    def __init__(self, settings: CheckOutSettings, *, on_result: ResultListener | None = None):
        self.settings = settings
        self.on_result = on_result
        self.session = requests.Session()
        # Proxy settings are read from the environment once, here, not on every call
        # (requests re-reads them per request otherwise: a third of its overhead).
        self.session.proxies = requests.utils.get_environ_proxies(settings.base_url)
        self.session.trust_env = False
        retry = Retry(
            total=settings.retries,
            connect=settings.retries,
            read=settings.retries,
            status=settings.retries,
            backoff_factor=settings.backoff_factor,
            backoff_max=10,
            status_forcelist=RETRY_STATUSES,
            allowed_methods=frozenset({"GET", "POST"}),
            respect_retry_after_header=True,
            raise_on_status=False,
        )
        adapter = HTTPAdapter(
            max_retries=retry, pool_connections=1, pool_maxsize=settings.pool_size
        )
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers.update(
            {"User-Agent": f"AutoCheckin/{__version__}", "Accept": "application/json"}
        )
        if settings.api_key:
            self.session.headers["x-checkout-key"] = settings.api_key

    def close(self) -> None:
        self.session.close()

    # --- the contract ---------------------------------------------------------------------

    def test(self) -> None:
        """`GET /test`: raises CheckOutError unless upstream answers success."""
        self._call("GET", "/test")

    def users(self) -> list[dict[str, Any]]:
        """`GET /users` → the `autoCheckinUsers` list (each with at least an email)."""
        body = self._call("GET", "/users")
        users = body.get("autoCheckinUsers")
        if not isinstance(users, list) or not all(
            isinstance(user, dict) and isinstance(user.get("email"), str) for user in users
        ):
            raise self._failed("malformed /users answer: autoCheckinUsers must list users")
        return users

    def sessions(self, email: str) -> list[dict[str, Any]]:
        """`GET /sessions?email=` → the sessions this user is expected at."""
        body = self._call("GET", "/sessions", params={"email": email})
        sessions = body.get("sessions")
        if not isinstance(sessions, list) or not all(isinstance(s, dict) for s in sessions):
            raise self._failed("malformed /sessions answer: sessions must be a list")
        return sessions

    def log(self, *, email: str, state: str, message: str) -> None:
        """`POST /log`: report a user's refresh outcome upstream."""
        self._call("POST", "/log", json={"email": email, "state": state, "message": message})

    # --- plumbing -------------------------------------------------------------------------

    def _failed(
        self, message: str, status: int | None = None, *, unreachable: bool = False
    ) -> CheckOutError:
        metrics.UPSTREAM_ERRORS.inc()
        self._report(False, message)
        return CheckOutError(message, status=status, unreachable=unreachable)

    def _report(self, succeeded: bool, reason: str | None) -> None:
        if self.on_result is None:
            return
        try:
            self.on_result(succeeded, reason)
        except Exception:  # noqa: BLE001 - status bookkeeping must never break a call
            log.exception("recording the upstream connection status failed")

    def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        url = self.settings.base_url + path
        try:
            response = self.session.request(
                method,
                url,
                timeout=(self.settings.connect_timeout, self.settings.read_timeout),
                allow_redirects=False,
                **kwargs,
            )
        except requests.RequestException as error:
            message = f"{method} {path} failed: {_describe(error)}"
            raise self._failed(message, unreachable=True) from None
        if response.status_code >= 300:
            raise self._failed(
                f"{method} {path} answered {response.status_code}", response.status_code
            )
        try:
            body = response.json()
        except ValueError:
            raise self._failed(f"{method} {path} answered with a body that is not JSON") from None
        if not isinstance(body, dict):
            raise self._failed(f"{method} {path} answered with JSON that is not an object")
        if body.get("success") is not True:
            detail = body.get("message") or body.get("error") or "success is not true"
            raise self._failed(f"{method} {path} was refused: {detail}", response.status_code)
        self._report(True, None)
        return body
