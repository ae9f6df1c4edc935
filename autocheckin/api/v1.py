"""The AutoCheckin API (`/api/v1`), as the seed documents it; `x-checkout-key` required."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify, request

from autocheckin import state
from autocheckin.api import schemas
from autocheckin.api.errors import error_response
from autocheckin.api.openapi import documented
from autocheckin.auth.keys import key_matches

bp = Blueprint("v1", __name__, url_prefix="/api/v1")

KEY_HEADER = "x-checkout-key"
OPEN_ENDPOINTS = {"v1.auth_test"}


def success(message: str, data: dict, status: int = 200) -> Response:
    response = jsonify({"success": True, "message": message, "data": data})
    response.status_code = status
    return response


@bp.before_request
def require_checkout_key() -> Response | None:
    """Every /api/v1 route but auth/test needs the key; with none configured, none is open."""
    if request.endpoint in OPEN_ENDPOINTS:
        return None
    configured = current_app.config["CHECKOUT_API_KEY"]
    if not configured:
        return error_response(503, "CHECKOUT_API_KEY is not configured on this server")
    provided = request.headers.get(KEY_HEADER)
    if not provided:
        return error_response(401, f"Missing {KEY_HEADER} header")
    if not key_matches(provided, configured):
        return error_response(401, "Invalid API key")
    return None


@bp.route("/auth/test", methods=["GET", "POST"])
@documented("Test an API key", response=schemas.AuthTestResponse, security=("checkoutKey",))
def auth_test() -> Response:
    authenticated = key_matches(
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
            "reason": link["reason"] if upstream_configured else state.NOT_CONFIGURED_REASON,
        },
    )


@bp.get("/state")
@documented(
    "Global state: connection, stored data, jobs, counts",
    response=schemas.StateResponse,
    security=("checkoutKey",),
    errors=(401, 503),
)
def global_state() -> Response:
    report = state.report(upstream_configured=bool(current_app.config["CHECKOUT_API_URL"]))
    return success("Global State", report)
