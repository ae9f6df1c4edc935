"""Reporting each user's refresh outcome upstream (`POST /log`), only when it changed."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import update

from autocheckin.database import write_transaction
from autocheckin.sync.client import CheckOutClient, CheckOutError
from autocheckin.sync.connection import Breaker, never_open
from autocheckin.sync.models import UserRefresh

log = logging.getLogger(__name__)

PRESENT, LATE, PENDING, ABSENT = "present", "late", "pending", "absent"


@dataclass(frozen=True)
class Report:
    email: str
    refresh_id: int
    summary: str  # what is remembered, to report only changes
    state: str
    message: str


def report_of(email: str, refresh: UserRefresh, sessions: list[Any]) -> Report:
    """The user's outcome as POST /log says it: refreshed with a tally, or the failure."""
    tally = dict.fromkeys((PRESENT, LATE, PENDING, ABSENT), 0)
    for entry in sessions:
        tally[entry.status] = tally.get(entry.status, 0) + 1
    state_name = "refreshed" if refresh.ok else "refresh_failed"
    summary = f"{state_name}|" + "|".join(str(tally[s]) for s in (PRESENT, LATE, PENDING, ABSENT))
    message = (
        f"{len(sessions)} sessions: {tally[PRESENT]} present, {tally[LATE]} late, "
        f"{tally[PENDING]} pending, {tally[ABSENT]} absent"
        if refresh.ok
        else f"refresh failed: {refresh.error}"
    )
    return Report(email, refresh.id, summary, state_name, message)


def send(client: CheckOutClient, report: Report, breaker: Breaker | None = None) -> dict | None:
    """POST /log; a failure is logged and retried on the next refresh, never raised.

    Not sent while the breaker is open: the report waits for a refresh that reaches upstream.
    """
    breaker = breaker or never_open()
    if breaker.is_open:
        return None
    try:
        client.log(email=report.email, state=report.state, message=report.message)
    except CheckOutError as error:
        breaker.record(error)
        log.warning("POST /log for %s failed: %s", report.email, error.message)
        return None
    breaker.record(None)
    return {"id": report.refresh_id, "reported_state": report.summary}


def remember(sent: list[dict[str, Any] | None]) -> None:
    """Store what was reported, so an unchanged outcome is not reported again."""
    rows = [row for row in sent if row is not None]
    if rows:
        with write_transaction() as session:
            session.execute(update(UserRefresh), rows)
