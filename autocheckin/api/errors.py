"""JSON errors everywhere: one renderer per API family, chosen by path prefix.

Routing errors (404, 405) happen before any blueprint is known, so the family is
picked from the URL. Each family module registers its renderer here once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from flask import Flask, Response, current_app, jsonify, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge
from werkzeug.routing import IntegerConverter

from autocheckin.attendance.errors import DomainError
from autocheckin.database import MAX_DB_INTEGER, UNAVAILABLE_ERRORS, outage_summary
from autocheckin.extensions import db

log = logging.getLogger(__name__)

# render(status, message, code, details) -> Response
ErrorRenderer = Callable[[int, str, str, str | None], Response]

_renderers: dict[str, ErrorRenderer] = {}

HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "unprocessable",
    429: "rate_limited",
    500: "internal_error",
    503: "unavailable",
}


def render_v1_error(status: int, message: str, code: str, details: str | None) -> Response:
    """The AutoCheckin API shape: {"success": false, "message": "API Error", "error": …}."""
    body = {"success": False, "message": "API Error", "error": message, "code": code}
    response = jsonify(body)
    response.status_code = status
    return response


def register_error_renderer(prefix: str, renderer: ErrorRenderer) -> None:
    """Use `renderer` for every error under `prefix` (longest prefix wins)."""
    _renderers[prefix] = renderer


def error_response(status: int, message: str, code: str | None = None, details=None) -> Response:
    """Render an error in the shape of the family the current request belongs to."""
    path = request.path if request else "/"
    for prefix in sorted(_renderers, key=len, reverse=True):
        if path.startswith(prefix):
            renderer = _renderers[prefix]
            return renderer(status, message, code or HTTP_CODES.get(status, "error"), details)
    return render_v1_error(status, message, code or HTTP_CODES.get(status, "error"), details)


def http_error_response(error: HTTPException) -> Response:
    message = error.description or error.name
    response = error_response(error.code or 500, message)
    if error.code == 405 and getattr(error, "valid_methods", None):
        response.headers["Allow"] = ", ".join(error.valid_methods)
    retry_after = dict(error.get_headers()).get("Retry-After")
    if retry_after:
        response.headers["Retry-After"] = retry_after
    return response


def _domain_error(error: DomainError) -> Response:
    return error_response(error.status, error.message, error.code, error.details)


def _database_unavailable(error: Exception) -> Response:
    """An outage, not a bug: 503 in the family's shape, one log line, no traceback."""
    log.warning(
        "database unavailable on %s %s: %s", request.method, request.path, outage_summary(error)
    )
    db.session.rollback()
    response = error_response(
        503, "Database unavailable; try again shortly", "database_unavailable"
    )
    response.headers["Retry-After"] = "5"
    return response


def _unexpected_error(error: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.path)
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
    app.register_error_handler(DomainError, _domain_error)
    for error_class in UNAVAILABLE_ERRORS:
        app.register_error_handler(error_class, _database_unavailable)
    app.register_error_handler(Exception, _unexpected_error)
