"""The global state store: JSON values in the database, so every worker and replica agrees.

Keys hold the times the seed's `/api/v1/state` shows (`last_users_fetch`, …) and the
upstream connection status. Nothing here is held in a worker's memory. The state report
itself is `overview.py`'s.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import String, bindparam, select
from sqlalchemy.orm import Mapped, mapped_column

from autocheckin.database import JSONValue, UTCDateTime, upsert, write_transaction
from autocheckin.extensions import db
from autocheckin.times import iso, utcnow

CONNECTION_KEY = "connection"


class StateEntry(db.Model):
    __tablename__ = "state_entries"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[Any] = mapped_column(JSONValue, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


# Built once: /api/v1/state is polled, and building a statement costs more than running it.
_VALUE_OF = select(StateEntry.value).where(StateEntry.key == bindparam("key"))
_VALUES_OF = select(StateEntry.key, StateEntry.value).where(
    StateEntry.key.in_(bindparam("keys", expanding=True))
)


def get(key: str, default: Any = None) -> Any:
    value = db.session.execute(_VALUE_OF, {"key": key}).scalar_one_or_none()
    return default if value is None else value


def get_many(keys: Iterable[str]) -> dict[str, Any]:
    """The stored values of `keys`; keys never set are absent."""
    rows = db.session.execute(_VALUES_OF, {"keys": list(keys)})
    return {key: value for key, value in rows}


def set(key: str, value: Any) -> None:  # noqa: A001 - the store's verb, read as state.set
    set_many({key: value})


def set_many(values: Mapping[str, Any]) -> None:
    """Upsert several keys in one transaction (joins the caller's write transaction if any)."""
    now = utcnow()
    with write_transaction() as session:
        for key, value in values.items():
            upsert(
                session,
                StateEntry.__table__,
                {"key": key, "value": value, "updated_at": now},
                key=["key"],
            )


class _LastSeen:
    """This process's last confirmed connection status per database, and when it was
    confirmed (per database: two apps in one process must not share it)."""

    lock = threading.Lock()
    by_engine: weakref.WeakKeyDictionary[Any, tuple[tuple[bool, str | None], float]] = (
        weakref.WeakKeyDictionary()
    )


# A refresh makes thousands of upstream calls: within this many seconds of confirming the
# same status, a process skips the database round trip; a change is always written at once.
CONNECTION_MEMO_SECONDS = 1.0


def set_connection(*, connected: bool, reason: str | None = None) -> None:
    """Record the outcome of the latest upstream call, whoever made it."""
    set(CONNECTION_KEY, {"connected": connected, "reason": reason, "checked_at": iso(utcnow())})
    with _LastSeen.lock:
        _LastSeen.by_engine[db.engine] = ((connected, reason), time.monotonic())


def note_upstream_result(succeeded: bool, reason: str | None) -> None:
    """Follow the last upstream call: `connected` is true after a success, false after a failure.

    Writes only when the stored status differs; reads at most once a second per process
    while the outcome stays the same.
    """
    outcome = (succeeded, reason)
    with _LastSeen.lock:
        seen = _LastSeen.by_engine.get(db.engine)
    if (
        seen is not None
        and seen[0] == outcome
        and time.monotonic() - seen[1] < CONNECTION_MEMO_SECONDS
    ):
        return
    current = get(CONNECTION_KEY) or {}
    if (current.get("connected"), current.get("reason")) != outcome:
        set_connection(connected=succeeded, reason=reason)
    with _LastSeen.lock:
        _LastSeen.by_engine[db.engine] = (outcome, time.monotonic())


def connection() -> dict[str, Any]:
    return get(CONNECTION_KEY) or {"connected": False, "reason": None, "checked_at": None}
