"""The transactional outbox: changes are announced in the transaction that makes them.

When no active subscription wants the event type, nothing is written and no statement
runs: each process keeps the set of subscribed event types, checked against the
subscriptions' revision sum at most once a second (at once after a change made in this
process). Otherwise one `outbound_outbox` row per transaction and event type, whatever the
number of items (a 1,000-check-in batch writes one row). The sender of this process, if
it runs one, is woken right after the commit; `dispatch` takes it from there.
"""

from __future__ import annotations

import json
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, event, func, insert, select
from sqlalchemy.orm import Session

from autocheckin.outbound.models import OutboxEntry, Subscription
from autocheckin.times import utcnow

SUBSCRIPTIONS = Subscription.__table__
OUTBOX = OutboxEntry.__table__

# How stale a process's view of the subscribed event types may get when another process
# changes a subscription (a change made in this process is seen at once).
TYPES_MAX_AGE = 1.0
_WAKE = "outbound_wake"

_GENERATION = select(func.coalesce(func.sum(SUBSCRIPTIONS.c.revision), 0), func.count())
_ACTIVE_TYPES = (
    select(SUBSCRIPTIONS.c.event_type)
    .where(SUBSCRIPTIONS.c.is_active.is_(True), SUBSCRIPTIONS.c.deleted_at.is_(None))
    .distinct()
)
_INSERT_OUTBOX = insert(OUTBOX)


# --- which event types anyone wants -----------------------------------------------------------


@dataclass
class _TypesView:
    generation: tuple[int, int] | None = None
    types: frozenset[str] = frozenset()
    checked_at: float = float("-inf")


_views: weakref.WeakKeyDictionary[Any, _TypesView] = weakref.WeakKeyDictionary()
_views_lock = threading.Lock()


def subscribed_types(connection: Connection) -> frozenset[str]:
    """Event types with an active subscription, as of at most TYPES_MAX_AGE ago."""
    view = _views.get(connection.engine)
    now = time.monotonic()
    if view is not None and now - view.checked_at < TYPES_MAX_AGE:
        return view.types
    generation = tuple(connection.execute(_GENERATION).one())
    if view is None or view.generation != generation:
        types = frozenset(connection.execute(_ACTIVE_TYPES).scalars())
        view = _TypesView(generation=generation, types=types)
        with _views_lock:
            _views[connection.engine] = view
    view.checked_at = now
    return view.types


def forget_subscribed_types(engine: Any) -> None:
    """After a subscription change commits: this process looks again on the next announce."""
    with _views_lock:
        _views.pop(engine, None)


def is_subscribed(session: Session, event_type: str) -> bool:
    return event_type in subscribed_types(session.connection())


# --- announcing (the hot path) ----------------------------------------------------------------


def announce(
    session: Session,
    event_type: str,
    items: Iterable[Mapping[str, Any]] | Callable[[], Iterable[Mapping[str, Any]]],
    *,
    occurred_at: datetime | None = None,
) -> bool:
    """Add `items` (each a delivery's `data`) to the outbox in the caller's transaction.

    `items` may be a function, called only when someone is subscribed, so callers build
    nothing for nobody. True when a row was written; the sender is woken after commit.
    """
    connection = session.connection()
    if event_type not in subscribed_types(connection):
        return False
    data = list(items() if callable(items) else items)
    if not data:
        return False
    connection.execute(
        _INSERT_OUTBOX,
        {
            "event_type": event_type,
            "occurred_at": occurred_at or utcnow(),
            "items": json.dumps(data, separators=(",", ":"), default=str),
        },
    )
    wake_after_commit(session)
    return True


def wake_after_commit(session: Session) -> None:
    """This process's sender looks at the outbox as soon as the transaction commits."""
    session.info[_WAKE] = True


_wake_callbacks: list[Callable[[], None]] = []


def on_commit_wake(callback: Callable[[], None]) -> Callable[[], None]:
    """Call `callback` after every commit that announced something; returns the remover."""
    _wake_callbacks.append(callback)
    return lambda: _wake_callbacks.remove(callback) if callback in _wake_callbacks else None


def wake_senders() -> None:
    for callback in list(_wake_callbacks):
        callback()


@event.listens_for(Session, "after_commit")
def _wake_after_commit(session: Session) -> None:
    if session.info.pop(_WAKE, False):
        wake_senders()


@event.listens_for(Session, "after_rollback")
def _nothing_to_wake(session: Session) -> None:
    session.info.pop(_WAKE, None)
