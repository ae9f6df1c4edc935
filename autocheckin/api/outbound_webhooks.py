"""Outbound webhook subscriptions (`/api/webhooks`, the integration guide's "Webhook
Configuration"): who gets signed deliveries of which events, and what was delivered.

Errors have the guide's shape `{"detail", "status_code", "timestamp"}` (plus `code`);
`create_app` registers it for `/api/webhooks`, which the longest-prefix rule tells apart
from the inbound family's `/api/webhook`. Every route needs `x-checkout-key` or a web
admin's token; the guard names the caller (`subscriptions.Caller`), and the services
decide what it may see and change.
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app, g, request

from autocheckin.api.login import current_user
from autocheckin.api.openapi import answers, documented
from autocheckin.api.parsing import parse_json, parse_query
from autocheckin.api.representations import answer
from autocheckin.api.schemas_outbound import (
    DeliveryList,
    DeliveryOut,
    DeliveryQuery,
    WebhookCreate,
    WebhookCreated,
    WebhookList,
    WebhookOut,
    WebhookUpdate,
)
from autocheckin.api.security import key_accepted
from autocheckin.attendance.errors import Invalid
from autocheckin.auth import api_keys
from autocheckin.auth.errors import Forbidden, Unauthorized
from autocheckin.errors import NotConfigured
from autocheckin.outbound import subscriptions

PREFIX = "/api/webhooks"
bp = Blueprint("outbound_webhooks", __name__, url_prefix=PREFIX)
SECURITY = ("checkoutKey", "bearerAuth")
KEY_HEADER = "x-checkout-key"


@bp.before_request
@answers(401, 403, 429, 503)
def require_admin_or_key() -> None:
    """`x-checkout-key`, or a bearer token of a web admin; a plain user is 403. The caller
    it names: the CHECKOUT_API_KEY holder and admins see all, an integration key its own."""
    if KEY_HEADER in request.headers:
        configured = current_app.config["CHECKOUT_API_KEY"]
        presented = request.headers.get(KEY_HEADER)
        if key_accepted(presented, configured):
            principal = api_keys.holder_of(presented, configured)
            if principal is None:  # revoked between the two looks
                raise Unauthorized("Invalid API key")
            g.outbound_caller = subscriptions.Caller(
                principal=principal, sees_all=principal == api_keys.CHECKOUT_KEY
            )
            return
        if not configured and not api_keys.any_live():
            raise NotConfigured("CHECKOUT_API_KEY is not configured on this server")
        raise Unauthorized("Invalid API key")
    if request.headers.get("Authorization", "").lower().startswith("bearer "):
        user = current_user()
        if not user.is_admin:
            raise Forbidden("Only admins may manage webhooks", code="admin_required")
        g.outbound_caller = subscriptions.Caller(principal=f"account:{user.id}", sees_all=True)
        return
    raise Unauthorized(f"Send {KEY_HEADER}, or an admin's Authorization: Bearer token")


def _caller() -> subscriptions.Caller:
    return g.outbound_caller


def _allow_private() -> bool:
    return current_app.config["OUTBOUND_WEBHOOKS_ALLOW_PRIVATE"]


ERRORS = (400, 401, 403, 404, 503)  # 403: a plain user, or another caller's webhook


@bp.post("")
@documented(
    "Subscribe a URL to an event type; the secret is in this answer only",
    body=WebhookCreate,
    response=WebhookCreated,
    status=201,
    security=SECURITY,
    errors=ERRORS,
)
def create_webhook() -> Response:
    body = parse_json(WebhookCreate)
    subscription, secret = subscriptions.create_subscription(
        fields=body.model_dump(), allow_private=_allow_private(), caller=_caller()
    )
    return answer(WebhookCreated.created(subscription, secret, _caller()), 201)


@bp.get("")
@documented("Every webhook subscription", response=WebhookList, security=SECURITY, errors=ERRORS)
def list_webhooks() -> Response:
    found = [WebhookOut.of(item, _caller()) for item in subscriptions.list_subscriptions()]
    return answer(WebhookList(webhooks=found, count=len(found)))


@bp.get("/<int:webhook_id>")
@documented("One webhook subscription", response=WebhookOut, security=SECURITY, errors=ERRORS)
def get_webhook(webhook_id: int) -> Response:
    return answer(WebhookOut.of(subscriptions.get_subscription(webhook_id), _caller()))


@bp.patch("/<int:webhook_id>")
@documented(
    "Change a subscription (is_active=true turns a disabled one back on)",
    body=WebhookUpdate,
    response=WebhookOut,
    security=SECURITY,
    errors=ERRORS,
)
def update_webhook(webhook_id: int) -> Response:
    changes = parse_json(WebhookUpdate).model_dump(exclude_unset=True)
    nulls = sorted(name for name, value in changes.items() if value is None)
    if nulls:
        raise Invalid(f"Invalid value for {nulls[0]}: may not be null")
    subscription = subscriptions.update_subscription(
        webhook_id, changes=changes, allow_private=_allow_private(), caller=_caller()
    )
    return answer(WebhookOut.of(subscription, _caller()))


@bp.delete("/<int:webhook_id>")
@documented(
    "Delete a subscription; pending deliveries are cancelled",
    status=204,
    security=SECURITY,
    errors=ERRORS,
)
def delete_webhook(webhook_id: int) -> tuple[str, int]:
    subscriptions.delete_subscription(webhook_id, caller=_caller())
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
    found = subscriptions.list_deliveries(
        webhook_id, status=query.status, limit=query.limit, caller=_caller()
    )
    rendered = [DeliveryOut.of(delivery, attempts) for delivery, attempts in found]
    return answer(DeliveryList(deliveries=rendered, count=len(rendered)))


@bp.post("/<int:webhook_id>/deliveries/<int:delivery_id>/redeliver")
@documented(
    "Send a finished delivery again (same body, same webhook-id)",
    response=DeliveryOut,
    status=202,
    security=SECURITY,
    errors=(*ERRORS, 409),
)
def redeliver(webhook_id: int, delivery_id: int) -> Response:
    delivery = subscriptions.redeliver(webhook_id, delivery_id, caller=_caller())
    return answer(DeliveryOut.of(delivery, []), 202)


@bp.post("/<int:webhook_id>/test")
@documented(
    "Queue a `ping` delivery to the subscription's URL",
    response=DeliveryOut,
    status=202,
    security=SECURITY,
    errors=(*ERRORS, 409),
)
def send_test(webhook_id: int) -> Response:
    delivery = subscriptions.send_ping(webhook_id, caller=_caller())
    return answer(DeliveryOut.of(delivery, []), 202)
