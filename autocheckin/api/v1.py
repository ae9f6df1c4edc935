"""The AutoCheckin API (`/api/v1`), as the seed documents it; `x-checkout-key` required."""

from __future__ import annotations

from typing import Literal

from flask import Blueprint, Flask, Response, current_app, jsonify, request
from pydantic import BaseModel, Field

from autocheckin import jobs, overview, settings, state
from autocheckin.api import schemas
from autocheckin.api.errors import error_response
from autocheckin.api.openapi import ANONYMOUS, answers, documented
from autocheckin.api.parsing import parse_query
from autocheckin.api.security import key_accepted
from autocheckin.auth import api_keys
from autocheckin.config import open_setups, weak_settings
from autocheckin.jobs.runner import run_recorded
from autocheckin.sync import connection, sessions
from autocheckin.webhooks import receive, request_log
from autocheckin.webhooks.schemas import WebhookRequestView

bp = Blueprint("v1", __name__, url_prefix="/api/v1")

KEY_HEADER = "x-checkout-key"
OPEN_ENDPOINTS = {"v1.auth_test"}


def success(message: str, data: dict, status: int = 200) -> Response:
    response = jsonify({"success": True, "message": message, "data": data})
    response.status_code = status
    return response


@bp.before_request
@answers(401, 429, 503, skips=OPEN_ENDPOINTS)
def require_checkout_key() -> Response | None:
    """Every /api/v1 route but auth/test needs the key; with none configured, none is open."""
    if request.endpoint in OPEN_ENDPOINTS:
        return None
    configured = current_app.config["CHECKOUT_API_KEY"]
    provided = request.headers.get(KEY_HEADER)
    if provided and key_accepted(provided, configured):
        return None
    if not configured and not api_keys.any_live():
        return error_response(503, "CHECKOUT_API_KEY is not configured on this server")
    if not provided:
        return error_response(401, f"Missing {KEY_HEADER} header")
    return error_response(401, "Invalid API key")


@bp.route("/auth/test", methods=["GET", "POST"])
@documented(
    "Test an API key", response=schemas.AuthTestResponse, security=("checkoutKey", ANONYMOUS)
)
def auth_test() -> Response:
    authenticated = key_accepted(
        request.headers.get(KEY_HEADER), current_app.config["CHECKOUT_API_KEY"]
    )
    return success("Authentication Test Result", {"authenticated": authenticated})


@bp.get("/status")
@documented(
    "Upstream connection status",
    response=schemas.StatusResponse,
    security=("checkoutKey",),
    errors=(401, 503),
)
def status() -> Response:
    upstream_configured = bool(current_app.config["CHECKOUT_API_URL"])
    link = state.connection()
    return success(
        "API Status",
        {
            "connected": bool(link["connected"]) and upstream_configured,
            "upstream_configured": upstream_configured,
            "reason": link["reason"] if upstream_configured else overview.NOT_CONFIGURED_REASON,
            "open_setups": open_setups(current_app.config),
            "warnings": weak_settings(current_app.config),
        },
    )


class StateQuery(BaseModel):
    users_limit: int = Field(100, ge=0, le=1000, description="roster entries in autoCheckinUsers")
    users_offset: int = Field(0, ge=0, le=2**31 - 1)


@bp.get("/state")
@documented(
    "Global state: connection, stored data, a page of the roster, jobs, counts",
    query=StateQuery,
    response=schemas.StateResponse,
    security=("checkoutKey",),
    errors=(400, 401, 503),
)
def global_state() -> Response:
    query = parse_query(StateQuery)
    report = overview.state_report(
        upstream_configured=bool(current_app.config["CHECKOUT_API_URL"]),
        counts_max_age=current_app.config["STATE_COUNTS_MAX_AGE"],
        users_limit=query.users_limit,
        users_offset=query.users_offset,
    )
    return success("Global State", report)


def _app() -> Flask:
    return current_app._get_current_object()  # type: ignore[attr-defined]


@bp.get("/fetch-users")
@documented(
    "Fetch users from CheckOut now (the fetch_users job)",
    response=schemas.FetchUsersResponse,
    security=("checkoutKey",),
    errors=(401, 409, 502, 503),
)
def fetch_users() -> Response:
    counts = jobs.trigger(_app(), "fetch_users")
    return success("User fetch completed", {"success": True, **counts})


@bp.get("/refresh")
@documented(
    "Refresh every user's check-in sessions now (the refresh_sessions job)",
    response=schemas.RefreshResponse,
    security=("checkoutKey",),
    errors=(401, 409, 502, 503),
)
def refresh() -> Response:
    result = jobs.trigger(_app(), "refresh_sessions")
    if result.outcome == sessions.FAILED:
        raise connection.UpstreamFailed(result.error)
    return success(
        "Checkin sessions refreshed successfully",
        schemas.RefreshData(
            sessions=[schemas.CheckInSessionData.model_validate(s) for s in result.sessions],
            counts=result.counts,
        ).model_dump(mode="json"),
    )


@bp.get("/refresh-session/<path:email>")
@documented(
    "Refresh one user's check-in session now",
    response=schemas.RefreshSessionResponse,
    security=("checkoutKey",),
    errors=(401, 404, 409, 502, 503),
)
def refresh_session(email: str) -> Response:
    app = _app()
    session = run_recorded(
        "refresh_session",
        lambda: sessions.refresh_one(connection.client_for(app), email),
        trigger="manual",
        holder="api",
        lock_name=f"refresh_session:{email.strip().lower()}",
    )
    return success(
        "Checkin session refreshed successfully",
        {"session": schemas.CheckInSessionData.model_validate(session).model_dump(mode="json")},
    )


class DeliveryQuery(BaseModel):
    status: Literal["processing", "succeeded", "failed", "unmatched", "resolved"] | None = None
    limit: int = Field(50, ge=1, le=500)


def _webhook_options() -> receive.WebhookOptions:
    return settings.current().webhooks


@bp.get("/webhooks/deliveries")
@documented(
    "Recorded webhook requests, newest first (status=failed includes unmatched)",
    query=DeliveryQuery,
    response=schemas.DeliveriesResponse,
    security=("checkoutKey",),
    errors=(400, 401),
)
def webhook_deliveries() -> Response:
    query = parse_query(DeliveryQuery)
    records = request_log.list_requests(outcome=query.status, limit=query.limit)
    return success(
        "Webhook requests",
        {"deliveries": [WebhookRequestView.of(r) for r in records], "count": len(records)},
    )


@bp.get("/webhooks/deliveries/<int:request_id>")
@documented(
    "One recorded webhook request",
    response=schemas.DeliveryResponse,
    security=("checkoutKey",),
    errors=(401, 404),
)
def webhook_delivery(request_id: int) -> Response:
    record = request_log.get_request(request_id)
    return success("Webhook request", {"delivery": WebhookRequestView.of(record)})


@bp.post("/webhooks/deliveries/<int:request_id>/replay")
@documented(
    "Process a recorded webhook request again",
    response=schemas.ReplayResponse,
    security=("checkoutKey",),
    errors=(401, 404, 409),
)
def replay_webhook_delivery(request_id: int) -> Response:
    record = receive.replay(request_id, _webhook_options())
    return success(
        "Webhook request replayed",
        {"delivery": WebhookRequestView.of(record), "response": record.response_body},
    )


@bp.post("/webhooks/unmatched/resolve")
@documented(
    "Replay unmatched check-ins whose student and event now exist",
    response=schemas.ResolveResponse,
    security=("checkoutKey",),
    errors=(401,),
)
def resolve_unmatched_webhooks() -> Response:
    return success("Unmatched check-ins processed", receive.resolve_unmatched(_webhook_options()))
