"""Subscriptions and their deliveries, as the API manages them.

Each subscription records who made it. A `Caller` who `sees_all` (the CHECKOUT_API_KEY
holder, a web admin) sees and changes every one; any other caller (an integration key)
sees the others' receivers as scheme and host only (a path or query can be a secret, as
Slack's are) and their header values masked, and is refused (403 `not_your_webhook`) when
it would change, delete, test, redeliver or read the deliveries of one it did not make.

Every write raises the subscription's `revision`, so each process notices the change the
next time it announces something (the local cache is dropped at once). Deleting only marks
a subscription deleted and wipes its secret: its deliveries keep their history.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from flask import current_app
from sqlalchemy import func, select, union_all, update

from autocheckin import errors
from autocheckin.attendance.errors import Conflict, Invalid, NotFound
from autocheckin.database import write_transaction
from autocheckin.extensions import db
from autocheckin.outbound import dispatch, outbox, ssrf
from autocheckin.outbound.models import (
    PENDING,
    PING,
    SUCCEEDED,
    Delivery,
    DeliveryAttempt,
    Subscription,
)
from autocheckin.outbound.signing import RESERVED_HEADERS, new_secret
from autocheckin.times import utcnow

MAX_HEADERS = 20
# As many retries as OUTBOUND_RETRY_SCHEDULE's default has steps: about 27.6 hours.
DEFAULT_RETRY_COUNT = 7
# A header is sent as written on every delivery, so it must be one a request can carry: a
# name of token characters (RFC 9110), a value of visible ASCII with inner spaces and tabs,
# nothing before or after it. A CR or LF (any control character) would make every delivery
# fail, or with a lenient client split one header into two. `api.schemas_outbound` declares
# these same patterns, so /openapi.json says what is refused.
HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,64}")
HEADER_VALUE = re.compile(r"(?:[!-~](?:[\t -~]*[!-~])?)?")
MAX_HEADER_VALUE = 4096
# Header values shown masked: they are credentials the receiver asked for.
SENSITIVE_HEADER = re.compile(r"authorization|cookie|key|token|secret|signature|password", re.I)
FIELDS = (
    "name",
    "url",
    "event_type",
    "secret",
    "headers",
    "is_active",
    "retry_count",
    "timeout_seconds",
)


def check_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Custom headers a receiver wants: plain names, none of ours, a bounded number."""
    if len(headers) > MAX_HEADERS:
        raise Invalid(f"Invalid value for headers: at most {MAX_HEADERS} headers")
    for name, value in headers.items():
        if not isinstance(name, str) or not HEADER_NAME.fullmatch(name):
            raise Invalid(f"Invalid value for headers: {name!r} is not a header name")
        if (
            not isinstance(value, str)
            or len(value) > MAX_HEADER_VALUE
            or not HEADER_VALUE.fullmatch(value)
        ):
            raise Invalid(
                f"Invalid value for headers: the value of {name} must be visible ASCII (inner "
                f"spaces and tabs allowed), at most {MAX_HEADER_VALUE} characters"
            )
        if name.lower() in RESERVED_HEADERS:
            raise Invalid(
                f"Invalid value for headers: {name} is set by AutoCheckin on every delivery"
            )
    return dict(headers)


class NotYours(errors.Forbidden):
    """An integration key reaching for a subscription another caller made. 403, not 404:
    the list shows the subscription exists, so pretending it does not would be a lie."""

    code = "not_your_webhook"


@dataclass(frozen=True)
class Caller:
    """Who is asking: `principal` as recorded in `created_by`; `sees_all` for the
    CHECKOUT_API_KEY holder and web admins."""

    principal: str
    sees_all: bool = False

    def owns(self, subscription: Subscription) -> bool:
        return self.sees_all or subscription.created_by == self.principal


def receiver_shown_to(caller: Caller | None, subscription: Subscription) -> str:
    """The full URL for its owner (or a caller who sees all); else scheme and host only."""
    if caller is None or caller.owns(subscription):
        return subscription.url
    parts = urlsplit(subscription.url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"


def headers_shown_to(caller: Caller | None, subscription: Subscription) -> dict[str, str]:
    """Credential-looking values masked for everyone; every value for a non-owner."""
    if caller is None or caller.owns(subscription):
        return masked_headers(subscription.headers or {})
    return {name: "********" for name in subscription.headers or {}}


def masked_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {
        name: ("********" if SENSITIVE_HEADER.search(name) else value)
        for name, value in headers.items()
    }


def _changed(subscription: Subscription) -> None:
    subscription.revision = (subscription.revision or 0) + 1
    subscription.updated_at = utcnow()


def _forget_types() -> None:
    outbox.forget_subscribed_types(db.engine)


def create_subscription(
    *, fields: Mapping[str, Any], allow_private: bool, caller: Caller | None = None
) -> tuple[Subscription, str]:
    """A new subscription and its secret (generated when none is given), shown only now."""
    headers = check_headers(fields.get("headers") or {})
    ssrf.destination(fields["url"], allow_private=allow_private)
    secret = fields.get("secret") or new_secret()
    with write_transaction() as session:
        subscription = Subscription(
            name=fields["name"],
            url=fields["url"],
            event_type=fields["event_type"],
            secret=secret,
            headers=headers,
            is_active=fields.get("is_active", True),
            retry_count=fields.get("retry_count", DEFAULT_RETRY_COUNT),
            timeout_seconds=fields.get("timeout_seconds", 10.0),
            created_by=caller.principal if caller is not None else None,
        )
        session.add(subscription)
    _forget_types()
    return subscription, secret


def list_subscriptions() -> list[Subscription]:
    return list(
        db.session.scalars(
            select(Subscription).where(Subscription.deleted_at.is_(None)).order_by(Subscription.id)
        )
    )


def get_subscription(subscription_id: int, *, caller: Caller | None = None) -> Subscription:
    """The live subscription; with a `caller`, only one it may manage (`NotYours` else).
    No caller is a trusted one: the dashboard's admin, the CLI."""
    subscription = db.session.get(Subscription, subscription_id)
    if subscription is None or subscription.deleted_at is not None:
        raise NotFound(f"Webhook {subscription_id} not found", code="webhook_not_found")
    if caller is not None and not caller.owns(subscription):
        raise NotYours(
            f"Webhook {subscription_id} was made by another caller; only it, the "
            "CHECKOUT_API_KEY holder or a web admin may change it or read its deliveries"
        )
    return subscription


def update_subscription(
    subscription_id: int,
    *,
    changes: Mapping[str, Any],
    allow_private: bool,
    caller: Caller | None = None,
) -> Subscription:
    """Change the given fields. Turning a subscription off holds what it has pending;
    turning it back on clears why it was disabled and offers again what it did not deliver
    in the last OUTBOUND_RECOVER_WINDOW (`dispatch.recover`)."""
    get_subscription(subscription_id, caller=caller)  # not theirs: refused before any check
    unknown = set(changes) - set(FIELDS)
    if unknown:
        raise Invalid(f"Unknown webhook fields: {', '.join(sorted(unknown))}")
    if changes.get("headers") is not None:
        changes = {**changes, "headers": check_headers(changes["headers"])}
    if "url" in changes:
        ssrf.destination(changes["url"], allow_private=allow_private)
    now = utcnow()
    with write_transaction() as session:
        subscription = get_subscription(subscription_id, caller=caller)
        was_active = subscription.is_active
        for name, value in changes.items():
            setattr(subscription, name, value)
        if subscription.is_active and not was_active:
            subscription.disabled_reason = subscription.disabled_at = None
            subscription.consecutive_failures = 0
            session.flush()
            dispatch.recover(
                session.connection(),
                subscription.id,
                retry_count=subscription.retry_count,
                since=now - timedelta(seconds=current_app.config["OUTBOUND_RECOVER_WINDOW"]),
                now=now,
            )
            outbox.wake_after_commit(session)
        if was_active and not subscription.is_active:
            subscription.disabled_reason, subscription.disabled_at = "turned off by PATCH", now
        _changed(subscription)
    _forget_types()
    return subscription


def delete_subscription(subscription_id: int, *, caller: Caller | None = None) -> None:
    now = utcnow()
    with write_transaction() as session:
        subscription = get_subscription(subscription_id, caller=caller)
        subscription.deleted_at = now
        subscription.is_active = False
        subscription.secret = ""
        _changed(subscription)
        dispatch.cancel_pending(
            session.connection(), subscription.id, "cancelled: subscription deleted", now
        )
    _forget_types()


def list_deliveries(
    subscription_id: int,
    *,
    status: str | None = None,
    limit: int = 50,
    caller: Caller | None = None,
) -> list[tuple[Delivery, list[DeliveryAttempt]]]:
    """Newest first, each with its attempts in order."""
    get_subscription(subscription_id, caller=caller)
    query = select(Delivery).where(Delivery.subscription_id == subscription_id)
    if status is not None:
        query = query.where(Delivery.status == status)
    deliveries = list(db.session.scalars(query.order_by(Delivery.id.desc()).limit(limit)))
    attempts: dict[int, list[DeliveryAttempt]] = {delivery.id: [] for delivery in deliveries}
    if deliveries:
        for attempt in db.session.scalars(
            select(DeliveryAttempt)
            .where(DeliveryAttempt.delivery_id.in_(list(attempts)))
            .order_by(DeliveryAttempt.id)
        ):
            attempts[attempt.delivery_id].append(attempt)
    return [(delivery, attempts[delivery.id]) for delivery in deliveries]


def delivery_tally(since: datetime) -> dict[int, dict[str, Any]]:
    """Per subscription: deliveries pending now, those finished since `since` by status,
    and when one last succeeded (ever). Each part reads through an index — pending ones by
    status, recent ones by completion time, the last success backwards from the newest
    delivery — so the cost does not grow with the history kept."""
    pending = select(Delivery.subscription_id, Delivery.status).where(Delivery.status == PENDING)
    recent = select(Delivery.subscription_id, Delivery.status).where(
        Delivery.completed_at >= since, Delivery.status != PENDING
    )
    both = union_all(pending, recent).subquery()
    tally: dict[int, dict[str, Any]] = {}
    for subscription_id, status, count in db.session.execute(
        select(both.c.subscription_id, both.c.status, func.count()).group_by(
            both.c.subscription_id, both.c.status
        )
    ):
        tally.setdefault(subscription_id, {})[status] = count
    last_success = (
        select(Delivery.completed_at)
        .where(Delivery.subscription_id == Subscription.id, Delivery.status == SUCCEEDED)
        .order_by(Delivery.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    for subscription_id, moment in db.session.execute(
        select(Subscription.id, last_success).where(Subscription.deleted_at.is_(None))
    ):
        tally.setdefault(subscription_id, {})["last_success"] = moment
    return tally


def _active(subscription: Subscription) -> None:
    if not subscription.is_active:
        raise Conflict(
            f"Webhook {subscription.id} is disabled ({subscription.disabled_reason}); "
            "PATCH it with is_active=true first",
            code="webhook_disabled",
        )


def redeliver(subscription_id: int, delivery_id: int, *, caller: Caller | None = None) -> Delivery:
    """Send a finished delivery again, same body and same webhook-id, with a fresh set of
    retries."""
    now = utcnow()
    with write_transaction() as session:
        subscription = get_subscription(subscription_id, caller=caller)
        delivery = session.get(Delivery, delivery_id)
        if delivery is None or delivery.subscription_id != subscription.id:
            raise NotFound(
                f"Delivery {delivery_id} of webhook {subscription_id} not found",
                code="delivery_not_found",
            )
        _active(subscription)
        moved = session.execute(
            update(Delivery)
            .where(Delivery.id == delivery.id, Delivery.status != PENDING)
            .values(
                status=PENDING,
                next_attempt_at=now,
                max_attempts=delivery.attempts + 1 + subscription.retry_count,
                completed_at=None,
                claimed_by=None,
                claimed_until=None,
            )
        ).rowcount
        if not moved:
            raise Conflict(f"Delivery {delivery_id} is still pending", code="delivery_pending")
        outbox.wake_after_commit(session)
    db.session.refresh(delivery)
    return delivery


def send_ping(subscription_id: int, *, caller: Caller | None = None) -> Delivery:
    """Queue one `ping` delivery (a single attempt) to check the receiver and its secret."""
    now = utcnow()
    with write_transaction() as session:
        subscription = get_subscription(subscription_id, caller=caller)
        _active(subscription)
        data = {"webhook_id": subscription.id, "message": "Test delivery from AutoCheckin"}
        values = dispatch.new_delivery(
            subscription.id, PING, dispatch.envelope(PING, now, data), 0, now
        )
        delivery = Delivery(**values)
        session.add(delivery)
        outbox.wake_after_commit(session)
    return delivery


def payload_of(delivery: Delivery) -> Any:
    return json.loads(delivery.body)
