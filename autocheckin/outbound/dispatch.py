"""The sender's side of the outbox: one write transaction records finished attempts, fans
new outbox rows out into deliveries (one per item and active subscription, each with its
own `webhook-id`), and claims due deliveries.

Claims are `UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP LOCKED) RETURNING`, so
concurrent senders on PostgreSQL skip each other's rows; on SQLite the same statement runs
under the write lock (`BEGIN IMMEDIATE`, the writer gate), which serializes claimers. A
claim lasts OUTBOUND_CLAIM_LEASE (10 s) and its holder renews it in every transaction
while it holds it (one at least every poll): a sender that dies leaves claims that expire
within the lease, and those deliveries are sent again with the same `webhook-id`. A result
is stored only by the claim's holder, so a late answer never overwrites what another
sender recorded since.

Only deliveries of an active subscription are due. A disabled one keeps its deliveries
pending; `recover` offers them again, with those that failed for good, when it is turned
back on.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, bindparam, delete, exists, insert, or_, select, update

from autocheckin.database import write_transaction
from autocheckin.extensions import db
from autocheckin.outbound.models import (
    CANCELLED,
    FAILED,
    PENDING,
    PING,
    SUCCEEDED,
    Delivery,
    DeliveryAttempt,
)
from autocheckin.outbound.outbox import OUTBOX, SUBSCRIPTIONS, forget_subscribed_types
from autocheckin.times import iso, utcnow

DELIVERIES = Delivery.__table__
ATTEMPTS = DeliveryAttempt.__table__
# The default claim lease (OUTBOUND_CLAIM_LEASE); the holder renews it every poll.
CLAIM_SECONDS = 10.0
RETRY_AFTER_CAP = timedelta(hours=24)
FAN_OUT_ROWS = 100
# A transaction fans out at most about this many deliveries (a 1,000-item batch is one row):
# the write lock is held while they are inserted.
FAN_OUT_DELIVERIES = 2000


@dataclass(frozen=True)
class Claimed:
    """A delivery this sender may now attempt, with what it needs from its subscription."""

    delivery_id: int
    subscription_id: int
    message_id: str
    event_type: str
    body: str
    attempt: int  # the number of the attempt about to be made, from 1
    max_attempts: int
    url: str
    secret: str
    headers: dict[str, str]
    timeout_seconds: float


SUCCESS, GONE, FAILURE = "success", "gone", "failure"


@dataclass(frozen=True)
class AttemptResult:
    """What one attempt came to; `outcome` is SUCCESS (2xx), GONE (410) or FAILURE."""

    delivery_id: int
    subscription_id: int
    attempt: int
    max_attempts: int
    started_at: datetime
    duration_ms: float
    outcome: str
    status_code: int | None = None
    error: str | None = None
    response_body: str | None = None
    retry_after: float | None = None


@dataclass(frozen=True)
class Backoff:
    """OUTBOUND_RETRY_SCHEDULE: the wait before each retry, the last step repeating."""

    schedule: tuple[float, ...]
    disable_after: int

    def delay(self, attempts_made: int, retry_after: float | None) -> timedelta:
        """The schedule's step, up to a fifth longer for jitter (never shorter, so the
        schedule's span is kept); at least what Retry-After asked."""
        step = self.schedule[min(max(0, attempts_made - 1), len(self.schedule) - 1)]
        seconds = step * random.uniform(1.0, 1.2)  # noqa: S311 - jitter, not a secret
        if retry_after is not None:
            seconds = max(seconds, min(retry_after, RETRY_AFTER_CAP.total_seconds()))
        return timedelta(seconds=seconds)


@dataclass
class Exchanged:
    claimed: list[Claimed] = field(default_factory=list)
    fanned_out: int = 0
    disabled: list[int] = field(default_factory=list)


def has_work(*, now: datetime | None = None) -> bool:
    """A read, no lock: is there an outbox row to fan out or a delivery due?"""
    now = now or utcnow()
    result = bool(db.session.scalar(select(or_(exists(select(OUTBOX.c.id)), exists(_due(now))))))
    db.session.commit()  # end the read transaction: SQLite would keep its snapshot
    return result


_ACTIVE_SUBSCRIPTIONS = select(SUBSCRIPTIONS.c.id).where(
    SUBSCRIPTIONS.c.is_active.is_(True), SUBSCRIPTIONS.c.deleted_at.is_(None)
)


def _due(now: datetime) -> Any:
    return select(DELIVERIES.c.id).where(
        DELIVERIES.c.status == PENDING,
        DELIVERIES.c.next_attempt_at <= now,
        or_(DELIVERIES.c.claimed_until.is_(None), DELIVERIES.c.claimed_until < now),
        DELIVERIES.c.subscription_id.in_(_ACTIVE_SUBSCRIPTIONS),
    )


def exchange(
    results: list[AttemptResult],
    *,
    holder: str,
    claim_limit: int,
    busy_subscriptions: set[int],
    backoff: Backoff,
    now: datetime | None = None,
    renew: list[int] | None = None,
    lease_seconds: float = CLAIM_SECONDS,
) -> Exchanged:
    """One write transaction: record `results`, renew the claims still `renew`ed (held,
    not finished), fan the outbox out, claim due deliveries.

    The fan-out's bodies and ids are built beforehand, outside the write lock; inside it,
    deleting an outbox row is what makes its deliveries ours (a row another sender deleted
    first is skipped).
    """
    now = now or utcnow()
    exchanged = Exchanged()
    fanned = _prepare_fan_out(now)
    with write_transaction() as session:
        connection = session.connection()
        exchanged.disabled = _record(connection, results, holder=holder, backoff=backoff, now=now)
        if renew:
            connection.execute(
                update(DELIVERIES)
                .where(DELIVERIES.c.id.in_(renew), DELIVERIES.c.claimed_by == holder)
                .values(claimed_until=now + timedelta(seconds=lease_seconds))
            )
        exchanged.fanned_out = _apply_fan_out(connection, fanned)
        if claim_limit > 0:
            exchanged.claimed = _claim(
                connection,
                holder,
                claim_limit,
                busy_subscriptions,
                now=now,
                lease=timedelta(seconds=lease_seconds),
            )
    if exchanged.disabled:
        forget_subscribed_types(db.engine)
    return exchanged


def _prepare_fan_out(now: datetime) -> list[tuple[int, list[dict[str, Any]]]]:
    """(outbox row id, its deliveries) for the oldest outbox rows; a read, no lock."""
    rows = db.session.execute(
        select(OUTBOX.c.id, OUTBOX.c.event_type, OUTBOX.c.occurred_at, OUTBOX.c["items"])
        .order_by(OUTBOX.c.id)
        .limit(FAN_OUT_ROWS)
    ).all()
    subscribers: dict[str, list[Any]] = {}
    if rows:
        for subscription in db.session.execute(
            select(
                SUBSCRIPTIONS.c.id, SUBSCRIPTIONS.c.event_type, SUBSCRIPTIONS.c.retry_count
            ).where(
                SUBSCRIPTIONS.c.event_type.in_({row.event_type for row in rows}),
                SUBSCRIPTIONS.c.is_active.is_(True),
                SUBSCRIPTIONS.c.deleted_at.is_(None),
            )
        ):
            subscribers.setdefault(subscription.event_type, []).append(subscription)
    db.session.commit()  # end the read: the write transaction starts afresh
    fanned, count = [], 0
    for row in rows:
        if count >= FAN_OUT_DELIVERIES:
            break
        deliveries = []
        for data in json.loads(row._mapping["items"]):
            body = envelope(row.event_type, row.occurred_at, data)
            deliveries.extend(
                new_delivery(subscription.id, row.event_type, body, subscription.retry_count, now)
                for subscription in subscribers.get(row.event_type, [])
            )
        fanned.append((row.id, deliveries))
        count += len(deliveries)
    return fanned


def _apply_fan_out(connection: Connection, fanned: list[tuple[int, list[dict[str, Any]]]]) -> int:
    if not fanned:
        return 0
    taken = set(
        connection.execute(
            delete(OUTBOX)
            .where(OUTBOX.c.id.in_([outbox_id for outbox_id, _ in fanned]))
            .returning(OUTBOX.c.id)
        ).scalars()
    )
    deliveries = [delivery for outbox_id, made in fanned if outbox_id in taken for delivery in made]
    if deliveries:
        connection.execute(insert(DELIVERIES), deliveries)
    return len(deliveries)


def envelope(event_type: str, occurred_at: datetime, data: Mapping[str, Any]) -> str:
    """The body every attempt sends, byte for byte: {"event_type", "timestamp", "data"}."""
    return json.dumps(
        {"event_type": event_type, "timestamp": iso(occurred_at), "data": data},
        separators=(",", ":"),
    )


def new_delivery(
    subscription_id: int, event_type: str, body: str, retry_count: int, now: datetime
) -> dict[str, Any]:
    return {
        "subscription_id": subscription_id,
        "message_id": f"msg_{uuid.uuid4().hex}",
        "event_type": event_type,
        "body": body,
        "status": PENDING,
        "attempts": 0,
        "max_attempts": 1 + retry_count,
        "next_attempt_at": now,
        "created_at": now,
    }


def _claim(
    connection: Connection,
    holder: str,
    limit: int,
    busy: set[int],
    *,
    now: datetime,
    lease: timedelta,
) -> list[Claimed]:
    due = _due(now).order_by(DELIVERIES.c.next_attempt_at, DELIVERIES.c.id).limit(limit)
    if busy:
        due = due.where(DELIVERIES.c.subscription_id.not_in(busy))
    rows = connection.execute(
        update(DELIVERIES)
        .where(DELIVERIES.c.id.in_(due.with_for_update(skip_locked=True).scalar_subquery()))
        .values(claimed_by=holder, claimed_until=now + lease)
        .returning(
            DELIVERIES.c.id,
            DELIVERIES.c.subscription_id,
            DELIVERIES.c.message_id,
            DELIVERIES.c.event_type,
            DELIVERIES.c.body,
            DELIVERIES.c.attempts,
            DELIVERIES.c.max_attempts,
        )
    ).all()
    if not rows:
        return []
    subscriptions = {
        row.id: row
        for row in connection.execute(
            select(
                SUBSCRIPTIONS.c.id,
                SUBSCRIPTIONS.c.url,
                SUBSCRIPTIONS.c.secret,
                SUBSCRIPTIONS.c.headers,
                SUBSCRIPTIONS.c.timeout_seconds,
            ).where(
                SUBSCRIPTIONS.c.id.in_({row.subscription_id for row in rows}),
                SUBSCRIPTIONS.c.is_active.is_(True),
                SUBSCRIPTIONS.c.deleted_at.is_(None),
            )
        )
    }
    orphaned = [row.id for row in rows if row.subscription_id not in subscriptions]
    if orphaned:
        # Their subscription was turned off as they were claimed: held for when it is
        # turned back on (a deleted one's were cancelled with it, and stay so).
        connection.execute(
            update(DELIVERIES)
            .where(DELIVERIES.c.id.in_(orphaned), DELIVERIES.c.claimed_by == holder)
            .values(claimed_by=None, claimed_until=None)
        )
    claimed = []
    for row in sorted(rows, key=lambda row: row.id):
        subscription = subscriptions.get(row.subscription_id)
        if subscription is None:
            continue
        claimed.append(
            Claimed(
                delivery_id=row.id,
                subscription_id=row.subscription_id,
                message_id=row.message_id,
                event_type=row.event_type,
                body=row.body,
                attempt=row.attempts + 1,
                max_attempts=row.max_attempts,
                url=subscription.url,
                secret=subscription.secret,
                headers=dict(subscription.headers or {}),
                timeout_seconds=subscription.timeout_seconds,
            )
        )
    return claimed


def release(delivery_ids: list[int], *, holder: str) -> None:
    """Give claims back unattempted (a sender stopping with claims it never started)."""
    if not delivery_ids:
        return
    with write_transaction() as session:
        session.execute(
            update(DELIVERIES)
            .where(DELIVERIES.c.id.in_(delivery_ids), DELIVERIES.c.claimed_by == holder)
            .values(claimed_by=None, claimed_until=None)
        )


_MINE = (
    DELIVERIES.c.id == bindparam("b_id"),
    DELIVERIES.c.claimed_by == bindparam("b_holder"),
    DELIVERIES.c.status == PENDING,
)
_OUTCOME = {
    "attempts": bindparam("b_attempts"),
    "last_status_code": bindparam("b_status_code"),
    "last_error": bindparam("b_error"),
    "claimed_by": None,
    "claimed_until": None,
}
_SUCCEEDED = (
    update(DELIVERIES)
    .where(*_MINE)
    .values(status=SUCCEEDED, completed_at=bindparam("b_now"), **_OUTCOME)
)
_FAILED = (
    update(DELIVERIES)
    .where(*_MINE)
    .values(status=FAILED, completed_at=bindparam("b_now"), **_OUTCOME)
)
_RETRY = update(DELIVERIES).where(*_MINE).values(next_attempt_at=bindparam("b_next"), **_OUTCOME)


def _record(
    connection: Connection,
    results: list[AttemptResult],
    *,
    holder: str,
    backoff: Backoff,
    now: datetime,
) -> list[int]:
    """Store attempts and move their deliveries on, a statement for many where possible;
    returns the subscriptions this disabled. Only the claim's holder moves a delivery."""
    if not results:
        return []
    connection.execute(
        insert(ATTEMPTS),
        [
            {
                "delivery_id": result.delivery_id,
                "attempt": result.attempt,
                "started_at": result.started_at,
                "duration_ms": result.duration_ms,
                "status_code": result.status_code,
                "error": result.error,
                "response_body": result.response_body,
                "sender": holder,
            }
            for result in results
        ],
    )

    def params(result: AttemptResult, **extra: Any) -> dict[str, Any]:
        return {
            "b_id": result.delivery_id,
            "b_holder": holder,
            "b_attempts": result.attempt,
            "b_status_code": result.status_code,
            "b_error": result.error,
            **extra,
        }

    succeeded = [result for result in results if result.outcome == SUCCESS]
    if succeeded:
        connection.execute(_SUCCEEDED, [params(result, b_now=now) for result in succeeded])
        connection.execute(
            update(SUBSCRIPTIONS)
            .where(
                SUBSCRIPTIONS.c.id.in_({result.subscription_id for result in succeeded}),
                SUBSCRIPTIONS.c.consecutive_failures != 0,
            )
            .values(consecutive_failures=0)
        )
    retried = [
        result
        for result in results
        if result.outcome == FAILURE and result.attempt < result.max_attempts
    ]
    if retried:
        connection.execute(
            _RETRY,
            [
                params(result, b_next=now + backoff.delay(result.attempt, result.retry_after))
                for result in retried
            ],
        )
    moved_on = {result.delivery_id for result in succeeded + retried}
    disabled = []
    for result in results:
        if result.delivery_id not in moved_on:
            if _give_up(connection, result, params(result, b_now=now), backoff, now):
                disabled.append(result.subscription_id)
    return disabled


def _give_up(
    connection: Connection,
    result: AttemptResult,
    params: dict[str, Any],
    backoff: Backoff,
    now: datetime,
) -> bool:
    """A delivery failed for good; True when that disabled its subscription (410, or
    OUTBOUND_DISABLE_AFTER failed deliveries in a row)."""
    if not connection.execute(_FAILED, params).rowcount:
        return False
    if result.outcome == GONE:
        reason = "the receiver answered 410 Gone"
    else:
        failures = connection.execute(
            update(SUBSCRIPTIONS)
            .where(SUBSCRIPTIONS.c.id == result.subscription_id)
            .values(consecutive_failures=SUBSCRIPTIONS.c.consecutive_failures + 1)
            .returning(SUBSCRIPTIONS.c.consecutive_failures)
        ).scalar_one()
        if failures < backoff.disable_after:
            return False
        reason = f"{failures} deliveries in a row failed"
    return disable(connection, result.subscription_id, reason, now)


def disable(connection: Connection, subscription_id: int, reason: str, now: datetime) -> bool:
    """Mark a subscription inactive with the reason; its pending deliveries are held (none
    is due while it is off) for `recover`."""
    changed = connection.execute(
        update(SUBSCRIPTIONS)
        .where(SUBSCRIPTIONS.c.id == subscription_id, SUBSCRIPTIONS.c.is_active.is_(True))
        .values(
            is_active=False,
            disabled_reason=reason,
            disabled_at=now,
            updated_at=now,
            revision=SUBSCRIPTIONS.c.revision + 1,
        )
    ).rowcount
    return bool(changed)


def recover(
    connection: Connection,
    subscription_id: int,
    *,
    retry_count: int,
    since: datetime,
    now: datetime,
) -> int:
    """A subscription turned back on: every delivery made since `since` (the recover
    window) that it did not deliver — held while it was off, or failed for good — is due
    now with a fresh set of retries; held ones older than that are cancelled. Returns how
    many are offered again."""
    mine = DELIVERIES.c.subscription_id == subscription_id
    connection.execute(
        update(DELIVERIES)
        .where(mine, DELIVERIES.c.status == PENDING, DELIVERIES.c.created_at < since)
        .values(
            status=CANCELLED,
            completed_at=now,
            last_error="cancelled: older than OUTBOUND_RECOVER_WINDOW when turned back on",
            claimed_by=None,
            claimed_until=None,
        )
    )
    return connection.execute(
        update(DELIVERIES)
        .where(
            mine,
            DELIVERIES.c.status.in_((PENDING, FAILED)),
            DELIVERIES.c.created_at >= since,
            DELIVERIES.c.event_type != PING,
        )
        .values(
            status=PENDING,
            next_attempt_at=now,
            max_attempts=DELIVERIES.c.attempts + 1 + retry_count,
            completed_at=None,
            claimed_by=None,
            claimed_until=None,
        )
    ).rowcount


def cancel_pending(connection: Connection, subscription_id: int, why: str, now: datetime) -> None:
    connection.execute(
        update(DELIVERIES)
        .where(DELIVERIES.c.subscription_id == subscription_id, DELIVERIES.c.status == PENDING)
        .values(
            status=CANCELLED,
            completed_at=now,
            last_error=why,
            claimed_by=None,
            claimed_until=None,
        )
    )


def prune(*, retention: timedelta, now: datetime | None = None, batch: int = 5000) -> int:
    """Delete finished deliveries (and their attempts) older than `retention`."""
    cutoff = (now or utcnow()) - retention
    old = (
        select(DELIVERIES.c.id)
        .where(DELIVERIES.c.completed_at.is_not(None), DELIVERIES.c.completed_at < cutoff)
        .limit(batch)
    )
    with write_transaction() as session:
        ids = list(session.scalars(old))
        if ids:
            session.execute(delete(ATTEMPTS).where(ATTEMPTS.c.delivery_id.in_(ids)))
            session.execute(delete(DELIVERIES).where(DELIVERIES.c.id.in_(ids)))
    return len(ids)
