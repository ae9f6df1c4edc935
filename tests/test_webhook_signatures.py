"""HMAC signatures: the published vectors, both header schemes, and every malformed header."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import pytest

from autocheckin.extensions import db
from autocheckin.webhooks.models import WebhookRequest
from autocheckin.webhooks.signatures import SignatureError, sign_legacy, sign_standard, verify
from tests.helpers import make_event, make_student

SECRET = "your-secret-key-here"
SECURE = "/api/webhook/attendance/secure/"


def test_github_published_vector():
    # docs.github.com, "Validating webhook deliveries": the documented test values.
    secret = "It's a Secret to Everybody"
    expected = "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    assert sign_legacy(b"Hello, World!", secret) == expected
    verify(
        b"Hello, World!",
        {"x-webhook-signature": f"sha256={expected}"},
        secret,
        now=datetime.now(UTC),
    )


def test_standard_webhooks_published_vector():
    # The Standard Webhooks specification's example.
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"test": 2432232314}'
    headers = {
        "webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
        "webhook-timestamp": "1614265330",
        "webhook-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
    }
    verify(body, headers, secret, now=datetime.fromtimestamp(1614265330 + 60, UTC))
    with pytest.raises(SignatureError, match="tolerance"):
        verify(body, headers, secret, now=datetime.fromtimestamp(1614265330 + 301, UTC))
    with pytest.raises(SignatureError, match="Invalid signature"):
        verify(body + b" ", headers, secret, now=datetime.fromtimestamp(1614265330, UTC))


@pytest.fixture
def secure_app(make_app):
    app = make_app(WEBHOOK_SECRET=SECRET)
    with app.app_context():
        make_student(identifier="a12345678", email="john@example.com")
        make_event(name="Weekly Meeting")
    return app


def payload_bytes() -> bytes:
    return json.dumps(
        {
            "student_identifier": "a12345678",
            "event_identifier": "Weekly Meeting",
            "source": "scanner",
        }
    ).encode()


def guide_signature(payload: str, secret: str) -> str:
    """The guide's own generate_signature, verbatim."""
    import hashlib
    import hmac

    return hmac.new(secret.encode("utf-8"), payload.encode("utf-8"), hashlib.sha256).hexdigest()


@pytest.mark.parametrize("prefix", ["sha256=", ""])
def test_secure_webhook_accepts_the_guides_signature(secure_app, prefix):
    body = payload_bytes()
    signature = guide_signature(body.decode(), SECRET)
    response = secure_app.test_client().post(
        SECURE,
        data=body,
        headers={"Content-Type": "application/json", "X-Webhook-Signature": prefix + signature},
    )
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["source"] == "scanner"


def test_secure_webhook_accepts_standard_webhooks_headers(secure_app):
    body = payload_bytes()
    now = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "webhook-id": "msg_1",
        "webhook-timestamp": str(now),
        "webhook-signature": "v1,bm9wZQ== "
        + sign_standard(body, SECRET, msg_id="msg_1", timestamp=now),
    }
    response = secure_app.test_client().post(SECURE, data=body, headers=headers)
    assert response.status_code == 201, response.get_json()


@pytest.mark.parametrize(
    ("headers", "status", "error"),
    [
        ({}, 401, "Missing X-Webhook-Signature header"),
        ({"X-Webhook-Signature": "sha256=deadbeef"}, 401, "Invalid signature"),
        ({"X-Webhook-Signature": "garbage"}, 401, "Invalid signature"),
        ({"X-Webhook-Signature": "sha256=ü"}, 401, "Invalid signature"),
        ({"webhook-signature": "v1", "webhook-id": "m", "webhook-timestamp": "NOW"}, 401, None),
        (
            {"webhook-signature": "v1", "webhook-id": "m", "webhook-timestamp": "TS"},
            401,
            "Invalid signature",
        ),
        ({"webhook-signature": "garbage", "webhook-id": "m", "webhook-timestamp": "TS"}, 401, None),
        (
            {"webhook-signature": "v1,!!!notbase64", "webhook-id": "m", "webhook-timestamp": "TS"},
            401,
            None,
        ),
        ({"webhook-signature": "v1,AAAA", "webhook-timestamp": "TS"}, 401, None),
        (
            {"webhook-signature": "v1,AAAA", "webhook-id": "m", "webhook-timestamp": "1e99"},
            401,
            None,
        ),
        (
            {
                "webhook-signature": "v1,AAAA",
                "webhook-id": "m",
                "webhook-timestamp": "99999999999999",
            },
            401,
            None,
        ),
        (
            {"webhook-signature": "v1,AAAA", "webhook-id": "m", "webhook-timestamp": "1614265330"},
            401,
            None,
        ),
    ],
)
def test_malformed_or_wrong_signatures_are_4xx_never_500(secure_app, headers, status, error):
    headers = {
        name: value.replace("TS", str(int(time.time()))).replace("NOW", "now")
        for name, value in headers.items()
    }
    client = secure_app.test_client()
    response = client.post(
        SECURE, data=payload_bytes(), headers={"Content-Type": "application/json", **headers}
    )
    assert response.status_code == status
    if error:
        assert response.get_json()["error"] == error
    with secure_app.app_context():
        record = db.session.query(WebhookRequest).one()
        assert (record.outcome, record.is_replayable) == ("failed", False)


def test_non_utf8_bodies_are_4xx(secure_app):
    body = b'{"student_identifier": "\xff"}'
    now = int(time.time())
    client = secure_app.test_client()
    standard = client.post(
        SECURE,
        data=body,
        headers={"webhook-id": "m", "webhook-timestamp": str(now), "webhook-signature": "v1,AAAA"},
    )
    assert standard.status_code == 400
    assert standard.get_json()["code"] == "invalid_encoding"
    legacy = client.post(
        SECURE, data=body, headers={"X-Webhook-Signature": sign_legacy(body, SECRET)}
    )
    assert legacy.status_code == 400
    assert legacy.get_json()["error"] == "Invalid JSON payload"


def test_secure_webhook_without_a_secret_is_503(client):
    response = client.post(SECURE, json={"student_identifier": "a", "event_identifier": "1"})
    assert response.status_code == 503
    assert response.get_json()["code"] == "signature_not_configured"


def test_require_signature_applies_to_every_webhook(make_app):
    app = make_app(WEBHOOK_SECRET=SECRET, WEBHOOK_REQUIRE_SIGNATURE="true")
    client = app.test_client()
    payload = {
        "action": "create_event",
        "data": {"event_name": "X", "event_date": "2024-01-15T10:00:00Z"},
    }
    for path in ("/api/webhook/onetap/", "/api/webhook/unified/", "/api/webhook/attendance/"):
        assert client.post(path, json=payload).status_code == 401, path
    body = json.dumps(payload).encode()
    signed = client.post(
        "/api/webhook/onetap/",
        data=body,
        headers={
            "Content-Type": "application/json",
            "X-Webhook-Signature": "sha256=" + sign_legacy(body, SECRET),
        },
    )
    assert signed.status_code == 201
    assert client.get("/api/webhook/status/").get_json()["signature_required"] is True


def test_signature_failures_cannot_be_replayed(secure_app, auth_headers):
    client = secure_app.test_client()
    client.post(SECURE, data=payload_bytes(), headers={"Content-Type": "application/json"})
    response = client.post("/api/v1/webhooks/deliveries/1/replay", headers=auth_headers)
    assert response.status_code == 409
    assert (
        response.get_json()["error"]
        == "Webhook request 1 failed authentication and cannot be replayed"
    )
