"""Events with time windows: the rule at every edge, the events API, and its errors."""

from __future__ import annotations

from datetime import timedelta

import pytest

from autocheckin.attendance.checkins import CheckIn, record_check_in
from autocheckin.attendance.errors import AlreadyCheckedIn, OutsideWindow
from autocheckin.attendance.windows import CheckInRules, event_status
from autocheckin.times import iso, utcnow
from tests.helpers import make_event, make_student

RULES = CheckInRules()


def user_token(client, email="ann@example.com", **extra):
    client.post(
        "/auth/register", json={"email": email, "name": "Ann Lee", "password": "long enough pw"}
    )
    token = client.post("/auth/login", json={"email": email, "password": "long enough pw"})
    return {"Authorization": f"Bearer {token.get_json()['access_token']}"}


def new_event(client, headers, start, end, **extra):
    body = {"title": "Tech Meetup", "start_time": start, "end_time": end, **extra}
    return client.post("/events/", json=body, headers=headers)


# --- the window, at every edge (the same core rule the webhooks use) ---------------------------


def test_window_edges_through_the_core(app):
    start = utcnow().replace(microsecond=0) + timedelta(days=1)
    end = start + timedelta(hours=2)
    with app.app_context():
        event = make_event(name="Edge", start_time=start, end_time=end)
        people = [make_student() for _ in range(6)]

        def attend(person, at):
            return record_check_in(
                CheckIn(person_id=person.id, event_id=event.id, source="t"),
                arrived_at=at,
                rules=RULES,
                actor="test",
            )

        with pytest.raises(OutsideWindow, match="Starts in 16 minutes"):
            attend(people[0], start - timedelta(minutes=15, seconds=1))
        assert attend(people[0], start - timedelta(minutes=15)).status == "present"  # opening
        assert attend(people[1], start).status == "present"
        assert attend(people[2], start + timedelta(minutes=10, seconds=1)).status == "late"
        assert attend(people[3], end).status == "late"  # the end is inside
        with pytest.raises(OutsideWindow, match="Event has already ended"):
            attend(people[4], end + timedelta(seconds=1))
        with pytest.raises(AlreadyCheckedIn):
            attend(people[1], start + timedelta(minutes=1))


def test_status_at_the_edges(app):
    start = utcnow().replace(microsecond=0)
    end = start + timedelta(hours=1)
    with app.app_context():
        event = make_event(name="S", start_time=start, end_time=end)
    cases = [
        (start - timedelta(minutes=15, seconds=1), "upcoming", False),
        (start - timedelta(minutes=15), "active", True),
        (start, "active", True),
        (end, "active", True),
        (end + timedelta(seconds=1), "ended", False),
    ]
    for moment, status, can_attend in cases:
        found = event_status(event, moment, RULES)
        assert (found.status, found.can_attend) == (status, can_attend), moment
    assert event_status(event, start - timedelta(hours=1), RULES).seconds_until_start == 3600


# --- the API ------------------------------------------------------------------------------------


def test_create_list_get_update(client):
    headers = user_token(client)
    now = utcnow().replace(microsecond=0)
    created = new_event(
        client,
        headers,
        iso(now - timedelta(minutes=5)),
        iso(now + timedelta(hours=1)),
        discord_channel_id="42",
    )
    assert created.status_code == 201
    event = created.get_json()
    assert (event["title"], event["status"], event["can_attend"]) == ("Tech Meetup", "active", True)
    naive = new_event(client, headers, "2030-06-20T19:00:00", "2030-06-20T21:00:00")
    assert naive.get_json()["start_time"] == "2030-06-20T19:00:00Z"
    offset = new_event(client, headers, "2030-06-20T21:00:00+02:00", "2030-06-20T23:00:00+02:00")
    assert offset.get_json()["start_time"] == "2030-06-20T19:00:00Z"
    past = new_event(
        client,
        headers,
        iso(now - timedelta(days=2)),
        iso(now - timedelta(days=2) + timedelta(hours=1)),
    )
    assert past.get_json()["status"] == "ended"

    assert [e["id"] for e in client.get("/events/active").get_json()] == [event["id"]]
    assert {e["id"] for e in client.get("/events/upcoming").get_json()} == {
        naive.get_json()["id"],
        offset.get_json()["id"],
    }
    assert [e["id"] for e in client.get("/events/?status=ended").get_json()] == [
        past.get_json()["id"]
    ]
    assert [e["id"] for e in client.get("/events/?channel=42").get_json()] == [event["id"]]
    assert len(client.get("/events/?from=2030-01-01T00:00:00Z").get_json()) == 2
    assert len(client.get("/events/?skip=1&limit=2").get_json()) == 2
    assert client.get("/events/?limit=0").status_code == 422
    assert client.get("/events/?status=soon").status_code == 422

    assert client.get(f"/events/{event['id']}").get_json()["id"] == event["id"]
    assert client.get("/events/999").get_json() == {"detail": "Event not found"}
    status = client.get(f"/events/{event['id']}/status").get_json()
    assert set(status) == {
        "id",
        "title",
        "status",
        "start_time",
        "end_time",
        "can_attend",
        "time_until_start",
        "time_until_end",
    }

    updated = client.put(f"/events/{event['id']}", json={"title": "Renamed"}, headers=headers)
    assert updated.get_json()["title"] == "Renamed"
    other = user_token(client, email="bob@example.com")
    assert (
        client.put(f"/events/{event['id']}", json={"title": "Mine"}, headers=other).status_code
        == 403
    )
    assert (
        client.put(
            f"/events/{event['id']}", json={"end_time": "2000-01-01T00:00:00Z"}, headers=headers
        ).status_code
        == 400
    )


def test_creation_refusals(make_app):
    client = make_app(EVENT_CREATE_ROLE="admin").test_client()
    headers = user_token(client)
    assert (
        new_event(client, headers, "2030-01-01T10:00:00Z", "2030-01-01T11:00:00Z").status_code
        == 403
    )
    open_client = make_app().test_client()
    headers = user_token(open_client, email="c@example.com")
    same = new_event(open_client, headers, "2030-01-01T10:00:00Z", "2030-01-01T10:00:00Z")
    assert same.status_code == 422
    assert "end_time must be after start_time" in same.get_json()["detail"]
    assert new_event(open_client, headers, "soon", "later").status_code == 422
    for start, end in (
        ("0001-01-01T00:00:00+05:00", "0001-01-01T01:00:00+05:00"),
        ("9999-12-31T22:00:00-23:00", "9999-12-31T23:00:00-23:00"),
    ):
        assert new_event(open_client, headers, start, end).status_code == 422
    assert open_client.get("/events/?from=9999-12-31T23:59:59-23:59").status_code == 422
    assert open_client.get(f"/events/?skip={10**20}").status_code == 422
    assert (
        new_event(open_client, {}, "2030-01-01T10:00:00Z", "2030-01-01T11:00:00Z").status_code
        == 401
    )


def test_attend_attendees_and_my_events(client):
    headers = user_token(client)
    now = utcnow()
    active = new_event(
        client, headers, iso(now - timedelta(minutes=1)), iso(now + timedelta(hours=1))
    ).get_json()
    future = new_event(
        client, headers, iso(now + timedelta(hours=3)), iso(now + timedelta(hours=4))
    ).get_json()
    ok = client.post(f"/events/{active['id']}/attend", headers=headers)
    assert ok.status_code == 200
    assert ok.get_json()["message"] == "Successfully attended 'Tech Meetup'!"
    again = client.post(f"/events/{active['id']}/attend", headers=headers)
    assert again.status_code == 400
    assert again.get_json()["detail"]["error"] == "Student already checked in to this event"
    early = client.post(f"/events/{future['id']}/attend", headers=headers)
    assert early.status_code == 400
    assert early.get_json()["detail"]["error"].startswith("Event hasn't started yet. Starts in")
    assert early.get_json()["detail"]["event_status"]["status"] == "upcoming"
    assert client.post("/events/999/attend", headers=headers).status_code == 404
    attendees = client.get(f"/events/{active['id']}/attendees", headers=headers).get_json()
    assert [a["name"] for a in attendees] == ["Ann Lee"]  # Ann made the event
    assert "email" not in attendees[0]
    check = client.get(f"/events/{active['id']}/check-attendance", headers=headers).get_json()
    assert (check["attended"], check["status"]) == (True, "present")
    assert (
        client.get(f"/events/{future['id']}/check-attendance", headers=headers).get_json()[
            "attended"
        ]
        is False
    )
    mine = client.get("/users/me/events", headers=headers).get_json()
    assert [e["id"] for e in mine] == [active["id"]]


def test_a_linked_account_and_a_scanner_share_one_person_and_one_rule(client, app):
    headers = user_token(client)
    now = utcnow()
    event = new_event(
        client, headers, iso(now - timedelta(minutes=1)), iso(now + timedelta(hours=1))
    ).get_json()
    with app.app_context():
        make_student(identifier="A1", email="ann@example.com")
    linked = app.test_cli_runner().invoke(args=["users", "link", "ann@example.com", "A1"])
    assert linked.exit_code == 0, linked.output
    scanned = client.post(
        "/api/webhook/attendance/",
        json={"student_identifier": "A1", "event_identifier": str(event["id"])},
    )
    assert scanned.status_code == 201
    web = client.post(f"/events/{event['id']}/attend", headers=headers)
    assert web.get_json()["detail"]["error"] == "Student already checked in to this event"
    mine = client.get("/users/me/events", headers=headers).get_json()
    assert [e["id"] for e in mine] == [event["id"]]


def test_every_events_route_is_in_openapi(client):
    paths = client.get("/openapi.json").get_json()["paths"]
    for path in (
        "/events/",
        "/events/{event_id}/attend",
        "/auth/login",
        "/users/me",
        "/discord/attend/{event_id}",
    ):
        assert path in paths
