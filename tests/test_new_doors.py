"""The newer doors under attack: each finding of the probe replayed as it was sent.

Limits that guard a secret hold across gunicorn workers (and replicas) without Redis;
key doors answer 429 to a guesser; the Discord admin password is capped per address and
overall, not only per Discord id."""

from __future__ import annotations

import pytest
import requests

from tests.helpers import PASSWORD, post, register
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
