"""The Discord endpoints, the source's integration flow, and the example bot's commands."""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from datetime import timedelta
from pathlib import Path

import requests

from autocheckin.times import iso, utcnow

DISCORD_ID = "123456789012345678"
ROOT = Path(__file__).resolve().parent.parent


def load_bot():
    spec = importlib.util.spec_from_file_location(
        "discord_bot", ROOT / "examples" / "discord_bot.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it loads
    spec.loader.exec_module(module)
    return module


def web_user(base: str) -> dict[str, str]:
    body = {"email": "host@example.com", "name": "Host", "password": "long enough pw"}
    requests.post(f"{base}/auth/register", json=body, timeout=5)
    token = requests.post(f"{base}/auth/login", json=body, timeout=5).json()["access_token"]
    return {"Authorization": f"Bearer {token}"}


def test_source_integration_flow(live_server):
    """Register a Discord user; as a logged-in user create a past, a future and an active
    event; check their statuses; attend; read the history (the source's test flow)."""
    base = live_server
    user_data = {
        "name": "John Doe",
        "discord_user_id": DISCORD_ID,
        "discord_username": "johndoe#1234",
    }
    response = requests.post(f"{base}/discord/users/register", json=user_data, timeout=10)
    assert response.status_code == 200
    assert {k: response.json()[k] for k in user_data} == user_data
    again = requests.post(f"{base}/discord/users/register", json=user_data, timeout=10)
    assert (again.status_code, again.json()["id"]) == (200, response.json()["id"])

    headers = web_user(base)
    now = utcnow()
    windows = {
        "past": (now - timedelta(hours=3), now - timedelta(hours=2)),
        "future": (now + timedelta(hours=2), now + timedelta(hours=3)),
        "active": (now - timedelta(minutes=10), now + timedelta(hours=1)),
    }
    ids = {}
    for label, (start, end) in windows.items():
        event_data = {
            "title": f"{label.title()} Meetup",
            "description": "Weekly technical discussion",
            "start_time": iso(start),
            "end_time": iso(end),
            "discord_channel_id": "555",
        }
        created = requests.post(f"{base}/events/", json=event_data, headers=headers, timeout=10)
        assert created.status_code == 201
        ids[label] = created.json()["id"]

    statuses = {
        label: requests.get(f"{base}/discord/event/{ids[label]}/status", timeout=10).json()
        for label in ids
    }
    assert {label: s["status"] for label, s in statuses.items()} == {
        "past": "ended",
        "future": "upcoming",
        "active": "active",
    }
    assert statuses["active"]["can_attend"] is True
    assert statuses["active"]["time_until_end"] > 0

    attend = lambda event_id: requests.post(  # noqa: E731 - the source's own call, as written
        f"{base}/discord/attend/{event_id}", params={"discord_user_id": DISCORD_ID}, timeout=10
    )
    ok = attend(ids["active"])
    assert ok.status_code == 200
    assert ok.json() == {
        "success": True,
        "message": "Successfully attended 'Active Meetup'!",
        "event": {
            "id": ids["active"],
            "title": "Active Meetup",
            "end_time": iso(windows["active"][1]),
        },
        "user": {"name": "John Doe", "discord_username": "johndoe#1234"},
    }
    second = attend(ids["active"]).json()
    assert (second["success"], second["message"]) == (
        False,
        "Student already checked in to this event",
    )
    early = attend(ids["future"]).json()
    assert early["success"] is False and early["message"].startswith("Event hasn't started yet")
    assert early["event_status"]["status"] == "upcoming"
    late = attend(ids["past"]).json()
    assert (late["success"], late["message"]) == (False, "Event has already ended")

    history = requests.get(f"{base}/discord/attendance/{DISCORD_ID}", timeout=10).json()
    assert history["total_attended"] == 1
    assert history["attended_events"][0]["title"] == "Active Meetup"
    assert [e["id"] for e in requests.get(f"{base}/discord/events/active", timeout=10).json()] == [
        ids["active"]
    ]
    assert len(requests.get(f"{base}/discord/events/channel/555", timeout=10).json()) == 3
    attendees = requests.get(f"{base}/discord/event/{ids['active']}/attendees", timeout=10).json()
    assert (
        attendees["total"] == 1 and attendees["attendees"][0]["discord_username"] == "johndoe#1234"
    )


def test_the_sources_aiohttp_bot_example(live_server):
    """004's DiscordBot class, unchanged, pointed at a live server."""
    from tests.guide_clients import DiscordBot

    requests.post(
        f"{live_server}/discord/users/register",
        json={"name": "John Doe", "discord_user_id": DISCORD_ID},
        timeout=10,
    )
    now = utcnow()
    event = requests.post(
        f"{live_server}/events/",
        json={
            "title": "Standup",
            "start_time": iso(now),
            "end_time": iso(now + timedelta(hours=1)),
        },
        headers=web_user(live_server),
        timeout=10,
    ).json()
    bot = DiscordBot(api_base_url=live_server)
    first = asyncio.run(bot.attend_event(DISCORD_ID, event["id"]))
    assert (first["success"], first["message"]) == (True, "Successfully attended 'Standup'!")
    second = asyncio.run(bot.attend_event(DISCORD_ID, event["id"]))
    assert second["success"] is False


def test_unknown_user_event_and_bad_input(client):
    client.post("/discord/users/register", json={"name": "A", "discord_user_id": "1"})
    unknown = client.post("/discord/attend/1?discord_user_id=999")
    assert unknown.status_code == 404
    assert unknown.get_json() == {"detail": "Discord user not registered. Please register first."}
    assert client.get("/discord/users/999").status_code == 404
    assert client.get("/discord/attendance/999").status_code == 404
    no_event = client.post("/discord/attend/77?discord_user_id=1")
    assert no_event.get_json() == {"detail": "Event not found"}
    assert client.post("/discord/attend/77").status_code == 422
    assert (
        client.post(
            "/discord/users/register", json={"name": "A", "discord_user_id": "abc"}
        ).status_code
        == 422
    )
    assert client.post("/discord/users/register", json=[1]).status_code == 422
    assert client.get("/discord/event/5/status").status_code == 404


def test_discord_api_key_when_configured(make_app):
    client = make_app(DISCORD_API_KEY="bot-key").test_client()
    body = {"name": "A", "discord_user_id": "1"}
    assert client.post("/discord/users/register", json=body).status_code == 401
    ok = client.post("/discord/users/register", json=body, headers={"X-Discord-Key": "bot-key"})
    assert ok.status_code == 200


def test_example_bot_commands(live_server):
    bot = load_bot()
    handler = bot.CommandHandler(bot.AutoCheckinAPI(live_server))
    me = bot.Author(DISCORD_ID, "Ann", "ann#0001")
    assert handler.handle(me, "hello there") is None
    assert "!attend" in handler.handle(me, "!help")
    assert handler.handle(me, "!status") == "Discord user not registered. Please register first."
    assert (
        handler.handle(me, "!register Ann Lee")
        == "Registered as Ann Lee. Use `!events` to see what's on."
    )
    assert handler.handle(me, "!events") == "No events are open for check-in right now."
    headers = web_user(live_server)
    now = utcnow()
    event = requests.post(
        f"{live_server}/events/",
        json={
            "title": "Standup",
            "start_time": iso(now),
            "end_time": iso(now + timedelta(hours=1)),
        },
        headers=headers,
        timeout=10,
    ).json()
    assert f"`{event['id']}` **Standup**" in handler.handle(me, "!events")
    assert handler.handle(me, "!attend") == "Usage: `!attend <event_id>` (see `!events`)."
    assert handler.handle(me, f"!attend {event['id']}") == "✅ Successfully attended 'Standup'!"
    assert (
        handler.handle(me, f"!attend {event['id']}")
        == "⛔ Student already checked in to this event"
    )
    assert handler.handle(me, "!attend 999") == "Event not found"
    assert handler.handle(me, "!status").startswith("You attended 1 events:\n• Standup (present")


def test_example_bot_survives_an_unreachable_api():
    bot = load_bot()
    handler = bot.CommandHandler(bot.AutoCheckinAPI("http://127.0.0.1:9", timeout=1))
    assert "unreachable" in handler.handle(bot.Author("1", "A", "a"), "!events")
