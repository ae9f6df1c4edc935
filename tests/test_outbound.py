"""Outbound webhooks: subscriptions, the outbox on every way in, signed delivery, retries,
disabling, SSRF refusals, restarts and volume — with a real receiver on 127.0.0.1."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from datetime import timedelta

import pytest
from standardwebhooks.webhooks import Webhook

from autocheckin.extensions import db
from autocheckin.outbound import dispatch
from autocheckin.outbound.models import Delivery, DeliveryAttempt, OutboxEntry, Subscription
from autocheckin.outbound.sender import Sender
from tests.conftest import API_KEY
from tests.helpers import bearer, login, make_event, make_student, register
from tests.receiver import Answer, Receiver, wait_until

KEY = {"x-checkout-key": API_KEY}
LOCAL = "http://127.0.0.1:9/hook"  # resolves without DNS; tests allow private addresses
FAST = {
    "OUTBOUND_POLL_INTERVAL": "0.05",
    "OUTBOUND_RETRY_SCHEDULE": "0.2,0.4,0.8,1",
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


def web_user(client, email="web@example.com") -> dict[str, str]:
    """A registered, logged-in web user's Authorization header."""
    register(client, email=email, name="Web User")
    return bearer(login(client, email=email).get_json()["access_token"])


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
            backoff=dispatch.Backoff((1.0,), 10),
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


def test_a_secret_of_ones_own_serves_both_schemes(outbound_app, receiver, start_sender):
    """The document's example secret: its own code keys with the text, the library with its
    bytes (a `whsec_` secret is base64 to the library, as the spec says)."""
    client = outbound_app.test_client()
    secret = "your-webhook-secret"
    created = subscribe(client, receiver.url, secret=secret)
    assert created["secret"] == secret
    with outbound_app.app_context():
        make_student(identifier="a1")
        make_event(name="E")
    start_sender()
    check_in(client, "a1", "E")
    (got,) = wait_until(receiver.snapshot)
    assert verify_webhook(got.body.decode(), got.headers["x-smartpresence-signature"], secret)
    Webhook(secret.encode()).verify(got.body, got.headers)


def test_delivery_follows_the_commit_within_a_second(make_app, receiver, start_sender):
    """The sender is woken by the commit, not by its poll (set to a minute here)."""
    app = make_app(OUTBOUND_POLL_INTERVAL="60")
    client = app.test_client()
    subscribe(client, receiver.url)
    with app.app_context():
        make_student(identifier="a1")
        make_event(name="E")
    start_sender(app)
    import time

    committed = time.monotonic()
    check_in(client, "a1", "E")
    (got,) = wait_until(receiver.snapshot, seconds=5)
    assert got.at - committed < 1.0


# --- every way in announces --------------------------------------------------------------------


def test_every_way_in_announces_its_check_ins(outbound_app, receiver, start_sender):
    client = outbound_app.test_client()
    subscribe(client, receiver.url)
    with outbound_app.app_context():
        for number in range(1, 7):
            make_student(identifier=f"a{number}", email=f"s{number}@example.com")
        event = make_event(name="Open")
    client.post(
        "/api/webhook/onetap/",
        json={
            "action": "record_attendance",
            "data": {"student_identifier": "a1", "event_identifier": "Open"},
        },
    )
    check_in(client, "a2", "Open")
    client.post(
        "/api/webhook/unified/",
        json={
            "type": "attendance",
            "data": {"student_identifier": "a3", "event_identifier": str(event.id)},
        },
    )
    batch = client.post(
        "/api/webhook/attendance/batch/",
        json={
            "items": [
                {"student_identifier": "a4", "event_identifier": "Open"},
                {"student_identifier": "nobody", "event_identifier": "Open"},
                {"student_identifier": "a4", "event_identifier": "Open"},
            ],
            "source": "scanner_9",
        },
    )
    assert batch.get_json()["totals"]["recorded"] == 1
    register = client.post(
        "/discord/users/register", json={"discord_user_id": "42", "name": "Dee Cord"}
    )
    assert register.status_code == 200
    assert client.post(f"/discord/attend/{event.id}?discord_user_id=42").get_json()["success"]
    attend = client.post(f"/events/{event.id}/attend", headers=web_user(client))
    assert attend.status_code == 200, attend.get_json()
    start_sender()
    got = wait_until(lambda: len(receiver.snapshot()) >= 6 and receiver.snapshot())
    methods = sorted(json.loads(item.body)["data"]["method"] for item in got)
    assert methods == sorted(
        ["onetap_webhook", "webhook", "unified_webhook", "scanner_9", "discord", "web"]
    )
    assert len({item.headers["webhook-id"] for item in got}) == 6


def test_nothing_is_written_for_an_event_type_nobody_wants(outbound_app, receiver):
    client = outbound_app.test_client()
    subscribe(client, receiver.url, event_type="student.enrolled")
    with outbound_app.app_context():
        make_student(identifier="a1")
        make_event(name="E")
    check_in(client, "a1", "E")
    with outbound_app.app_context():
        assert db.session.query(OutboxEntry).count() == 0
    subscribe(client, receiver.url)
    with outbound_app.app_context():
        make_student(identifier="a2")
    check_in(client, "a2", "E")
    with outbound_app.app_context():
        assert db.session.query(OutboxEntry).count() == 1


def test_a_batch_is_one_outbox_row_and_one_delivery_per_check_in(outbound_app, receiver):
    client = outbound_app.test_client()
    subscribe(client, receiver.url)
    subscribe(client, receiver.url + "/second")
    with outbound_app.app_context():
        for number in range(5):
            make_student(identifier=f"b{number}")
        make_event(name="Batch")
    items = [{"student_identifier": f"b{n}", "event_identifier": "Batch"} for n in range(5)]
    client.post("/api/webhook/attendance/batch/", json={"items": items})
    with outbound_app.app_context():
        assert db.session.query(OutboxEntry).count() == 1
    fan_out(outbound_app)
    made = deliveries(outbound_app)
    assert len(made) == 10
    assert len({delivery.message_id for delivery in made}) == 10
    with outbound_app.app_context():
        assert db.session.query(OutboxEntry).count() == 0


def test_sessions_created_and_updated_by_every_way_in(outbound_app, receiver):
    client = outbound_app.test_client()
    subscribe(client, receiver.url, event_type="session.created")
    subscribe(client, receiver.url, event_type="session.updated")
    client.post(
        "/api/webhook/onetap/",
        json={
            "action": "create_event",
            "data": {"event_name": "Hooked", "event_date": "2030-01-15T10:00:00Z"},
        },
    )
    client.post(
        "/api/webhook/unified/",
        json={
            "type": "event",
            "action": "update",
            "data": {"event_identifier": "Hooked", "location": "Room 5"},
        },
    )
    bearer = web_user(client)
    created = client.post(
        "/events/",
        json={
            "title": "Web meetup",
            "start_time": "2030-06-20T19:00:00",
            "end_time": "2030-06-20T21:00:00",
        },
        headers=bearer,
    )
    assert created.status_code in (200, 201), created.get_json()
    event_id = created.get_json()["id"]
    same = client.put(f"/events/{event_id}", json={"title": "Web meetup"}, headers=bearer)
    assert same.status_code == 200
    renamed = client.put(f"/events/{event_id}", json={"title": "Web meetup 2"}, headers=bearer)
    assert renamed.status_code == 200
    fan_out(outbound_app)
    payloads = [json.loads(delivery.body) for delivery in deliveries(outbound_app)]
    created_names = [p["data"]["name"] for p in payloads if p["event_type"] == "session.created"]
    updated = [p["data"] for p in payloads if p["event_type"] == "session.updated"]
    assert created_names == ["Hooked", "Web meetup"]
    assert [(data["name"], data["changed"]) for data in updated] == [
        ("Hooked", ["location"]),
        ("Web meetup 2", ["name"]),
    ]


def test_sync_announces_sessions_and_enrolments(make_app, checkout, receiver):
    app = make_app(CHECKOUT_API_URL=checkout.url, CHECKOUT_RETRIES="0")
    client = app.test_client()
    for event_type in ("session.created", "session.updated", "student.enrolled"):
        subscribe(client, receiver.url, event_type=event_type)
    checkout.users = [{"email": "ann@example.com", "student_identifier": "a1"}]
    session = {
        "id": "up-1",
        "name": "Upstream class",
        "start_time": "2030-01-15T10:00:00Z",
        "end_time": "2030-01-15T11:00:00Z",
    }
    checkout.sessions = {"ann@example.com": [session]}
    assert client.get("/api/v1/refresh", headers=KEY).status_code == 200
    assert client.get("/api/v1/refresh", headers=KEY).status_code == 200  # nothing new
    checkout.sessions = {"ann@example.com": [{**session, "name": "Renamed class"}]}
    assert client.get("/api/v1/refresh", headers=KEY).status_code == 200
    fan_out(app)
    payloads = [json.loads(delivery.body) for delivery in deliveries(app)]
    kinds = [
        (p["event_type"], p["data"].get("name") or p["data"].get("session_name")) for p in payloads
    ]
    assert kinds == [
        ("session.created", "Upstream class"),
        ("student.enrolled", "Upstream class"),
        ("session.updated", "Renamed class"),
    ]
    enrolled = payloads[1]["data"]
    assert (enrolled["student_email"], enrolled["student_identifier"]) == ("ann@example.com", "a1")
    assert payloads[2]["data"]["changed"] == ["name"]


# --- delivery rules ----------------------------------------------------------------------------


def attempts_of(app) -> list[DeliveryAttempt]:
    with app.app_context():
        return list(db.session.scalars(db.select(DeliveryAttempt).order_by(DeliveryAttempt.id)))


def subscription_row(app, subscription_id) -> Subscription:
    with app.app_context():
        return db.session.get(Subscription, subscription_id)


def test_a_failing_receiver_is_retried_on_schedule_then_disabled(make_app, start_sender):
    app = make_app(**FAST, OUTBOUND_DISABLE_AFTER="2")
    failing = Receiver(lambda _got: Answer(500, body=b"boom " * 400)).start()
    try:
        client = app.test_client()
        created = subscribe(client, failing.url, retry_count=2)
        with app.app_context():
            make_student(identifier="a1")
            make_student(identifier="a2")
            make_event(name="E")
        start_sender(app)
        check_in(client, "a1", "E")
        wait_until(lambda: deliveries(app, status="failed"), what="first delivery spent")
        check_in(client, "a2", "E")
        wait_until(lambda: not subscription_row(app, created["id"]).is_active, what="disabled")
        got = failing.snapshot()
    finally:
        failing.stop()
    first_id = got[0].headers["webhook-id"]
    first = [item for item in got if item.headers["webhook-id"] == first_id]
    assert len(first) == 3  # one attempt and retry_count retries, all with the same webhook-id
    gaps = [later.at - earlier.at for earlier, later in zip(first, first[1:], strict=False)]
    # The schedule's 0.2 s then 0.4 s, each at most a fifth longer for jitter, never shorter.
    assert gaps[0] >= 0.2 and gaps[1] >= 0.4, gaps
    assert len(got) == 6
    shown = client.get(f"/api/webhooks/{created['id']}", headers=KEY).get_json()
    assert shown["is_active"] is False
    assert shown["disabled_reason"] == "2 deliveries in a row failed"
    assert shown["disabled_at"]
    history = client.get(f"/api/webhooks/{created['id']}/deliveries", headers=KEY).get_json()
    assert [d["status"] for d in history["deliveries"]] == ["failed", "failed"]
    attempt = history["deliveries"][0]["history"][0]
    assert attempt["status_code"] == 500 and attempt["error"] == "HTTP 500"
    assert len(attempt["response_body"]) == 1024  # the first KB of the answer
    assert attempt["duration_ms"] >= 0


def test_a_redirect_is_a_failure_and_is_not_followed(outbound_app, start_sender):
    redirecting = Receiver(
        lambda got: Answer(302, {"Location": "/elsewhere"}) if got.path == "/hook" else Answer()
    ).start()
    try:
        client = outbound_app.test_client()
        subscribe(client, redirecting.url + "/hook", retry_count=0)
        with outbound_app.app_context():
            make_student(identifier="a1")
            make_event(name="E")
        start_sender()
        check_in(client, "a1", "E")
        (delivery,) = wait_until(lambda: deliveries(outbound_app, status="failed"))
        paths = [item.path for item in redirecting.snapshot()]
    finally:
        redirecting.stop()
    assert paths == ["/hook"]
    assert delivery.last_status_code == 302
    assert "not followed" in delivery.last_error


def test_410_disables_the_subscription(outbound_app, start_sender):
    gone = Receiver(lambda _got: Answer(410)).start()
    try:
        client = outbound_app.test_client()
        created = subscribe(client, gone.url, retry_count=5)
        with outbound_app.app_context():
            make_student(identifier="a1")
            make_event(name="E")
        start_sender()
        check_in(client, "a1", "E")
        wait_until(lambda: not subscription_row(outbound_app, created["id"]).is_active)
        assert len(gone.snapshot()) == 1  # no retries after 410
    finally:
        gone.stop()
    row = subscription_row(outbound_app, created["id"])
    assert row.disabled_reason == "the receiver answered 410 Gone"
    with outbound_app.app_context():
        make_student(identifier="a2")
    check_in(outbound_app.test_client(), "a2", "E")
    with outbound_app.app_context():
        assert db.session.query(OutboxEntry).count() == 0  # nobody subscribed any more


def test_retry_after_is_honoured(make_app, start_sender):
    app = make_app(**{**FAST, "OUTBOUND_RETRY_SCHEDULE": "0.01"})
    answers = iter([Answer(429, {"Retry-After": "1"}), Answer(200)])
    busy = Receiver(lambda _got: next(answers)).start()
    try:
        client = app.test_client()
        subscribe(client, busy.url)
        with app.app_context():
            make_student(identifier="a1")
            make_event(name="E")
        start_sender(app)
        check_in(client, "a1", "E")
        wait_until(lambda: deliveries(app, status="succeeded"), seconds=10)
        first, second = busy.snapshot()
    finally:
        busy.stop()
    assert second.at - first.at >= 1.0
    assert first.headers["webhook-id"] == second.headers["webhook-id"]


def test_retry_after_reads_seconds_and_http_dates():
    from datetime import UTC, datetime

    from autocheckin.outbound.sender import retry_after_seconds

    now = datetime(2026, 12, 1, 10, 0, 0, tzinfo=UTC)
    assert retry_after_seconds("120", now) == 120
    assert retry_after_seconds("Tue, 01 Dec 2026 10:01:30 GMT", now) == 90
    assert retry_after_seconds("Tue, 01 Dec 2026 09:00:00 GMT", now) == 0
    assert retry_after_seconds("soon", now) is None
    assert retry_after_seconds(None, now) is None


def test_a_slow_receiver_times_out(outbound_app, start_sender):
    slow = Receiver(lambda _got: Answer(200, delay=3)).start()
    try:
        client = outbound_app.test_client()
        subscribe(client, slow.url, retry_count=0, timeout_seconds=0.5)
        with outbound_app.app_context():
            make_student(identifier="a1")
            make_event(name="E")
        start_sender()
        check_in(client, "a1", "E")
        (delivery,) = wait_until(lambda: deliveries(outbound_app, status="failed"))
    finally:
        slow.stop()
    assert delivery.last_error == "timed out after 0.5 s"


def test_a_slow_receiver_does_not_hold_up_another(make_app, start_sender):
    app = make_app(**FAST, OUTBOUND_CONCURRENCY="4")
    slow = Receiver(lambda _got: Answer(200, delay=2)).start()
    fast = Receiver().start()
    try:
        client = app.test_client()
        subscribe(client, slow.url, timeout_seconds=5)
        subscribe(client, fast.url)
        with app.app_context():
            for number in range(6):
                make_student(identifier=f"a{number}")
            make_event(name="E")
        start_sender(app)
        for number in range(6):
            check_in(client, f"a{number}", "E")
        wait_until(lambda: len(fast.snapshot()) == 6, seconds=1.5, what="fast receiver served")
    finally:
        slow.stop()
        fast.stop()


# --- SSRF ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://localhost/hook",
        "http://[::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://10.1.2.3/hook",
        "http://192.168.0.10/hook",
        "http://172.16.5.4/hook",
        "http://100.64.0.1/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/",
        "http://0.0.0.0/hook",
        "http://224.0.0.1/hook",
        "http://240.0.0.1/hook",
    ],
)
def test_private_destinations_are_refused_at_registration(make_app, url):
    client = make_app(OUTBOUND_WEBHOOKS_ALLOW_PRIVATE="false").test_client()
    body = {"name": "x", "url": url, "event_type": "attendance.marked"}
    response = client.post("/api/webhooks", json=body, headers=KEY)
    assert response.status_code == 400
    answer = response.get_json()
    assert "may only go to public addresses" in answer["detail"]
    assert answer["code"] == "refused_destination"
    assert set(answer) == {"detail", "status_code", "timestamp", "code"}


def test_an_unresolvable_host_is_refused(make_app):
    client = make_app(OUTBOUND_WEBHOOKS_ALLOW_PRIVATE="false").test_client()
    body = {"name": "x", "url": "https://no-such-host.invalid/", "event_type": "ping"}
    body["event_type"] = "attendance.marked"
    response = client.post("/api/webhooks", json=body, headers=KEY)
    assert response.status_code == 400
    assert "does not resolve" in response.get_json()["detail"]


def test_a_public_name_that_rebinds_to_a_private_address_is_refused_at_send(
    make_app, receiver, start_sender, monkeypatch
):
    """Registration saw a public address; by send time the name points at loopback."""
    from autocheckin.outbound import ssrf

    answers = {"value": ["93.184.215.14"]}
    monkeypatch.setattr(ssrf, "resolve", lambda host, port: answers["value"])
    app = make_app(**FAST, OUTBOUND_WEBHOOKS_ALLOW_PRIVATE="false")
    client = app.test_client()
    port = receiver.url.rsplit(":", 1)[1]
    subscribe(client, f"http://hooks.example.com:{port}/hook", retry_count=0)
    answers["value"] = ["127.0.0.1"]
    with app.app_context():
        make_student(identifier="a1")
        make_event(name="E")
    start_sender(app)
    check_in(client, "a1", "E")
    (delivery,) = wait_until(lambda: deliveries(app, status="failed"))
    assert "resolves to 127.0.0.1, a loopback address" in delivery.last_error
    assert receiver.snapshot() == []


def test_the_sender_connects_to_the_address_it_checked(
    make_app, receiver, start_sender, monkeypatch
):
    """DNS is asked once per attempt and the connection goes to that very answer: the name
    below exists nowhere but in this resolver, yet the receiver is reached, with its Host."""
    from autocheckin.outbound import ssrf

    monkeypatch.setattr(ssrf, "resolve", lambda host, port: ["127.0.0.1"])
    app = make_app(**FAST)
    client = app.test_client()
    port = receiver.url.rsplit(":", 1)[1]
    subscribe(client, f"http://receiver.test:{port}/hook")
    with app.app_context():
        make_student(identifier="a1")
        make_event(name="E")
    start_sender(app)
    check_in(client, "a1", "E")
    (got,) = wait_until(receiver.snapshot)
    assert got.headers["host"] == f"receiver.test:{port}"


def test_only_http_and_https_urls(client):
    for url in (
        "ftp://example.com/x",
        "file:///etc/passwd",
        "gopher://x",
        "example.com/x",
        "http://user:pw@example.com/",
    ):
        body = {"name": "x", "url": url, "event_type": "attendance.marked"}
        response = client.post("/api/webhooks", json=body, headers=KEY)
        assert response.status_code == 400, url
        assert response.get_json()["detail"].startswith("Invalid url")


# --- the API ------------------------------------------------------------------------------------


ROUTES = [
    ("POST", "/api/webhooks"),
    ("GET", "/api/webhooks"),
    ("GET", "/api/webhooks/1"),
    ("PATCH", "/api/webhooks/1"),
    ("DELETE", "/api/webhooks/1"),
    ("GET", "/api/webhooks/1/deliveries"),
    ("POST", "/api/webhooks/1/deliveries/1/redeliver"),
    ("POST", "/api/webhooks/1/test"),
]


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_every_route_needs_the_key_or_an_admin(app, client, runner, method, path):
    anonymous = client.open(path, method=method, json={})
    assert anonymous.status_code == 401
    assert set(anonymous.get_json()) == {"detail", "status_code", "timestamp", "code"}
    assert anonymous.get_json()["status_code"] == 401
    wrong = client.open(path, method=method, json={}, headers={"x-checkout-key": "guess"})
    assert wrong.status_code == 401
    as_user = web_user(client, "user@example.com")
    plain = client.open(path, method=method, json={}, headers=as_user)
    assert plain.status_code == 403
    assert plain.get_json()["detail"] == "Only admins may manage webhooks"
    bad_token = client.open(path, method=method, json={}, headers={"Authorization": "Bearer x"})
    assert bad_token.status_code == 401
    assert runner.invoke(args=["users", "promote", "user@example.com"]).exit_code == 0
    admin = client.open(path, method=method, json={}, headers=as_user)
    assert admin.status_code not in (401, 403)


def test_create_list_get_patch_delete(client, receiver):
    created = subscribe(
        client,
        receiver.url,
        headers={"Content-Type": "application/json", "Authorization": "Bearer receiver-token"},
        retry_count=5,
        timeout_seconds=2.5,
    )
    webhook_id = created["id"]
    shown = client.get(f"/api/webhooks/{webhook_id}", headers=KEY).get_json()
    assert "secret" not in shown
    assert shown["secret_hint"].startswith("sha256:")
    assert shown["headers"] == {"Content-Type": "application/json", "Authorization": "********"}
    assert (shown["retry_count"], shown["timeout_seconds"]) == (5, 2.5)
    listed = client.get("/api/webhooks", headers=KEY).get_json()
    assert listed["count"] == 1 and "secret" not in listed["webhooks"][0]
    patched = client.patch(
        f"/api/webhooks/{webhook_id}",
        json={"name": "Renamed", "is_active": False, "secret": "a-brand-new-secret-value"},
        headers=KEY,
    ).get_json()
    assert (patched["name"], patched["is_active"]) == ("Renamed", False)
    assert patched["disabled_reason"] == "turned off by PATCH"
    assert patched["secret_hint"] != shown["secret_hint"] and "secret" not in patched
    back_on = client.patch(f"/api/webhooks/{webhook_id}", json={"is_active": True}, headers=KEY)
    assert back_on.get_json()["disabled_reason"] is None
    assert client.delete(f"/api/webhooks/{webhook_id}", headers=KEY).status_code == 204
    assert client.get(f"/api/webhooks/{webhook_id}", headers=KEY).status_code == 404
    assert client.get("/api/webhooks", headers=KEY).get_json()["count"] == 0
    assert client.delete(f"/api/webhooks/{webhook_id}", headers=KEY).status_code == 404


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (None, "must be a JSON object"),
        ([1, 2], "must be a JSON object"),
        ({"name": "x", "url": LOCAL}, "event_type"),
        ({"name": "x", "url": LOCAL, "event_type": "attendance.created"}, "event_type"),
        ({"name": "x", "url": "not a url", "event_type": "attendance.marked"}, "Invalid url"),
        (
            {"name": "x", "url": LOCAL, "event_type": "attendance.marked", "retry_count": 11},
            "retry_count",
        ),
        (
            {"name": "x", "url": LOCAL, "event_type": "attendance.marked", "retry_count": "3"},
            "retry_count",
        ),
        (
            {"name": "x", "url": LOCAL, "event_type": "attendance.marked", "timeout_seconds": 0},
            "timeout_seconds",
        ),
        (
            {"name": "x", "url": LOCAL, "event_type": "attendance.marked", "timeout_seconds": 600},
            "timeout_seconds",
        ),
        (
            {"name": "x", "url": LOCAL, "event_type": "attendance.marked", "secret": "short"},
            "secret",
        ),
        (
            {
                "name": "x",
                "url": LOCAL,
                "event_type": "attendance.marked",
                "headers": {"webhook-signature": "v1,forged"},
            },
            "set by AutoCheckin",
        ),
        (
            {
                "name": "x",
                "url": LOCAL,
                "event_type": "attendance.marked",
                "headers": {"Bad Name": "1"},
            },
            "Invalid value for headers",
        ),
        (
            {"name": "x", "url": LOCAL, "event_type": "attendance.marked", "headers": {"X-A": 1}},
            "headers",
        ),
        ({"name": "x\x00", "url": LOCAL, "event_type": "attendance.marked"}, "control characters"),
        ({"name": "x", "url": LOCAL, "event_type": "attendance.marked", "colour": "red"}, "colour"),
        ({"name": "", "url": LOCAL, "event_type": "attendance.marked"}, "name"),
    ],
)
def test_bad_input_is_a_400_naming_it(client, body, words):
    if body is None:
        response = client.post(
            "/api/webhooks", data="{not json", content_type="application/json", headers=KEY
        )
    else:
        response = client.post("/api/webhooks", json=body, headers=KEY)
    assert response.status_code == 400, response.get_json()
    assert words in response.get_json()["detail"]


def test_bad_patches_and_queries_are_4xx(client, receiver):
    webhook_id = subscribe(client, receiver.url)["id"]
    path = f"/api/webhooks/{webhook_id}"
    assert client.patch(path, json={"retry_count": None}, headers=KEY).status_code == 400
    assert client.patch(path, json={"url": "ftp://x"}, headers=KEY).status_code == 400
    assert client.patch(path, json={"id": 5}, headers=KEY).status_code == 400
    listed = client.get(f"{path}/deliveries?limit=0", headers=KEY)
    assert listed.status_code == 400
    assert client.get(f"{path}/deliveries?status=lost", headers=KEY).status_code == 400
    assert client.get("/api/webhooks/999", headers=KEY).status_code == 404
    assert client.post("/api/webhooks/999/test", headers=KEY).status_code == 404
    missing = client.post(f"{path}/deliveries/999/redeliver", headers=KEY)
    assert missing.status_code == 404 and missing.get_json()["code"] == "delivery_not_found"


def test_ping_redeliver_and_the_delivery_log(outbound_app, receiver, start_sender):
    client = outbound_app.test_client()
    created = subscribe(client, receiver.url)
    webhook_id = created["id"]
    start_sender()
    queued = client.post(f"/api/webhooks/{webhook_id}/test", headers=KEY)
    assert queued.status_code == 202
    assert queued.get_json()["event_type"] == "ping"
    (ping,) = wait_until(receiver.snapshot)
    assert json.loads(ping.body)["data"]["webhook_id"] == webhook_id
    assert verify_webhook(
        ping.body.decode(), ping.headers["x-smartpresence-signature"], created["secret"]
    )
    delivery_id = queued.get_json()["id"]
    wait_until(lambda: deliveries(outbound_app, status="succeeded"))
    again = client.post(
        f"/api/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver", headers=KEY
    )
    assert again.status_code == 202
    first, second = wait_until(lambda: len(receiver.snapshot()) == 2 and receiver.snapshot())
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert first.body == second.body
    wait_until(lambda: deliveries(outbound_app, status="succeeded"))
    log = client.get(f"/api/webhooks/{webhook_id}/deliveries", headers=KEY).get_json()
    (entry,) = log["deliveries"]
    assert entry["status"] == "succeeded" and entry["attempts"] == 2
    assert [attempt["status_code"] for attempt in entry["history"]] == [200, 200]
    assert entry["payload"]["event_type"] == "ping"
    assert entry["message_id"] == first.headers["webhook-id"]
    client.patch(f"/api/webhooks/{webhook_id}", json={"is_active": False}, headers=KEY)
    refused = client.post(f"/api/webhooks/{webhook_id}/test", headers=KEY)
    assert refused.status_code == 409 and refused.get_json()["code"] == "webhook_disabled"


def test_errors_under_the_inbound_prefix_keep_their_shape(client):
    """/api/webhook/… (inbound) keeps its own shape; /api/webhooks/… has the integrations'."""
    inbound = client.get("/api/webhook/nothing-here")
    assert set(inbound.get_json()) == {"error", "code"}
    outbound = client.get("/api/webhooks/nothing-here", headers=KEY)
    assert set(outbound.get_json()) == {"detail", "status_code", "timestamp", "code"}


# --- volume, concurrency, restarts ----------------------------------------------------------------


def make_students(app, count: int, prefix: str) -> None:
    from sqlalchemy import insert

    from autocheckin.attendance.models import Student
    from autocheckin.times import utcnow

    now = utcnow()
    rows = [
        {
            "identifier": f"{prefix}{n}",
            "identifier_key": f"{prefix}{n}",
            "first_name": "Bulk",
            "last_name": str(n),
            "created_at": now,
            "updated_at": now,
        }
        for n in range(count)
    ]
    with app.app_context():
        db.session.execute(insert(Student.__table__), rows)
        db.session.commit()


def test_a_thousand_check_ins_are_a_thousand_deliveries(outbound_app, receiver, start_sender):
    """Two senders at once on one database: none lost, none doubled."""
    client = outbound_app.test_client()
    subscribe(client, receiver.url)
    make_students(outbound_app, 1000, "v")
    with outbound_app.app_context():
        make_event(name="Volume")
    start_sender(holder="sender-one")
    start_sender(holder="sender-two")
    for start in (0, 500):
        items = [
            {"student_identifier": f"v{n}", "event_identifier": "Volume"}
            for n in range(start, start + 500)
        ]
        answer = client.post("/api/webhook/attendance/batch/", json={"items": items}).get_json()
        assert answer["totals"]["recorded"] == 500
    wait_until(lambda: len(receiver.snapshot()) >= 1000, seconds=60, what="1,000 deliveries")
    wait_until(lambda: len(deliveries(outbound_app, status="succeeded")) == 1000, seconds=30)
    got = receiver.snapshot()
    assert len(got) == 1000
    assert len({item.headers["webhook-id"] for item in got}) == 1000
    attendance_ids = {json.loads(item.body)["data"]["attendance_id"] for item in got}
    assert len(attendance_ids) == 1000
    senders = {attempt.sender for attempt in attempts_of(outbound_app)}
    assert senders <= {"sender-one", "sender-two"}


def test_a_sender_with_a_stale_read_never_takes_a_newer_outbox_row(outbound_app, receiver):
    """Sender A reads outbox row 1; sender B takes it; a new check-in writes the next row.
    Had the id been reused (SQLite without AUTOINCREMENT), A would take the new row with
    the old row's items: one check-in delivered twice, the other never."""
    from autocheckin.database import write_transaction
    from autocheckin.times import utcnow

    client = outbound_app.test_client()
    subscribe(client, receiver.url)
    make_students(outbound_app, 2, "r")
    with outbound_app.app_context():
        make_event(name="Race")

    def check_in(student: str) -> None:
        body = {"student_identifier": student, "event_identifier": "Race"}
        assert client.post("/api/webhook/attendance/", json=body).status_code == 201

    check_in("r0")
    with outbound_app.app_context():
        stale = dispatch._prepare_fan_out(utcnow())  # sender A's read
        fresh = dispatch._prepare_fan_out(utcnow())  # sender B's read
        with write_transaction() as session:  # sender B takes the row
            assert dispatch._apply_fan_out(session.connection(), fresh) == 1
    check_in("r1")
    with outbound_app.app_context():
        with write_transaction() as session:
            assert dispatch._apply_fan_out(session.connection(), stale) == 0
        assert db.session.query(OutboxEntry).count() == 1  # r1's row waits for its turn


CHILD = """
import os, threading
from autocheckin import create_app
from autocheckin.outbound.sender import Sender
from tests.conftest import base_config

app = create_app(base_config(os.environ["CHILD_DATABASE_URL"], OUTBOUND_POLL_INTERVAL="0.05"))
client = app.test_client()
for number in range(20):
    body = {"student_identifier": f"k{number}", "event_identifier": "Killed"}
    assert client.post("/api/webhook/attendance/", json=body).status_code == 201
print("committed", flush=True)
Sender(app, holder="doomed").start()
threading.Event().wait(120)
"""


def test_a_killed_process_loses_nothing_and_doubles_nothing(
    outbound_app, database_url, start_sender
):
    """A process commits 20 check-ins, starts sending, and is SIGKILLed while its receiver
    holds the first requests. A fresh sender (its clock past the dead claims) delivers all
    20: each webhook-id answered 2xx exactly once, each delivery recorded succeeded once."""
    import os
    import signal
    import subprocess
    import sys
    import threading

    from autocheckin.outbound.dispatch import CLAIM_SECONDS
    from autocheckin.times import utcnow
    from tests.servers import ROOT

    holding = threading.Event()
    holding.set()
    released = threading.Event()

    def answer(_got):
        if holding.is_set():
            released.wait(10)
            return Answer(500)
        return Answer(200)

    receiver = Receiver(answer).start()
    child = None
    try:
        client = outbound_app.test_client()
        subscribe(client, receiver.url)
        make_students(outbound_app, 20, "k")
        with outbound_app.app_context():
            make_event(name="Killed")
        env = {**os.environ, "CHILD_DATABASE_URL": database_url, "PYTHONPATH": str(ROOT)}
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True
        )
        assert child.stdout.readline().strip() == "committed"
        wait_until(lambda: len(receiver.snapshot()) >= 2, what="the child sending")
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=10)
        claimed = [d for d in deliveries(outbound_app) if d.claimed_by == "doomed"]
        assert claimed and all(d.status == "pending" for d in claimed)
        before_restart = receiver.snapshot()
        holding.clear()
        released.set()
        start_sender(clock=lambda: utcnow() + timedelta(seconds=CLAIM_SECONDS + 1))
        wait_until(lambda: len(deliveries(outbound_app, status="succeeded")) == 20, seconds=30)
        after_restart = receiver.snapshot()[len(before_restart) :]
    finally:
        receiver.stop()
        if child is not None:
            if child.poll() is None:
                child.kill()
                child.wait()
            child.stdout.close()
    made = deliveries(outbound_app)
    assert len(made) == 20
    sent_again = [item.headers["webhook-id"] for item in after_restart]
    assert sorted(sent_again) == sorted(d.message_id for d in made)  # each exactly once
    held = {item.headers["webhook-id"] for item in before_restart}
    assert held <= set(sent_again)  # the dead process's claims went again, same webhook-id
    for delivery in made:
        assert delivery.status == "succeeded" and delivery.attempts == 1


def test_a_held_claim_is_renewed_and_a_lost_one_records_nothing(outbound_app, start_sender):
    from autocheckin.outbound.dispatch import AttemptResult
    from autocheckin.times import utcnow

    slow = Receiver(lambda _got: Answer(200, delay=1.5)).start()
    try:
        client = outbound_app.test_client()
        subscribe(client, slow.url, timeout_seconds=5)
        with outbound_app.app_context():
            make_student(identifier="a1")
            make_event(name="E")
        start_sender()
        check_in(client, "a1", "E")
        (first,) = wait_until(lambda: [d for d in deliveries(outbound_app) if d.claimed_until])
        wait_until(
            lambda: deliveries(outbound_app)[0].claimed_until > first.claimed_until,
            what="the claim renewed while the receiver is slow",
        )
        wait_until(lambda: deliveries(outbound_app, status="succeeded"))
    finally:
        slow.stop()
    (delivery,) = deliveries(outbound_app)
    late = AttemptResult(
        delivery_id=delivery.id,
        subscription_id=delivery.subscription_id,
        attempt=1,
        max_attempts=4,
        started_at=utcnow(),
        duration_ms=1.0,
        outcome="failure",
        error="HTTP 500",
        status_code=500,
    )
    with outbound_app.app_context():
        dispatch.exchange(
            [late],
            holder="a-sender-whose-claim-expired",
            claim_limit=0,
            busy_subscriptions=set(),
            backoff=dispatch.Backoff((1.0,), 10),
        )
    (after,) = deliveries(outbound_app)
    assert (after.status, after.attempts, after.last_status_code) == ("succeeded", 1, 200)
    assert [a.status_code for a in attempts_of(outbound_app)] == [200, 500]  # still recorded


def test_the_worker_process_delivers(outbound_app, database_url, receiver):
    """`python -m autocheckin.outbound`: a process that only sends (its poll finds the
    outbox row, since no sender in this process is woken)."""
    import subprocess
    import sys

    from tests.servers import ROOT, free_port, server_env, stop

    client = outbound_app.test_client()
    subscribe(client, receiver.url)
    with outbound_app.app_context():
        make_student(identifier="a1")
        make_event(name="E")
    env = server_env(
        free_port(),
        database_url,
        OUTBOUND_WEBHOOKS_ALLOW_PRIVATE="true",
        OUTBOUND_POLL_INTERVAL="0.1",
    )
    worker = subprocess.Popen(
        [sys.executable, "-m", "autocheckin.outbound"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        check_in(client, "a1", "E")
        (got,) = wait_until(receiver.snapshot, seconds=20, what="the worker's delivery")
    finally:
        stop(worker)
    assert json.loads(got.body)["event_type"] == "attendance.marked"
    assert worker.returncode == 0  # SIGTERM: a clean stop


def test_results_survive_a_database_blip(outbound_app, receiver, start_sender, monkeypatch):
    """The transaction that would record an attempt fails once: the result waits for the
    next cycle, and the delivery is recorded once, not sent again."""
    from sqlalchemy.exc import OperationalError

    real_exchange = dispatch.exchange
    failures = []

    def flaky_exchange(results, **kwargs):
        if results and not failures:
            failures.append(len(results))
            raise OperationalError("SELECT 1", {}, Exception("database is restarting"))
        return real_exchange(results, **kwargs)

    monkeypatch.setattr(dispatch, "exchange", flaky_exchange)
    client = outbound_app.test_client()
    subscribe(client, receiver.url)
    with outbound_app.app_context():
        make_student(identifier="a1")
        make_event(name="E")
    start_sender()
    check_in(client, "a1", "E")
    wait_until(lambda: deliveries(outbound_app, status="succeeded"))
    assert failures == [1]
    assert len(receiver.snapshot()) == 1
    assert [attempt.status_code for attempt in attempts_of(outbound_app)] == [200]
