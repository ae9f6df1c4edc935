"""JSON errors everywhere: one renderer per API family.

Errors say what went wrong and carry no status; `autocheckin/errors.py` holds the one table
of the status each kind answers with (`status_of`, named here too for the code that reads
it from here). Routing errors (404, 405) happen before any blueprint is known, so the
family's renderer is picked from the URL; `create_app` registers each family's renderer for
its prefixes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from flask import Flask, Response, current_app, jsonify, request
from markupsafe import escape
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge
from werkzeug.routing import IntegerConverter

from autocheckin.database import MAX_DB_INTEGER, UNAVAILABLE_ERRORS, outage_summary
from autocheckin.errors import ServiceError, Unprocessable, status_of, status_table
from autocheckin.extensions import db
from autocheckin.logs import logged_path
from autocheckin.times import iso, utcnow

log = logging.getLogger(__name__)

__all__ = ["Unprocessable", "status_of", "status_table"]  # the kinds' table, re-exported

# render(status, message, code, details) -> Response
ErrorRenderer = Callable[[int, str, str, str | None], Response]


HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    412: "precondition_failed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "unprocessable",
    429: "rate_limited",
    500: "internal_error",
    501: "not_implemented",
    503: "unavailable",
}


def render_v1_error(status: int, message: str, code: str, details: str | None) -> Response:
    """The AutoCheckin API shape: {"success": false, "message": "API Error", "error": …}."""
    body = {"success": False, "message": "API Error", "error": message, "code": code}
    response = jsonify(body)
    response.status_code = status
    return response


# The events, accounts and Discord families answer errors as FastAPI did.
DETAIL_PREFIXES = ("/auth", "/users", "/events", "/discord")


def render_detail_error(status: int, message: str, code: str, details: str | None) -> Response:
    """FastAPI's shape, which these clients were written against: {"detail": …}."""
    response = jsonify({"detail": message})
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = "Bearer"
    return response


# The integration guide's shape, for its families (integrations, its login, and the
# outbound webhook subscriptions: `/api/webhooks` is longer than the inbound family's
# `/api/webhook`, so the longest-prefix rule gives it this shape).
INTEGRATION_PREFIXES = ("/api/integrations", "/api/auth", "/api/webhooks")


def render_integration_error(status: int, message: str, code: str, details: str | None) -> Response:
    """The integration guide's shape: {"detail", "status_code", "timestamp"}, plus `code`."""
    body = {"detail": message, "status_code": status, "timestamp": iso(utcnow()), "code": code}
    response = jsonify(body)
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = "Bearer"
    return response


def render_page_error(status: int, message: str, code: str, details: str | None) -> Response:
    """The dashboard's errors: a small HTML page a person can read."""
    page = (
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{status}</title>"
        f"</head><body><h1>{status}</h1><p>{escape(message)}</p>"
        "<p><a href='/dashboard/'>Dashboard</a></p></body></html>"
    )
    return Response(page, status=status, content_type="text/html; charset=utf-8")


def register_error_renderer(app: Flask, prefix: str, renderer: ErrorRenderer) -> None:
    """Use `renderer` for every error under `prefix` in `app` (longest prefix wins)."""
    renderers = app.extensions.setdefault("error_renderers", {})
    renderers[prefix] = renderer
    app.extensions["error_prefixes"] = sorted(renderers, key=len, reverse=True)


def error_response(status: int, message: str, code: str | None = None, details=None) -> Response:
    """Render an error in the shape of the family the current request belongs to."""
    path = request.path if request else "/"
    code = code or HTTP_CODES.get(status, "error")
    for prefix in current_app.extensions.get("error_prefixes", ()):
        if path.startswith(prefix):
            renderer = current_app.extensions["error_renderers"][prefix]
            return renderer(status, message, code, details)
    return render_v1_error(status, message, code, details)


def http_error_response(error: HTTPException) -> Response:
    message = error.description or error.name
    response = error_response(error.code or 500, message)
    if error.code == 405 and getattr(error, "valid_methods", None):
        response.headers["Allow"] = ", ".join(error.valid_methods)
    retry_after = dict(error.get_headers()).get("Retry-After")
    if retry_after:
        response.headers["Retry-After"] = retry_after
    response.headers.update(getattr(error, "rate_limit_headers", {}))
    return response


def _service_error(error: ServiceError) -> Response:
    return error_response(status_of(error), error.message, error.code, error.details)


def _database_unavailable(error: Exception) -> Response:
    """An outage, not a bug: 503 in the family's shape, one log line, no traceback."""
    log.warning(
        "database unavailable on %s %s: %s", request.method, logged_path(), outage_summary(error)
    )
    db.session.rollback()
    response = error_response(
        503, "Database unavailable; try again shortly", "database_unavailable"
    )
    response.headers["Retry-After"] = "5"
    return response


def _unexpected_error(error: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, logged_path())
    return error_response(500, "Internal server error")


def _reject_oversized_body() -> None:
    """413 up front from Content-Length, even on routes that never read the body."""
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    if request.content_length is not None and request.content_length > limit:
        raise RequestEntityTooLarge(f"Request body is larger than the {limit}-byte limit")


class DatabaseIdConverter(IntegerConverter):
    """`<int:…>` limited to the database's integer range: a larger id is no route (404),
    not a query PostgreSQL refuses with "integer out of range" (500)."""

    def __init__(self, url_map, fixed_digits=0, min=1, max=MAX_DB_INTEGER, signed=False):  # noqa: A002
        super().__init__(url_map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)


def register_error_handlers(app: Flask) -> None:
    app.url_map.converters["int"] = DatabaseIdConverter
    app.before_request(_reject_oversized_body)
    app.register_error_handler(HTTPException, http_error_response)
    app.register_error_handler(ServiceError, _service_error)
    for error_class in UNAVAILABLE_ERRORS:
        app.register_error_handler(error_class, _database_unavailable)
    app.register_error_handler(Exception, _unexpected_error)
