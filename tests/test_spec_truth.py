"""/openapi.json tells the truth: the statuses guards answer, the refused characters, and
the requests that once answered 500."""

from __future__ import annotations

import re

from autocheckin.validation import CONTROL_CHARACTER, CONTROL_CHARACTER_FREE


def test_a_discord_attend_body_that_is_not_an_object_is_422_not_500(client):
    for body in ("[null, null]", '"text"', "3"):
        answer = client.post("/events/discord/attend", data=body, content_type="application/json")
        assert answer.status_code == 422, body
        assert answer.get_json() == {"detail": "Request body must be a JSON object"}


def test_the_declared_pattern_refuses_what_the_runtime_refuses():
    declared = re.compile(CONTROL_CHARACTER_FREE)
    for code in range(0xD800):
        character = chr(code)
        assert bool(declared.search(f"a{character}b")) != bool(CONTROL_CHARACTER.search(character))


def test_guards_declare_their_statuses(client):
    paths = client.get("/openapi.json").get_json()["paths"]
    discord = paths["/discord/users/{discord_user_id}"]["get"]["responses"]
    assert {"401", "503"} <= discord.keys()
    planned = paths["/api/integrations/calendar/google/sync"]["post"]["responses"]
    assert {"501", "401", "403", "429"} <= planned.keys()
    dashboard = paths["/dashboard/"]["get"]["responses"]
    assert "503" in dashboard
    auth_test = paths["/api/v1/auth/test"]["get"]
    assert {} in auth_test["security"] and "401" not in auth_test["responses"]
    assert {"401", "429", "503"} <= paths["/api/v1/state"]["get"]["responses"].keys()


def test_request_schemas_declare_the_control_character_refusal(client):
    spec = client.get("/openapi.json").get_json()
    event = spec["components"]["schemas"]["EventCreate-Input"]
    assert event["properties"]["title"]["pattern"] == CONTROL_CHARACTER_FREE
    assert event["propertyNames"] == {"pattern": CONTROL_CHARACTER_FREE}
    assert event["additionalProperties"] == {"$ref": "#/components/schemas/CleanJSON"}
    channel = spec["paths"]["/events/"]["get"]["parameters"]
    assert any(
        branch.get("pattern") == CONTROL_CHARACTER_FREE
        for parameter in channel
        if parameter["name"] == "channel"
        for branch in parameter["schema"]["anyOf"]
    )


def test_a_control_character_is_refused_as_declared(client):
    answer = client.get("/events/", query_string={"channel": "a\x01"})
    assert answer.status_code == 422
    assert answer.get_json() == {
        "detail": "Invalid value for channel: control characters are not allowed"
    }


def test_a_date_is_iso_text_never_a_number(client):
    assert client.get("/events/", query_string={"to": "0.5"}).status_code == 422
    assert client.get("/events/", query_string={"to": "2024-01-15T10:00:00Z"}).status_code == 200
