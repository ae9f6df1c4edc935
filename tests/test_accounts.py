"""Web users: register, the three login forms, tokens, and the password never shown."""

from __future__ import annotations

import base64
from datetime import timedelta

import pytest

from autocheckin.auth.models import Account
from autocheckin.auth.tokens import issue_token
from autocheckin.extensions import db
from tests.conftest import JWT_SECRET
from tests.helpers import PASSWORD, bearer, login, register


def test_register_and_the_three_login_forms(client):
    created = register(client)
    assert created.status_code == 201
    user = created.get_json()
    assert (user["email"], user["name"], user["is_active"]) == ("ann@example.com", "Ann Lee", True)
    as_json = login(client).get_json()
    assert as_json["token_type"] == "bearer"
    as_form = client.post("/auth/login", data={"username": "ann@example.com", "password": PASSWORD})
    assert as_form.status_code == 200
    basic = base64.b64encode(f"ann@example.com:{PASSWORD}".encode()).decode()
    as_basic = client.post("/auth/login", headers={"Authorization": f"Basic {basic}"})
    assert as_basic.status_code == 200
    for answer in (as_json, as_form.get_json(), as_basic.get_json()):
        me = client.get("/users/me", headers=bearer(answer["access_token"]))
        assert me.get_json()["id"] == user["id"]


def test_register_refusals(client):
    register(client)
    again = register(client, email="ANN@example.com")
    assert again.status_code == 400
    assert again.get_json() == {"detail": "Email already registered"}
    assert register(client, email="not-an-email").status_code == 422
    short = register(client, email="bo@example.com", password="short")
    assert short.status_code == 422
    assert "password" in short.get_json()["detail"]
    assert client.post("/auth/register", data="x", content_type="text/plain").status_code == 422


@pytest.mark.parametrize("password", [PASSWORD + "x", ""])
def test_wrong_credentials_are_401(client, password):
    register(client)
    response = login(client, password=password) if password else login(client, email="no@x.io")
    assert response.status_code in (401, 422)
    if response.status_code == 401:
        assert response.get_json() == {"detail": "Incorrect email or password"}
        assert response.headers["WWW-Authenticate"] == "Bearer"


def test_tampered_expired_and_foreign_tokens_are_401(app, client):
    user_id = register(client).get_json()["id"]
    token = login(client).get_json()["access_token"]
    with app.app_context():
        token_key = db.session.get(Account, user_id).token_key
    head, body, signature = token.split(".")
    tampered = (
        f"{head}.{body}.{signature[:-2]}{'A' if signature[-2] != 'A' else 'B'}{signature[-1]}"
    )
    expired = issue_token(
        user_id=user_id, token_key=token_key, secret=JWT_SECRET, lifetime=timedelta(seconds=-5)
    )
    foreign = issue_token(
        user_id=user_id,
        token_key=token_key,
        secret="another-secret-" * 4,
        lifetime=timedelta(hours=1),
    )
    for bad, detail in (
        (tampered, "Could not validate credentials"),
        (expired, "Token has expired"),
        (foreign, "Could not validate credentials"),
        ("garbage", "Could not validate credentials"),
    ):
        response = client.get("/users/me", headers=bearer(bad))
        assert response.status_code == 401
        assert response.get_json() == {"detail": detail}
    assert client.get("/users/me").get_json() == {"detail": "Not authenticated"}


def test_without_a_jwt_secret_login_is_503(make_app):
    client = make_app(JWT_SECRET_KEY="").test_client()
    register(client)
    assert login(client).status_code == 503


def test_profile_update_and_password_change(client):
    register(client)
    token = login(client).get_json()["access_token"]
    other_token = login(client).get_json()["access_token"]
    change = {"name": "Ann Li", "password": "a new long password", "discord_username": "ann#1"}
    refused = client.put("/users/me", json=change, headers=bearer(token))
    assert refused.status_code == 403
    assert refused.get_json()["detail"] == (
        "Changing the email or the password needs current_password"
    )
    wrong = client.put(
        "/users/me", json={**change, "current_password": "not it"}, headers=bearer(token)
    )
    assert wrong.status_code == 403 and wrong.get_json()["detail"] == "current_password is wrong"
    updated = client.put(
        "/users/me", json={**change, "current_password": PASSWORD}, headers=bearer(token)
    )
    assert updated.status_code == 200
    assert updated.get_json()["name"] == "Ann Li"
    assert updated.headers["Cache-Control"] == "no-store"
    assert login(client).status_code == 401
    assert login(client, password="a new long password").status_code == 200
    # Every token from before is over, the caller's too; the answer carries its next one.
    assert client.get("/users/me", headers=bearer(other_token)).status_code == 401
    assert client.get("/users/me", headers=bearer(token)).status_code == 401
    fresh = bearer(updated.get_json()["access_token"])
    assert client.get("/users/me", headers=fresh).status_code == 200


def test_a_stolen_token_cannot_change_the_email_or_guess_the_password(client):
    register(client)
    token = login(client).get_json()["access_token"]
    moved = client.put("/users/me", json={"email": "thief@evil.test"}, headers=bearer(token))
    assert moved.status_code == 403
    guesses = [
        client.put(
            "/users/me",
            json={"email": "thief@evil.test", "current_password": f"guess {n}"},
            headers=bearer(token),
        ).status_code
        for n in range(11)
    ]
    assert guesses[:10] == [403] * 10 and guesses[10] == 429  # counted as failed logins
    assert client.get("/users/me", headers=bearer(token)).get_json()["email"] == "ann@example.com"
    renamed = client.put("/users/me", json={"name": "Ann L"}, headers=bearer(token))
    assert renamed.status_code == 200  # the name needs no password


def test_password_never_appears_in_any_response(client):
    responses = [register(client), login(client)]
    token = responses[-1].get_json()["access_token"]
    responses += [
        client.get("/users/me", headers=bearer(token)),
        client.put("/users/me", json={"name": "X"}, headers=bearer(token)),
        client.get("/users/me/events", headers=bearer(token)),
        client.get("/openapi.json"),
    ]
    for response in responses:
        text = response.get_data(as_text=True)
        assert PASSWORD not in text
        assert "scrypt:" not in text and "password_hash" not in text
