"""Every error the app can produce is JSON in the family's shape, never an HTML page."""

from __future__ import annotations

from flask import Blueprint, request


def test_unknown_route_is_json_404(client):
    response = client.get("/no/such/thing")
    assert response.status_code == 404
    assert response.is_json
    body = response.get_json()
    assert body["success"] is False
    assert body["code"] == "not_found"


def test_wrong_method_is_json_405_with_allow(client, auth_headers):
    response = client.delete("/api/v1/state", headers=auth_headers)
    assert response.status_code == 405
    assert response.get_json()["code"] == "method_not_allowed"
    assert "GET" in response.headers["Allow"]


def test_oversized_body_is_json_413_even_where_the_body_is_never_read(make_app):
    client = make_app(MAX_CONTENT_LENGTH="2048").test_client()
    response = client.post("/api/v1/auth/test", data=b"x" * 4096)
    assert response.status_code == 413
    assert response.get_json()["code"] == "payload_too_large"


def _app_with_probe_routes(make_app):
    app = make_app()
    probe = Blueprint("probe", __name__)

    @probe.post("/probe/json")
    def needs_json():
        return {"got": request.get_json()}

    @probe.get("/probe/crash")
    def crash():
        raise RuntimeError("boom: secret internals")

    app.register_blueprint(probe)
    return app


def test_wrong_content_type_is_json_415(make_app):
    client = _app_with_probe_routes(make_app).test_client()
    response = client.post("/probe/json", data="a=1", content_type="text/plain")
    assert response.status_code == 415
    assert response.get_json()["code"] == "unsupported_media_type"


def test_malformed_json_is_json_400(make_app):
    client = _app_with_probe_routes(make_app).test_client()
    response = client.post("/probe/json", data="{nope", content_type="application/json")
    assert response.status_code == 400
    assert response.get_json()["code"] == "bad_request"


def test_unexpected_exception_is_json_500_without_internals(make_app):
    client = _app_with_probe_routes(make_app).test_client()
    response = client.get("/probe/crash")
    assert response.status_code == 500
    body = response.get_json()
    assert body == {
        "success": False,
        "message": "API Error",
        "error": "Internal server error",
        "code": "internal_error",
    }


def test_out_of_range_ids_are_404_on_every_id_route(app, client, auth_headers):
    """PostgreSQL's integer ends at 2**31 - 1; a larger id must not reach a query."""
    too_big = str(2**31)
    routes = [rule for rule in app.url_map.iter_rules() if "<int:" in rule.rule]
    assert routes
    for rule in routes:
        path = rule.rule
        for name in rule.arguments:
            path = path.replace(f"<int:{name}>", too_big)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            response = client.open(path, method=method, headers=auth_headers)
            # No route: 404, or 405 where Werkzeug's matcher reports another method's rule.
            assert response.status_code in (404, 405), (method, path, response.get_json())
    assert client.get(f"/events/{2**31 - 1}").get_json() == {"detail": "Event not found"}


def _every_subclass(kind: type) -> list[type]:
    return [sub for direct in kind.__subclasses__() for sub in (direct, *_every_subclass(direct))]


def test_errors_carry_no_status_and_each_kind_has_one_in_the_api_layer(app):
    """Errors say what went wrong; `api/errors.py` alone says which status that is."""
    from autocheckin.api.errors import status_of, status_table
    from autocheckin.errors import ServiceError

    kinds = _every_subclass(ServiceError)
    assert len(kinds) >= 15  # the app is built: every package's errors are imported
    for kind in kinds:
        assert "status" not in vars(kind), f"{kind.__qualname__} carries an HTTP status"
        nearest = next(k for k in kind.__mro__ if k in status_table())
        assert nearest is not ServiceError, f"{kind.__qualname__} has no status of its own kind"
    from autocheckin.attendance.errors import AlreadyCheckedIn, NotFound
    from autocheckin.sync.connection import UpstreamNotConfigured

    assert status_of(NotFound("x")) == 404
    assert status_of(AlreadyCheckedIn("x")) == 400
    assert status_of(UpstreamNotConfigured("x")) == 503  # as its kind, NotConfigured


def test_other_packages_errors_do_not_derive_from_the_cores(app):
    from autocheckin.attendance.errors import DomainError

    outside = [
        kind for kind in _every_subclass(DomainError) if kind.__module__ != DomainError.__module__
    ]
    assert outside == []


def test_each_app_has_its_own_renderers(make_app):
    """Registered by create_app, not at import: an app built without them renders the
    AutoCheckin API's shape everywhere."""
    from flask import Flask

    from autocheckin.api.errors import error_response

    bare = Flask("bare")
    with bare.test_request_context("/events/1"):
        assert error_response(404, "nope").get_json()["message"] == "API Error"
    app = make_app()
    with app.test_request_context("/events/1"):
        assert error_response(404, "nope").get_json() == {"detail": "nope"}
    with app.test_request_context("/api/webhook/onetap/students"):
        assert error_response(404, "nope").get_json()["error"] == "nope"
