"""Issue 27's probe of the outbound webhooks, replayed as it was sent: addresses wrapped in
IPv6, a receiver that drips its answer, line breaks in custom headers, and one
integration's key reading and moving another's subscription."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from autocheckin.extensions import db
from autocheckin.outbound.models import Delivery, DeliveryAttempt
from tests.conftest import API_KEY
from tests.helpers import make_event, make_student
from tests.receiver import DripReceiver, Receiver, wait_until

KEY = {"x-checkout-key": API_KEY}
FAST = {
    "OUTBOUND_POLL_INTERVAL": "0.05",
    "OUTBOUND_RETRY_SCHEDULE": "0.2,0.4,0.8,1",
}
ERROR_SHAPE = {"detail", "status_code", "timestamp", "code"}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver().start()
    yield server
    server.stop()


def subscribe(client, url, auth=KEY, **fields):
    body = {"name": "Receiver", "url": url, "event_type": "attendance.marked", **fields}
    response = client.post("/api/webhooks", json=body, headers=auth)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def check_in(client, student, event):
    body = {"student_identifier": student, "event_identifier": event}
    response = client.post("/api/webhook/attendance/", json=body)
    assert response.status_code == 201, response.get_json()


def deliveries(app, **filters) -> list[Delivery]:
    with app.app_context():
        return list(
            db.session.scalars(db.select(Delivery).filter_by(**filters).order_by(Delivery.id))
        )


# --- 1. addresses inside IPv6 ---------------------------------------------------------------

WRAPPED = [
    "http://[64:ff9b::7f00:1]/",  # NAT64 of 127.0.0.1
    "http://[64:ff9b::a9fe:a9fe]/",  # NAT64 of 169.254.169.254 (cloud metadata)
    "http://[64:ff9b::a00:1]/",  # NAT64 of 10.0.0.1
    "http://[::7f00:1]/",  # IPv4-compatible 127.0.0.1
    "http://[::ffff:0:7f00:1]/",  # IPv4-translated 127.0.0.1
    "http://[64:ff9b:1::a00:1]/",  # local-use NAT64
    "http://[2002:a9fe:a9fe::1]/",  # 6to4 of 169.254.169.254
]


@pytest.mark.parametrize("url", WRAPPED)
def test_ipv4_inside_ipv6_is_refused_at_registration(make_app, url):
    client = make_app(OUTBOUND_WEBHOOKS_ALLOW_PRIVATE="false").test_client()
    body = {"name": "probe", "url": url, "event_type": "attendance.marked"}
    response = client.post("/api/webhooks", json=body, headers=KEY)
    assert response.status_code == 400, response.get_json()
    answer = response.get_json()
    assert answer["code"] == "refused_destination"
    assert set(answer) == ERROR_SHAPE
    created = client.post("/api/webhooks", json={**body, "url": "http://127.0.0.1/"}, headers=KEY)
    assert created.status_code == 400
    patch_target = make_app(OUTBOUND_WEBHOOKS_ALLOW_PRIVATE="true").test_client()
    webhook_id = subscribe(patch_target, "http://127.0.0.1:9/")["id"]
    moved = client.patch(f"/api/webhooks/{webhook_id}", json={"url": url}, headers=KEY)
    assert moved.status_code == 400 and moved.get_json()["code"] == "refused_destination"


@pytest.mark.parametrize(
    "address", ["64:ff9b::808:808", "2606:4700:4700::1111", "8.8.8.8", "2002:808:808::1"]
)
def test_public_addresses_stay_allowed_nat64_of_a_public_one_included(address):
    """An IPv6-only host behind DNS64 reaches an IPv4-only receiver at 64:ff9b::<its IPv4>."""
    import ipaddress

    from autocheckin.outbound.ssrf import refusal

    assert refusal(ipaddress.ip_address(address)) is None


def test_a_name_that_rebinds_to_nat64_loopback_is_refused_at_send(
    make_app, receiver, start_sender, monkeypatch
):
    """Registration saw a public address; at send the name answers 64:ff9b::7f00:1."""
    from autocheckin.outbound import ssrf

    answers = {"value": ["93.184.215.14"]}
    monkeypatch.setattr(ssrf, "resolve", lambda host, port: answers["value"])
    app = make_app(**FAST, OUTBOUND_WEBHOOKS_ALLOW_PRIVATE="false")
    client = app.test_client()
    subscribe(client, "http://hooks.example.com/hook", retry_count=0)
    answers["value"] = ["64:ff9b::7f00:1"]
    with app.app_context():
        make_student(identifier="a1")
        make_event(name="E")
    start_sender(app)
    check_in(client, "a1", "E")
    (delivery,) = wait_until(lambda: deliveries(app, status="failed"))
    assert "resolves to 64:ff9b::7f00:1, a loopback (IPv4 127.0.0.1" in delivery.last_error


# --- 2. one deadline for the whole attempt ----------------------------------------------------


def test_a_dripping_receiver_holds_a_sender_no_longer_than_its_timeout(make_app, start_sender):
    """One byte every 0.4 s: every read succeeds within the 1 s read timeout, so before the
    overall deadline the attempt lasted as long as the answer (~28 s; 12 s in the probe)."""
    app = make_app(**FAST)
    drip = DripReceiver(interval=0.4).start()
    try:
        client = app.test_client()
        subscribe(client, drip.url, retry_count=0, timeout_seconds=1)
        with app.app_context():
            make_student(identifier="a1")
            make_event(name="E")
        start_sender(app)
        check_in(client, "a1", "E")
        (delivery,) = wait_until(lambda: deliveries(app, status="failed"), seconds=6)
        wait_until(lambda: drip.held, seconds=5, what="the receiver sees the sender hang up")
    finally:
        drip.stop()
    assert delivery.last_error == "timed out after 1 s"
    with app.app_context():
        (attempt,) = db.session.scalars(db.select(DeliveryAttempt))
    assert 900 <= attempt.duration_ms < 1500, attempt.duration_ms
    assert drip.held[0] < 2.5  # one drip interval or two past the deadline, to notice


# --- 3. custom headers a request can carry ----------------------------------------------------

BAD_HEADERS = [
    {"X-Trace": "a\r\nX-Injected: 1"},  # the probe's CR/LF
    {"X-Trace": "a\nb"},
    {"X-Trace": "token\r\n"},
    {"X-Trace": "a\x00b"},
    {"X-Trace": " leading-space"},
    {"X-Trace": "caf\u00e9"},  # not ASCII: http.client would fail every delivery
    {"X-Trace\r\nX-Injected": "1"},
    {"X-Trace:": "1"},
    {"X-Trace": "x" * 4097},
]


@pytest.mark.parametrize("headers", BAD_HEADERS)
def test_a_header_no_request_can_carry_is_refused_at_registration_and_patch(client, headers):
    body = {"name": "x", "url": "http://127.0.0.1:9/", "event_type": "attendance.marked"}
    created = client.post("/api/webhooks", json={**body, "headers": headers}, headers=KEY)
    assert created.status_code == 400, created.get_json()
    assert set(created.get_json()) == ERROR_SHAPE
    assert "headers" in created.get_json()["detail"]
    webhook_id = subscribe(client, body["url"])["id"]
    patched = client.patch(f"/api/webhooks/{webhook_id}", json={"headers": headers}, headers=KEY)
    assert patched.status_code == 400, patched.get_json()
    assert set(patched.get_json()) == ERROR_SHAPE
    shown = client.get(f"/api/webhooks/{webhook_id}", headers=KEY).get_json()
    assert shown["headers"] == {}


def test_the_service_refuses_them_too(app):
    """The dashboard or a CLI calling the service meets the same rule as the API."""
    from autocheckin.attendance.errors import Invalid
    from autocheckin.outbound import subscriptions

    for headers in BAD_HEADERS:
        with pytest.raises(Invalid, match="headers"):
            subscriptions.check_headers(headers)
    good = {"Authorization": "Bearer abc def", "X-Tab": "a\tb", "X-Empty": ""}
    assert subscriptions.check_headers(good) == good


def test_openapi_declares_the_header_rules(client):
    spec = client.get("/openapi.json").get_json()["components"]["schemas"]
    for model in ("WebhookCreate-Input", "WebhookUpdate-Input"):  # request bodies
        headers = spec[model]["properties"]["headers"]
        assert headers["propertyNames"]["pattern"].startswith("^[!#$%&")
        assert headers["additionalProperties"] is False
        text = str(headers)
        assert "maxLength" in text and "\\t -~" in text


# --- 4. who sees and moves a subscription --------------------------------------------------------

SECRET_URL = "http://127.0.0.1:9/services/T000/B000/XXXXsecretXXXX?token=abc"


def integration_key(app, name: str) -> dict[str, str]:
    result = app.test_cli_runner().invoke(args=["keys", "create", name])
    assert result.exit_code == 0, result.output
    line = next(line for line in result.output.splitlines() if line.startswith(f"{name}: "))
    return {"x-checkout-key": line.split(": ", 1)[1]}


def admin_token(app, client) -> dict[str, str]:
    from tests.helpers import bearer, login, register

    register(client, email="admin@example.com", name="Admin")
    assert (
        app.test_cli_runner().invoke(args=["users", "promote", "admin@example.com"]).exit_code == 0
    )
    return bearer(login(client, email="admin@example.com").get_json()["access_token"])


def test_another_integration_key_sees_scheme_and_host_and_cannot_move_it(app, client):
    """The probe: key B lists every subscription and PATCHes key A's to its own server."""
    moodle, attacker = integration_key(app, "moodle"), integration_key(app, "attacker")
    created = subscribe(client, SECRET_URL, auth=moodle, headers={"X-Receiver-Pass": "hunter2"})
    assert created["url"] == SECRET_URL and created["is_yours"] is True
    webhook_id = created["id"]

    listed = client.get("/api/webhooks", headers=attacker).get_json()["webhooks"]
    (seen,) = listed
    assert seen["url"] == "http://127.0.0.1:9"
    assert seen["headers"] == {"X-Receiver-Pass": "********"}
    assert seen["is_yours"] is False
    one = client.get(f"/api/webhooks/{webhook_id}", headers=attacker).get_json()
    assert one["url"] == "http://127.0.0.1:9" and "secret" not in str(one["url"])

    path = f"/api/webhooks/{webhook_id}"
    moves = [
        client.patch(path, json={"url": "http://127.0.0.1:8/steal"}, headers=attacker),
        client.patch(path, json={"is_active": False}, headers=attacker),
        client.delete(path, headers=attacker),
        client.post(f"{path}/test", headers=attacker),
        client.get(f"{path}/deliveries", headers=attacker),
        client.post(f"{path}/deliveries/1/redeliver", headers=attacker),
    ]
    for refused in moves:
        assert refused.status_code == 403, refused.get_json()
        assert set(refused.get_json()) == ERROR_SHAPE
        assert refused.get_json()["code"] == "not_your_webhook"

    mine = client.get(path, headers=moodle).get_json()
    assert (mine["url"], mine["is_active"], mine["is_yours"]) == (SECRET_URL, True, True)
    assert mine["headers"] == {"X-Receiver-Pass": "hunter2"}
    moved = client.patch(path, json={"name": "Moodle"}, headers=moodle)
    assert moved.status_code == 200 and moved.get_json()["url"] == SECRET_URL


def test_the_checkout_key_and_admins_see_and_change_every_one(app, client):
    moodle = integration_key(app, "moodle")
    admin = admin_token(app, client)
    by_key = subscribe(client, SECRET_URL, auth=moodle)
    by_operator = subscribe(client, SECRET_URL + "&op=1", auth=KEY)
    by_admin = subscribe(client, SECRET_URL + "&admin=1", auth=admin)
    with app.app_context():
        from autocheckin.auth.api_keys import ApiKey
        from autocheckin.auth.models import Account

        key_id = db.session.scalar(db.select(ApiKey.id).where(ApiKey.name == "moodle"))
        admin_id = db.session.scalar(
            db.select(Account.id).where(Account.email == "admin@example.com")
        )
    assert by_key["created_by"] == f"api_key:{key_id}"
    assert by_operator["created_by"] == "checkout_key"
    assert by_admin["created_by"] == f"account:{admin_id}"
    for who in (KEY, admin):
        shown = client.get("/api/webhooks", headers=who).get_json()["webhooks"]
        assert [item["url"] for item in shown] == [
            SECRET_URL,
            SECRET_URL + "&op=1",
            SECRET_URL + "&admin=1",
        ]
        assert all(item["is_yours"] for item in shown)
    patched = client.patch(f"/api/webhooks/{by_key['id']}", json={"name": "op"}, headers=KEY)
    assert patched.status_code == 200
    shown_to_key = client.get("/api/webhooks", headers=moodle).get_json()["webhooks"]
    assert [item["url"] for item in shown_to_key] == [
        SECRET_URL,
        "http://127.0.0.1:9",
        "http://127.0.0.1:9",
    ]
    refused = client.patch(f"/api/webhooks/{by_operator['id']}", json={"name": "x"}, headers=moodle)
    assert refused.status_code == 403


def test_a_subscription_from_before_is_nobodys_but_the_operators(app, client):
    """Made before migration 0014 (created_by null): an integration key sees its host only."""
    from autocheckin.outbound.models import Subscription

    moodle = integration_key(app, "moodle")
    webhook_id = subscribe(client, SECRET_URL, auth=KEY)["id"]
    with app.app_context():
        db.session.get(Subscription, webhook_id).created_by = None
        db.session.commit()
    shown = client.get(f"/api/webhooks/{webhook_id}", headers=moodle).get_json()
    assert shown["url"] == "http://127.0.0.1:9" and shown["created_by"] is None
    path = f"/api/webhooks/{webhook_id}"
    assert client.patch(path, json={"name": "x"}, headers=moodle).status_code == 403
    assert client.get(path, headers=KEY).get_json()["url"] == SECRET_URL
