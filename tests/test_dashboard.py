"""The dashboard: admins sign in with a CSRF-protected form and a session cookie; the
page's numbers are the API's numbers. (The real-browser test is issue 13's next step.)"""

from __future__ import annotations

import re

import pytest

from autocheckin.auth import accounts
from tests.conftest import API_KEY

PASSWORD = "correct horse battery staple 42"
SECRET = "dashboard-session-secret-0123456789abcdef"


@pytest.fixture
def site(make_app):
    app = make_app(SECRET_KEY=SECRET)
    with app.app_context():
        accounts.register_user(email="boss@example.com", name="Boss", password=PASSWORD)
        accounts.set_web_role(email="boss@example.com", role="admin")
        accounts.register_user(email="ann@example.com", name="Ann", password=PASSWORD)
    return app


def _token(page: str) -> str:
    return re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)


def _sign_in(client, email: str, *, with_token: bool = True):
    form = {"email": email, "password": PASSWORD}
    if with_token:
        form["csrf_token"] = _token(client.get("/dashboard/login").get_data(as_text=True))
    return client.post("/dashboard/login", data=form)


def test_an_admin_signs_in_and_sees_the_apis_numbers(site):
    client = site.test_client()
    assert client.get("/dashboard/").headers["Location"].endswith("/dashboard/login")
    answer = _sign_in(client, "boss@example.com")
    assert answer.status_code == 302
    cookie = answer.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    page = client.get("/dashboard/").get_data(as_text=True)
    counts = client.get("/api/v1/state", headers={"x-checkout-key": API_KEY}).get_json()
    for name, value in counts["data"]["counts"].items():
        assert f'data-count="{name}">{value}<' in page
    assert "fetch_users" in page and "Integration keys" in page
    assert API_KEY not in page


def test_a_plain_user_or_a_form_without_its_token_gets_nowhere(site):
    client = site.test_client()
    refused = _sign_in(client, "ann@example.com")
    assert refused.status_code == 400
    assert "Only admins may use the dashboard." in refused.get_data(as_text=True)
    assert client.get("/dashboard/").status_code == 302
    forged = _sign_in(site.test_client(), "boss@example.com", with_token=False)
    assert forged.status_code == 400
    assert "expired" in forged.get_data(as_text=True)


def test_signing_out_needs_the_pages_token(site):
    client = site.test_client()
    _sign_in(client, "boss@example.com")
    client.post("/dashboard/logout", data={})  # a cross-site POST carries no token
    page = client.get("/dashboard/").get_data(as_text=True)
    assert "Integration keys" in page
    client.post("/dashboard/logout", data={"csrf_token": _token(page)})
    assert client.get("/dashboard/").status_code == 302


def test_a_password_change_ends_the_session(site):
    client = site.test_client()
    _sign_in(client, "boss@example.com")
    with site.app_context():
        boss = next(
            u for u in accounts.list_accounts(skip=0, limit=10)[0] if u.email == "boss@example.com"
        )
        accounts.update_profile(user_id=boss.id, changes={"password": PASSWORD + "!"})
    assert client.get("/dashboard/").status_code == 302


def test_wrong_passwords_are_limited_like_every_login(site):
    client = site.test_client()
    token = _token(client.get("/dashboard/login").get_data(as_text=True))
    form = {"email": "boss@example.com", "password": "wrong", "csrf_token": token}
    answers = [client.post("/dashboard/login", data=form) for _ in range(11)]
    assert "Incorrect email or password." in answers[0].get_data(as_text=True)
    assert "Too many attempts" in answers[-1].get_data(as_text=True)


def test_without_a_secret_key_the_dashboard_says_so(make_app):
    answer = make_app(SECRET_KEY=None).test_client().get("/dashboard/login")
    assert answer.status_code == 503
    assert answer.content_type.startswith("text/html")
    assert "SECRET_KEY" in answer.get_data(as_text=True)
