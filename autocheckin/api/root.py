"""Service-level routes: API info, health, the OpenAPI document and its `/docs`."""

from __future__ import annotations

from pathlib import Path

import swagger_ui
from flask import Blueprint, Response, current_app, jsonify, request, send_from_directory
from werkzeug.exceptions import NotFound

from autocheckin import metrics
from autocheckin.api import schemas
from autocheckin.api.openapi import build_spec, documented
from autocheckin.api.security import key_accepted
from autocheckin.api.v1 import success
from autocheckin.auth import api_keys
from autocheckin.auth.errors import Unauthorized
from autocheckin.auth.keys import key_matches
from autocheckin.database import database_problem
from autocheckin.errors import NotConfigured
from autocheckin.extensions import db
from autocheckin.version import __version__

bp = Blueprint("root", __name__)


@bp.get("/")
@documented("API information and the endpoint list", response=schemas.ApiInfoResponse)
def index() -> Response:
    endpoints: dict[str, list[str]] = {}
    for rule in sorted(current_app.url_map.iter_rules(), key=lambda r: r.rule):
        methods = sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})
        endpoints.setdefault(rule.rule, []).extend(methods)
    return success(
        "Welcome to AutoCheckin API",
        {"name": "AutoCheckin", "version": __version__, "docs": "/docs", "endpoints": endpoints},
    )


@bp.get("/health")
@documented("Liveness and database reachability", response=schemas.Health, errors=(503,))
def health() -> tuple[Response, int]:
    """503 within DATABASE_HEALTH_TIMEOUT when the database does not answer: the probe runs
    on a thread of its own, so a hung database never holds this request's thread."""
    problem = database_problem(db.engine, timeout=current_app.config["DATABASE_HEALTH_TIMEOUT"])
    if problem is not None:
        current_app.logger.warning("health check: database unreachable: %s", problem)
        body = {"status": "unhealthy", "database": "unreachable", "failed": ["database"]}
        return jsonify({**body, "error": problem}), 503
    return jsonify({"status": "healthy", "database": "ok"}), 200


@bp.get("/metrics")
@documented("Prometheus metrics (x-checkout-key, or Bearer METRICS_TOKEN)", errors=(401, 503))
def prometheus_metrics() -> Response:
    _require_metrics_credentials()
    return metrics.exposition()


def _require_metrics_credentials() -> None:
    """An API key, or the scraper's own token: the metrics name routes and volumes."""
    config = current_app.config
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if config["METRICS_TOKEN"] and scheme.lower() == "bearer":
        if key_matches(token.strip(), config["METRICS_TOKEN"]):
            return
    elif request.headers.get("x-checkout-key"):
        if key_accepted(request.headers.get("x-checkout-key"), config["CHECKOUT_API_KEY"]):
            return
    elif not (config["CHECKOUT_API_KEY"] or config["METRICS_TOKEN"] or api_keys.any_live()):
        raise NotConfigured("Set CHECKOUT_API_KEY or METRICS_TOKEN to read the metrics")
    raise Unauthorized("Send x-checkout-key or Authorization: Bearer METRICS_TOKEN")


@bp.get("/openapi.json")
@documented("This OpenAPI document")
def openapi() -> Response:
    return jsonify(build_spec(current_app))


# /docs: Swagger UI's files from the swagger-ui-py package (nothing from a CDN), started by
# our own same-origin docs.js, since the HTML policy allows no inline script.
SWAGGER_UI = Path(swagger_ui.__file__).parent / "static"
DOCS_INITIALISER = Path(__file__).parent / "static"
DOCS_ASSETS = {
    "swagger-ui.css": (SWAGGER_UI, "text/css"),
    "swagger-ui-bundle.js": (SWAGGER_UI, "text/javascript"),
    "swagger-ui-standalone-preset.js": (SWAGGER_UI, "text/javascript"),
    "favicon-32x32.png": (SWAGGER_UI, "image/png"),
    "docs.js": (DOCS_INITIALISER, "text/javascript"),
}
DOCS_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>AutoCheckin API</title>
<link rel="stylesheet" href="/docs/swagger-ui.css">
<link rel="icon" type="image/png" href="/docs/favicon-32x32.png">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/docs/swagger-ui-bundle.js"></script>
<script src="/docs/swagger-ui-standalone-preset.js"></script>
<script src="/docs/docs.js"></script>
</body>
</html>
"""


@bp.get("/docs")
@documented("Interactive documentation of /openapi.json (Swagger UI)", produces="text/html")
def docs() -> Response:
    return Response(DOCS_PAGE, content_type="text/html; charset=utf-8")


@bp.get("/docs/<name>")
@documented(
    "The files /docs loads (Swagger UI's, from its package, and its initialiser)",
    produces=("text/javascript", "text/css", "image/png"),
    errors=(404,),
)
def docs_asset(name: str) -> Response:
    if name not in DOCS_ASSETS:
        raise NotFound()
    folder, mimetype = DOCS_ASSETS[name]
    return send_from_directory(folder, name, mimetype=mimetype, max_age=3600)
