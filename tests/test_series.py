"""Recurring events (issue 25): rules, local time across DST, idempotent generation, edits,
cancellations, calendars, exports, the doors and who may use them."""

from __future__ import annotations

import csv
import io
import json
import threading
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import icalendar
import pytest
import recurring_ical_events
from sqlalchemy import func, insert, select

from autocheckin import settings
from autocheckin.attendance import series
from autocheckin.attendance.errors import Unprocessable
from autocheckin.attendance.models import Attendance, Enrolment, Event, EventSeries
from autocheckin.database import write_transaction
from autocheckin.extensions import db
from autocheckin.outbound.models import OutboxEntry
from autocheckin.times import utcnow
from tests.helpers import make_student

LONDON = ZoneInfo("Europe/London")
KEY = {"x-checkout-key": "test-checkout-key"}
RULES = series.SeriesRules(horizon=timedelta(days=400), max_occurrences=500)


def _create(app, *, start, rule, tz="Europe/London", now=None, rules=RULES, **fields):
    with app.app_context():
        created = series.create_series(
            name=fields.pop("name", "Weekly meeting"),
            start_time=start,
            duration=fields.pop("duration", timedelta(hours=1)),
            rule=rule,
            timezone=tz,
            rules=rules,
            now=now or start - timedelta(days=1),
            **fields,
        )
        return created.series.id


def _occurrences(app, series_id, *, with_cancelled=True):
    with app.app_context():
        return series.occurrences_of(series_id, with_cancelled=with_cancelled)


def _local(event):
    return event.start_time.astimezone(LONDON)


def _next_monday(at_least_days: int = 3) -> date:
    """A Monday at least `at_least_days` from today: API tests use real time, never a sleep."""
    day = utcnow().date() + timedelta(days=at_least_days)
    return day + timedelta(days=(7 - day.weekday()) % 7)


def _check_in(app, event_id):
    with app.app_context():
        student = make_student()
        with write_transaction() as session:
            session.execute(
                insert(Attendance),
                [
                    {
                        "student_id": student.id,
                        "event_id": event_id,
                        "checked_in_at": utcnow(),
                        "status": "present",
                        "source": "test",
                        "check_in_metadata": {},
                        "created_at": utcnow(),
                    }
                ],
            )


# --- the rule -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "named"),
    [
        ("FREQ=MONTHLY;COUNT=3", "FREQ=MONTHLY"),
        ("FREQ=WEEKLY;BYMONTH=3;COUNT=3", "BYMONTH"),
        ("FREQ=WEEKLY;BYDAY=1MO;COUNT=3", "BYDAY=1MO"),
        ("FREQ=WEEKLY;BYDAY=XX", "BYDAY=XX"),
        ("FREQ=WEEKLY;INTERVAL=0", "INTERVAL=0"),
        ("FREQ=WEEKLY;COUNT=abc", "COUNT=ABC"),
        ("FREQ=WEEKLY;UNTIL=2027", "UNTIL=2027"),
        ("FREQ=WEEKLY;UNTIL=20271399", "UNTIL=20271399"),
        ("FREQ=WEEKLY;COUNT=2;UNTIL=20270101", "UNTIL and COUNT"),
        ("BYDAY=MO;COUNT=2", "FREQ"),
        ("nonsense", "'nonsense'"),
        ("FREQ=WEEKLY;FREQ=DAILY", "FREQ is given twice"),
    ],
)
def test_a_bad_rule_is_refused_naming_its_part(rule, named):
    with pytest.raises(Unprocessable) as refused:
        series.parse_rule(rule, tz=LONDON)
    assert named in refused.value.message
    assert refused.value.code == "invalid_rule"


def test_until_in_utc_is_read_as_local_time_of_the_series():
    rule = series.parse_rule("RRULE:FREQ=WEEKLY;BYDAY=TU;UNTIL=20270601T000000Z", tz=LONDON)
    assert rule.until == datetime(2027, 6, 1, 1, 0)  # BST
    assert series.parse_rule("FREQ=DAILY;UNTIL=20270601", tz=LONDON).until == datetime(
        2027, 6, 1, 23, 59, 59
    )


# --- local time across daylight-saving changes ------------------------------------------------


def test_ten_o_clock_london_stays_ten_o_clock_across_the_spring_change(app):
    # 2027-03-28 01:00 UTC: the UK goes from GMT to BST.
    start = datetime(2027, 3, 15, 10, 0, tzinfo=LONDON)
    series_id = _create(app, start=start, rule="FREQ=WEEKLY;BYDAY=MO;COUNT=4")
    found = _occurrences(app, series_id)
    assert [_local(e).strftime("%Y-%m-%d %H:%M") for e in found] == [
        "2027-03-15 10:00",
        "2027-03-22 10:00",
        "2027-03-29 10:00",
        "2027-04-05 10:00",
    ]
    assert [e.start_time.hour for e in found] == [10, 10, 9, 9]  # UTC moves, local does not
    assert all(e.end_time - e.start_time == timedelta(hours=1) for e in found)


def test_ten_o_clock_london_stays_ten_o_clock_across_the_autumn_change(app):
    # 2027-10-31 01:00 UTC: back from BST to GMT.
    start = datetime(2027, 10, 25, 10, 0, tzinfo=LONDON)
    series_id = _create(app, start=start, rule="FREQ=DAILY;INTERVAL=2;COUNT=4")
    found = _occurrences(app, series_id)
    assert [_local(e).strftime("%m-%d %H:%M") for e in found] == [
        "10-25 10:00",
        "10-27 10:00",
        "10-29 10:00",
        "10-31 10:00",
    ]
    assert [e.start_time.hour for e in found] == [9, 9, 9, 10]


def test_a_local_time_in_the_spring_gap_is_read_with_the_offset_before_it(app):
    start = datetime(2027, 3, 27, 1, 30, tzinfo=LONDON)
    series_id = _create(app, start=start, rule="FREQ=DAILY;COUNT=2", duration=timedelta(minutes=30))
    found = _occurrences(app, series_id)
    assert [e.occurrence_key for e in found] == ["2027-03-27T01:30:00", "2027-03-28T01:30:00"]
    # 01:30 does not exist on the 28th: 01:30 GMT is 02:30 BST.
    assert _local(found[1]).strftime("%H:%M") == "02:30"


def test_the_start_is_moved_to_the_rules_first_occurrence(app):
    saturday = datetime(2027, 3, 20, 10, 0, tzinfo=LONDON)
    series_id = _create(app, start=saturday, rule="FREQ=WEEKLY;BYDAY=TU,TH;COUNT=3")
    with app.app_context():
        assert db.session.get(EventSeries, series_id).starts_local == "2027-03-23T10:00:00"
    keys = [e.occurrence_key[:10] for e in _occurrences(app, series_id)]
    assert keys == ["2027-03-23", "2027-03-25", "2027-03-30"]


# --- generation -------------------------------------------------------------------------------


def test_occurrences_are_generated_up_to_the_horizon_and_once_however_often(make_app):
    app = make_app(SERIES_HORIZON="30d")
    now = utcnow()
    start = now + timedelta(days=1)
    with app.app_context():
        created = series.create_series(
            name="Stand-up",
            start_time=start,
            duration=timedelta(minutes=15),
            rule="FREQ=DAILY;COUNT=60",
            timezone="Europe/Paris",
            rules=settings.of(app).series,
            now=now,
        )
    assert 29 <= len(created.occurrences) <= 31
    later = make_app(SERIES_HORIZON="50d")  # another replica, a longer horizon
    with later.app_context():
        first = series.generate_all(now=now, rules=settings.of(later).series)
        again = series.generate_all(now=now, rules=settings.of(later).series)
        stored = db.session.scalar(select(func.count()).select_from(Event))
    assert first["occurrences"] == stored - len(created.occurrences) > 0
    assert again["occurrences"] == 0
    with later.app_context():
        keys = [e.occurrence_key for e in series.occurrences_of(created.series.id)]
    assert len(keys) == len(set(keys)) == stored


def test_two_replicas_generating_at_once_make_each_occurrence_once(make_app):
    apps = [make_app(SERIES_HORIZON="10d"), make_app(SERIES_HORIZON="60d")]
    now = utcnow()
    series_id = _create(
        apps[0],
        start=now + timedelta(hours=1),
        rule="FREQ=DAILY;COUNT=40",
        now=now,
        rules=series.SeriesRules(horizon=timedelta(days=10)),
    )
    barrier = threading.Barrier(2)
    results, errors = [], []

    def run(app):
        with app.app_context():
            barrier.wait(timeout=10)
            try:
                results.append(series.generate_all(now=now, rules=RULES))
            except Exception as error:  # noqa: BLE001 - reported below
                errors.append(error)

    threads = [threading.Thread(target=run, args=(app,)) for app in apps]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors
    assert len(_occurrences(apps[0], series_id)) == 40
    assert sum(result["occurrences"] for result in results) == 40 - 10


def test_the_generate_series_job_is_in_the_table_and_extends_the_series(make_app):
    from autocheckin import jobs

    app = make_app(SERIES_HORIZON="14d")
    assert "generate_series" in jobs.JOB_IDS
    now = utcnow()
    with app.app_context():
        created = series.create_series(
            name="Weekly",
            start_time=now + timedelta(days=1),
            duration=timedelta(hours=1),
            rule="FREQ=WEEKLY;COUNT=10",
            timezone="America/New_York",
            rules=series.SeriesRules(horizon=timedelta(days=1)),
            now=now,
        )
        assert len(created.occurrences) == 1
        result = jobs.trigger(app, "generate_series")
        assert result["occurrences"] == 1
        assert len(series.occurrences_of(created.series.id)) == 2


def test_series_enrolments_reach_occurrences_generated_later(app, client):
    now = utcnow()
    series_id = _create(
        app,
        start=now + timedelta(days=1),
        rule="FREQ=DAILY;COUNT=5",
        now=now,
        rules=series.SeriesRules(horizon=timedelta(days=2)),
    )
    with app.app_context():
        student = make_student(identifier="S-ENROL")
        student_id = student.id
    answer = client.post(
        f"/events/series/{series_id}/enrolments", json={"students": ["s-enrol"]}, headers=KEY
    )
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json() == {"series_id": series_id, "enrolled": 1}
    with app.app_context():
        series.generate_all(now=now, rules=series.SeriesRules(horizon=timedelta(days=10)))
        enrolled = db.session.scalars(
            select(Enrolment.event_id).where(Enrolment.student_id == student_id)
        ).all()
        assert sorted(enrolled) == sorted(e.id for e in series.occurrences_of(series_id))
        assert len(enrolled) == 5
    unknown = client.post(
        f"/events/series/{series_id}/enrolments", json={"students": ["nobody"]}, headers=KEY
    )
    assert unknown.status_code == 404
    assert "nobody" in unknown.get_json()["detail"]


def test_each_generated_occurrence_is_announced_as_session_created(app, client):
    body = {"name": "R", "url": "http://127.0.0.1:9/hook", "event_type": "session.created"}
    assert client.post("/api/webhooks", json=body, headers=KEY).status_code == 201
    now = utcnow()
    series_id = _create(app, start=now + timedelta(days=1), rule="FREQ=DAILY;COUNT=3", now=now)
    with app.app_context():
        entries = db.session.scalars(
            select(OutboxEntry).where(OutboxEntry.event_type == "session.created")
        ).all()
        items = [item for entry in entries for item in json.loads(entry.items)]
        ids = {e.id for e in series.occurrences_of(series_id)}
    assert {item["session_id"] for item in items} == ids


# --- the API: create, bad input, who may ----------------------------------------------------------


def _body(**overrides):
    monday = _next_monday()
    body = {
        "title": "Lecture",
        "location": "Room 1",
        "start_time": f"{monday.isoformat()}T10:00:00",
        "duration_minutes": 60,
        "timezone": "Europe/London",
        "rrule": "FREQ=WEEKLY;BYDAY=MO,WE;COUNT=6",
    }
    body.update(overrides)
    return body


def test_a_user_creates_a_series_and_naive_times_are_local(client, auth):
    answer = client.post("/events/series", json=_body(), headers=auth.headers())
    assert answer.status_code == 201, answer.get_json()
    data = answer.get_json()
    assert data["timezone"] == "Europe/London"
    assert data["rrule"] == "FREQ=WEEKLY;INTERVAL=1;BYDAY=MO,WE;COUNT=6"
    assert data["is_capped"] is False and data["notice"] is None
    assert len(data["occurrences"]) == 6
    for occurrence in data["occurrences"]:
        start = datetime.fromisoformat(occurrence["start_time"].replace("Z", "+00:00"))
        assert start.astimezone(LONDON).strftime("%H:%M") == "10:00"
        assert occurrence["series_id"] == data["id"]
    upcoming = client.get("/events/upcoming").get_json()
    assert {e["id"] for e in upcoming} >= {o["id"] for o in data["occurrences"]}


def test_an_integration_key_creates_a_series(client):
    answer = client.post("/events/series", json=_body(), headers=KEY)
    assert answer.status_code == 201, answer.get_json()
    assert answer.get_json()["created_by"] is None


def test_an_open_rule_is_capped_at_the_horizon_and_says_so(client):
    answer = client.post("/events/series", json=_body(rrule="FREQ=DAILY"), headers=KEY)
    assert answer.status_code == 201
    data = answer.get_json()
    assert data["is_capped"] is True
    assert "SERIES_HORIZON" in data["notice"] and "90 days" in data["notice"]
    assert "UNTIL=" in data["rrule"]
    last = datetime.fromisoformat(data["occurrences"][-1]["start_time"].replace("Z", "+00:00"))
    assert timedelta(days=89) <= last - utcnow() <= timedelta(days=90)
    assert len(data["occurrences"]) == len({o["start_time"][:10] for o in data["occurrences"]})


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"rrule": "FREQ=YEARLY"}, "FREQ=YEARLY"),
        ({"rrule": "FREQ=WEEKLY;BYSETPOS=1"}, "BYSETPOS"),
        ({"timezone": "Mars/Olympus"}, "Mars/Olympus"),
        ({"timezone": "Europe"}, "Unknown time zone"),  # a folder of zones, not one
        ({"rrule": "FREQ=DAILY;COUNT=501"}, "500"),
        ({"rrule": "FREQ=DAILY;UNTIL=29991231"}, "SERIES_MAX_OCCURRENCES"),
        ({"duration_minutes": None}, "duration_minutes"),
        ({"start_time": "soon"}, "start_time"),
        ({"end_time": "2027-01-01T10:00:00"}, "one of them"),
    ],
)
def test_bad_input_is_422_in_the_events_shape(client, overrides, named):
    answer = client.post("/events/series", json=_body(**overrides), headers=KEY)
    assert answer.status_code == 422, answer.get_json()
    assert named in answer.get_json()["detail"]
    assert set(answer.get_json()) == {"detail"}


def test_creating_needs_credentials_and_the_role(make_app):
    app = make_app(EVENT_CREATE_ROLE="admin")
    client = app.test_client()
    assert client.post("/events/series", json=_body()).status_code == 401
    assert (
        client.post("/events/series", json=_body(), headers={"x-checkout-key": "no"}).status_code
        == 401
    )
    from tests.conftest import AuthActions

    plain = AuthActions(client).headers()
    assert client.post("/events/series", json=_body(), headers=plain).status_code == 403


def test_reading_is_open_and_changing_is_for_the_creator_an_admin_or_the_key(client, auth):
    owner = auth.headers()
    data = client.post("/events/series", json=_body(), headers=owner).get_json()
    series_id, first = data["id"], data["occurrences"][0]["id"]
    assert client.get("/events/series").get_json()["series"][0]["id"] == series_id
    assert client.get(f"/events/series/{series_id}").status_code == 200
    assert client.get("/events/series/999999").status_code == 404
    other = auth.headers(email="bob@example.com", name="Bob")
    doors = [
        ("patch", f"/events/series/{series_id}", {"title": "X"}),
        ("patch", f"/events/series/{series_id}/occurrences/{first}", {"title": "X"}),
        ("post", f"/events/series/{series_id}/occurrences/{first}/cancel", {}),
        ("post", f"/events/series/{series_id}/enrolments", {"students": ["x"]}),
    ]
    for method, path, body in doors:
        assert getattr(client, method)(path, json=body).status_code == 401, path
        assert getattr(client, method)(path, json=body, headers=other).status_code == 403, path
    # The creator may change it; enrolling is for admins and the key only.
    assert (
        client.patch(f"/events/series/{series_id}", json={"title": "Y"}, headers=owner).status_code
        == 200
    )
    assert (
        client.post(
            f"/events/series/{series_id}/enrolments", json={"students": ["x"]}, headers=owner
        ).status_code
        == 403
    )


# --- edits --------------------------------------------------------------------------------------


def test_one_occurrence_is_edited_and_one_with_check_ins_is_not_moved_silently(app, client, auth):
    data = client.post("/events/series", json=_body(), headers=KEY).get_json()
    series_id = data["id"]
    first, second = data["occurrences"][0]["id"], data["occurrences"][1]["id"]
    day = data["occurrences"][0]["start_time"][:10]
    moved = client.patch(
        f"/events/series/{series_id}/occurrences/{first}",
        json={"start_time": f"{day}T11:30:00", "title": "Moved lecture"},
        headers=KEY,
    )
    assert moved.status_code == 200, moved.get_json()
    after = next(o for o in moved.get_json()["series"]["occurrences"] if o["id"] == first)
    assert (
        datetime.fromisoformat(after["start_time"].replace("Z", "+00:00"))
        .astimezone(LONDON)
        .strftime("%H:%M")
        == "11:30"
    )
    assert after["title"] == "Moved lecture"
    _check_in(app, second)
    refused = client.patch(
        f"/events/series/{series_id}/occurrences/{second}",
        json={"start_time": f"{day}T12:00:00"},
        headers=KEY,
    )
    assert refused.status_code == 409
    assert f"#{second}" in refused.get_json()["detail"]
    kept = client.patch(
        f"/events/series/{series_id}/occurrences/{second}",
        json={"start_time": f"{day}T12:00:00", "keep": True},
        headers=KEY,
    )
    assert kept.status_code == 200 and kept.get_json()["kept"] == [second]
    # The plain events route does not move it either.
    plain = client.put(
        f"/events/{second}", json={"start_time": f"{day}T12:00:00Z"}, headers=auth.headers()
    )
    assert plain.status_code == 403  # not the creator; an admin would get the 409 below
    with app.app_context():
        from autocheckin.attendance import service
        from autocheckin.attendance.errors import Conflict

        with pytest.raises(Conflict):
            service.update_event(
                ref=str(second),
                at=utcnow(),
                changes={
                    "start_time": utcnow() + timedelta(days=30),
                    "end_time": utcnow() + timedelta(days=30, hours=1),
                },
                rules=settings.of(app).rules,
            )


def test_the_whole_series_moves_except_occurrences_with_check_ins(app, client):
    data = client.post("/events/series", json=_body(), headers=KEY).get_json()
    series_id, checked = data["id"], data["occurrences"][2]["id"]
    _check_in(app, checked)
    body = {"local_time": "14:00", "location": "Hall"}
    refused = client.patch(f"/events/series/{series_id}", json=body, headers=KEY)
    assert refused.status_code == 409
    assert f"#{checked}" in refused.get_json()["detail"]
    assert "keep=true" in refused.get_json()["detail"]
    done = client.patch(f"/events/series/{series_id}", json={**body, "keep": True}, headers=KEY)
    assert done.status_code == 200, done.get_json()
    result = done.get_json()
    assert result["kept"] == [checked]
    for occurrence in result["series"]["occurrences"]:
        local = datetime.fromisoformat(occurrence["start_time"].replace("Z", "+00:00"))
        expected = "10:00" if occurrence["id"] == checked else "14:00"
        assert local.astimezone(LONDON).strftime("%H:%M") == expected
        assert occurrence["location"] == ("Room 1" if occurrence["id"] == checked else "Hall")
    assert result["series"]["starts_local"].endswith("T14:00:00")


def test_this_and_the_following_split_the_series(app, client):
    data = client.post("/events/series", json=_body(), headers=KEY).get_json()
    series_id = data["id"]
    ids = [o["id"] for o in data["occurrences"]]
    answer = client.patch(
        f"/events/series/{series_id}/occurrences/{ids[3]}",
        json={"scope": "following", "local_time": "09:00", "title": "Later lecture"},
        headers=KEY,
    )
    assert answer.status_code == 200, answer.get_json()
    split = answer.get_json()["series"]
    assert split["split_from"] == series_id
    assert [o["id"] for o in split["occurrences"]] == ids[3:]
    assert split["rrule"].endswith("COUNT=3")
    assert all(o["title"] == "Later lecture" for o in split["occurrences"])
    old = client.get(f"/events/series/{series_id}").get_json()
    assert [o["id"] for o in old["occurrences"]] == ids[:3]
    assert "UNTIL=" in old["rrule"] and "COUNT" not in old["rrule"]
    with app.app_context():  # generating again adds nothing to either
        assert series.generate_all(now=utcnow(), rules=RULES)["occurrences"] == 0


def test_edits_refuse_what_does_not_fit_their_scope(client):
    data = client.post("/events/series", json=_body(), headers=KEY).get_json()
    series_id, first = data["id"], data["occurrences"][0]["id"]
    one = client.patch(
        f"/events/series/{series_id}/occurrences/{first}", json={"local_time": "09:00"}, headers=KEY
    )
    assert one.status_code == 422 and "local_time" in one.get_json()["detail"]
    bad_scope = client.patch(
        f"/events/series/{series_id}/occurrences/{first}", json={"scope": "all"}, headers=KEY
    )
    assert bad_scope.status_code == 422
    elsewhere = client.patch(f"/events/series/{series_id}/occurrences/999999", json={}, headers=KEY)
    assert elsewhere.status_code == 404


# --- cancelling, calendars and exports --------------------------------------------------------


def _expanded(feed: bytes, start: datetime, end: datetime):
    calendar = icalendar.Calendar.from_ical(feed)
    return sorted(
        (component.decoded("dtstart").astimezone(UTC), str(component.get("summary")))
        for component in recurring_ical_events.of(calendar).between(start, end)
    )


def test_the_feed_carries_one_series_that_expands_to_the_stored_occurrences(app, client, auth):
    data = client.post("/events/series", json=_body(), headers=KEY).get_json()
    series_id = data["id"]
    ids = [o["id"] for o in data["occurrences"]]
    day = data["occurrences"][1]["start_time"][:10]
    client.post(f"/events/series/{series_id}/occurrences/{ids[0]}/cancel", headers=KEY)
    client.patch(
        f"/events/series/{series_id}/occurrences/{ids[1]}",
        json={"start_time": f"{day}T15:00:00", "title": "Moved"},
        headers=KEY,
    )
    single = client.post(
        "/events/",
        json={"title": "One-off", "start_time": f"{day}T08:00:00Z", "end_time": f"{day}T09:00:00Z"},
        headers=auth.headers(),
    )
    assert single.status_code == 201
    feed = client.get("/api/integrations/calendar/ical", headers=KEY)
    assert feed.status_code == 200
    calendar = icalendar.Calendar.from_ical(feed.data)
    events = [c for c in calendar.walk("VEVENT")]
    mains = [c for c in events if "RRULE" in c]
    assert len(mains) == 1
    main = mains[0]
    assert main["DTSTART"].params["TZID"] == "Europe/London"
    assert "EXDATE" in main
    assert [c for c in events if "RECURRENCE-ID" in c][0]["UID"] == main["UID"]
    assert [c["TZID"] for c in calendar.walk("VTIMEZONE")] == ["Europe/London"]
    with app.app_context():
        stored = sorted(
            (e.start_time, e.name) for e in series.occurrences_of(series_id, with_cancelled=False)
        )
    window = (datetime.now(UTC) - timedelta(days=1), datetime.now(UTC) + timedelta(days=60))
    expanded = [item for item in _expanded(feed.data, *window) if item[1] != "One-off"]
    assert expanded == stored
    assert len(stored) == 5 and ("Moved" in {name for _, name in stored})


def test_a_cancelled_occurrence_is_gone_from_lists_and_never_absent(app, client):
    start = utcnow() - timedelta(days=3, hours=2)
    series_id = _create(
        app,
        start=start,
        rule="FREQ=DAILY;COUNT=3",
        now=utcnow(),
        tz="UTC",
        rules=series.SeriesRules(horizon=timedelta(days=10)),
    )
    with app.app_context():
        student = make_student(identifier="S-ABS")
        student_id = student.id
    found = _occurrences(app, series_id)
    # All three have ended: enrolled as the sync would have done before they did.
    with app.app_context(), write_transaction() as session:
        session.execute(
            insert(Enrolment),
            [
                {
                    "student_id": student_id,
                    "event_id": e.id,
                    "source": "test",
                    "created_at": utcnow(),
                }
                for e in found
            ],
        )
    cancel = client.post(
        f"/events/series/{series_id}/occurrences/{found[0].id}/cancel", headers=KEY
    )
    assert cancel.status_code == 200, cancel.get_json()
    assert cancel.get_json()["is_cancelled"] is True and cancel.get_json()["is_active"] is False
    assert found[0].id not in {e["id"] for e in client.get("/events/").get_json()}
    moodle = client.get("/api/integrations/lms/moodle/export", headers=KEY)
    rows = list(csv.reader(io.StringIO(moodle.data.decode())))[1:]
    absent_sessions = {int(row[2]) for row in rows if row[3] == "absent"}
    assert absent_sessions == {found[1].id, found[2].id}
    summary = client.get(f"/api/integrations/hr/attendance-summary/{student_id}", headers=KEY)
    assert summary.get_json()["total_sessions"] == 2
    assert summary.get_json()["absent"] == 2
    _check_in(app, found[1].id)
    refused = client.post(
        f"/events/series/{series_id}/occurrences/{found[1].id}/cancel", headers=KEY
    )
    assert refused.status_code == 409


# --- Discord ------------------------------------------------------------------------------------


def _discord_admin(app):
    from autocheckin.auth import accounts

    with app.app_context():
        accounts.register_discord_account(discord_user_id="42", name="Admin", discord_username="a")
        accounts.set_discord_role(discord_user_id="42", role="admin")


def test_the_discord_create_route_repeats_and_stays_as_it_was_without(app, client):
    _discord_admin(app)
    monday = _next_monday()
    body = {
        "title": "Club",
        "start_time": f"{monday.isoformat()}T18:00:00Z",
        "end_time": f"{monday.isoformat()}T19:00:00Z",
    }
    plain = client.post("/discord/events/create?discord_user_id=42", json=body)
    assert plain.status_code == 200
    assert "occurrence_count" not in plain.get_json()
    repeated = client.post(
        "/discord/events/create?discord_user_id=42",
        json={**body, "repeat": "FREQ=WEEKLY;COUNT=4", "timezone": "Europe/Berlin"},
    )
    assert repeated.status_code == 200, repeated.get_json()
    data = repeated.get_json()
    assert data["occurrence_count"] == 4 and data["timezone"] == "Europe/Berlin"
    assert data["series_id"] is not None
    upcoming = client.get("/discord/events/upcoming").get_json()
    assert sum(1 for e in upcoming if e["title"] == "Club") == 5
    bad = client.post(
        "/discord/events/create?discord_user_id=42", json={**body, "repeat": "FREQ=HOURLY"}
    )
    assert bad.status_code == 422 and "FREQ=HOURLY" in bad.get_json()["detail"]


def test_a_cancelled_occurrence_refuses_check_ins(app, client, auth):
    now = utcnow()
    series_id = _create(
        app, start=now - timedelta(minutes=5), rule="FREQ=DAILY;COUNT=2", tz="UTC", now=now
    )
    first = _occurrences(app, series_id)[0]
    with app.app_context():
        series.cancel_occurrence(series_id=series_id, event_id=first.id)
    refused = client.post(f"/events/{first.id}/attend", headers=auth.headers())
    assert refused.status_code == 400
    assert refused.get_json()["detail"]["error"] == "Event is not active"


# --- the dashboard ------------------------------------------------------------------------------


def test_an_admin_creates_a_series_on_the_dashboard_and_sees_attendance_per_occurrence(make_app):
    import re

    from autocheckin.auth import accounts

    app = make_app(SECRET_KEY="dashboard-session-secret-0123456789abcdef")
    password = "correct horse battery staple 42"
    with app.app_context():
        accounts.register_user(email="boss@example.com", name="Boss", password=password)
        accounts.set_web_role(email="boss@example.com", role="admin")
    client = app.test_client()

    def token(path="/dashboard/login"):
        page = client.get(path).get_data(as_text=True)
        return re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)

    form = {
        "title": "Tutorial",
        "start": f"{_next_monday().isoformat()}T09:00",
        "duration": "50",
        "timezone": "Europe/Lisbon",
        "rrule": "FREQ=WEEKLY;COUNT=3",
        "location": "Room 9",
    }
    # Nobody signed in: to the sign-in page, nothing made.
    assert client.post("/dashboard/series", data=form).status_code == 302
    assert client.get("/dashboard/series/1").headers["Location"].endswith("/dashboard/login")
    client.post(
        "/dashboard/login",
        data={"email": "boss@example.com", "password": password, "csrf_token": token()},
    )
    made = client.post("/dashboard/series", data={**form, "csrf_token": token("/dashboard/")})
    assert made.status_code == 302 and "/dashboard/series/" in made.headers["Location"]
    series_id = int(made.headers["Location"].rsplit("/", 1)[1])
    first = _occurrences(app, series_id)[0]
    _check_in(app, first.id)
    page = client.get(f"/dashboard/series/{series_id}").get_data(as_text=True)
    assert page.count("data-occurrence=") == 3
    assert "09:00" in page and "Europe/Lisbon" in page
    row = re.search(rf'data-occurrence="{first.id}">(.*?)</tr>', page).group(1)
    assert "<td>1</td>" in row  # one check-in
    assert "Tutorial" in client.get("/dashboard/").get_data(as_text=True)
    bad = client.post(
        "/dashboard/series",
        data={**form, "rrule": "FREQ=HOURLY", "csrf_token": token("/dashboard/")},
        follow_redirects=True,
    )
    assert "FREQ=HOURLY is not supported" in bad.get_data(as_text=True)
