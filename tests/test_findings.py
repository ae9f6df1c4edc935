"""Suspicious check-ins (issue 24): each rule fires on its pattern and stays silent on an
ordinary event; a finding is made once across passes, two workers and a restart; confirming
voids its check-ins through the corrections path; every door to findings says who may use it.
"""

from __future__ import annotations

import json
import re
import threading
from datetime import timedelta

import pytest
from sqlalchemy import select

from autocheckin import settings
from autocheckin.attendance.models import Attendance, AttendanceChange
from autocheckin.extensions import db
from autocheckin.findings import detector
from autocheckin.findings.models import Finding
from autocheckin.outbound.models import OutboxEntry
from autocheckin.times import iso, utcnow
from autocheckin.webhooks.models import WebhookRequest
from tests.helpers import LEGACY, make_event, make_student, post, rows

KEY = {"x-checkout-key": "test-checkout-key"}
PHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) Safari/604.1"


@pytest.fixture
def app(make_app):
    return make_app(SECRET_KEY="findings-test-secret-" + "x" * 16, FRAUD_SETTLE="0")


def detect(app, **overrides):
    with app.app_context():
        return detector.detect(now=utcnow(), rules=settings.of(app).findings, **overrides)


def findings(app, rule=None):
    with app.app_context():
        query = select(Finding).order_by(Finding.id)
        if rule is not None:
            query = query.where(Finding.rule == rule)
        found = list(db.session.scalars(query))
        db.session.expunge_all()
        return found


def _event(app, *, start=None, lasts=timedelta(hours=1), location="", name=None):
    with app.app_context():
        start = start or utcnow() - timedelta(minutes=5)
        return make_event(
            name=name or f"Class {start:%H%M%S%f}{location}",
            start_time=start,
            end_time=start + lasts,
            location=location,
        ).id


def _people(app, count, prefix="s"):
    with app.app_context():
        return [
            make_student(identifier=f"{prefix}{n}", email=f"{prefix}{n}@school.example").id
            for n in range(count)
        ]


def _scan(client, identifier, event_id, **fields):
    body = {"student_identifier": identifier, "event_identifier": event_id, **fields}
    return post(client, LEGACY, body)


def _web_check_in(client, auth, email, event_id, *, address, agent=PHONE):
    headers = auth.headers(email=email, name=email.split("@")[0].title())
    return client.post(
        f"/events/{event_id}/attend",
        headers={**headers, "User-Agent": agent},
        environ_base={"REMOTE_ADDR": address},
    )


def _subscribe_fraud(client):
    body = {"name": "Review", "url": "http://127.0.0.1:9/hook", "event_type": "fraud.detected"}
    answer = client.post("/api/webhooks", json=body, headers=KEY)
    assert answer.status_code == 201, answer.get_json()


def _fraud_items(app):
    with app.app_context():
        entries = db.session.scalars(
            select(OutboxEntry).where(OutboxEntry.event_type == "fraud.detected")
        )
        return [item for entry in entries for item in json.loads(entry.items)]


# --- shared_client: one phone, many accounts ----------------------------------------------------


def test_one_phone_checking_in_three_accounts_is_one_finding(app, client, auth):
    _subscribe_fraud(client)
    event_id = _event(app)
    for name in ("ann", "bob", "cy"):
        answer = _web_check_in(client, auth, f"{name}@school.example", event_id, address="10.1.1.1")
        assert answer.status_code == 200, answer.get_json()
    assert findings(app) == []  # nothing is judged in the request
    result = detect(app)
    (finding,) = findings(app, "shared_client")
    assert result.created == 1
    assert finding.state == "open" and finding.subject.startswith("web:10.1.1.1|")
    assert finding.evidence["people_count"] == 3 and finding.evidence["user_agent"] == PHONE
    assert len(finding.attendance_ids) == 3
    assert detect(app).created == 0 and len(findings(app)) == 1  # the next pass adds nothing
    (item,) = _fraud_items(app)
    assert (item["finding_id"], item["rule"]) == (finding.id, "shared_client")


def test_a_fourth_account_later_in_the_burst_joins_the_finding(app, client, auth):
    event_id = _event(app)
    for name in ("ann", "bob", "cy"):
        _web_check_in(client, auth, f"{name}@school.example", event_id, address="10.1.1.1")
    detect(app)
    _web_check_in(client, auth, "dee@school.example", event_id, address="10.1.1.1")
    assert detect(app).created == 0
    (finding,) = findings(app)
    assert finding.evidence["people_count"] == 4 and len(finding.attendance_ids) == 4


def test_many_phones_and_one_scanner_are_normal(app, client, auth):
    """A class on their own phones (each its own address), and a queue of 40 people through
    one scanner at the door in ten minutes: nothing to review."""
    event_id = _event(app)
    for n, name in enumerate(("ann", "bob", "cy", "dee", "eve")):
        answer = _web_check_in(
            client, auth, f"{name}@school.example", event_id, address=f"10.2.0.{n + 1}"
        )
        assert answer.status_code == 200
    second = _event(app)
    for identifier in [f"q{n}" for n in range(40)]:
        with app.app_context():
            make_student(identifier=identifier, email=f"{identifier}@school.example")
    for identifier in [f"q{n}" for n in range(40)]:
        answer = _scan(client, identifier, second, source="door-scanner")
        assert answer.status_code == 201, answer.get_json()
    assert detect(app).created == 0
    assert findings(app) == []


def test_a_trusted_network_is_not_judged(make_app, auth):
    app = make_app(FRAUD_SETTLE="0", FRAUD_TRUSTED_NETWORKS="10.9.0.0/16")
    client = app.test_client()
    auth = type(auth)(client)
    event_id = _event(app)
    for name in ("ann", "bob", "cy"):
        _web_check_in(client, auth, f"{name}@school.example", event_id, address="10.9.4.4")
    assert detect(app).created == 0


def test_the_same_address_with_other_browsers_is_other_clients(app, client, auth):
    event_id = _event(app)
    for n, name in enumerate(("ann", "bob", "cy")):
        _web_check_in(
            client, auth, f"{name}@school.example", event_id, address="10.1.1.1", agent=f"B/{n}"
        )
    assert detect(app).created == 0


# --- overlap: two places at once ----------------------------------------------------------------


def test_checked_in_at_two_overlapping_events_in_different_places(app, client):
    _subscribe_fraud(client)
    start = utcnow() - timedelta(minutes=20)
    room_a = _event(app, start=start, location="Room A")
    room_b = _event(app, start=start + timedelta(minutes=5), location="Room B")
    _people(app, 1)
    assert _scan(client, "s0", room_a).status_code == 201
    assert _scan(client, "s0", room_b).status_code == 201
    detect(app)
    (finding,) = findings(app, "overlap")
    assert finding.subject.startswith("person:")
    assert {entry["location"] for entry in finding.evidence["check_ins"]} == {"Room A", "Room B"}
    assert detect(app).created == 0 and len(_fraud_items(app)) == 1


def test_same_place_back_to_back_or_unplaced_events_are_normal(app, client):
    start = utcnow() - timedelta(minutes=50)
    first = _event(app, start=start, lasts=timedelta(minutes=45), location="Room A")
    # Overlaps the first by 5 minutes only (a passing period), in another room.
    next_door = _event(app, start=start + timedelta(minutes=40), location="Room B")
    same_room = _event(app, start=start + timedelta(minutes=10), location=" room a ")
    no_place = _event(app, start=start + timedelta(minutes=10))
    _people(app, 1)
    scans = ((first, -45), (next_door, -8), (same_room, -30), (no_place, -30))
    for event_id, minutes in scans:
        moment = iso(utcnow() + timedelta(minutes=minutes))
        answer = _scan(client, "s0", event_id, check_in_time=moment)
        assert answer.status_code == 201, answer.get_json()
    detect(app)
    assert findings(app, "overlap") == []  # (the back-dated scans are clock_skew's)


# --- clock_skew: a back-dated scan or a wrong clock ---------------------------------------------


def test_a_scan_dated_long_before_it_arrived_is_one_finding_per_scanner(app, client):
    event_id = _event(app, start=utcnow() - timedelta(hours=2), lasts=timedelta(hours=3))
    _people(app, 3)
    back = iso(utcnow() - timedelta(minutes=40))
    for identifier in ("s0", "s1"):
        answer = _scan(client, identifier, event_id, source="gate-2", check_in_time=back)
        assert answer.status_code == 201, answer.get_json()
    assert _scan(client, "s2", event_id, source="gate-1").status_code == 201  # on time
    detect(app)
    (finding,) = findings(app, "clock_skew")
    assert finding.subject == "source:attendance:gate-2"
    assert finding.evidence["count"] == 2 and len(finding.attendance_ids) == 2
    assert finding.evidence["largest_skew_seconds"] == pytest.approx(-2400, abs=60)


def test_scans_on_time_and_replays_are_normal(app, client):
    event_id = _event(app, start=utcnow() - timedelta(hours=2), lasts=timedelta(hours=3))
    _people(app, 2)
    recent = iso(utcnow() - timedelta(minutes=2))
    assert _scan(client, "s0", event_id, source="gate", check_in_time=recent).status_code == 201
    # An unknown person's scan, kept unmatched, goes through when the roster has them: it
    # runs on its own arrival time, long before it was stored.
    assert _scan(client, "late", event_id, source="gate").status_code == 404
    with app.app_context():
        make_student(identifier="late", email="late@school.example")
        db.session.execute(  # it came in an hour ago
            WebhookRequest.__table__.update().values(received_at=utcnow() - timedelta(hours=1))
        )
        db.session.commit()
    answer = client.post("/api/v1/webhooks/unmatched/resolve", headers=KEY)
    assert answer.status_code == 200, answer.get_json()
    assert rows(app, Attendance) == 2
    assert detect(app).created == 0


# --- unknown_ids: someone guessing ---------------------------------------------------------------


def test_a_burst_of_unknown_identifiers_from_one_client(app, client):
    event_id = _event(app)
    for n in range(20):
        answer = client.post(
            LEGACY,
            json={"student_identifier": f"guess{n:04d}", "event_identifier": event_id},
            environ_base={"REMOTE_ADDR": "10.5.5.5"},
        )
        assert answer.status_code == 404
    detect(app)
    (finding,) = findings(app, "unknown_ids")
    assert finding.subject == "client:10.5.5.5"
    assert finding.evidence["unknown"] == 20 and len(finding.evidence["requests"]) == 20


def test_a_batch_counts_its_unknown_items_and_retries_count_once(app, client):
    event_id = _event(app)
    _people(app, 5)
    items = [{"student_identifier": f"s{n}", "event_identifier": event_id} for n in range(5)]
    items += [{"student_identifier": f"nobody{n}", "event_identifier": event_id} for n in range(3)]
    for _ in range(10):  # the same batch again and again: one request's unknowns
        answer = client.post(
            "/api/webhook/attendance/batch",
            json={"items": items},
            environ_base={"REMOTE_ADDR": "10.6.6.6"},
        )
        assert answer.status_code == 200, answer.get_json()
    assert detect(app).created == 0
    guesses = [{"student_identifier": f"g{n}", "event_identifier": event_id} for n in range(17)]
    answer = client.post(
        "/api/webhook/attendance/batch",
        json={"items": guesses},
        environ_base={"REMOTE_ADDR": "10.6.6.6"},
    )
    assert answer.get_json()["totals"]["not_found"] == 17
    detect(app)
    (finding,) = findings(app, "unknown_ids")
    assert finding.evidence["unknown"] == 20 and len(finding.evidence["requests"]) == 2


def test_a_few_unknowns_at_a_busy_door_are_normal(app, client):
    event_id = _event(app)
    _people(app, 40, prefix="k")
    for n in range(40):
        assert _scan(client, f"k{n}", event_id).status_code == 201
    for n in range(3):  # new students the roster does not have yet
        assert _scan(client, f"new{n}", event_id).status_code == 404
    assert detect(app).created == 0


# --- review: confirm, dismiss, and who may ---------------------------------------------------


def _overlap_finding(app, client):
    start = utcnow() - timedelta(minutes=20)
    room_a = _event(app, start=start, location="Room A")
    room_b = _event(app, start=start + timedelta(minutes=5), location="Room B")
    _people(app, 1)
    _scan(client, "s0", room_a)
    _scan(client, "s0", room_b)
    detect(app)
    (finding,) = findings(app, "overlap")
    return finding


def test_confirming_voids_the_named_check_ins_through_corrections(app, client):
    finding = _overlap_finding(app, client)
    listed = client.get("/api/v1/findings", headers=KEY).get_json()["data"]
    assert listed["total"] == 1 and listed["findings"][0]["id"] == finding.id
    keep, void = finding.attendance_ids
    answer = client.post(
        f"/api/v1/findings/{finding.id}/confirm",
        json={"reason": "seen in Room A only", "attendance_ids": [void]},
        headers=KEY,
    )
    assert answer.status_code == 200, answer.get_json()
    data = answer.get_json()["data"]
    assert (data["state"], data["decided_by"], data["voided_ids"]) == (
        "confirmed",
        "checkout_key",
        [void],
    )
    with app.app_context():
        assert db.session.get(Attendance, void).voided_at is not None
        assert db.session.get(Attendance, keep).voided_at is None
        entry = db.session.scalar(
            select(AttendanceChange).where(
                AttendanceChange.attendance_id == void, AttendanceChange.seq == 2
            )
        )
        assert entry.action == "voided" and entry.actor == "checkout_key"
        assert entry.reason == f"finding {finding.id} (overlap) confirmed: seen in Room A only"
    again = client.post(
        f"/api/v1/findings/{finding.id}/dismiss", json={"reason": "changed my mind"}, headers=KEY
    )
    assert again.status_code == 409 and again.get_json()["code"] == "already_decided"
    assert client.get("/api/v1/findings", headers=KEY).get_json()["data"]["total"] == 0
    everything = client.get("/api/v1/findings?state=confirmed", headers=KEY).get_json()
    assert everything["data"]["total"] == 1


def test_dismissing_changes_nothing_but_the_finding(app, client):
    finding = _overlap_finding(app, client)
    answer = client.post(
        f"/api/v1/findings/{finding.id}/dismiss",
        json={"reason": "two rooms, one hall"},
        headers=KEY,
    )
    assert answer.status_code == 200 and answer.get_json()["data"]["state"] == "dismissed"
    with app.app_context():
        assert db.session.query(Attendance).filter(Attendance.voided_at.is_not(None)).count() == 0
    detect(app)
    assert len(findings(app)) == 1  # seen again, still the one (dismissed) finding


def test_bad_decisions_are_refused_and_change_nothing(app, client):
    finding = _overlap_finding(app, client)
    path = f"/api/v1/findings/{finding.id}/confirm"
    for body, status in (
        ({}, 422),
        ({"reason": "  "}, 422),
        ({"reason": "x", "attendance_ids": [999999]}, 422),
        ({"reason": "x", "attendance_ids": []}, 422),
        ({"reason": "x", "extra": 1}, 422),
        ("not json", 422),
    ):
        answer = (
            client.post(path, data=body, headers={**KEY, "Content-Type": "application/json"})
            if isinstance(body, str)
            else client.post(path, json=body, headers=KEY)
        )
        assert answer.status_code == status, (body, answer.get_json())
        assert answer.get_json()["success"] is False
    assert (
        client.post("/api/v1/findings/999/dismiss", json={"reason": "x"}, headers=KEY).status_code
        == 404
    )
    assert client.get("/api/v1/findings/999", headers=KEY).status_code == 404
    assert client.get("/api/v1/findings?state=maybe", headers=KEY).status_code in (400, 422)
    assert client.get("/api/v1/findings?limit=0", headers=KEY).status_code in (400, 422)
    assert findings(app)[0].state == "open"


def test_only_admins_and_key_holders_read_or_decide(app, client, auth, runner):
    finding = _overlap_finding(app, client)
    for method, path in (
        ("get", "/api/v1/findings"),
        ("get", f"/api/v1/findings/{finding.id}"),
        ("post", f"/api/v1/findings/{finding.id}/confirm"),
        ("post", f"/api/v1/findings/{finding.id}/dismiss"),
    ):
        answer = getattr(client, method)(path, json={"reason": "x"} if method == "post" else None)
        assert answer.status_code == 401, path
        assert answer.get_json()["success"] is False
    assert client.get("/api/v1/findings", headers={"x-checkout-key": "wrong"}).status_code == 401
    user = auth.headers(email="user@school.example", name="User")
    assert client.get("/api/v1/findings", headers=user).status_code == 403
    path = f"/api/v1/findings/{finding.id}/dismiss"
    assert client.post(path, json={"reason": "x"}, headers=user).status_code == 403
    admin = auth.headers(email="boss@school.example", name="Boss")
    assert runner.invoke(args=["users", "promote", "boss@school.example"]).exit_code == 0
    answer = client.post(path, json={"reason": "known hall"}, headers=admin)
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["data"]["decided_by"].startswith("account:")


# --- once across two workers and a restart ---------------------------------------------------


def test_two_workers_at_once_and_a_restart_make_each_finding_once(make_app, database_url):
    first = make_app(FRAUD_SETTLE="0")
    client = first.test_client()
    _subscribe_fraud(client)
    start = utcnow() - timedelta(minutes=20)
    room_a = _event(first, start=start, location="Room A")
    room_b = _event(first, start=start + timedelta(minutes=5), location="Room B")
    _people(first, 1)
    _scan(client, "s0", room_a)
    _scan(client, "s0", room_b)
    second = make_app(FRAUD_SETTLE="0")
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def run(app):
        try:
            barrier.wait(timeout=10)
            detect(app)
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=run, args=(app,)) for app in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    restarted = make_app(FRAUD_SETTLE="0")
    with restarted.app_context():
        from autocheckin import state

        state.set(detector.CURSOR_KEY, None)  # a restart that lost its cursor reads again
    detect(restarted)
    assert len(findings(restarted)) == 1
    assert len(_fraud_items(restarted)) == 1


# --- the dashboard's review queue -------------------------------------------------------------


def _signed_in_admin(app):
    """A browser signed in to the dashboard as an admin, and the overview page it got."""
    from autocheckin.auth import accounts

    password = "correct horse battery staple 42"
    with app.app_context():
        accounts.register_user(email="boss@school.example", name="Boss", password=password)
        accounts.set_web_role(email="boss@school.example", role="admin")
    site = app.test_client()
    login = site.get("/dashboard/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', login).group(1)
    form = {"email": "boss@school.example", "password": password, "csrf_token": token}
    assert site.post("/dashboard/login", data=form).status_code == 302
    return site, site.get("/dashboard/").get_data(as_text=True)


def test_the_dashboard_review_queue_confirms_with_its_token_and_a_reason(app, client):
    finding = _overlap_finding(app, client)
    site, page = _signed_in_admin(app)
    assert "Suspicious check-ins to review" in page
    assert f"Person {finding.evidence['person_id']} was checked in at Room A" in page
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    target = f"/dashboard/findings/{finding.id}/confirm"
    site.post(target, data={"reason": "seen in one room"})  # no token: nothing happens
    site.post(target, data={"csrf_token": token, "reason": ""})  # no reason: nothing either
    assert findings(app)[0].state == "open"
    done = site.post(target, data={"csrf_token": token, "reason": "seen in one room"})
    assert done.status_code == 302
    (decided,) = findings(app)
    assert decided.state == "confirmed" and decided.decided_by.startswith("account:")
    assert sorted(decided.voided_ids) == sorted(finding.attendance_ids)
    assert "None open." in site.get("/dashboard/").get_data(as_text=True)


# --- where a check-in came from is personal data -----------------------------------------------


def test_clients_are_pruned_with_the_webhook_log_and_forgotten_with_the_person(app, client, auth):
    from autocheckin import jobs
    from autocheckin.attendance import service
    from autocheckin.attendance.models import CheckInOrigin

    event_id = _event(app)
    for n, name in enumerate(("ann", "bob")):
        answer = _web_check_in(
            client, auth, f"{name}@school.example", event_id, address=f"10.3.0.{n}"
        )
        assert answer.status_code == 200
    assert rows(app, CheckInOrigin) == 2
    with app.app_context():
        ann = db.session.scalar(select(CheckInOrigin).where(CheckInOrigin.client == "10.3.0.0"))
        person = db.session.get(Attendance, ann.attendance_id).student_id
        service.remove_person(person)
        kept = db.session.scalars(select(CheckInOrigin.client)).all()
    assert kept == ["10.3.0.1"]
    with app.app_context():  # 31 days on, the daily prune forgets the rest
        db.session.execute(
            CheckInOrigin.__table__.update().values(recorded_at=utcnow() - timedelta(days=31))
        )
        db.session.commit()
        assert jobs.prune(app)["check_in_origins"] == 1
    assert rows(app, CheckInOrigin) == 0


# --- after a decision, and what the review found -------------------------------------------


def test_new_evidence_after_a_decision_is_a_new_finding_that_follows_it(app, client, auth):
    first = _event(app)
    for name in ("ann", "bob", "cy"):
        _web_check_in(client, auth, f"{name}@school.example", first, address="10.1.1.1")
    detect(app)
    (decided,) = findings(app)
    answer = client.post(
        f"/api/v1/findings/{decided.id}/dismiss", json={"reason": "a family"}, headers=KEY
    )
    assert answer.status_code == 200
    assert detect(app).created == 0  # the same check-ins again: nothing new
    second = _event(app)
    for name in ("ann", "bob", "cy"):
        _web_check_in(client, auth, f"{name}@school.example", second, address="10.1.1.1")
    assert detect(app).created == 1
    decided_again, follower = findings(app)
    assert (
        decided_again.state == "dismissed"
        and decided_again.attendance_ids == decided.attendance_ids
    )
    assert follower.state == "open" and follower.evidence["follows_finding"] == decided.id
    assert not set(follower.attendance_ids) & set(decided.attendance_ids)
    assert len(follower.attendance_ids) == 3
    assert detect(app).created == 0 and len(findings(app)) == 2


def test_a_finding_decided_while_a_pass_adds_to_it_is_left_as_decided(app, client, auth):
    from autocheckin.database import write_transaction
    from autocheckin.findings.models import Finding as Model
    from autocheckin.findings.rules import Hit

    event_id = _event(app)
    for name in ("ann", "bob", "cy"):
        _web_check_in(client, auth, f"{name}@school.example", event_id, address="10.1.1.1")
    detect(app)
    (finding,) = findings(app)
    with app.app_context():
        stale = db.session.execute(
            select(Model.__table__).where(Model.id == finding.id)
        ).first()  # read while open ...
        db.session.rollback()
    client.post(f"/api/v1/findings/{finding.id}/confirm", json={"reason": "x"}, headers=KEY)
    hit = Hit(
        rule="shared_client",
        subject=finding.subject,
        key=finding.dedupe_key,
        first_seen=finding.first_seen_at,
        last_seen=finding.last_seen_at,
        attendance_ids=[*finding.attendance_ids, 999],
        evidence=finding.evidence,
    )
    with app.app_context(), write_transaction() as session:
        assert detector._merge(session, stale, hit) is False  # ... written once decided
    (after,) = findings(app)
    assert after.state == "confirmed" and after.attendance_ids == finding.attendance_ids


def test_counts_past_the_evidence_cap_stay_exact_when_seen_again():
    ids = list(range(500))
    merged = detector.merged_evidence("clock_skew", {"count": 800}, {"count": 800}, ids)
    assert merged["count"] == 800
    unknown = detector.merged_evidence(
        "unknown_ids",
        {"requests": [[1, 600]], "unknown": 1000},
        {"requests": [[1, 600]], "unknown": 1000},
        [],
    )
    assert unknown["unknown"] == 1000


def test_ipv4_peers_of_a_dual_stack_socket_are_each_their_own_client(app, client, auth):
    """gunicorn binds `[::]`: an IPv4 caller arrives as ::ffff:a.b.c.d, and is that IPv4
    address; an IPv6 caller is its /64 (one host can hold any address in it)."""
    event_id = _event(app)
    for n, name in enumerate(("ann", "bob", "cy")):
        answer = _web_check_in(
            client, auth, f"{name}@school.example", event_id, address=f"::ffff:203.0.113.{n + 1}"
        )
        assert answer.status_code == 200
    assert detect(app).created == 0
    second = _event(app)
    for n, name in enumerate(("ann", "bob", "cy")):
        _web_check_in(client, auth, f"{name}@school.example", second, address=f"2001:db8::{n + 1}")
    detect(app)
    (finding,) = findings(app)
    assert finding.evidence["client"] == "2001:db8::/64"
    with app.app_context():
        from autocheckin.attendance.models import CheckInOrigin

        clients = set(db.session.scalars(select(CheckInOrigin.client)))
    assert {"203.0.113.1", "203.0.113.2", "203.0.113.3"} <= clients


def test_control_characters_in_a_dashboard_form_change_nothing(app, client):
    finding = _overlap_finding(app, client)
    site, page = _signed_in_admin(app)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    answer = site.post(
        f"/dashboard/findings/{finding.id}/dismiss", data={"csrf_token": token, "reason": "a\x00b"}
    )
    assert answer.status_code == 302
    assert "Control characters are not allowed" in site.get("/dashboard/").get_data(as_text=True)
    assert findings(app)[0].state == "open"
