"""Service-level routes: API info, health and the OpenAPI document."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify
from sqlalchemy import text

from autocheckin import __version__
from autocheckin.api import schemas
from autocheckin.api.openapi import build_spec, documented
from autocheckin.api.v1 import success
from autocheckin.database import outage_summary
from autocheckin.extensions import db

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
        {"name": "AutoCheckin", "version": __version__, "endpoints": endpoints},
    )


@bp.get("/health")
@documented("Liveness and database reachability", response=schemas.Health, errors=(503,))
def health() -> tuple[Response, int]:
    try:
        db.session.execute(text("SELECT 1"))
    except Exception as error:  # noqa: BLE001 - any database failure means unhealthy, never a 500
        summary = outage_summary(error)
        current_app.logger.warning("health check: database unreachable: %s", summary)
        db.session.rollback()
        body = {"status": "unhealthy", "database": "unreachable", "failed": ["database"]}
        return jsonify({**body, "error": summary}), 503
    return jsonify({"status": "healthy", "database": "ok"}), 200


@bp.get("/openapi.json")
@documented("This OpenAPI document")
def openapi() -> Response:
    return jsonify(build_spec(current_app))
