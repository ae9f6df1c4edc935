"""Inbound webhooks (`/api/webhook/...`) in the formats the OneTap and attendance guides document.

Routes only turn the HTTP request into an `Inbound` and the answer back into JSON; the
service does the signature, idempotency, logging and the core call.
"""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, Response, current_app, jsonify, request
from werkzeug.exceptions import RequestEntityTooLarge

from autocheckin.api.errors import register_error_renderer
from autocheckin.api.openapi import documented
from autocheckin.times import utcnow
from autocheckin.webhooks import payloads, service
from autocheckin.webhooks.commands import Rendered, error_rendered
from autocheckin.webhooks.schemas import (
    AttendanceAnswer,
    LegacyAttendancePayload,
    OneTapPayload,
    UnifiedPayload,
    WebhookStatus,
)

bp = Blueprint("webhooks", __name__, url_prefix="/api/webhook")
PREFIX = "/api/webhook"
ALL_ENDPOINTS = ("onetap", "unified", "attendance", "attendance_secure")


def render_webhook_error(status: int, message: str, code: str, details: str | None) -> Response:
    rendered = error_rendered(status, message, code, details)
    response = jsonify(rendered.body)
    response.status_code = rendered.status
    return response


register_error_renderer(PREFIX, render_webhook_error)


def _answer(rendered: Rendered) -> tuple[Response, int]:
    return jsonify(rendered.body), rendered.status


def _inbound(endpoint: str, body: bytes) -> service.Inbound:
    return service.Inbound(
        endpoint=endpoint,
        body=body,
        headers={name.lower(): value for name, value in request.headers.items()},
        received_at=utcnow(),
    )


def _receive(endpoint: str) -> tuple[Response, int]:
    options = service.WebhookOptions.from_config(current_app.config)
    return _answer(service.receive(_inbound(endpoint, request.get_data()), options))


@bp.errorhandler(RequestEntityTooLarge)
def too_large(error: RequestEntityTooLarge) -> tuple[Response, int]:
    """Oversized bodies are refused unread, and still recorded (without the body)."""
    endpoint = (request.url_rule.endpoint if request.url_rule else "").removeprefix("webhooks.")
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    rendered = error_rendered(
        413, f"Request body is larger than the {limit}-byte limit", "payload_too_large"
    )
    if endpoint in ALL_ENDPOINTS:
        service.record_refusal(_inbound(endpoint, b""), rendered)
    return _answer(rendered)


@bp.post("/onetap/", strict_slashes=False)
@documented(
    "OneTap webhook: create_student, create_event, record_attendance",
    body=OneTapPayload,
    status=201,
    errors=(400, 401, 404, 409, 413, 422),
)
def onetap() -> tuple[Response, int]:
    return _receive("onetap")


@bp.post("/unified/", strict_slashes=False)
@documented(
    "Unified webhook: type student / event / attendance × action create / update",
    body=UnifiedPayload,
    status=201,
    errors=(400, 401, 404, 409, 413, 422),
)
def unified() -> tuple[Response, int]:
    return _receive("unified")


@bp.post("/attendance/", strict_slashes=False)
@documented(
    "Legacy attendance webhook (flat payload)",
    body=LegacyAttendancePayload,
    response=AttendanceAnswer,
    status=201,
    errors=(400, 401, 404, 409, 413, 422),
)
def attendance() -> tuple[Response, int]:
    return _receive("attendance")


@bp.post("/attendance/secure/", strict_slashes=False)
@documented(
    "Legacy attendance webhook, HMAC signature required",
    body=LegacyAttendancePayload,
    response=AttendanceAnswer,
    status=201,
    security=("webhookSignature",),
    errors=(400, 401, 404, 409, 413, 422, 503),
)
def attendance_secure() -> tuple[Response, int]:
    return _receive("attendance_secure")


def _status(message: str, endpoints: tuple[str, ...], **supported: list[str]) -> Response:
    stats = service.stats(endpoints=endpoints, since=utcnow() - timedelta(hours=24))
    return jsonify(
        {
            "status": "healthy",
            "message": message,
            "endpoints": {
                "onetap": f"{PREFIX}/onetap/",
                "unified": f"{PREFIX}/unified/",
                "attendance": f"{PREFIX}/attendance/",
                "attendance_secure": f"{PREFIX}/attendance/secure/",
            },
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
        ALL_ENDPOINTS,
        supported_actions=list(payloads.ONETAP_ACTIONS),
        supported_types=list(payloads.UNIFIED_TYPES),
    )


@bp.get("/onetap/status/", strict_slashes=False)
@documented("OneTap webhook health", response=WebhookStatus)
def onetap_status() -> Response:
    return _status(
        "OneTap webhook is operational",
        ("onetap",),
        supported_actions=list(payloads.ONETAP_ACTIONS),
    )


@bp.get("/unified/status/", strict_slashes=False)
@documented("Unified webhook health", response=WebhookStatus)
def unified_status() -> Response:
    return _status(
        "Unified webhook is operational",
        ("unified",),
        supported_types=list(payloads.UNIFIED_TYPES),
        supported_actions=["create", "update"],
    )


@bp.get("/attendance/status/", strict_slashes=False)
@documented("Attendance webhooks health", response=WebhookStatus)
def attendance_status() -> Response:
    return _status(
        "Attendance webhooks are operational",
        ("attendance", "attendance_secure"),
        supported_actions=["record_attendance"],
    )
