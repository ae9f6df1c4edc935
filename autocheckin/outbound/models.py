"""What outbound webhooks keep: subscriptions, the outbox of announced changes, deliveries
and every attempt at one."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from autocheckin.database import JSONValue, UTCDateTime
from autocheckin.extensions import db
from autocheckin.times import utcnow

ATTENDANCE_MARKED = "attendance.marked"
ATTENDANCE_UPDATED = "attendance.updated"  # a correction: before, after, actor, reason
SESSION_CREATED = "session.created"
SESSION_UPDATED = "session.updated"
STUDENT_ENROLLED = "student.enrolled"
ALERT_CREATED = "alert.created"  # absence alerts (`alerts`)
FRAUD_DETECTED = "fraud.detected"  # a new finding (`findings.detector`)
EVENT_TYPES = (
    ATTENDANCE_MARKED,
    ATTENDANCE_UPDATED,
    SESSION_CREATED,
    SESSION_UPDATED,
    STUDENT_ENROLLED,
    ALERT_CREATED,
    FRAUD_DETECTED,
)
PING = "ping"  # POST /api/webhooks/{id}/test; never subscribed to

PENDING, SUCCEEDED, FAILED, CANCELLED = "pending", "succeeded", "failed", "cancelled"
DELIVERY_STATUSES = (PENDING, SUCCEEDED, FAILED, CANCELLED)


class Subscription(db.Model):
    """A receiver of one event type. Deleting one only marks it deleted: its deliveries keep
    their history, and an outbox row written just before the delete still finds it."""

    __tablename__ = "outbound_subscriptions"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    url: Mapped[str] = mapped_column(String(2048))
    event_type: Mapped[str] = mapped_column(String(40), index=True)
    # Needed in the clear to sign; never rendered after the create answer.
    secret: Mapped[str] = mapped_column(String(255))
    headers: Mapped[dict[str, str]] = mapped_column(JSONValue, default=dict)
    is_active: Mapped[bool] = mapped_column(default=True)
    retry_count: Mapped[int] = mapped_column(default=7)  # subscriptions.DEFAULT_RETRY_COUNT
    timeout_seconds: Mapped[float] = mapped_column(default=10.0)
    consecutive_failures: Mapped[int] = mapped_column(default=0)
    disabled_reason: Mapped[str | None] = mapped_column(String(300))
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Raised by every write: the sum over the table tells each process's cache it is stale.
    revision: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Who made it (`subscriptions.Caller.principal`): "checkout_key", "api_key:<id>" or
    # "account:<id>"; None for those made before migration 0014.
    created_by: Mapped[str | None] = mapped_column(String(64))


class OutboxEntry(db.Model):
    """Changes of one kind announced by one transaction, written in that transaction.

    One row however many check-ins a batch recorded; the sender fans it out into one
    delivery per item and subscription, and deletes it, in one transaction of its own.
    """

    __tablename__ = "outbound_outbox"
    # Deleting a row is how a sender takes it, so an id must never come back: without
    # AUTOINCREMENT, SQLite gives an emptied table's next row the id of the one just taken,
    # and a sender that read the old row would take the new one with the old one's items.
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(primary_key=True)
    event_type: Mapped[str] = mapped_column(String(40))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # A JSON array of the `data` objects, encoded once on the hot path.
    items: Mapped[str] = mapped_column(Text)


class Delivery(db.Model):
    """One event for one subscription: the exact body, its webhook-id, where it stands."""

    __tablename__ = "outbound_deliveries"
    __table_args__ = (
        Index("ix_outbound_deliveries_status_next_attempt_at", "status", "next_attempt_at"),
        Index("ix_outbound_deliveries_subscription_id_id", "subscription_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    subscription_id: Mapped[int] = mapped_column(
        ForeignKey("outbound_subscriptions.id", ondelete="CASCADE")
    )
    # The Standard Webhooks `webhook-id`: the same on every attempt, what receivers dedupe on.
    message_id: Mapped[str] = mapped_column(String(40), unique=True)
    event_type: Mapped[str] = mapped_column(String(40))
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default=PENDING)
    attempts: Mapped[int] = mapped_column(default=0)
    max_attempts: Mapped[int] = mapped_column(default=4)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # A sender's claim: nobody else sends this delivery until `claimed_until`.
    claimed_by: Mapped[str | None] = mapped_column(String(200))
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_status_code: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)


class DeliveryAttempt(db.Model):
    """One HTTP attempt at a delivery, as the receiver answered it."""

    __tablename__ = "outbound_attempts"

    id: Mapped[int] = mapped_column(primary_key=True)
    delivery_id: Mapped[int] = mapped_column(
        ForeignKey("outbound_deliveries.id", ondelete="CASCADE"), index=True
    )
    attempt: Mapped[int]
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    duration_ms: Mapped[float]
    status_code: Mapped[int | None]
    error: Mapped[str | None] = mapped_column(Text)
    # The first KB of the answer, decoded leniently.
    response_body: Mapped[str | None] = mapped_column(Text)
    sender: Mapped[str] = mapped_column(String(200))
