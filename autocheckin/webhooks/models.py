"""The webhook request log: every request, recorded before it is processed."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, LargeBinary, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from autocheckin.database import JSONValue, UTCDateTime
from autocheckin.extensions import db
from autocheckin.times import utcnow

PROCESSING = "processing"
SUCCEEDED = "succeeded"
FAILED = "failed"
UNMATCHED = "unmatched"  # a check-in naming a student or event we do not know (yet)
RESOLVED = "resolved"  # an unmatched check-in that later went through
OUTCOMES = (PROCESSING, SUCCEEDED, FAILED, UNMATCHED, RESOLVED)
ACCEPTED = "status_code < 300"  # answered 2xx: the request took effect


class WebhookRequest(db.Model):
    """One inbound webhook request: what came in, and what became of it."""

    __tablename__ = "webhook_requests"
    __table_args__ = (
        Index("ix_webhook_requests_outcome_received_at", "outcome", "received_at"),
        Index(
            "uq_webhook_requests_accepted_signature",
            "signature_digest",
            unique=True,
            sqlite_where=text(ACCEPTED),
            postgresql_where=text(ACCEPTED),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    endpoint: Mapped[str] = mapped_column(String(40))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    source: Mapped[str | None] = mapped_column(String(100))
    # Who sent it (`ratelimits.client_address`): what the unknown-identifier rule counts by.
    client_address: Mapped[str | None] = mapped_column(String(100))
    headers: Mapped[dict[str, Any]] = mapped_column(JSONValue, default=dict)
    # The whole body, or for a request refused for its signature only the first KB of it.
    body: Mapped[bytes] = mapped_column(LargeBinary, default=b"")
    body_size: Mapped[int | None]
    body_sha256: Mapped[str] = mapped_column(String(64))
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    # sha256 of (endpoint, signed or not, key): a key planted on one door binds no other.
    idempotency_scope: Mapped[str | None] = mapped_column(String(64), unique=True)
    # sha256 of what a valid signature signed (endpoint, body, and Standard Webhooks' id and
    # timestamp); one success per digest, so a captured signed request cannot run twice.
    signature_digest: Mapped[str | None] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(20), default=PROCESSING)
    status_code: Mapped[int | None]
    error: Mapped[str | None] = mapped_column(Text)
    error_code: Mapped[str | None] = mapped_column(String(50))
    response_body: Mapped[dict[str, Any] | None] = mapped_column(JSONValue)
    duration_ms: Mapped[float | None]
    attempts: Mapped[int] = mapped_column(default=1)
    is_replayable: Mapped[bool] = mapped_column(default=True)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
