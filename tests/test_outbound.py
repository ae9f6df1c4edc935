"""Outbound webhooks: subscriptions, the outbox on every way in, signed delivery, retries,
disabling, SSRF refusals, restarts and volume — with a real receiver on 127.0.0.1."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator

import pytest
from standardwebhooks.webhooks import Webhook

from autocheckin.extensions import db
from autocheckin.outbound import dispatch
from autocheckin.outbound.models import Delivery
from autocheckin.outbound.sender import Sender
from tests.conftest import API_KEY
from tests.factories import make_event, make_student
from tests.receiver import Receiver, wait_until

KEY = {"x-checkout-key": API_KEY}
FAST = {
    "OUTBOUND_POLL_INTERVAL": "0.05",
    "OUTBOUND_BACKOFF_BASE": "0.2",
    "OUTBOUND_BACKOFF_MAX": "1",
}


def verify_webhook(payload, signature, secret):
    """The source document's own verification code, verbatim."""
    expected = hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
    return hmac.compare_digest(signature, expected)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver().start()
    yield server
    server.stop()


@pytest.fixture
def outbound_app(make_app):
    return make_app(**FAST)


@pytest.fixture
def start_sender(outbound_app):
    """Start senders on an app; every one is stopped at the end of the test."""
    senders: list[Sender] = []

    def start(app=None, **kwargs) -> Sender:
        sender = Sender(app or outbound_app, **kwargs).start()
        senders.append(sender)
        return sender

    yield start
    for sender in senders:
        sender.stop()


def subscribe(client, url, event_type="attendance.marked", **fields):
    body = {"name": "Receiver", "url": url, "event_type": event_type, **fields}
    response = client.post("/api/webhooks", json=body, headers=KEY)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def check_in(client, student, event, **extra):
    body = {"student_identifier": student, "event_identifier": event, **extra}
    response = client.post("/api/webhook/attendance/", json=body)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def deliveries(app, **filters) -> list[Delivery]:
    with app.app_context():
        rows = db.session.scalars(db.select(Delivery).filter_by(**filters).order_by(Delivery.id))
        return list(rows)


def fan_out(app) -> None:
    """What a sender's transaction does first, without sending anything."""
    with app.app_context():
        dispatch.exchange(
            [],
            holder="test",
            claim_limit=0,
            busy_subscriptions=set(),
            backoff=dispatch.Backoff(1, 1, 10),
        )


# --- delivery and signatures -----------------------------------------------------------------


def test_a_check_in_is_delivered_signed_both_ways(outbound_app, receiver, start_sender):
    client = outbound_app.test_client()
    created = subscribe(client, receiver.url + "/hook")
    assert created["secret"].startswith("whsec_")
    with outbound_app.app_context():
        make_student(identifier="a1", email="ann@example.com", first_name="Ann", last_name="Lee")
        event = make_event(name="Standup")
    start_sender()
    answer = check_in(client, "a1", "Standup", source="scanner_7")
    (got,) = wait_until(receiver.snapshot, what="the delivery")
    body = got.body.decode()
    assert verify_webhook(body, got.headers["x-smartpresence-signature"], created["secret"])
    assert Webhook(created["secret"]).verify(got.body, got.headers) == json.loads(body)
    payload = json.loads(body)
    assert payload["event_type"] == "attendance.marked"
    assert payload["timestamp"].endswith("Z")
    assert payload["data"] == {
        "attendance_id": answer["attendance_id"],
        "student_id": answer["student"]["id"],
        "student_identifier": "a1",
        "student_email": "ann@example.com",
        "student_name": "Ann Lee",
        "session_id": event.id,
        "session_name": "Standup",
        "status": "present",
        "method": "scanner_7",
        "checked_in_at": answer["checked_in_at"],
    }
    assert got.headers["x-smartpresence-event"] == "attendance.marked"
    assert got.headers["x-smartpresence-timestamp"] == got.headers["webhook-timestamp"]
    assert got.headers["webhook-id"].startswith("msg_")
    assert got.headers["content-type"] == "application/json"
    wait_until(lambda: deliveries(outbound_app, status="succeeded"), what="success recorded")
