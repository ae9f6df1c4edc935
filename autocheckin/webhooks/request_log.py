"""The webhook request log: every request, its body and its outcome, for operators.

A record is written in the same transaction as what its request changed (see `receive`),
so a stored outcome always matches the stored data. Operators list, inspect and replay
records; `prune` ages them out.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import bindparam, delete, func, insert, select, update
from sqlalchemy.orm import Session

from autocheckin.attendance.errors import NotFound
from autocheckin.database import write_transaction
from autocheckin.extensions import db
from autocheckin.times import utcnow
from autocheckin.webhooks.commands import Rendered
from autocheckin.webhooks.models import (
    FAILED,
    PROCESSING,
    RESOLVED,
    SUCCEEDED,
    UNMATCHED,
    WebhookRequest,
)

KEPT_HEADERS = (
    "content-type",
    "user-agent",
    "idempotency-key",
    "webhook-id",
    "webhook-timestamp",
    "x-request-id",
)
TABLE = WebhookRequest.__table__
# Built once: every webhook request runs it.
_INSERT_RETURNING_ID = insert(TABLE).returning(TABLE.c.id)


REFUSED_BODY_BYTES = 1024  # kept of a body refused for its signature: enough to recognise it
MAX_HEADER_CHARS = 256  # kept of each header value


def fingerprint(endpoint: str, body: bytes) -> str:
    """What makes two requests "the same" for idempotency: endpoint and exact bytes."""
    return hashlib.sha256(endpoint.encode() + b"\n" + body).hexdigest()


def idempotency_scope(endpoint: str, key: str, *, signer: str | None) -> str:
    """A key binds only its own door: the endpoint, and the secret that signed the request
    (a key planted by an unsigned caller never answers for a signed one)."""
    signed_by = "open"
    if signer is not None:
        signed_by = "signed-" + hashlib.sha256(signer.encode()).hexdigest()[:16]
    return hashlib.sha256(f"{endpoint}\n{signed_by}\n{key}".encode()).hexdigest()


def signature_digest(endpoint: str, body_sha256: str, headers: dict[str, str]) -> str:
    """What a valid signature vouched for: the endpoint, the exact body and, for Standard
    Webhooks, the message id and the timestamp as the signature read it (an integer: a
    rewritten "0017…" signs the same and must not look new)."""
    signed = [endpoint, body_sha256]
    if headers.get("webhook-signature"):
        signed += [headers.get("webhook-id", ""), str(int(headers["webhook-timestamp"].strip()))]
    return hashlib.sha256("\n".join(signed).encode()).hexdigest()


@dataclass(frozen=True)
class Entry:
    """What the log keeps of an inbound request, whatever becomes of it."""

    endpoint: str
    received_at: datetime
    headers: dict[str, str]
    body: bytes
    body_sha256: str
    idempotency_key: str | None = None
    idempotency_scope: str | None = None
    signature_digest: str | None = None
    client_address: str | None = None


def _outcome_values(rendered: Rendered, outcome: str, source: str | None, duration_ms: float):
    return {
        "outcome": outcome,
        "source": source,
        "status_code": rendered.status,
        "response_body": rendered.body,
        "error": rendered.body.get("error"),
        "error_code": rendered.body.get("code") if rendered.status >= 400 else None,
        "duration_ms": duration_ms,
        "completed_at": utcnow(),
    }


def write(
    session: Session,
    entry: Entry,
    rendered: Rendered,
    outcome: str,
    *,
    source: str | None,
    duration_ms: float,
    is_replayable: bool = True,
) -> int:
    """Insert the record of a request with its outcome; returns its id (the `request_id`).

    A request refused before processing keeps only the first KB of its body: an anonymous
    caller cannot fill the log with megabytes of garbage.
    """
    values = {
        "endpoint": entry.endpoint,
        "received_at": entry.received_at,
        "headers": {
            name: entry.headers[name][:MAX_HEADER_CHARS]
            for name in KEPT_HEADERS
            if name in entry.headers
        },
        "body": entry.body if is_replayable else entry.body[:REFUSED_BODY_BYTES],
        "body_size": len(entry.body),
        "body_sha256": entry.body_sha256,
        "idempotency_key": entry.idempotency_key,
        "idempotency_scope": entry.idempotency_scope,
        "signature_digest": entry.signature_digest,
        "client_address": entry.client_address,
        "attempts": 1,
        "is_replayable": is_replayable,
        **_outcome_values(rendered, outcome, source, duration_ms),
    }
    return session.connection().execute(_INSERT_RETURNING_ID, values).scalar_one()


def settle(
    session: Session,
    record_id: int,
    rendered: Rendered,
    outcome: str,
    *,
    source: str | None,
    duration_ms: float,
    attempts: int,
) -> bool:
    """Store the outcome of a replay of a record seen with `attempts`; False when another
    replay got there first (the caller rolls back)."""
    values = _outcome_values(rendered, outcome, source, duration_ms)
    if source is None:
        del values["source"]
    result = session.execute(
        update(TABLE)
        .where(TABLE.c.id == record_id, TABLE.c.attempts == attempts)
        .values(attempts=attempts + 1, **values)
    )
    return result.rowcount == 1


def find_by_scope(scope: str) -> WebhookRequest | None:
    return db.session.scalar(
        select(WebhookRequest).where(WebhookRequest.idempotency_scope == scope)
    )


# Built once: every signed request asks it.
_ACCEPTED_SIGNATURE = select(TABLE.c.id).where(
    TABLE.c.signature_digest == bindparam("digest"), TABLE.c.status_code < 300
)


def find_accepted_signature(digest: str) -> WebhookRequest | None:
    """The earlier request that took effect with exactly this signed content, if any."""
    request_id = db.session.connection().execute(_ACCEPTED_SIGNATURE, {"digest": digest}).scalar()
    return None if request_id is None else db.session.get(WebhookRequest, request_id)


def forget_key(record_id: int) -> None:
    """Release an expired key so a new request may use it (the record keeps it for display)."""
    with write_transaction() as session:
        session.execute(update(TABLE).where(TABLE.c.id == record_id).values(idempotency_scope=None))


def get_request(request_id: int) -> WebhookRequest:
    record = db.session.get(WebhookRequest, request_id)
    if record is None:
        raise NotFound(f"Webhook request {request_id} not found", code="request_not_found")
    return record


def list_requests(*, outcome: str | None = None, limit: int = 50) -> list[WebhookRequest]:
    """Newest first; `outcome="failed"` includes unmatched check-ins."""
    query = select(WebhookRequest).order_by(WebhookRequest.id.desc()).limit(limit)
    if outcome == FAILED:
        query = query.where(WebhookRequest.outcome.in_((FAILED, UNMATCHED)))
    elif outcome:
        query = query.where(WebhookRequest.outcome == outcome)
    return list(db.session.scalars(query))


def unmatched_count() -> int:
    return (
        db.session.scalar(
            select(func.count())
            .select_from(WebhookRequest)
            .where(WebhookRequest.outcome == UNMATCHED)
        )
        or 0
    )


class UnmatchedBacklog:
    """The check-ins waiting for their student or event, for /metrics: read at scrape time
    from the log (a fact stored once, not a counter); `webhooks.init_app` registers it."""

    def collect(self):
        family = GaugeMetricFamily(
            "autocheckin_unmatched_checkins", "Check-ins waiting for their student or event"
        )
        family.add_metric([], unmatched_count())
        yield family


def unmatched_ids() -> list[int]:
    return list(
        db.session.scalars(
            select(WebhookRequest.id)
            .where(WebhookRequest.outcome == UNMATCHED)
            .order_by(WebhookRequest.id)
        )
    )


def prune(*, retention: timedelta, now: datetime | None = None) -> int:
    """Delete log records older than `retention`; returns how many went."""
    cutoff = (now or utcnow()) - retention
    with write_transaction() as session:
        result = session.execute(delete(WebhookRequest).where(WebhookRequest.received_at < cutoff))
    return result.rowcount or 0


def stats(*, endpoints: tuple[str, ...], since: datetime) -> dict[str, int]:
    """Received / succeeded / failed counts since `since` for the given endpoints."""
    rows = db.session.execute(
        select(WebhookRequest.outcome, func.count())
        .where(WebhookRequest.endpoint.in_(endpoints), WebhookRequest.received_at >= since)
        .group_by(WebhookRequest.outcome)
    ).all()
    by_outcome = dict(rows)
    return {
        "received": sum(by_outcome.values()),
        "succeeded": by_outcome.get(SUCCEEDED, 0) + by_outcome.get(RESOLVED, 0),
        "failed": by_outcome.get(FAILED, 0) + by_outcome.get(UNMATCHED, 0),
        "processing": by_outcome.get(PROCESSING, 0),
    }
