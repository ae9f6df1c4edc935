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
