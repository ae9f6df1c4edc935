"""Each command of the reference Discord bots (the slash-command cog and the `!` example),
as the HTTP calls it makes, with the parameters it sends and the fields it reads: its
success path and each refusal it shows."""

from __future__ import annotations

from datetime import timedelta

import pytest

from autocheckin.attendance.models import Attendance
from autocheckin.extensions import db
from autocheckin.times import iso, utcnow
from tests.helpers import bearer, login, make_event, register

ADMIN_PASSWORD = "discord-admin-password-42"
ANN, BOB, CAT = "111111111111111111", "222222222222222222", "333333333333333333"


@pytest.fixture
def bot_app(make_app):
    return make_app(DISCORD_ADMIN_PASSWORD=ADMIN_PASSWORD)


@pytest.fixture
def bot(bot_app):
    return bot_app.test_client()


def join(bot, discord_user_id: str, name: str, username: str | None = None):
    body = {"name": name, "discord_user_id": discord_user_id, "discord_username": username}
    return bot.post("/discord/users/register", json=body)


def make_admin(bot, discord_user_id: str = ANN):
    body = {"discord_user_id": discord_user_id, "password": ADMIN_PASSWORD}
    return bot.post("/discord/admin/make-admin", json=body)


def running_event(app, name="Lab", **overrides):
    with app.app_context():
        return make_event(
            name=name,
            start_time=overrides.pop("start_time", utcnow() - timedelta(minutes=5)),
            end_time=overrides.pop("end_time", utcnow() + timedelta(hours=1)),
            **overrides,
        ).id


def test_register_is_200_and_updates_a_known_id(bot):
    first = join(bot, ANN, "Ann Lee", "ann#1")
    assert first.status_code == 200
    assert first.get_json()["message"] == "Registered successfully"
    again = join(bot, ANN, "Ann Leigh", "ann#2")
    assert again.status_code == 200
    body = again.get_json()
    assert (body["id"], body["name"], body["discord_username"]) == (
        first.get_json()["id"],
        "Ann Leigh",
        "ann#2",
    )
    assert body["message"] == "Already registered; details updated"


def test_status_shows_the_user_and_the_events(bot_app, bot):
    join(bot, ANN, "Ann Lee", "ann#1")
    event_id = running_event(bot_app)
    bot.post(f"/discord/attend/{event_id}?discord_user_id={ANN}")
    body = bot.get(f"/discord/attendance/{ANN}").get_json()
    assert body["user"] == {"name": "Ann Lee", "discord_user_id": ANN, "discord_username": "ann#1"}
    assert body["total_attended"] == 1
    item = body["attended_events"][0]
    assert (item["id"], item["event_id"], item["title"]) == (event_id, event_id, "Lab")
    assert item["start_time"] and item["end_time"]
    missing = bot.get(f"/discord/attendance/{BOB}")
    assert missing.status_code == 404
    assert missing.get_json() == {"detail": "Discord user not registered. Please register first."}


def test_clock_in_to_the_one_running_event(bot_app, bot):
    assert bot.post(f"/discord/attend/auto?discord_user_id={ANN}").get_json() == {
        "success": False,
        "message": "Discord user not registered. Please register first.",
    }
    join(bot, ANN, "Ann Lee")
    nothing = bot.post(f"/discord/attend/auto?discord_user_id={ANN}").get_json()
    assert nothing == {"success": False, "message": "No event is running right now"}
    with bot_app.app_context():
        make_event(name="Open all day")  # no end: always open, never "running"
    event_id = running_event(bot_app)
    done = bot.post(f"/discord/attend/auto?discord_user_id={ANN}").get_json()
    assert done == {
        "success": True,
        "message": "Successfully attended 'Lab'!",
        "event": {"id": event_id, "title": "Lab"},
    }
    twice = bot.post(f"/discord/attend/auto?discord_user_id={ANN}").get_json()
    assert twice == {"success": False, "message": "Student already checked in to this event"}
    running_event(bot_app, name="Workshop")
    several = bot.post(f"/discord/attend/auto?discord_user_id={ANN}").get_json()
    assert several["success"] is False
    assert "Several events are running" in several["message"]
    assert {event["title"] for event in several["events"]} == {"Lab", "Workshop"}


def test_make_admin_needs_the_configured_password(make_app, bot):
    join(bot, ANN, "Ann Lee")
    wrong = bot.post("/discord/admin/make-admin", json={"discord_user_id": ANN, "password": "123"})
    assert wrong.status_code == 403
    assert wrong.get_json() == {"detail": "Wrong admin password"}
    made = make_admin(bot)
    assert made.status_code == 200
    assert made.get_json()["success"] is True
    assert made.get_json()["user"]["is_admin"] is True
    assert make_admin(bot, BOB).status_code == 404
    closed = make_app().test_client()  # no DISCORD_ADMIN_PASSWORD: never a built-in default
    join(closed, CAT, "Cat")
    refused = closed.post(
        "/discord/admin/make-admin", json={"discord_user_id": CAT, "password": "123"}
    )
    assert refused.status_code == 503
    assert "DISCORD_ADMIN_PASSWORD" in refused.get_json()["detail"]


def test_make_admin_guesses_are_limited(bot):
    join(bot, ANN, "Ann Lee")
    statuses = [
        bot.post(
            "/discord/admin/make-admin", json={"discord_user_id": ANN, "password": f"g{n}"}
        ).status_code
        for n in range(6)
    ]
    assert statuses == [403] * 5 + [429]
    assert make_admin(bot).status_code == 429  # even the right one, until the hour passes


def test_check_admin_is_a_post(bot):
    join(bot, ANN, "Ann Lee", "ann#1")
    answer = bot.post(f"/discord/admin/check-admin?discord_user_id={ANN}")
    assert answer.get_json() == {
        "is_admin": False,
        "user_name": "Ann Lee",
        "discord_username": "ann#1",
    }
    make_admin(bot)
    assert bot.post(f"/discord/admin/check-admin?discord_user_id={ANN}").get_json()["is_admin"]
    assert bot.post(f"/discord/admin/check-admin?discord_user_id={BOB}").status_code == 404


def test_upcoming_events_soonest_first(bot_app, bot):
    with bot_app.app_context():
        later = make_event(name="Later", start_time=utcnow() + timedelta(days=2)).id
        sooner = make_event(
            name="Sooner",
            start_time=utcnow() + timedelta(days=1),
            end_time=utcnow() + timedelta(days=1, hours=1),
            description="d",
        ).id
        make_event(name="Now")
    listed = bot.get("/discord/events/upcoming").get_json()
    assert [event["id"] for event in listed] == [sooner, later]
    assert set(listed[0]) == {"id", "title", "description", "start_time", "end_time"}


def test_list_users_is_for_admins(bot):
    join(bot, ANN, "Ann Lee", "ann#1")
    join(bot, BOB, "Bob Roe")
    assert bot.get(f"/discord/users/list?discord_user_id={ANN}").status_code == 403
    assert bot.get(f"/discord/users/list?discord_user_id={CAT}").status_code == 404
    make_admin(bot)
    body = bot.get(f"/discord/users/list?discord_user_id={ANN}&limit=1").get_json()
    assert body["total"] == 2
    assert body["users"] == [
        {
            "id": 1,
            "name": "Ann Lee",
            "is_admin": True,
            "discord_username": "ann#1",
            "discord_user_id": ANN,
        }
    ]


def test_create_event_is_for_admins_with_the_web_rules(bot):
    join(bot, ANN, "Ann Lee")
    start = utcnow() + timedelta(hours=1)
    body = {
        "title": "Bot event",
        "description": "from Discord",
        "start_time": iso(start),
        "end_time": iso(start + timedelta(hours=1)),
    }
    assert bot.post(f"/discord/events/create?discord_user_id={ANN}", json=body).status_code == 403
    assert bot.post(f"/discord/events/create?discord_user_id={BOB}", json=body).status_code == 404
    make_admin(bot)
    created = bot.post(f"/discord/events/create?discord_user_id={ANN}", json=body)
    assert created.status_code == 200
    assert created.get_json()["title"] == "Bot event"
    backwards = {**body, "end_time": iso(start - timedelta(hours=1))}
    refused = bot.post(f"/discord/events/create?discord_user_id={ANN}", json=backwards)
    assert refused.status_code == 422


def test_an_admin_checks_someone_in_by_name(bot_app, bot):
    join(bot, ANN, "Ann Lee")
    join(bot, BOB, "Bob Roe", "bobby")
    path = f"/discord/admin/attend-for-user?admin_discord_user_id={ANN}"
    assert bot.post(path, json={"target_name": "Bob Roe"}).status_code == 403
    make_admin(bot)
    event_id = running_event(bot_app)
    done = bot.post(path, json={"target_name": "BOBBY"}).get_json()
    assert done == {
        "success": True,
        "message": "Bob Roe attended 'Lab', checked in by Ann Lee",
        "admin_user": {"name": "Ann Lee"},
        "target_user": {"name": "Bob Roe", "discord_username": "bobby"},
        "event": {"id": event_id, "title": "Lab"},
    }
    with bot_app.app_context():
        stored = db.session.scalars(db.select(Attendance)).one()
        assert stored.check_in_metadata == {
            "checked_in_by": {"discord_user_id": ANN, "name": "Ann Lee"}
        }
        assert stored.source == "discord_admin"
    join(bot, CAT, "Bob Roe", "robert")
    ambiguous = bot.post(path, json={"target_name": "Bob Roe"}).get_json()
    assert ambiguous["success"] is False
    assert "bobby" in ambiguous["message"] and "robert" in ambiguous["message"]
    nobody = bot.post(path, json={"target_name": "Zed"}).get_json()
    assert nobody == {"success": False, "message": "Nobody is registered as Zed"}
    ended = running_event(
        bot_app,
        name="Old",
        start_time=utcnow() - timedelta(hours=3),
        end_time=utcnow() - timedelta(hours=2),
    )
    late = bot.post(path, json={"target_name": "robert", "event_id": ended}).get_json()
    assert late == {"success": False, "message": "Event has already ended"}


def test_events_family_discord_calls(bot_app, bot):
    join(bot, ANN, "Ann Lee")
    event_id = running_event(bot_app, discord_channel_id="42")
    assert [e["id"] for e in bot.get("/events/discord-channel/42").get_json()] == [event_id]
    unknown = bot.get(f"/events/discord/{ANN}/{event_id}/check-attendance").get_json()
    assert unknown["attended"] is False
    done = bot.post("/events/discord/attend", json={"discord_user_id": ANN, "event_id": event_id})
    assert done.get_json()["success"] is True
    by_query = bot.post(f"/events/discord/attend?discord_user_id={ANN}&event_id={event_id}")
    assert by_query.get_json() == {
        "success": False,
        "message": "Student already checked in to this event",
        "event_status": by_query.get_json()["event_status"],
    }
    seen = bot.get(f"/events/discord/{ANN}/{event_id}/check-attendance").get_json()
    assert (seen["attended"], seen["discord_user_id"]) == (True, ANN)
    assert bot.post("/events/discord/attend", json={"discord_user_id": ANN}).status_code == 422


def test_events_family_discord_calls_need_the_discord_key(make_app):
    client = make_app(DISCORD_ALLOW_KEYLESS=None).test_client()
    assert (
        client.post(
            "/events/discord/attend", json={"discord_user_id": ANN, "event_id": 1}
        ).status_code
        == 503
    )
    assert client.get(f"/events/discord/{ANN}/1/check-attendance").status_code == 503


def test_users_are_listed_for_web_admins(app, client, runner):
    register(client, email="ann@example.com", name="Ann Lee")
    register(client, email="bo@example.com", name="Bo")
    token = login(client, email="ann@example.com").get_json()["access_token"]
    assert client.get("/users/", headers=bearer(token)).status_code == 403
    runner.invoke(args=["users", "promote", "ann@example.com"])
    listed = client.get("/users/?limit=1", headers=bearer(token)).get_json()
    assert listed["total"] == 2 and len(listed["users"]) == 1
    assert client.get("/users/2", headers=bearer(token)).get_json()["name"] == "Bo"
    assert client.get("/users/99", headers=bearer(token)).status_code == 404
    assert client.get("/users/").status_code == 401


def test_the_operator_grants_and_revokes_discord_admins(bot, bot_app):
    runner = bot_app.test_cli_runner()
    join(bot, ANN, "Ann Lee")
    assert runner.invoke(args=["discord", "admin", "grant", ANN]).exit_code == 0
    assert bot.post(f"/discord/admin/check-admin?discord_user_id={ANN}").get_json()["is_admin"]
    assert runner.invoke(args=["discord", "admin", "revoke", ANN]).exit_code == 0
    assert not bot.post(f"/discord/admin/check-admin?discord_user_id={ANN}").get_json()["is_admin"]
    missing = runner.invoke(args=["discord", "admin", "grant", BOB])
    assert missing.exit_code != 0
    assert f"No Discord user with id {BOB}" in missing.output


def test_what_the_bots_read_never_crashes_them(bot_app, bot):
    """Found by running both bots' commands: endless events, history order, unknown ids."""
    join(bot, ANN, "Ann Lee")
    with bot_app.app_context():
        make_event(name="Endless")  # webhook-style, no end_time
    windowed = running_event(bot_app)
    listed = bot.get("/discord/events/active").get_json()
    assert [event["id"] for event in listed] == [windowed]  # every end_time parses
    assert all(event["end_time"] for event in listed)
    with bot_app.app_context():
        first = make_event(
            name="First",
            start_time=utcnow() - timedelta(minutes=2),
            end_time=utcnow() + timedelta(hours=1),
        ).id
    bot.post(f"/discord/attend/{first}?discord_user_id={ANN}")
    bot.post(f"/discord/attend/{windowed}?discord_user_id={ANN}")
    history = bot.get(f"/discord/attendance/{ANN}").get_json()["attended_events"]
    assert [item["id"] for item in history] == [first, windowed]  # oldest first: [-5:] is recent
    make_admin(bot)
    path = f"/discord/admin/attend-for-user?admin_discord_user_id={ANN}"
    unknown = bot.post(path, json={"target_name": "Ann Lee", "event_id": 9999})
    assert unknown.status_code == 200
    assert unknown.get_json() == {"success": False, "message": "Event with ID 9999 not found."}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("post", f"/discord/attend/auto?discord_user_id={ANN}"),
        ("post", "/discord/admin/make-admin"),
        ("post", f"/discord/admin/check-admin?discord_user_id={ANN}"),
        ("get", f"/discord/users/list?discord_user_id={ANN}"),
        ("post", f"/discord/events/create?discord_user_id={ANN}"),
        ("post", f"/discord/admin/attend-for-user?admin_discord_user_id={ANN}"),
    ],
)
def test_the_new_bot_routes_need_the_discord_key(make_app, method, path):
    """Without the key: 401 when one is configured, 503 when none is; nothing changes."""
    keyed = make_app(
        DISCORD_API_KEY="bot-key-0123456789",
        DISCORD_ALLOW_KEYLESS=None,
        DISCORD_ADMIN_PASSWORD=ADMIN_PASSWORD,
    )
    body = {"discord_user_id": ANN, "password": ADMIN_PASSWORD, "target_name": "Ann"}
    assert getattr(keyed.test_client(), method)(path, json=body).status_code == 401
    closed = make_app(DISCORD_ALLOW_KEYLESS=None, DISCORD_ADMIN_PASSWORD=ADMIN_PASSWORD)
    assert getattr(closed.test_client(), method)(path, json=body).status_code == 503


def test_user_listing_needs_a_login(client):
    register(client, email="ann@example.com", name="Ann Lee")
    assert client.get("/users/").status_code == 401
    assert client.get("/users/1").status_code == 401
    token = login(client, email="ann@example.com").get_json()["access_token"]
    assert client.get("/users/1", headers=bearer(token)).status_code == 403  # not an admin
