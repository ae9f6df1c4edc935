"""The link to CheckOut: the process's one client, and its failures as service errors."""

from __future__ import annotations

import threading
from typing import Any

from flask import Flask

from autocheckin import settings, state
from autocheckin.errors import BadGateway, NotConfigured
from autocheckin.sync.client import CheckOutClient, CheckOutError

NOT_CONFIGURED = "CheckOut API not configured"


class UpstreamNotConfigured(NotConfigured):
    code = "upstream_not_configured"


class UpstreamFailed(BadGateway):
    """CheckOut could not be reached, or refused, or answered nonsense."""

    code = "upstream_failed"


def client_for(app: Flask) -> CheckOutClient:
    """The process's one CheckOut client (one connection pool), created on first use."""
    client = app.extensions.get("checkout_client")
    if client is None:
        checkout = settings.of(app).checkout
        if checkout is None:
            raise UpstreamNotConfigured(NOT_CONFIGURED)

        def note_result(succeeded: bool, reason: str | None) -> None:
            # Calls come from pool threads too: each note gets its own app context.
            with app.app_context():
                state.note_upstream_result(succeeded, reason)

        client = CheckOutClient(checkout, on_result=note_result)
        app.extensions["checkout_client"] = client
    return client


def check_connection(client: CheckOutClient) -> dict[str, Any]:
    """`GET /test`; the client's listener records `connected` either way."""
    try:
        client.test()
    except CheckOutError as error:
        raise UpstreamFailed(error.message) from None
    return {"connected": True}


class Breaker:
    """Counts upstream calls in a row that found nobody there; opens after `threshold`.

    Once open it stays open for the rest of the run: the calls not yet made are not made,
    so a down upstream costs a refresh about `threshold` + concurrency calls, not
    (users + reports) × retries.
    """

    def __init__(self, threshold: int):
        self.threshold = threshold
        self.opened_by: str | None = None
        self._in_a_row = 0
        self._lock = threading.Lock()

    @property
    def is_open(self) -> bool:
        return self.opened_by is not None

    def record(self, error: CheckOutError | None) -> None:
        with self._lock:
            if error is None or not error.unreachable:
                self._in_a_row = 0
                return
            self._in_a_row += 1
            if self._in_a_row >= self.threshold and self.opened_by is None:
                self.opened_by = error.message


def never_open() -> Breaker:
    """For single refreshes: one call, nothing to stop early."""
    return Breaker(threshold=1_000_000)
