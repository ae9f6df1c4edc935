"""Secure by default: each attack found while reviewing the service, replayed as the
attacker did it, against an app with only the documented secrets set."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from datetime import timedelta

import pytest

from autocheckin.attendance.models import Attendance, Event, Student
from autocheckin.auth.models import Account
from autocheckin.extensions import db
from autocheckin.logs import OneLineFormatter
from autocheckin.times import utcnow
from autocheckin.webhooks.models import WebhookRequest
from autocheckin.webhooks.signatures import sign_legacy, sign_standard
from tests.conftest import API_KEY
from tests.helpers import (
    LEGACY,
    ONETAP,
    PASSWORD,
    UNIFIED,
    bearer,
    login,
    make_event,
    make_student,
    post,
    register,
    rows,
)

SECRET = "a-webhook-secret-of-at-least-32-bytes!"
SECURE = "/api/webhook/attendance/secure/"


@pytest.fixture
def production(make_app):
    """Only the documented secrets set: the opt-ins to the basic setup left at their defaults."""
    return make_app(
        WEBHOOK_SECRET=SECRET,
        WEBHOOK_REQUIRE_SIGNATURE=None,
        DISCORD_ALLOW_KEYLESS=None,
    )


def signed(body: bytes) -> dict[str, str]:
    return {"X-Webhook-Signature": f"sha256={sign_legacy(body, SECRET)}"}


def as_bytes(payload: dict) -> bytes:
    return json.dumps(payload).encode()


# --- 1. secure defaults, explicit opt-ins ------------------------------------------------------


@pytest.mark.parametrize("path", [ONETAP, UNIFIED, LEGACY, "/api/webhook/attendance/batch/"])
def test_unsigned_webhooks_are_refused_by_default(production, path):
    client = production.test_client()
    response = post(client, path, {"type": "student", "data": {}})
    assert response.status_code == 401
    assert response.get_json()["code"] == "missing_signature"
    assert "WEBHOOK_REQUIRE_SIGNATURE" in response.get_json()["error"]
    with production.app_context():
        assert db.session.query(Student).count() == 0


def test_required_signature_without_a_secret_is_503_naming_both_settings(make_app):
    client = make_app(WEBHOOK_REQUIRE_SIGNATURE=None).test_client()
    response = post(client, ONETAP, {"action": "create_event"})
    assert response.status_code == 503
    assert "WEBHOOK_SECRET" in response.get_json()["error"]
    assert "WEBHOOK_REQUIRE_SIGNATURE=false" in response.get_json()["error"]


def test_discord_is_closed_without_a_key_and_names_the_settings(production):
    client = production.test_client()
    response = client.post("/discord/users/register", json={"discord_user_id": "1", "name": "X"})
    assert response.status_code == 503
    detail = response.get_json()["detail"]
    assert "DISCORD_API_KEY" in detail and "DISCORD_ALLOW_KEYLESS" in detail
    assert client.get("/discord/attendance/1").status_code == 503


def test_discord_key_is_required_when_configured(make_app):
    client = make_app(DISCORD_API_KEY="bot-key-0123456789", DISCORD_ALLOW_KEYLESS=None)
    client = client.test_client()
    body = {"discord_user_id": "1", "name": "X"}
    assert client.post("/discord/users/register", json=body).status_code == 401
    wrong = {"X-Discord-Key": "guess"}
    assert client.post("/discord/users/register", json=body, headers=wrong).status_code == 401
    right = {"X-Discord-Key": "bot-key-0123456789"}
    assert client.post("/discord/users/register", json=body, headers=right).status_code == 200


def test_status_reports_the_open_setups(make_app, production):
    headers = {"x-checkout-key": API_KEY}
    closed = production.test_client().get("/api/v1/status", headers=headers).get_json()
    assert closed["data"]["open_setups"] == {
        "WEBHOOK_REQUIRE_SIGNATURE=false": False,
        "DISCORD_ALLOW_KEYLESS=true": False,
    }
    basic = make_app().test_client().get("/api/v1/status", headers=headers).get_json()
    assert basic["data"]["open_setups"] == {
        "WEBHOOK_REQUIRE_SIGNATURE=false": True,
        "DISCORD_ALLOW_KEYLESS=true": True,
    }


def test_open_setups_are_logged_at_start(make_app, caplog):
    from autocheckin.logs import warn_open_setups

    with caplog.at_level(logging.WARNING, logger="autocheckin.security"):
        warn_open_setups(make_app().config)
    assert [record.getMessage().split(":")[0] for record in caplog.records] == [
        "WEBHOOK_REQUIRE_SIGNATURE=false",
        "DISCORD_ALLOW_KEYLESS=true",
    ]


def test_the_development_env_opts_into_the_basic_setup(tmp_path):
    script = (tmp_path / "scripts").mkdir() or tmp_path / "scripts" / "dev_env.py"
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    script.write_text((root / "scripts" / "dev_env.py").read_text())
    (tmp_path / ".env.example").write_text((root / ".env.example").read_text())
    subprocess.run([sys.executable, str(script)], check=True, capture_output=True)
    written = (tmp_path / ".env").read_text()
    assert "\nWEBHOOK_REQUIRE_SIGNATURE=false\n" in written
    assert "\nDISCORD_ALLOW_KEYLESS=true\n" in written
    assert "\nJWT_SECRET_KEY=" in written


# --- 2. webhooks never reach web-login authority ------------------------------------------------


@pytest.fixture
def alice(client):
    """A registered web user, and a roster student that a check-in app knows by identifier."""
    register(client, email="alice@example.com", name="Alice Doe")
    return login(client, email="alice@example.com").get_json()["access_token"]


ROSTER_ALICE = {
    "student_identifier": "a1",
    "email": "alice@example.com",
    "first_name": "Alice",
    "last_name": "Roster",
}


def test_a_webhook_cannot_make_a_web_user_an_admin(app, client, alice):
    other = register(client, email="bob@example.com", name="Bob").get_json()
    bob_token = login(client, email="bob@example.com").get_json()["access_token"]
    start = (utcnow() + timedelta(hours=1)).isoformat()
    end = (utcnow() + timedelta(hours=2)).isoformat()
    event = client.post(
        "/events/",
        json={"title": "Bob's", "start_time": start, "end_time": end},
        headers=bearer(bob_token),
    ).get_json()
    assert event["created_by"] == other["id"]
    roster = post(
        client,
        UNIFIED,
        {"type": "student", "data": ROSTER_ALICE},
    )
    assert roster.status_code == 201  # a person apart from Alice's login
    granted = post(
        client,
        UNIFIED,
        {
            "type": "student",
            "action": "update",
            "data": {"email": "alice@example.com", "is_admin": True},
        },
    )
    assert granted.status_code == 200
    assert granted.get_json()["student"]["is_admin"] is True  # roster data, as sent
    me = client.get("/users/me", headers=bearer(alice)).get_json()
    assert me["is_admin"] is False  # no web power came with it
    edit = client.put(f"/events/{event['id']}", json={"title": "Mine"}, headers=bearer(alice))
    assert edit.status_code == 403


def test_a_webhook_changing_a_persons_email_moves_no_login(app, client, alice):
    """The roster's person with a login's email is not the login: a check-in app may change
    its email (roster data), and the login stays where it was."""
    created = post(
        client,
        UNIFIED,
        {"type": "student", "data": ROSTER_ALICE},
    )
    assert created.status_code == 201
    moved = post(
        client,
        UNIFIED,
        {
            "type": "student",
            "action": "update",
            "data": {"student_identifier": "a1", "email": "attacker@evil.test"},
        },
    )
    assert moved.status_code == 200
    assert login(client, email="alice@example.com").status_code == 200
    assert login(client, email="attacker@evil.test").status_code == 401
    assert client.get("/users/me", headers=bearer(alice)).get_json()["email"] == (
        "alice@example.com"
    )


def test_web_admins_are_made_by_the_operator_cli(app, client, runner, alice):
    result = runner.invoke(args=["users", "promote", "alice@example.com"])
    assert result.exit_code == 0, result.output
    assert client.get("/users/me", headers=bearer(alice)).get_json()["is_admin"] is True
    assert runner.invoke(args=["users", "demote", "alice@example.com"]).exit_code == 0
    # A role taken away ends the tokens issued under it; promoting again revives none.
    assert client.get("/users/me", headers=bearer(alice)).status_code == 401
    again = login(client, email="alice@example.com").get_json()["access_token"]
    assert client.get("/users/me", headers=bearer(again)).get_json()["is_admin"] is False
    assert runner.invoke(args=["users", "promote", "alice@example.com"]).exit_code == 0
    assert client.get("/users/me", headers=bearer(alice)).status_code == 401
    missing = runner.invoke(args=["users", "promote", "nobody@example.com"])
    assert missing.exit_code != 0
    assert "No web user with email nobody@example.com" in missing.output


# --- 3. no replays --------------------------------------------------------------------------------


def test_a_captured_signed_check_in_cannot_be_replayed(production):
    client = production.test_client()
    with production.app_context():
        make_student(identifier="a1")
        first_event = make_event(name="Rush")
    body = as_bytes({"student_identifier": "a1", "event_identifier": "Rush"})
    original = post(client, SECURE, body, **signed(body))
    assert original.status_code == 201
    with production.app_context():
        # The event is replaced by a new one of the same name: the old bytes now fit it too.
        db.session.get(Event, first_event.id).name = "Rush (moved)"
        db.session.commit()
        make_event(name="Rush")
    replayed = post(client, SECURE, body, **signed(body))
    assert replayed.status_code == 201
    assert replayed.get_json() == original.get_json()  # the original outcome, no new effect
    assert rows(production, Attendance) == 1  # the first stays with its event; none added


def test_a_signed_create_is_not_run_twice(production):
    client = production.test_client()
    body = as_bytes(
        {"action": "create_event", "data": {"event_name": "Once", "event_date": "2024-01-15"}}
    )
    assert post(client, ONETAP, body, **signed(body)).status_code == 201
    assert post(client, ONETAP, body, **signed(body)).status_code == 201
    assert rows(production, Event) == 1


def test_a_signed_request_that_failed_may_be_retried(production):
    client = production.test_client()
    body = as_bytes({"student_identifier": "late", "event_identifier": "Rush"})
    assert post(client, SECURE, body, **signed(body)).status_code == 404
    with production.app_context():
        make_student(identifier="late")
        make_event(name="Rush")
    assert post(client, SECURE, body, **signed(body)).status_code == 201


def test_standard_webhooks_refuses_a_reused_id(production):
    client = production.test_client()
    body = as_bytes(
        {"action": "create_event", "data": {"event_name": "Std", "event_date": "2024-01-15"}}
    )
    stamp = int(time.time())
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(stamp),
        "webhook-signature": sign_standard(body, SECRET, msg_id="msg_1", timestamp=stamp),
    }
    first = post(client, ONETAP, body, **headers)
    assert first.status_code == 201
    assert post(client, ONETAP, body, **headers).get_json() == first.get_json()
    assert rows(production, Event) == 1


def test_a_key_planted_on_an_open_endpoint_binds_no_signed_request(make_app):
    app = make_app(WEBHOOK_SECRET=SECRET)  # the basic setup: unsigned webhooks accepted
    client = app.test_client()
    with app.app_context():
        make_student(identifier="a1")
        make_event(name="Rush")
    planted = post(
        client,
        LEGACY,
        {"student_identifier": "x", "event_identifier": "y"},
        **{"Idempotency-Key": "k-1"},
    )
    assert planted.status_code == 404
    body = as_bytes({"student_identifier": "a1", "event_identifier": "Rush"})
    real = post(client, SECURE, body, **signed(body), **{"Idempotency-Key": "k-1"})
    assert real.status_code == 201
    also_signed_on_open_door = post(
        client, LEGACY, body, **signed(body), **{"Idempotency-Key": "k-1"}
    )
    assert also_signed_on_open_door.get_json()["code"] == "already_checked_in"


def test_a_wrong_signature_is_refused_even_where_none_is_required(make_app):
    app = make_app(WEBHOOK_SECRET=SECRET)
    body = as_bytes({"student_identifier": "a1", "event_identifier": "Rush"})
    response = post(app.test_client(), LEGACY, body, **{"X-Webhook-Signature": "sha256=00"})
    assert response.status_code == 401


# --- 4. tokens ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["JWT_SECRET_KEY", "SECRET_KEY"])
def test_short_secrets_are_refused_at_start_in_one_line(tmp_path, name):
    env = {
        "PATH": "/usr/bin:/bin",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}",
        name: "a",
        "SCHEDULER_ENABLED": "false",
    }
    completed = subprocess.run(
        [sys.executable, "-c", "import main"],
        env=env,
        capture_output=True,
        text=True,
        cwd=str(__import__("pathlib").Path(__file__).resolve().parent.parent),
    )
    assert completed.returncode == 2
    lines = completed.stderr.strip().splitlines()
    assert len(lines) == 1
    assert name in lines[0] and "32" in lines[0]
    assert "Traceback" not in completed.stderr


def test_a_password_change_ends_older_tokens(client):
    register(client)
    old = login(client).get_json()["access_token"]
    changed = client.put(
        "/users/me",
        json={"password": "another horse battery", "current_password": PASSWORD},
        headers=bearer(old),
    )
    assert changed.status_code == 200
    assert client.get("/users/me", headers=bearer(old)).status_code == 401
    new = login(client, password="another horse battery").get_json()["access_token"]
    assert client.get("/users/me", headers=bearer(new)).status_code == 200


def test_a_deleted_users_token_never_speaks_for_the_next_user(app, client):
    first = register(client).get_json()
    token = login(client).get_json()["access_token"]
    with app.app_context():
        db.session.delete(db.session.get(Account, first["id"]))
        db.session.commit()
    second = register(client, email="eve@example.com", name="Eve").get_json()
    if second["id"] == first["id"]:  # SQLite reuses the id: the token must still fail
        assert client.get("/users/me", headers=bearer(token)).status_code == 401
    assert client.get("/users/me", headers=bearer(token)).status_code == 401


def test_token_answers_are_not_cached(client):
    register(client)
    response = login(client)
    assert response.headers["Cache-Control"] == "no-store"


# --- 5. hostile input is a 4xx, logs stay clean ---------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "payload", "field"),
    [
        (
            "post",
            "/auth/register",
            {"email": "a\x00@x.io", "name": "A", "password": PASSWORD},
            "email",
        ),
        ("post", "/auth/login", {"email": "a\x00@x.io", "password": PASSWORD}, "email"),
        ("post", "/discord/users/register", {"discord_user_id": "1", "name": "A\x00"}, "name"),
        ("post", "/auth/register", {"email": "a@x.io", "name": "A\nB", "password": PASSWORD}, None),
    ],
)
def test_control_characters_are_422_naming_the_field(client, method, path, payload, field):
    response = getattr(client, method)(path, json=payload)
    if field is None:  # a newline is not a control character we refuse in a name
        assert response.status_code == 201
        return
    assert response.status_code == 422
    assert field in response.get_json()["detail"]


def test_nul_in_query_and_profile_is_422(client):
    register(client)
    token = login(client).get_json()["access_token"]
    assert client.get("/events/?channel=a%00b").status_code == 422
    assert client.put("/users/me", json={"name": "A\x00"}, headers=bearer(token)).status_code == 422


@pytest.mark.parametrize(
    "path", ["/auth/register", "/events/", "/discord/users/register", ONETAP, UNIFIED]
)
@pytest.mark.parametrize("depth", [33, 100_000])
def test_deep_nesting_is_400(client, path, depth):
    register(client)
    token = login(client).get_json()["access_token"]
    body = '{"a": ' * depth + "1" + "}" * depth
    response = client.post(path, data=body, content_type="application/json", headers=bearer(token))
    assert response.status_code == 400


def test_a_newline_in_a_logged_field_cannot_forge_a_line():
    record = logging.LogRecord(
        "autocheckin.webhooks",
        logging.INFO,
        __file__,
        1,
        "webhook source=%s",
        ("x\nINFO forged line",),
        None,
    )
    line = OneLineFormatter("%(levelname)s %(message)s").format(record)
    assert "\n" not in line
    assert line == "INFO webhook source=x\\nINFO forged line"


def test_a_refused_signature_keeps_only_the_first_kb(production):
    body = b'{"pad": "' + b"x" * 1_000_000 + b'"}'
    client = production.test_client()
    response = post(client, ONETAP, body, **{"X-Webhook-Signature": "sha256=00"})
    assert response.status_code in (401, 413)
    with production.app_context():
        record = db.session.scalars(db.select(WebhookRequest)).one()
        assert len(record.body) <= 1024


def test_sql_parameters_are_hidden_from_logs(app):
    with app.app_context():
        assert db.engine.hide_parameters is True


# --- 6. login and sign-up -------------------------------------------------------------------------


def test_a_burst_of_wrong_passwords_is_429_with_retry_after(client):
    register(client)
    statuses = [login(client, password=f"wrong-{n}").status_code for n in range(30)]
    assert statuses[:10] == [401] * 10
    assert set(statuses[10:]) == {429}
    refused = login(client, password="wrong-again")
    assert int(refused.headers["Retry-After"]) >= 1
    assert "detail" in refused.get_json()
    # Other accounts are not locked with this one.
    register(client, email="bo@example.com", name="Bo")
    assert login(client, email="bo@example.com").status_code == 200


def test_sign_ups_are_limited_per_client(client):
    statuses = [
        register(client, email=f"u{n}@example.com", name="U").status_code for n in range(21)
    ]
    assert statuses[:20] == [201] * 20
    assert statuses[20] == 429


def test_failed_signatures_are_limited_per_client(production):
    client = production.test_client()
    statuses = [
        post(client, ONETAP, b"{}", **{"X-Webhook-Signature": "sha256=00"}).status_code
        for _ in range(31)
    ]
    assert statuses[:30] == [401] * 30
    assert statuses[30] == 429


@pytest.mark.parametrize("password", ["12345678", "password123", "changeme"])
def test_common_passwords_are_refused(client, password):
    response = register(client, password=password)
    assert response.status_code == 422
    assert "most common passwords" in response.get_json()["detail"]


@pytest.mark.parametrize("password", ["adminpass123", "securepassword123"])
def test_the_guides_example_passwords_stay_valid(client, password):
    assert register(client, password=password).status_code == 201


def test_security_headers(client):
    response = client.get("/health")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "Content-Security-Policy" not in response.headers  # JSON, not HTML


# --- found by review: each as the attacker would send it ------------------------------------


def test_a_rewritten_standard_timestamp_is_still_a_replay(production):
    client = production.test_client()
    body = as_bytes(
        {"action": "create_event", "data": {"event_name": "Std", "event_date": "2024-01-15"}}
    )
    stamp = int(time.time())
    signature = sign_standard(body, SECRET, msg_id="msg_1", timestamp=stamp)
    for written, key in ((str(stamp), "a"), (f"00{stamp}", "b"), (f" +{stamp}", "c")):
        headers = {
            "webhook-id": "msg_1",
            "webhook-timestamp": written,
            "webhook-signature": signature,
            "Idempotency-Key": key,
        }
        assert post(client, ONETAP, body, **headers).status_code == 201
    assert rows(production, Event) == 1


def test_failed_signatures_never_hold_back_a_signed_request(production):
    client = production.test_client()
    for _ in range(31):
        post(client, ONETAP, b"{}", **{"X-Webhook-Signature": "sha256=00"})
    body = as_bytes(
        {"action": "create_event", "data": {"event_name": "Real", "event_date": "2024-01-15"}}
    )
    assert post(client, ONETAP, body, **signed(body)).status_code == 201
    with production.app_context():
        # The refusals past the limit were not even recorded.
        assert db.session.query(WebhookRequest).count() == 31


def test_kept_header_values_are_bounded(app, client):
    post(
        client,
        LEGACY,
        {"student_identifier": "x", "event_identifier": "y"},
        **{"User-Agent": "u" * 5000},
    )
    with app.app_context():
        record = db.session.scalars(db.select(WebhookRequest)).one()
        assert len(record.headers["user-agent"]) == 256


@pytest.mark.parametrize(
    ("path", "payload", "status"),
    [
        (LEGACY, {"student_identifier": "a1", "event_identifier": "²"}, 404),
        (
            "/api/webhook/attendance/batch/",
            {"items": [{"student_identifier": "a1", "event_identifier": "²"}]},
            200,
        ),
        (ONETAP, {"action": "\ud800"}, 400),
        (
            LEGACY,
            {"student_identifier": "a1", "event_identifier": "x", "metadata": {"v": 1e400}},
            400,
        ),
        (
            LEGACY,
            {"student_identifier": "a1", "event_identifier": "x", "metadata": {"v": "\ud800"}},
            400,
        ),
        (
            ONETAP,
            {
                "action": "create_student",
                "data": {
                    "student_identifier": "a1",
                    "email": "a@x.io",
                    "first_name": "A\x01",
                    "last_name": "B",
                },
            },
            400,
        ),
    ],
)
def test_odd_webhook_input_is_a_4xx(app, client, path, payload, status):
    with app.app_context():
        make_student(identifier="a1")
    body = json.dumps(payload).replace("Infinity", "1e400").encode()
    assert post(client, path, body).status_code == status


def test_a_nul_in_a_path_is_404(client):
    for path in (
        "/discord/users/a%00b",
        "/discord/attendance/a%00b",
        "/discord/events/channel/a%00b",
    ):
        assert client.get(path).status_code == 404


def test_a_strangers_wrong_passwords_do_not_lock_the_owner_out(client):
    register(client)
    stranger = {"REMOTE_ADDR": "10.0.0.9"}
    for n in range(12):
        client.post(
            "/auth/login",
            json={"email": "ann@example.com", "password": f"x{n}"},
            environ_base=stranger,
        )
    refused = client.post(
        "/auth/login", json={"email": "ann@example.com", "password": "x"}, environ_base=stranger
    )
    assert refused.status_code == 429
    assert login(client).status_code == 200  # the owner, from her own address


def test_replaying_a_signed_twin_that_already_took_effect_is_409(production):
    client = production.test_client()
    body = as_bytes(
        {"type": "event", "action": "update", "data": {"event_name": "Late", "location": "Hall"}}
    )
    assert post(client, UNIFIED, body, **signed(body)).status_code == 404
    assert post(client, UNIFIED, body, **signed(body)).status_code == 404
    with production.app_context():
        make_event(name="Late")
        first, second = db.session.scalars(db.select(WebhookRequest.id)).all()
    headers = {"x-checkout-key": API_KEY}
    replayed = client.post(f"/api/v1/webhooks/deliveries/{first}/replay", headers=headers)
    assert replayed.status_code == 200
    again = client.post(f"/api/v1/webhooks/deliveries/{second}/replay", headers=headers)
    assert again.status_code == 409
    assert again.get_json()["code"] == "replay_conflict"


# --- every door: no anonymous write anywhere ---------------------------------------------------

# Anyone may call these: sign-up and login create no authority, and the seed's key test
# answers `authenticated: false` to a caller without the key.
PUBLIC_POSTS = {"/auth/register", "/auth/login", "/api/v1/auth/test"}


def _sample_path(rule) -> str:
    path = rule.rule
    for argument in rule.arguments:
        path = path.replace(f"<int:{argument}>", "1").replace(f"<{argument}>", "1")
    return path


def test_no_route_accepts_an_anonymous_write(production):
    """Walks the live URL map, so a route added later without a guard fails here."""
    with production.app_context():
        make_student(identifier="1", email="one@example.com")
        make_event(name="1")
    client = production.test_client()
    bodies = [
        {},
        {"student_identifier": "1", "event_identifier": "1"},
        {
            "discord_user_id": "1",
            "name": "X",
            "event_id": 1,
            "items": [{"student_identifier": "1", "event_identifier": "1"}],
            "action": "record_attendance",
            "type": "attendance",
            "data": {"student_identifier": "1", "event_identifier": "1"},
        },
    ]
    checked = []
    for rule in production.url_map.iter_rules():
        path = _sample_path(rule)
        for method in sorted((rule.methods or set()) & {"POST", "PUT", "PATCH", "DELETE"}):
            if rule.rule in PUBLIC_POSTS:
                continue
            for body in bodies:
                response = client.open(path, method=method, json=body)
                assert response.status_code >= 400, f"{method} {path} {body}: {response.status}"
            checked.append(f"{method} {rule.rule}")
    assert len(checked) >= 15  # the walk really saw the doors (19 today)
    with production.app_context():
        assert db.session.query(Attendance).count() == 0
        assert db.session.query(Student).count() == 1


@pytest.mark.slow
def test_a_deployment_with_only_the_documented_secrets_refuses_anonymous_writes(database_url):
    """The Procfile's gunicorn, configured from the environment as Railway would be."""
    import requests

    from tests.servers import gunicorn

    secrets = {
        "WEBHOOK_SECRET": SECRET,
        "JWT_SECRET_KEY": "j" * 48,
        "WEBHOOK_REQUIRE_SIGNATURE": "",  # unset: the default
        "DISCORD_ALLOW_KEYLESS": "",
    }
    with gunicorn(database_url, **secrets) as base:
        checkin = {"student_identifier": "a1", "event_identifier": "1"}
        assert requests.post(f"{base}{LEGACY}", json=checkin, timeout=10).status_code == 401
        grant = {
            "type": "student",
            "action": "update",
            "data": {"email": "a@x.io", "is_admin": True},
        }
        assert requests.post(f"{base}{UNIFIED}", json=grant, timeout=10).status_code == 401
        discord = requests.post(f"{base}/discord/attend/1?discord_user_id=1", timeout=10)
        assert discord.status_code == 503
        body = as_bytes(checkin)
        signed_answer = requests.post(
            f"{base}{SECURE}",
            data=body,
            headers={**signed(body), "Content-Type": "application/json"},
            timeout=10,
        )
        assert signed_answer.status_code == 404  # authenticated, and the student is unknown


def test_request_ids_are_echoed_generated_and_logged(app, client):
    from autocheckin.logs import RequestIdFilter

    assert (
        client.get("/health", headers={"X-Request-ID": "abc-123"}).headers["X-Request-ID"]
        == "abc-123"
    )
    generated = client.get("/health").headers["X-Request-ID"]
    assert len(generated) == 32
    forged = client.get("/health", headers={"X-Request-ID": "x y"}).headers["X-Request-ID"]
    assert forged != "x y" and len(forged) == 32
    record = logging.LogRecord("autocheckin", logging.INFO, __file__, 1, "m", (), None)
    with app.test_request_context("/", headers={"X-Request-ID": "abc-123"}):
        app.preprocess_request()
        RequestIdFilter().filter(record)
    assert record.request_id == "abc-123"
