"""Receiving a webhook: signature, idempotency, the request log, the core, the answer.

Each request is committed to `webhook_requests` before it is processed, so nothing a
client sent is lost: a failure stays recorded with its error and can be replayed, and
a check-in naming an unknown student or event is kept as *unmatched* until it resolves.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError

from autocheckin.attendance.errors import Conflict, DomainError, Invalid, NotFound
from autocheckin.attendance.windows import CheckInRules
from autocheckin.database import write_transaction
from autocheckin.extensions import db
from autocheckin.times import iso, utcnow
from autocheckin.webhooks import payloads
from autocheckin.webhooks.commands import (
    RecordAttendance,
    Rendered,
    error_rendered,
    execute,
)
from autocheckin.webhooks.models import (
    FAILED,
    PROCESSING,
    RESOLVED,
    SUCCEEDED,
    UNMATCHED,
    WebhookRequest,
)
from autocheckin.webhooks.signatures import SignatureError, verify

log = logging.getLogger("autocheckin.webhooks")

SECURE_ENDPOINTS = frozenset({"attendance_secure"})
KEPT_HEADERS = (
    "content-type",
    "user-agent",
    "idempotency-key",
    "webhook-id",
    "webhook-timestamp",
    "x-request-id",
)
# A request still "processing" after this long is taken as abandoned (its worker died).
ABANDONED_AFTER = timedelta(minutes=2)
MAX_KEY_LENGTH = 255


@dataclass(frozen=True)
class WebhookOptions:
    secret: str | None
    require_signature: bool
    idempotency_ttl: timedelta
    rules: CheckInRules

    @classmethod
    def from_config(cls, config: Any) -> WebhookOptions:
        return cls(
            secret=config["WEBHOOK_SECRET"],
            require_signature=config["WEBHOOK_REQUIRE_SIGNATURE"],
            idempotency_ttl=timedelta(seconds=config["IDEMPOTENCY_TTL"]),
            rules=CheckInRules.from_config(config),
        )


@dataclass(frozen=True)
class Inbound:
    """A webhook request as it arrived: raw body bytes and lower-cased header names."""

    endpoint: str
    body: bytes
    headers: dict[str, str]
    received_at: datetime


def fingerprint(endpoint: str, body: bytes) -> str:
    return hashlib.sha256(endpoint.encode() + b"\n" + body).hexdigest()


def receive(inbound: Inbound, options: WebhookOptions) -> Rendered:
    """Authenticate, de-duplicate, record, process and answer one webhook request."""
    started = time.perf_counter()
    if inbound.endpoint in SECURE_ENDPOINTS or options.require_signature:
        if not options.secret:
            return _reject(
                inbound,
                error_rendered(
                    503,
                    "Webhook secret is not configured on this server",
                    "signature_not_configured",
                ),
                started,
            )
        try:
            verify(inbound.body, inbound.headers, options.secret, now=inbound.received_at)
        except SignatureError as error:
            return _reject(
                inbound, error_rendered(error.status, error.message, error.code), started
            )

    key = inbound.headers.get("idempotency-key") or inbound.headers.get("webhook-id") or None
    if key is not None and len(key) > MAX_KEY_LENGTH:
        return _reject(
            inbound,
            error_rendered(
                400, f"Idempotency-Key is longer than {MAX_KEY_LENGTH} characters", "invalid_key"
            ),
            started,
        )
    digest = fingerprint(inbound.endpoint, inbound.body)
    if key is not None:
        earlier = _idempotent_answer(key, digest, options, inbound.received_at)
        if earlier is not None:
            return earlier
    try:
        record = _start(inbound, key=key, digest=digest)
    except IntegrityError:
        # A concurrent request with the same key was recorded first.
        earlier = _idempotent_answer(key or "", digest, options, inbound.received_at)
        return earlier or error_rendered(
            409, "A request with this Idempotency-Key is being processed", "idempotency_in_progress"
        )
    rendered, outcome, source = _process(record, options)
    _finish(record, rendered, outcome, started, source=source)
    return rendered


def get_request(request_id: int) -> WebhookRequest:
    record = db.session.get(WebhookRequest, request_id)
    if record is None:
        raise NotFound(f"Webhook request {request_id} not found", code="request_not_found")
    return record


def replay(request_id: int, options: WebhookOptions) -> WebhookRequest:
    """Process a recorded request again, judged at the time it first arrived."""
    started = time.perf_counter()
    record = get_request(request_id)
    if not record.is_replayable:
        raise Conflict(
            f"Webhook request {request_id} failed authentication and cannot be replayed",
            code="not_replayable",
        )
    if record.outcome in (SUCCEEDED, RESOLVED):
        raise Conflict(f"Webhook request {request_id} already succeeded", code="already_succeeded")
    if record.outcome == PROCESSING and utcnow() - record.received_at < ABANDONED_AFTER:
        raise Conflict(f"Webhook request {request_id} is still being processed", code="in_progress")
    was_unmatched = record.outcome == UNMATCHED
    rendered, outcome, source = _process(record, options)
    if was_unmatched and outcome == SUCCEEDED:
        outcome = RESOLVED
    _finish(record, rendered, outcome, started, source=source, attempts=record.attempts + 1)
    return record


def resolve_unmatched(options: WebhookOptions) -> dict[str, int]:
    """Replay every unmatched check-in; those whose student and event now exist go through."""
    ids = db.session.scalars(
        select(WebhookRequest.id)
        .where(WebhookRequest.outcome == UNMATCHED)
        .order_by(WebhookRequest.id)
    ).all()
    tally = {"checked": len(ids), "resolved": 0, "unmatched": 0, "failed": 0}
    for request_id in ids:
        outcome = replay(request_id, options).outcome
        tally["resolved" if outcome == RESOLVED else outcome] += 1
    return tally


def list_requests(*, outcome: str | None = None, limit: int = 50) -> list[WebhookRequest]:
    """Newest first; `outcome="failed"` includes unmatched check-ins."""
    query = select(WebhookRequest).order_by(WebhookRequest.id.desc()).limit(limit)
    if outcome == FAILED:
        query = query.where(WebhookRequest.outcome.in_((FAILED, UNMATCHED)))
    elif outcome:
        query = query.where(WebhookRequest.outcome == outcome)
    return list(db.session.scalars(query))


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


def describe(record: WebhookRequest, *, body_chars: int = 4000) -> dict[str, Any]:
    """An operator's view of one record (the body as text, truncated)."""
    return {
        "id": record.id,
        "endpoint": record.endpoint,
        "received_at": iso(record.received_at),
        "source": record.source,
        "outcome": record.outcome,
        "status_code": record.status_code,
        "error": record.error,
        "error_code": record.error_code,
        "duration_ms": record.duration_ms,
        "attempts": record.attempts,
        "is_replayable": record.is_replayable,
        "idempotency_key": record.idempotency_key,
        "headers": record.headers,
        "body": record.body.decode("utf-8", errors="replace")[:body_chars],
        "completed_at": iso(record.completed_at),
    }


# --- steps ------------------------------------------------------------------------------------


def _idempotent_answer(
    key: str, digest: str, options: WebhookOptions, now: datetime
) -> Rendered | None:
    """The stored answer for a key seen before, a 409/422, or None to process afresh."""
    earlier = db.session.scalar(select(WebhookRequest).where(WebhookRequest.idempotency_key == key))
    if earlier is None:
        return None
    expired = earlier.received_at < now - options.idempotency_ttl
    abandoned = earlier.outcome == PROCESSING and earlier.received_at < now - ABANDONED_AFTER
    if expired or abandoned:
        with write_transaction() as session:
            session.execute(
                update(WebhookRequest)
                .where(WebhookRequest.id == earlier.id)
                .values(idempotency_key=None)
            )
        return None
    if earlier.body_sha256 != digest:
        return error_rendered(
            422,
            "Idempotency-Key was already used with a different request",
            "idempotency_key_reused",
        )
    if earlier.outcome == PROCESSING:
        return error_rendered(
            409, "A request with this Idempotency-Key is being processed", "idempotency_in_progress"
        )
    return Rendered(earlier.status_code or 200, earlier.response_body or {})


def _new_record(inbound: Inbound, **values: Any) -> WebhookRequest:
    return WebhookRequest(
        endpoint=inbound.endpoint,
        received_at=inbound.received_at,
        source=payloads.DEFAULT_SOURCES.get(inbound.endpoint),
        headers={name: inbound.headers[name] for name in KEPT_HEADERS if name in inbound.headers},
        body=inbound.body,
        body_sha256=fingerprint(inbound.endpoint, inbound.body),
        **values,
    )


def _start(inbound: Inbound, *, key: str | None, digest: str) -> WebhookRequest:
    with write_transaction() as session:
        record = _new_record(inbound, idempotency_key=key, outcome=PROCESSING)
        session.add(record)
    return record


def _reject(inbound: Inbound, rendered: Rendered, started: float) -> Rendered:
    """Record a request refused before processing (bad signature…); it is not replayable."""
    record = _new_record(inbound, outcome=FAILED, is_replayable=False)
    _finish(record, rendered, FAILED, started)
    return rendered


def record_refusal(inbound: Inbound, rendered: Rendered) -> None:
    """Record a request the HTTP layer refused unread (oversized body)."""
    _reject(inbound, rendered, time.perf_counter())


def _payload(body: bytes) -> Any:
    def refuse_constant(name: str) -> Any:
        raise ValueError(f"{name} is not valid JSON")

    try:
        payload = json.loads(body, parse_constant=refuse_constant)
    except (ValueError, UnicodeDecodeError, RecursionError) as error:
        raise Invalid("Invalid JSON payload", code="invalid_json", details=str(error)) from None
    if _has_nul(payload):
        raise Invalid(
            "Invalid JSON payload", code="invalid_json", details="strings may not contain NUL"
        )
    return payload


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(item) for item in value)
    return False


def _process(record: WebhookRequest, options: WebhookOptions) -> tuple[Rendered, str, str | None]:
    """Parse and run the recorded body: (answer, outcome, the payload's source)."""
    command = None
    try:
        payload = _payload(record.body)
        command = payloads.parse(record.endpoint, payload)
        rendered = execute(command, arrived_at=record.received_at, rules=options.rules)
    except DomainError as error:
        unmatched = isinstance(error, NotFound) and isinstance(command, RecordAttendance)
        return (
            error_rendered(error.status, error.message, error.code, error.details),
            UNMATCHED if unmatched else FAILED,
            command.source if command else None,
        )
    return rendered, SUCCEEDED, command.source


def _finish(
    record: WebhookRequest,
    rendered: Rendered,
    outcome: str,
    started: float,
    *,
    source: str | None = None,
    attempts: int | None = None,
) -> None:
    """Store the outcome (adding the record if it is new) and log one line for it."""
    duration_ms = round((time.perf_counter() - started) * 1000, 2)
    with write_transaction() as session:
        session.add(record)
        if source:
            record.source = source
        if attempts is not None:
            record.attempts = attempts
        record.outcome = outcome
        record.status_code = rendered.status
        record.response_body = rendered.body
        record.error = rendered.body.get("error")
        record.error_code = rendered.body.get("code") if rendered.status >= 400 else None
        record.duration_ms = duration_ms
        record.completed_at = utcnow()
    log.info(
        "webhook endpoint=%s source=%s outcome=%s status=%s ms=%.1f request_id=%s",
        record.endpoint,
        record.source,
        outcome,
        rendered.status,
        duration_ms,
        record.id,
    )
