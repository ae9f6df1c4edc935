"""Receiving a webhook: signature, idempotency, parsing, the core, and the request's record.

What a request changes and the record of its outcome commit in one transaction, so they
cannot disagree: a crash before the commit leaves neither, the client saw no 2xx and
retries. A request that fails (bad signature, bad payload, a refusal of the core) commits
its record alone, with the error, and an operator can list and replay it; a check-in
naming an unknown student or event is kept as *unmatched* until it resolves.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from autocheckin import metrics
from autocheckin.attendance.errors import Conflict, DomainError, Invalid, NotFound
from autocheckin.attendance.windows import CheckInRules
from autocheckin.database import UNAVAILABLE_ERRORS, write_transaction
from autocheckin.errors import status_of
from autocheckin.extensions import db
from autocheckin.times import utcnow
from autocheckin.validation import MAX_JSON_DEPTH, field_with_control_character, json_problem
from autocheckin.webhooks import request_log
from autocheckin.webhooks.commands import (
    Command,
    RecordAttendance,
    Rendered,
    error_rendered,
    execute,
)
from autocheckin.webhooks.endpoints import ENDPOINTS, parse
from autocheckin.webhooks.models import (
    FAILED,
    PROCESSING,
    RESOLVED,
    SUCCEEDED,
    UNMATCHED,
    WebhookRequest,
)
from autocheckin.webhooks.request_log import Entry
from autocheckin.webhooks.signatures import LEGACY_HEADER_KEY, SignatureError, verify

log = logging.getLogger("autocheckin.webhooks")

# Records left "processing" by an older version count as abandoned after this long.
ABANDONED_AFTER = timedelta(minutes=2)
MAX_KEY_LENGTH = 255
Store = Callable[[Session, Rendered, str, str | None], int]


@dataclass(frozen=True)
class WebhookOptions:
    secret: str | None
    require_signature: bool
    idempotency_ttl: timedelta
    rules: CheckInRules

    @classmethod
    def from_config(cls, config: Any, *, rules: CheckInRules) -> WebhookOptions:
        return cls(
            secret=config["WEBHOOK_SECRET"],
            require_signature=config["WEBHOOK_REQUIRE_SIGNATURE"],
            idempotency_ttl=timedelta(seconds=config["IDEMPOTENCY_TTL"]),
            rules=rules,
        )


@dataclass(frozen=True)
class Inbound:
    """A webhook request as it arrived: raw body bytes and lower-cased header names."""

    endpoint: str
    body: bytes
    headers: dict[str, str]
    received_at: datetime
    request_id: str = ""  # the X-Request-ID the answer carries: names the request in history
    client_address: str | None = None  # `ratelimits.client_address()`: who sent it


def entry_for(inbound: Inbound) -> Entry:
    return Entry(
        endpoint=inbound.endpoint,
        received_at=inbound.received_at,
        headers=inbound.headers,
        body=inbound.body,
        body_sha256=request_log.fingerprint(inbound.endpoint, inbound.body),
        client_address=inbound.client_address,
    )


def receive(inbound: Inbound, options: WebhookOptions) -> Rendered:
    """Authenticate, de-duplicate, process and record one webhook request; the answer
    carries the record's id as `request_id`."""
    started = time.perf_counter()
    entry = entry_for(inbound)
    refusal, is_signed = _authenticate(inbound, options)
    if refusal is not None:
        return _record_alone(entry, refusal, started, is_replayable=False)
    if is_signed:
        # No look-up here: a replay that would take effect again collides with the original
        # on the accepted-signature index and is rolled back; one that fails (already
        # checked in) finds the original below. Either way it gets the original answer.
        digest = request_log.signature_digest(entry.endpoint, entry.body_sha256, inbound.headers)
        entry = replace(entry, signature_digest=digest)
    key = inbound.headers.get("idempotency-key") or inbound.headers.get("webhook-id") or None
    if key is not None:
        if len(key) > MAX_KEY_LENGTH:
            message = f"Idempotency-Key is longer than {MAX_KEY_LENGTH} characters"
            return _record_alone(entry, error_rendered(400, message, "invalid_key"), started)
        signer = options.secret if is_signed else None
        scope = request_log.idempotency_scope(entry.endpoint, key, signer=signer)
        entry = replace(entry, idempotency_key=key, idempotency_scope=scope)
        earlier = _idempotent_answer(entry, options)
        if earlier is not None:
            return earlier
    try:
        actor = f"webhook:{entry.endpoint}:{inbound.request_id or 'unnamed'}"
        rendered, request_id = _process_new(entry, options, started, actor)
    except IntegrityError:
        # A concurrent twin (same key, or same signed bytes) committed first: answer as it was.
        earlier = _twin_answer(entry, options)
        if earlier is None:
            _record_crash(entry, started)
            raise
        return earlier
    except Exception:
        _record_crash(entry, started)
        raise
    if rendered.status >= 300 and entry.signature_digest:
        # A twin of these signed bytes may have taken effect while this one failed for it
        # ("already checked in"): the answer is the original's, as for any replay.
        earlier = _replayed_answer(entry)
        if earlier is not None:
            return earlier
    return _with_id(rendered, request_id)


def _twin_answer(entry: Entry, options: WebhookOptions) -> Rendered | None:
    earlier = _replayed_answer(entry) if entry.signature_digest else None
    if earlier is None and entry.idempotency_scope:
        earlier = _idempotent_answer(entry, options)
    return earlier


def replay(request_id: int, options: WebhookOptions) -> WebhookRequest:
    """Process a recorded request again, judged at the time it first arrived."""
    started = time.perf_counter()
    record = request_log.get_request(request_id)
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
    seen_attempts = record.attempts

    def store(session: Session, rendered: Rendered, outcome: str, source: str | None) -> int:
        if was_unmatched and outcome == SUCCEEDED:
            outcome = RESOLVED
        if not request_log.settle(
            session,
            request_id,
            rendered,
            outcome,
            source=source,
            duration_ms=_elapsed_ms(started),
            attempts=seen_attempts,
        ):
            raise Conflict(
                f"Webhook request {request_id} was replayed by someone else just now",
                code="replay_conflict",
            )
        return request_id

    try:
        actor = f"webhook:{record.endpoint}:replay of request {request_id}"
        _run(record.endpoint, record.body, record.received_at, options, store, actor)
    except IntegrityError:
        # Its signed twin took effect first (the replay protection's unique index).
        raise Conflict(
            f"Webhook request {request_id}: the same signed request already took effect",
            code="replay_conflict",
        ) from None
    db.session.refresh(record)
    return record


def resolve_unmatched(options: WebhookOptions) -> dict[str, int]:
    """Replay every unmatched check-in; those whose student and event now exist go through."""
    ids = request_log.unmatched_ids()
    tally = {"checked": len(ids), "resolved": 0, "unmatched": 0, "failed": 0}
    for request_id in ids:
        outcome = replay(request_id, options).outcome
        tally["resolved" if outcome == RESOLVED else outcome] += 1
    return tally


def is_authentic(inbound: Inbound, options: WebhookOptions) -> bool:
    """Whether `receive` would let this request past its signature check."""
    refusal, _is_signed = _authenticate(inbound, options)
    return refusal is None


def record_refusal(inbound: Inbound, rendered: Rendered) -> Rendered:
    """Record a request the HTTP layer refused unread (an oversized body)."""
    return _record_alone(entry_for(inbound), rendered, time.perf_counter(), is_replayable=False)


# --- steps ------------------------------------------------------------------------------------


def _authenticate(inbound: Inbound, options: WebhookOptions) -> tuple[Rendered | None, bool]:
    """(None, whether it was signed) when the request may go on; else (the refusal, False).

    A signature is checked whenever one is sent and a secret is configured, required or not:
    a wrong signature is never ignored, and a right one earns replay protection.
    """
    is_always_signed = ENDPOINTS[inbound.endpoint].is_always_signed
    is_required = is_always_signed or options.require_signature
    carries_signature = bool(
        inbound.headers.get("webhook-signature") or inbound.headers.get(LEGACY_HEADER_KEY)
    )
    if not is_required and not (carries_signature and options.secret):
        return None, False
    if not options.secret:
        hint = "" if is_always_signed else " (or set WEBHOOK_REQUIRE_SIGNATURE=false to accept"
        hint += "" if is_always_signed else " unsigned webhooks, for a private network)"
        return error_rendered(
            503,
            f"Webhook secret is not configured on this server: set WEBHOOK_SECRET{hint}",
            "signature_not_configured",
        ), False
    try:
        verify(inbound.body, inbound.headers, options.secret, now=inbound.received_at)
    except SignatureError as error:
        message = error.message
        if error.code == "missing_signature" and not is_always_signed:
            message += " (this server requires signed webhooks: WEBHOOK_REQUIRE_SIGNATURE is true)"
        return error_rendered(status_of(error), message, error.code), False
    return None, True


def _replayed_answer(entry: Entry) -> Rendered | None:
    """The original answer when these exact signed contents already took effect."""
    earlier = request_log.find_accepted_signature(entry.signature_digest or "")
    if earlier is None:
        return None
    log.warning(
        "webhook endpoint=%s replay of signed request %s answered with its original outcome",
        entry.endpoint,
        earlier.id,
    )
    return _with_id(Rendered(earlier.status_code or 200, earlier.response_body or {}), earlier.id)


def _idempotent_answer(entry: Entry, options: WebhookOptions) -> Rendered | None:
    """The stored answer for a key seen before, a 409/422, or None to process afresh."""
    earlier = request_log.find_by_scope(entry.idempotency_scope or "")
    if earlier is None:
        return None
    now = entry.received_at
    expired = earlier.received_at < now - options.idempotency_ttl
    abandoned = earlier.outcome == PROCESSING and earlier.received_at < now - ABANDONED_AFTER
    if expired or abandoned:
        request_log.forget_key(earlier.id)
        return None
    if earlier.body_sha256 != entry.body_sha256:
        return error_rendered(
            422,
            "Idempotency-Key was already used with a different request",
            "idempotency_key_reused",
        )
    if earlier.outcome == PROCESSING:
        return error_rendered(
            409, "A request with this Idempotency-Key is being processed", "idempotency_in_progress"
        )
    return _with_id(Rendered(earlier.status_code or 200, earlier.response_body or {}), earlier.id)


def _payload(body: bytes) -> Any:
    def refuse_constant(name: str) -> Any:
        raise ValueError(f"{name} is not valid JSON")

    def finite(text: str) -> float:
        number = float(text)
        if not math.isfinite(number):
            raise ValueError(f"{text} is out of range")
        return number

    try:
        payload = json.loads(body, parse_constant=refuse_constant, parse_float=finite)
    except (ValueError, UnicodeDecodeError, RecursionError) as error:
        raise Invalid("Invalid JSON payload", code="invalid_json", details=str(error)) from None
    problem = json_problem(payload)
    if problem == "depth":
        raise Invalid(
            "Invalid JSON payload",
            code="invalid_json",
            details=f"nested deeper than {MAX_JSON_DEPTH} levels",
        )
    if problem == "nul":
        raise Invalid(
            "Invalid JSON payload", code="invalid_json", details="strings may not contain NUL"
        )
    if problem == "control":
        field = field_with_control_character(payload)
        raise Invalid(
            f"Invalid value for {field}: control characters are not allowed",
            code="invalid_field",
        )
    return payload


def _failure(error: DomainError, command: Command | None) -> tuple[Rendered, str]:
    """The answer and outcome for a refusal; an unknown student or event is unmatched."""
    rendered = error_rendered(status_of(error), error.message, error.code, error.details)
    is_unmatched = isinstance(error, NotFound) and isinstance(command, RecordAttendance)
    return rendered, UNMATCHED if is_unmatched else FAILED


def _run(
    endpoint: str,
    body: bytes,
    arrived_at: datetime,
    options: WebhookOptions,
    store: Store,
    actor: str,
) -> tuple[Rendered, str, str | None, int]:
    """Parse and run a body as `actor`; `store` writes its record inside the same transaction.

    A domain error rolls the command's changes back and stores the failure on its own.
    """
    command: Command | None = None
    source: str | None = None
    try:
        command = parse(endpoint, _payload(body))
        source = command.source
        with write_transaction() as session:
            rendered = execute(command, arrived_at=arrived_at, rules=options.rules, actor=actor)
            outcome = UNMATCHED if rendered.has_unmatched else SUCCEEDED
            return rendered, outcome, source, store(session, rendered, outcome, source)
    except DomainError as error:
        rendered, outcome = _failure(error, command)
    with write_transaction() as session:
        return rendered, outcome, source, store(session, rendered, outcome, source)


def _process_new(
    entry: Entry, options: WebhookOptions, started: float, actor: str
) -> tuple[Rendered, int]:
    default_source = ENDPOINTS[entry.endpoint].default_source

    def store(session: Session, rendered: Rendered, outcome: str, source: str | None) -> int:
        return request_log.write(
            session,
            entry,
            rendered,
            outcome,
            source=source or default_source,
            duration_ms=_elapsed_ms(started),
        )

    rendered, outcome, source, request_id = _run(
        entry.endpoint, entry.body, entry.received_at, options, store, actor
    )
    _log_line(
        entry.endpoint, source or default_source, outcome, rendered.status, started, request_id
    )
    return rendered, request_id


def _record_alone(
    entry: Entry, rendered: Rendered, started: float, *, is_replayable: bool = True
) -> Rendered:
    """Record a request refused before it could change anything."""
    source = ENDPOINTS[entry.endpoint].default_source
    with write_transaction() as session:
        request_id = request_log.write(
            session,
            entry,
            rendered,
            FAILED,
            source=source,
            duration_ms=_elapsed_ms(started),
            is_replayable=is_replayable,
        )
    _log_line(entry.endpoint, source, FAILED, rendered.status, started, request_id)
    return _with_id(rendered, request_id)


def _record_crash(entry: Entry, started: float) -> None:
    """A bug, not the client's fault: keep the request (without its key) for a replay."""
    rendered = error_rendered(500, "Internal error while processing the webhook", "internal_error")
    try:
        _record_alone(
            replace(entry, idempotency_scope=None, signature_digest=None), rendered, started
        )
    except UNAVAILABLE_ERRORS:
        return  # the database is down: the 503 says so, and the sender retries
    except Exception:
        log.exception("webhook endpoint=%s could not be recorded after a crash", entry.endpoint)


def _with_id(rendered: Rendered, request_id: int) -> Rendered:
    return replace(rendered, body={**rendered.body, "request_id": request_id})


def _elapsed_ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)


def _log_line(
    endpoint: str, source: str, outcome: str, status: int, started: float, request_id: int
) -> None:
    metrics.WEBHOOKS.labels(endpoint, outcome).inc()
    log.info(
        "webhook endpoint=%s source=%r outcome=%s status=%s ms=%.1f request_id=%s",
        endpoint,
        source,
        outcome,
        status,
        _elapsed_ms(started),
        request_id,
    )
