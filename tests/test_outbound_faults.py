"""Outbound delivery under faults (issue 27), against real gunicorn where a worker matters:
a receiver down longer than the old retries lasted, a subscription disabled and turned
back on, receivers that hang and answer slowly, a worker SIGKILLed and a server SIGTERMed
mid-delivery. Loopback only; every wait polls a condition with a bound."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import Counter

import pytest
import requests
from sqlalchemy import insert

from autocheckin.attendance.models import Student
from autocheckin.extensions import db
from autocheckin.outbound import dispatch, subscriptions
from autocheckin.outbound.dispatch import Backoff
from autocheckin.outbound.models import Delivery, DeliveryAttempt, Subscription
from autocheckin.times import utcnow
from tests.conftest import API_KEY
from tests.helpers import make_event
from tests.receiver import Answer, Receiver, wait_until
from tests.servers import free_port, gunicorn

KEY = {"x-checkout-key": API_KEY}
# The default schedule (5 s, 5 min, 30 min, …) scaled down: the same shape, in seconds.
SCALED = {
    "OUTBOUND_POLL_INTERVAL": "0.05",
    "OUTBOUND_RETRY_SCHEDULE": "0.3,0.6,1.2,2.4",
    "OUTBOUND_CLAIM_LEASE": "2",
}
GUNICORN = {
    **SCALED,
    "OUTBOUND_POLL_INTERVAL": "0.1",
    "OUTBOUND_WEBHOOKS_ALLOW_PRIVATE": "true",
    "GUNICORN_GRACEFUL_TIMEOUT": "10",
}


@pytest.fixture
def app(make_app):
    return make_app(**SCALED)


def subscribe(client, url, **fields) -> dict:
    body = {"name": "Receiver", "url": url, "event_type": "attendance.marked", **fields}
    response = client.post("/api/webhooks", json=body, headers=KEY)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def students(app, count: int, prefix: str = "s") -> None:
    now = utcnow()
    rows = [
        {
            "identifier": f"{prefix}{n}",
            "identifier_key": f"{prefix}{n}",
            "first_name": "Fault",
            "last_name": str(n),
            "created_at": now,
            "updated_at": now,
        }
        for n in range(count)
    ]
    with app.app_context():
        db.session.execute(insert(Student.__table__), rows)
        db.session.commit()
        make_event(name="Faults")


def batch(count: int, prefix: str = "s") -> dict:
    return {
        "items": [
            {"student_identifier": f"{prefix}{n}", "event_identifier": "Faults"}
            for n in range(count)
        ]
    }


def deliveries(app) -> list[Delivery]:
    with app.app_context():
        return list(db.session.scalars(db.select(Delivery).order_by(Delivery.id)))


def statuses(app) -> Counter:
    return Counter(delivery.status for delivery in deliveries(app))


def attempts(app) -> list[DeliveryAttempt]:
    with app.app_context():
        return list(db.session.scalars(db.select(DeliveryAttempt).order_by(DeliveryAttempt.id)))


def answered_ids(received) -> Counter:
    return Counter(item.headers["webhook-id"] for item in received)


# --- a receiver that is down --------------------------------------------------------------------


@pytest.mark.slow
def test_a_receiver_down_past_the_old_give_up_receives_everything(app, database_url):
    """100 check-ins while the receiver is down until every delivery has failed 4 times
    (where the old default, 3 retries, gave up; 10 of those disabled the subscription and
    cancelled the rest): once it is back, all 100 arrive, each once."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/hook"
    client = app.test_client()
    created = subscribe(client, url)  # retry_count: the default, 7
    assert created["retry_count"] == 7
    students(app, 100)
    with gunicorn(database_url, **GUNICORN) as base:
        answer = requests.post(f"{base}/api/webhook/attendance/batch/", json=batch(100), timeout=10)
        assert answer.json()["totals"]["recorded"] == 100
        wait_until(
            lambda: (
                len(deliveries(app)) == 100
                and all(delivery.attempts >= 4 for delivery in deliveries(app))
            ),
            seconds=20,
            what="every delivery failed four times while the receiver is down",
        )
        assert statuses(app) == {"pending": 100}
        receiver = Receiver(port=port).start()
        try:
            wait_until(lambda: statuses(app) == {"succeeded": 100}, seconds=20, what="all sent")
            received = receiver.snapshot()
        finally:
            receiver.stop()
    assert sorted(answered_ids(received).values()) == [1] * 100
    assert subscription_row(app, created["id"]).is_active


def subscription_row(app, subscription_id) -> Subscription:
    with app.app_context():
        return db.session.get(Subscription, subscription_id)


# --- disabled, then turned back on ----------------------------------------------------------------


def fan_out(app) -> None:
    """What a sender's transaction does first, without sending anything."""
    with app.app_context():
        dispatch.exchange(
            [], holder="test", claim_limit=0, busy_subscriptions=set(), backoff=Backoff((1,), 10)
        )


def test_a_disabled_subscription_keeps_its_deliveries_and_turning_it_on_offers_them(
    make_app, start_sender
):
    """The receiver is down. Two deliveries (one retry each) fail for good and disable the
    subscription; eight more (ten retries each) are waiting for their next retry: they are
    held (the old code cancelled them), and nothing is sent while it is off. Turned back
    on, all ten go out; one made before the recover window is cancelled instead."""
    app = make_app(
        **{
            **SCALED,
            "OUTBOUND_RETRY_SCHEDULE": "0.3,3",
            "OUTBOUND_DISABLE_AFTER": "2",
            "OUTBOUND_RECOVER_WINDOW": "1h",
        }
    )
    port = free_port()
    client = app.test_client()
    created = subscribe(client, f"http://127.0.0.1:{port}/hook", retry_count=1)
    path = f"/api/webhooks/{created['id']}"
    students(app, 10)
    client.post("/api/webhook/attendance/batch/", json={"items": batch(10)["items"][:2]})
    fan_out(app)
    assert client.patch(path, json={"retry_count": 10}, headers=KEY).status_code == 200
    client.post("/api/webhook/attendance/batch/", json={"items": batch(10)["items"][2:]})
    fan_out(app)
    sender = start_sender(app)
    wait_until(lambda: not subscription_row(app, created["id"]).is_active, what="disabled")
    wait_until(lambda: statuses(app) == {"failed": 2, "pending": 8}, what=lambda: statuses(app))
    with app.app_context():
        old = db.session.scalars(db.select(Delivery).where(Delivery.status == "pending")).first()
        old.created_at = utcnow().replace(year=2000)
        db.session.commit()
        old_id = old.id
    tried = len(attempts(app))
    receiver = Receiver(port=port).start()
    try:
        assert len(attempts(app)) == tried  # held: nothing is tried while it is off
        turned_on = client.patch(path, json={"is_active": True}, headers=KEY)
        assert turned_on.status_code == 200 and turned_on.get_json()["is_active"]
        wait_until(
            lambda: statuses(app) == {"succeeded": 9, "cancelled": 1},
            what=lambda: statuses(app),
        )
        received = receiver.snapshot()
    finally:
        receiver.stop()
        sender.stop(timeout=2)
    assert len(received) == 9 and sorted(answered_ids(received).values()) == [1] * 9
    (cancelled,) = [delivery for delivery in deliveries(app) if delivery.status == "cancelled"]
    assert cancelled.id == old_id and "OUTBOUND_RECOVER_WINDOW" in cancelled.last_error


def test_the_dashboards_turn_on_offers_them_too(make_app):
    """The dashboard's "Turn on" calls the same service, so it recovers the same way."""
    app = make_app(**SCALED)
    client = app.test_client()
    created = subscribe(client, "http://127.0.0.1:9/hook", retry_count=0)
    students(app, 3)
    client.patch(f"/api/webhooks/{created['id']}", json={"is_active": False}, headers=KEY)
    with app.app_context():
        db.session.execute(
            insert(Delivery.__table__),
            [
                {
                    "subscription_id": created["id"],
                    "message_id": f"msg_held{n}",
                    "event_type": "attendance.marked",
                    "body": "{}",
                    "status": status,
                    "attempts": 1,
                    "max_attempts": 1,
                    "next_attempt_at": utcnow(),
                    "created_at": utcnow(),
                }
                for n, status in enumerate(("pending", "failed", "succeeded"))
            ],
        )
        db.session.commit()
        subscriptions.update_subscription(
            created["id"], changes={"is_active": True}, allow_private=True
        )
    due = {d.message_id: (d.status, d.max_attempts) for d in deliveries(app)}
    assert due == {
        "msg_held0": ("pending", 2),
        "msg_held1": ("pending", 2),
        "msg_held2": ("succeeded", 1),
    }


# --- receivers that hang and answer slowly --------------------------------------------------------


def test_hanging_and_slow_receivers_hold_a_sender_no_longer_than_their_timeout(
    make_app, start_sender
):
    """One receiver never answers, one answers after 3 s (slower than its 0.5 s timeout):
    every attempt at either ends at its timeout, on schedule, and a healthy receiver beside
    them gets all of its deliveries meanwhile."""
    app = make_app(**SCALED, OUTBOUND_CONCURRENCY="4")
    never = threading.Event()
    hanging = Receiver(lambda _got: never.wait(30) and Answer()).start()
    slow = Receiver(lambda _got: Answer(200, delay=3)).start()
    healthy = Receiver().start()
    try:
        client = app.test_client()
        subscribe(client, hanging.url, retry_count=1, timeout_seconds=0.5)
        subscribe(client, slow.url, retry_count=1, timeout_seconds=0.5)
        subscribe(client, healthy.url)
        students(app, 6)
        start_sender(app)
        client.post("/api/webhook/attendance/batch/", json=batch(6))
        wait_until(lambda: len(healthy.snapshot()) == 6, seconds=5, what="healthy served")
        wait_until(
            lambda: statuses(app) == {"succeeded": 6, "failed": 12}, seconds=15, what="spent"
        )
    finally:
        never.set()
        for server in (hanging, slow, healthy):
            server.stop()
    timed_out = [attempt for attempt in attempts(app) if attempt.error]
    assert len(timed_out) == 24  # 12 deliveries, one attempt and one retry each
    assert all(attempt.error == "timed out after 0.5 s" for attempt in timed_out)
    assert max(attempt.duration_ms for attempt in timed_out) < 1000


# --- a worker killed, a server stopped ------------------------------------------------------------


def pid_of(holder: str) -> int:
    """`host:pid:random:outbound` (processes.process_identity)."""
    return int(holder.split(":")[1])


@pytest.mark.slow
def test_a_killed_workers_claims_are_taken_over_within_the_lease(app, database_url):
    """A worker is SIGKILLed while its receiver holds its requests. Its claims lapse after
    OUTBOUND_CLAIM_LEASE (2 s here; 90 s before) and another worker sends them: each
    webhook-id answered 2xx exactly once, every delivery recorded succeeded."""
    released = threading.Event()
    answered_ok: list[str] = []

    def answer(got):
        if not released.is_set():
            released.wait(20)
            return Answer(500)  # an attempt from before the kill: its sender is gone
        answered_ok.append(got.headers["webhook-id"])
        return Answer(200)

    receiver = Receiver(answer).start()
    try:
        client = app.test_client()
        subscribe(client, receiver.url, timeout_seconds=20)
        students(app, 20)
        with gunicorn(database_url, **GUNICORN) as base:
            requests.post(f"{base}/api/webhook/attendance/batch/", json=batch(20), timeout=10)
            wait_until(lambda: len(receiver.snapshot()) >= 2, seconds=15, what="sending")
            claimed = wait_until(
                lambda: [d for d in deliveries(app) if d.claimed_by and d.status == "pending"],
                what="claims",
            )
            doomed = claimed[0].claimed_by
            theirs = {d.id for d in claimed if d.claimed_by == doomed}
            os.kill(pid_of(doomed), signal.SIGKILL)
            killed_at = time.monotonic()
            released.set()
            wait_until(
                lambda: all(d.status == "succeeded" for d in deliveries(app) if d.id in theirs),
                seconds=15,
                what="the dead worker's deliveries sent by another",
            )
            taken_over_after = time.monotonic() - killed_at
            wait_until(lambda: statuses(app) == {"succeeded": 20}, seconds=15, what="all sent")
    finally:
        released.set()
        receiver.stop()
    answered = Counter(answered_ok)
    made = deliveries(app)
    assert set(answered) == {d.message_id for d in made}
    assert sorted(answered.values()) == [1] * 20  # each answered 2xx exactly once
    assert taken_over_after < 8, taken_over_after  # the 2 s lease and a poll, not 90 s
    print(f"takeover of a killed worker's claims: {taken_over_after:.1f} s")


@pytest.mark.slow
def test_a_graceful_stop_waits_for_the_attempts_under_way_and_records_them(
    app, database_url, tmp_path, start_sender
):
    """SIGTERM while a slow receiver holds attempts: each worker waits for them (within the
    graceful timeout), records them, gives its other claims back. A sender started after
    sends the rest: every webhook-id arrives exactly once (before: the attempts under way
    were not recorded, their claims held 90 s, and they went twice)."""
    receiver = Receiver(lambda _got: Answer(200, delay=1.5)).start()
    pidfile = tmp_path / "gunicorn.pid"
    try:
        client = app.test_client()
        subscribe(client, receiver.url, timeout_seconds=5)
        students(app, 20)
        with gunicorn(database_url, **GUNICORN, GUNICORN_CMD_ARGS=f"--pid {pidfile}") as base:
            requests.post(f"{base}/api/webhook/attendance/batch/", json=batch(20), timeout=10)
            wait_until(lambda: len(receiver.snapshot()) >= 2, seconds=15, what="in flight")
            in_flight = set(answered_ids(receiver.snapshot()))
            master = int(pidfile.read_text())
            os.kill(master, signal.SIGTERM)
            stopped_at = time.monotonic()
            wait_until(lambda: not pidfile.exists(), seconds=15, what="gunicorn gone")
            stop_took = time.monotonic() - stopped_at
        made = {d.message_id: d for d in deliveries(app)}
        for message_id in in_flight:
            assert made[message_id].status == "succeeded", made[message_id].last_error
            assert made[message_id].attempts == 1
        assert not [d for d in made.values() if d.status == "pending" and d.claimed_by]
        start_sender(app)
        wait_until(lambda: statuses(app) == {"succeeded": 20}, seconds=30, what="the rest")
        received = receiver.snapshot()
    finally:
        receiver.stop()
    assert sorted(answered_ids(received).values()) == [1] * 20
    assert stop_took < 10, stop_took  # within GUNICORN_GRACEFUL_TIMEOUT
    print(f"graceful stop with attempts in flight: {stop_took:.1f} s")
