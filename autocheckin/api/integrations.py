"""The integrations family (source document 003): outbound webhook subscriptions.

Its error shape is the document's `{"detail", "status_code", "timestamp"}` (plus `code`).
The renderer is registered for `/api/webhooks` (plural): error shapes are picked by the
longest matching path prefix, and without it the inbound family's `/api/webhook` prefix
would claim these paths too. Every route needs `x-checkout-key` or a web admin's token.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request
from pydantic import BaseModel, ValidationError

from autocheckin.api import web
from autocheckin.api.errors import register_error_renderer
from autocheckin.api.openapi import documented
from autocheckin.api.schemas_integrations import (
    DeliveryList,
    DeliveryOut,
    DeliveryQuery,
    WebhookCreate,
    WebhookCreated,
    WebhookList,
    WebhookOut,
    WebhookUpdate,
)
from autocheckin.api.validation import parse_query
from autocheckin.attendance.errors import Forbidden, Invalid, NotConfigured
from autocheckin.auth.keys import key_matches
from autocheckin.auth.tokens import Unauthorized
from autocheckin.outbound import subscriptions
from autocheckin.outbound.models import Delivery, DeliveryAttempt, Subscription
from autocheckin.outbound.signing import secret_hint
from autocheckin.times import iso, utcnow
from autocheckin.validation import field_with_control_character, invalid_from

PREFIX = "/api/webhooks"
bp = Blueprint("integrations", __name__, url_prefix=PREFIX)
SECURITY = ("checkoutKey", "bearerAuth")
KEY_HEADER = "x-checkout-key"


def render_integrations_error(
    status: int, message: str, code: str, details: str | None
) -> Response:
    body = {"detail": message, "status_code": status, "timestamp": iso(utcnow()), "code": code}
    response = jsonify(body)
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = "Bearer"
    return response


register_error_renderer(PREFIX, render_integrations_error)


@bp.before_request
def require_admin_or_key() -> None:
    """`x-checkout-key`, or a bearer token of a web admin; a plain user is 403."""
    if KEY_HEADER in request.headers:
        configured = current_app.config["CHECKOUT_API_KEY"]
        if not configured:
            raise NotConfigured("CHECKOUT_API_KEY is not configured on this server")
        if not key_matches(request.headers.get(KEY_HEADER), configured):
            raise Unauthorized("Invalid API key")
        return
    if request.headers.get("Authorization", "").lower().startswith("bearer "):
        if not web.current_user().is_web_admin:
            raise Forbidden("Only admins may manage webhooks", code="admin_required")
        return
    raise Unauthorized(f"Send {KEY_HEADER}, or an admin's Authorization: Bearer token")


def _body(model: type[BaseModel]) -> BaseModel:
    payload = request.get_json(silent=True)
    if not isinstance(payload, dict):
        raise Invalid("Request body must be a JSON object", code="invalid_json")
    field = field_with_control_character(payload)
    if field is not None:
        raise Invalid(f"Invalid value for {field}: control characters are not allowed")
    try:
        return model.model_validate(payload)
    except ValidationError as error:
        raise invalid_from(error) from None


def _allow_private() -> bool:
    return current_app.config["OUTBOUND_WEBHOOKS_ALLOW_PRIVATE"]


def webhook_json(subscription: Subscription) -> dict[str, Any]:
    """A subscription as the API shows it: never its secret, credentials in headers masked."""
    return {
        "id": subscription.id,
        "name": subscription.name,
        "url": subscription.url,
        "event_type": subscription.event_type,
        "headers": subscriptions.masked_headers(subscription.headers or {}),
        "is_active": subscription.is_active,
        "retry_count": subscription.retry_count,
        "timeout_seconds": subscription.timeout_seconds,
        "consecutive_failures": subscription.consecutive_failures,
        "disabled_reason": subscription.disabled_reason,
        "disabled_at": iso(subscription.disabled_at),
        "secret_hint": secret_hint(subscription.secret) if subscription.secret else None,
        "created_at": iso(subscription.created_at),
        "updated_at": iso(subscription.updated_at),
    }


def delivery_json(delivery: Delivery, attempts: list[DeliveryAttempt]) -> dict[str, Any]:
    return {
        "id": delivery.id,
        "webhook_id": delivery.subscription_id,
        "message_id": delivery.message_id,
        "event_type": delivery.event_type,
        "status": delivery.status,
        "attempts": delivery.attempts,
        "max_attempts": delivery.max_attempts,
        "next_attempt_at": iso(delivery.next_attempt_at) if delivery.status == "pending" else None,
        "last_status_code": delivery.last_status_code,
        "last_error": delivery.last_error,
        "created_at": iso(delivery.created_at),
        "completed_at": iso(delivery.completed_at),
        "payload": subscriptions.payload_of(delivery),
        "history": [
            {
                "attempt": attempt.attempt,
                "started_at": iso(attempt.started_at),
                "duration_ms": attempt.duration_ms,
                "status_code": attempt.status_code,
                "error": attempt.error,
                "response_body": attempt.response_body,
            }
            for attempt in attempts
        ],
    }


ERRORS = (400, 401, 403, 404, 503)


@bp.post("")
@documented(
    "Subscribe a URL to an event type; the secret is in this answer only",
    body=WebhookCreate,
    response=WebhookCreated,
    status=201,
    security=SECURITY,
    errors=ERRORS,
)
def create_webhook() -> tuple[Response, int]:
    body = _body(WebhookCreate)
    subscription, secret = subscriptions.create_subscription(
        fields=body.model_dump(), allow_private=_allow_private()
    )
    return jsonify({**webhook_json(subscription), "secret": secret}), 201


@bp.get("")
@documented("Every webhook subscription", response=WebhookList, security=SECURITY, errors=ERRORS)
def list_webhooks() -> Response:
    found = subscriptions.list_subscriptions()
    return jsonify({"webhooks": [webhook_json(item) for item in found], "count": len(found)})


@bp.get("/<int:webhook_id>")
@documented("One webhook subscription", response=WebhookOut, security=SECURITY, errors=ERRORS)
def get_webhook(webhook_id: int) -> Response:
    return jsonify(webhook_json(subscriptions.get_subscription(webhook_id)))


@bp.patch("/<int:webhook_id>")
@documented(
    "Change a subscription (is_active=true turns a disabled one back on)",
    body=WebhookUpdate,
    response=WebhookOut,
    security=SECURITY,
    errors=ERRORS,
)
def update_webhook(webhook_id: int) -> Response:
    changes = _body(WebhookUpdate).model_dump(exclude_unset=True)
    nulls = sorted(name for name, value in changes.items() if value is None)
    if nulls:
        raise Invalid(f"Invalid value for {nulls[0]}: may not be null")
    subscription = subscriptions.update_subscription(
        webhook_id, changes=changes, allow_private=_allow_private()
    )
    return jsonify(webhook_json(subscription))


@bp.delete("/<int:webhook_id>")
@documented(
    "Delete a subscription; pending deliveries are cancelled",
    status=204,
    security=SECURITY,
    errors=ERRORS,
)
def delete_webhook(webhook_id: int) -> tuple[str, int]:
    subscriptions.delete_subscription(webhook_id)
    return "", 204


@bp.get("/<int:webhook_id>/deliveries")
@documented(
    "A subscription's deliveries, newest first, each with its attempts",
    query=DeliveryQuery,
    response=DeliveryList,
    security=SECURITY,
    errors=ERRORS,
)
def list_deliveries(webhook_id: int) -> Response:
    query = parse_query(DeliveryQuery)
    found = subscriptions.list_deliveries(webhook_id, status=query.status, limit=query.limit)
    rendered = [delivery_json(delivery, attempts) for delivery, attempts in found]
    return jsonify({"deliveries": rendered, "count": len(rendered)})


@bp.post("/<int:webhook_id>/deliveries/<int:delivery_id>/redeliver")
@documented(
    "Send a finished delivery again (same body, same webhook-id)",
    response=DeliveryOut,
    status=202,
    security=SECURITY,
    errors=(*ERRORS, 409),
)
def redeliver(webhook_id: int, delivery_id: int) -> tuple[Response, int]:
    delivery = subscriptions.redeliver(webhook_id, delivery_id)
    return jsonify(delivery_json(delivery, [])), 202


@bp.post("/<int:webhook_id>/test")
@documented(
    "Queue a `ping` delivery to the subscription's URL",
    response=DeliveryOut,
    status=202,
    security=SECURITY,
    errors=(*ERRORS, 409),
)
def send_test(webhook_id: int) -> tuple[Response, int]:
    delivery = subscriptions.send_ping(webhook_id)
    return jsonify(delivery_json(delivery, [])), 202
