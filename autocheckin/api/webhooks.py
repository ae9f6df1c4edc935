"""Inbound webhooks (`/api/webhook/...`) in the formats the OneTap and attendance guides document.

Every POST route comes from the endpoint registry (`webhooks.endpoints`); each only turns
the HTTP request into an `Inbound` and the answer back into JSON. The pipeline does the
signature, idempotency, the core call and the request log.
"""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, Response, current_app, g, jsonify, request
from werkzeug.exceptions import RequestEntityTooLarge

from autocheckin import ratelimits, settings
from autocheckin.api.errors import http_error_response as _http_error
from autocheckin.api.openapi import answers, documented
from autocheckin.times import utcnow
from autocheckin.webhooks import payloads, receive, request_log
from autocheckin.webhooks.commands import Rendered, error_rendered
from autocheckin.webhooks.endpoints import ENDPOINTS, PREFIX, WebhookEndpoint, in_family
from autocheckin.webhooks.schemas import WebhookStatus

bp = Blueprint("webhooks", __name__, url_prefix=PREFIX)


@bp.before_request
@answers(429)
def _rate_limited() -> None:
    """WEBHOOK_RATE_LIMIT per client address, when set (the guide's 10/second is opt-in:
    a scanner replaying an offline backlog must not be refused by default)."""
    rate = current_app.config["WEBHOOK_RATE_LIMIT"]
    if rate and request.method == "POST":
        g.rate_limit_headers = ratelimits.metered(rate, "webhook", ratelimits.client_address())


bp.after_request(ratelimits.with_rate_limit_headers)


POST_ERRORS = (400, 401, 404, 409, 413, 422, 429)


def render_webhook_error(status: int, message: str, code: str, details: str | None) -> Response:
    rendered = error_rendered(status, message, code, details)
    response = jsonify(rendered.body)
    response.status_code = rendered.status
    return response


def _answer(rendered: Rendered) -> tuple[Response, int]:
    return jsonify(rendered.body), rendered.status


def _inbound(endpoint: str, body: bytes) -> receive.Inbound:
    return receive.Inbound(
        endpoint=endpoint,
        body=body,
        headers={name.lower(): value for name, value in request.headers.items()},
        received_at=utcnow(),
        request_id=g.get("request_id", ""),
        client_address=ratelimits.client_address(),
    )


def _options() -> receive.WebhookOptions:
    return settings.current().webhooks


def _refused_before_processing(rendered: Rendered) -> bool:
    return rendered.status in (401, 413) or rendered.body.get("code") == "invalid_encoding"


def _view(endpoint: WebhookEndpoint):
    def view() -> tuple[Response, int]:
        client = ratelimits.client_address()
        inbound = _inbound(endpoint.name, request.get_data())
        options = _options()
        # A client past its refusals gets 429, unrecorded, unless this one is authentic.
        if not ratelimits.is_allowed(ratelimits.REFUSALS, "webhook", client):
            if not receive.is_authentic(inbound, options):
                raise ratelimits.refusal(ratelimits.REFUSALS, "webhook", client)
        rendered = receive.receive(inbound, options)
        if _refused_before_processing(rendered):
            ratelimits.count_quietly(ratelimits.REFUSALS, "webhook", client)
        return _answer(rendered)

    view.__name__ = endpoint.name
    security = ("webhookSignature",) if endpoint.is_always_signed else ()
    errors = POST_ERRORS + ((503,) if endpoint.is_always_signed else ())
    return documented(
        endpoint.summary,
        body=endpoint.body,
        response=endpoint.response,
        status=endpoint.status,
        also=endpoint.also_answers,
        security=security,
        errors=errors,
    )(view)


for _endpoint in ENDPOINTS.values():
    bp.add_url_rule(
        _endpoint.path,
        _endpoint.name,
        _view(_endpoint),
        methods=["POST"],
        strict_slashes=False,
    )


@bp.errorhandler(RequestEntityTooLarge)
def too_large(error: RequestEntityTooLarge) -> tuple[Response, int]:
    """Oversized bodies are refused unread, and still recorded (without the body)."""
    endpoint = (request.url_rule.endpoint if request.url_rule else "").removeprefix("webhooks.")
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    rendered = error_rendered(
        413, f"Request body is larger than the {limit}-byte limit", "payload_too_large"
    )
    if endpoint in ENDPOINTS:
        client = ratelimits.client_address()
        if not ratelimits.is_allowed(ratelimits.REFUSALS, "webhook", client):
            return _http_error(ratelimits.refusal(ratelimits.REFUSALS, "webhook", client)), 429
        ratelimits.count_quietly(ratelimits.REFUSALS, "webhook", client)
        rendered = receive.record_refusal(_inbound(endpoint, b""), rendered)
    return _answer(rendered)


def _status(message: str, family: str | None, **supported: list[str]) -> Response:
    stats = request_log.stats(endpoints=in_family(family), since=utcnow() - timedelta(hours=24))
    return jsonify(
        {
            "status": "healthy",
            "message": message,
            "endpoints": {name: endpoint.url for name, endpoint in ENDPOINTS.items()},
            **supported,
            "signature_required": bool(current_app.config["WEBHOOK_REQUIRE_SIGNATURE"]),
            "last_24h": stats,
        }
    )


@bp.get("/status/", strict_slashes=False)
@documented("Webhook health: endpoints and the last 24 h of requests", response=WebhookStatus)
def status() -> Response:
    return _status(
        "Webhook endpoints are operational",
        None,
        supported_actions=list(payloads.ONETAP_ACTIONS),
        supported_types=list(payloads.UNIFIED_TYPES),
    )


@bp.get("/onetap/status/", strict_slashes=False)
@documented("OneTap webhook health", response=WebhookStatus)
def onetap_status() -> Response:
    return _status(
        "OneTap webhook is operational",
        "onetap",
        supported_actions=list(payloads.ONETAP_ACTIONS),
    )


@bp.get("/unified/status/", strict_slashes=False)
@documented("Unified webhook health", response=WebhookStatus)
def unified_status() -> Response:
    return _status(
        "Unified webhook is operational",
        "unified",
        supported_types=list(payloads.UNIFIED_TYPES),
        supported_actions=["create", "update"],
    )


@bp.get("/attendance/status/", strict_slashes=False)
@documented("Attendance webhooks health", response=WebhookStatus)
def attendance_status() -> Response:
    return _status(
        "Attendance webhooks are operational",
        "attendance",
        supported_actions=["record_attendance"],
    )
