"""People apart from accounts: a roster person is data, an account is who may act, and the
two are linked only by a verified path (the account's own first check-in, or an operator).

The two takeovers an attacker's probe found are replayed here as they were sent."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

from autocheckin.attendance.models import Attendance, Student
from autocheckin.auth.models import Account
from autocheckin.extensions import db
from autocheckin.times import utcnow
from tests.helpers import LEGACY, ONETAP, make_event, post, rows

VICTIM = "victim@school.example"
KEY = {"x-checkout-key": "test-checkout-key"}


def _create_victim(client):
    return post(
        client,
        ONETAP,
        {
            "action": "create_student",
            "data": {
                "student_identifier": "A0001",
                "email": VICTIM,
                "first_name": "Vic",
                "last_name": "Tim",
            },
        },
    )


def _running_event(app, name="Lecture"):
    with app.app_context():
        return make_event(name=name, start_time=utcnow() - timedelta(minutes=1)).id


def test_a_sign_up_before_the_roster_captures_no_ones_check_ins(app, client, auth):
    """Takeover 1: register the victim's email before the check-in app creates them."""
    attacker = auth.headers(email=VICTIM, name="Mallory")
    created = _create_victim(client)
    assert created.status_code == 201, created.get_json()  # the email is the roster's, not taken
    event_id = _running_event(app)
    scanned = post(client, LEGACY, {"student_identifier": VICTIM, "event_identifier": event_id})
    assert scanned.status_code == 201
    assert scanned.get_json()["student"]["name"] == "Vic Tim"
    assert client.get("/users/me/events", headers=attacker).get_json() == []
    me = client.get("/users/me", headers=attacker).get_json()
    assert (me["email"], me["name"]) == (VICTIM, "Mallory")
    with app.app_context():
        (attendance,) = db.session.query(Attendance).all()
        assert attendance.student.email == VICTIM
        assert db.session.query(Account).one().person_id is None


def test_a_sign_up_before_checkout_lists_the_user_is_not_put_on_the_roster(
    sync_app, checkout, auth_headers
):
    """Takeover 2: a login made before CheckOut lists that user; fetch-users then runs."""
    client = sync_app.test_client()
    client.post(
        "/auth/register", json={"email": VICTIM, "name": "Mallory", "password": "long enough pw"}
    )
    token = client.post("/auth/login", json={"email": VICTIM, "password": "long enough pw"})
    attacker = {"Authorization": f"Bearer {token.get_json()['access_token']}"}
    checkout.add_user(VICTIM, student_identifier="A0001", first_name="Vic", last_name="Tim")
    fetched = client.get("/api/v1/fetch-users", headers=auth_headers)
    assert fetched.get_json()["data"]["created"] == 1  # a new person, not the login
    me = client.get("/users/me", headers=attacker).get_json()
    assert (me["name"], me["is_admin"]) == ("Mallory", False)
    state = client.get("/api/v1/state", headers=auth_headers).get_json()["data"]
    assert state["counts"]["students"] == 1
    with sync_app.app_context():
        account = db.session.query(Account).one()
        assert account.person_id is None
        person = db.session.query(Student).one()
        assert (person.email, person.first_name, person.identifier) == (VICTIM, "Vic", "A0001")
    event_id = _running_event(sync_app)
    post(client, LEGACY, {"student_identifier": "A0001", "event_identifier": event_id})
    assert client.get("/users/me/events", headers=attacker).get_json() == []


def test_a_roster_person_with_an_accounts_email_never_changes_the_account(app, client, auth):
    headers = auth.headers(email=VICTIM, name="Ann Account")
    with app.app_context():
        db.session.query(Account).update({"role": "admin", "discord_user_id": "42"})
        db.session.commit()
    assert _create_victim(client).status_code == 201
    updated = post(
        client,
        "/api/webhook/unified/",
        {
            "type": "student",
            "action": "update",
            "data": {"email": VICTIM, "first_name": "Renamed", "is_admin": False},
        },
    )
    assert updated.status_code == 200
    me = client.get("/users/me", headers=headers).get_json()
    assert (me["name"], me["is_admin"], me["discord_user_id"]) == ("Ann Account", True, "42")


def test_a_web_check_in_creates_and_links_the_accounts_own_person(app, client, auth):
    headers = auth.headers(email=VICTIM, name="Ann Lee")
    _create_victim(client)
    first, second = _running_event(app, "One"), _running_event(app, "Two")
    assert client.post(f"/events/{first}/attend", headers=headers).status_code == 200
    assert client.post(f"/events/{second}/attend", headers=headers).status_code == 200
    with app.app_context():
        account = db.session.query(Account).one()
        person = db.session.get(Student, account.person_id)
        # Named from the account, addressable by no scanner or sync: no identifier, no email.
        assert (person.first_name, person.last_name) == ("Ann", "Lee")
        assert (person.identifier, person.email) == (None, None)
        assert {a.event_id for a in person.attendances} == {first, second}
        victim = db.session.query(Student).filter_by(email_key=VICTIM).one()
        assert victim.attendances == []
    attendees = client.get(f"/events/{first}/attendees", headers=KEY).get_json()
    assert [a["name"] for a in attendees] == ["Ann Lee"]


def test_an_operator_links_an_account_to_its_roster_person_and_merges_its_check_ins(
    app, client, auth
):
    headers = auth.headers(email="ann@example.com", name="Ann Lee")
    _create_victim(client)
    web_only, both = _running_event(app, "Web"), _running_event(app, "Both")
    client.post(f"/events/{web_only}/attend", headers=headers)
    client.post(f"/events/{both}/attend", headers=headers)
    scanned = post(client, LEGACY, {"student_identifier": "A0001", "event_identifier": both})
    assert scanned.status_code == 201
    runner = app.test_cli_runner()
    linked = runner.invoke(args=["users", "link", "ann@example.com", "A0001"])
    assert linked.exit_code == 0, linked.output
    assert "1 check-ins moved over, 1 voided as duplicates" in linked.output
    mine = client.get("/users/me/events", headers=headers).get_json()
    assert sorted(e["id"] for e in mine) == sorted([web_only, both])
    with app.app_context():
        # The account's own person is merged in, and kept (deactivated) for its voided twin.
        merged = db.session.query(Student).filter(Student.deactivated_at.is_not(None)).one()
        assert merged.identifier_key is None and db.session.query(Student).count() == 2
        kept = db.session.query(Attendance).filter_by(event_id=both, voided_at=None).one()
        assert kept.source == "webhook"  # the roster person's own check-in is the one kept
        twin = db.session.query(Attendance).filter_by(event_id=both, student_id=merged.id).one()
        assert twin.voided_at is not None and twin.version == 2
    again = runner.invoke(args=["users", "link", "someone@else.example", "A0001"])
    assert again.exit_code != 0 and "No account" in again.output
    unlinked = runner.invoke(args=["users", "unlink", "ann@example.com"])
    assert unlinked.exit_code == 0
    assert client.get("/users/me/events", headers=headers).get_json() == []
    assert rows(app, Attendance) == 3  # unlinking moves no check-in; the voided twin stays


def test_deactivating_an_account_keeps_its_persons_attendance(app, client, auth):
    headers = auth.headers()
    event_id = _running_event(app)
    assert client.post(f"/events/{event_id}/attend", headers=headers).status_code == 200
    runner = app.test_cli_runner()
    stopped = runner.invoke(args=["users", "deactivate", "ann@example.com"])
    assert stopped.exit_code == 0 and "inactive" in stopped.output
    assert client.get("/users/me", headers=headers).status_code == 401
    assert auth.login().status_code == 401
    listed = client.get(f"/events/{event_id}/attendees", headers=KEY).get_json()
    assert [a["name"] for a in listed] == ["Ann Lee"]
    assert runner.invoke(args=["users", "activate", "ann@example.com"]).exit_code == 0
    assert client.get("/users/me", headers=headers).status_code == 401  # nothing revived
    assert auth.login().status_code == 200


def test_user_lists_show_accounts_and_exports_show_people(app, client, auth):
    admin = auth.headers(email="boss@example.com", name="Boss")
    app.test_cli_runner().invoke(args=["users", "promote", "boss@example.com"])
    post(client, "/discord/users/register", {"discord_user_id": "77", "name": "Dee Cord"})
    _create_victim(client)
    event_id = _running_event(app)
    post(client, LEGACY, {"student_identifier": "A0001", "event_identifier": event_id})
    users = client.get("/users/", headers=admin).get_json()
    assert users["total"] == 2
    assert sorted(u["name"] for u in users["users"]) == ["Boss", "Dee Cord"]
    app.test_cli_runner().invoke(args=["discord", "admin", "grant", "77"])
    listed = client.get("/discord/users/list?discord_user_id=77").get_json()
    assert sorted(u["name"] for u in listed["users"]) == ["Boss", "Dee Cord"]
    moodle = client.get(
        "/api/integrations/lms/moodle/export", headers={"x-checkout-key": "test-checkout-key"}
    )
    lines = list(csv.reader(io.StringIO(moodle.get_data(as_text=True))))
    assert [line[1] for line in lines[1:]] == [VICTIM]
    summary = client.get(
        "/api/integrations/hr/attendance-summary/A0001",
        headers={"x-checkout-key": "test-checkout-key"},
    )
    assert summary.status_code == 200


def test_a_discord_check_in_records_for_the_discord_accounts_own_person(app, client):
    post(client, "/discord/users/register", {"discord_user_id": "88", "name": "Dee Cord"})
    event_id = _running_event(app)
    attended = client.post(f"/discord/attend/{event_id}?discord_user_id=88")
    assert attended.get_json()["success"] is True
    history = client.get("/discord/attendance/88").get_json()
    assert [e["event_id"] for e in history["attended_events"]] == [event_id]
    with app.app_context():
        person = db.session.get(Student, db.session.query(Account).one().person_id)
        assert (person.first_name, person.last_name, person.source) == ("Dee", "Cord", "discord")
