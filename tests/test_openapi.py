"""/openapi.json describes every route that exists and nothing that does not."""

from __future__ import annotations

import re


def test_every_route_is_documented_and_nothing_else(app, client):
    spec = client.get("/openapi.json").get_json()
    assert spec["openapi"].startswith("3.")
    documented = {
        (path, method.upper())
        for path, operations in spec["paths"].items()
        for method in operations
    }
    routed = set()
    for rule in app.url_map.iter_rules():
        path = re.sub(r"<(?:\w+(?:\([^)]*\))?:)?(\w+)>", r"{\1}", rule.rule)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            routed.add((path, method))
    assert documented == routed


def test_models_are_resolvable_components(client):
    spec = client.get("/openapi.json").get_json()
    text = client.get("/openapi.json").get_data(as_text=True)
    for name in re.findall(r'"#/components/schemas/([^"]+)"', text):
        assert name in spec["components"]["schemas"], name
    state = spec["paths"]["/api/v1/state"]["get"]
    assert state["security"] == [{"checkoutKey": []}]


def test_an_answer_the_spec_does_not_describe_is_caught(database_url):
    """The check every test app runs (tests/spec_check.py) can fail."""
    from flask import jsonify

    from autocheckin import create_app
    from autocheckin.api.openapi import documented
    from autocheckin.api.representations import AdminCheck
    from tests.conftest import base_config
    from tests.spec_check import check_answers

    app = create_app(base_config(database_url))

    @app.get("/discord/admin/lying")
    @documented("Says it answers an AdminCheck", response=AdminCheck)
    def lying():
        return jsonify({"is_admin": "yes", "user_name": "Ann"})

    mismatches: list[str] = []
    check_answers(app, mismatches)
    app.test_client().get("/discord/admin/lying")
    assert any(
        "is_admin" in line and "'yes' is not of type 'boolean'" in line for line in mismatches
    )
    assert any("'discord_username' is a required property" in line for line in mismatches)


def test_every_json_route_declares_what_it_answers(client):
    """Only the answers that are not JSON objects of ours go undescribed."""
    spec = client.get("/openapi.json").get_json()
    undescribed = sorted(
        f"{method.upper()} {path}"
        for path, operations in spec["paths"].items()
        for method, operation in operations.items()
        if not any("content" in answer for answer in operation["responses"].values())
        and "204" not in operation["responses"]  # no content is what it says
        and "302" not in operation["responses"]  # a form's redirect, likewise
    )
    # Prometheus text, the spec itself, and the dashboard's static files.
    assert undescribed == [
        "GET /dashboard/static/{filename}",
        "GET /metrics",
        "GET /openapi.json",
    ]
