"""Absence alerts: the two rules over the current marks, one alert each time a rule starts to
hold (also with two processes at once, and after a restart), `alert.created` in the same
transaction, the API and the dashboard panel."""

from __future__ import annotations

import json
import re
import threading
from datetime import datetime, timedelta

import pytest
from sqlalchemy import insert, select

from autocheckin import jobs, state
from autocheckin.alerts import evaluation
from autocheckin.alerts.models import ATTENDANCE_RATE, CONSECUTIVE_ABSENCES, Alert, AlertRuleState
from autocheckin.alerts.rules import AlertRules
from autocheckin.attendance import corrections, excuses, service
from autocheckin.attendance.models import Attendance, Enrolment, Event, Student
from autocheckin.attendance.windows import CheckInRules
from autocheckin.auth import accounts
from autocheckin.config import ConfigError, load_config
from autocheckin.database import write_transaction
from autocheckin.extensions import db
from autocheckin.outbound.models import ALERT_CREATED, OutboxEntry
from autocheckin.times import utcnow
from tests.conftest import API_KEY
from tests.helpers import make_event, make_student

KEY = {"x-checkout-key": API_KEY}
RULES = CheckInRules()
ALERTS = AlertRules()  # the defaults: 3 in a row; below 75 % over 30 days, 4 at least
ADMIN = "test:admin"
DASHBOARD_SECRET = "dashboard-session-secret-0123456789abcdef"
PASSWORD = "correct horse battery staple 42"


# --- making a person's record -----------------------------------------------------------------


def ended_events(count: int, *, days_ago: float = 0, now: datetime | None = None) -> list[Event]:
    """`count` events of an hour, a day apart, oldest first; the last ended `days_ago` days
    plus an hour before now."""
    now = now or utcnow()
    last_end = now - timedelta(days=days_ago, hours=1)
    return [
        make_event(
            start_time=last_end - timedelta(days=count - 1 - n, hours=1),
            end_time=last_end - timedelta(days=count - 1 - n),
        )
        for n in range(count)
    ]


def enrol(person: Student, events: list[Event]) -> None:
    with write_transaction() as session:
        session.execute(
            insert(Enrolment),
            [{"student_id": person.id, "event_id": e.id, "created_at": utcnow()} for e in events],
        )


def mark(person: Student, event: Event, status: str) -> corrections.Change:
    return corrections.set_status(
        event_id=event.id,
        person_id=person.id,
        status=status,
        correction=corrections.Correction(actor=ADMIN, reason="test"),
        rules=RULES,
    )


def record(person: Student, events: list[Event], outcomes: str) -> None:
    """Enrol the person at `events` and mark each: `A` attended, `L` late, `-` no mark,
    `x` marked absent, `E` excused, `V` a check-in voided."""
    enrol(person, events)
    for event, outcome in zip(events, outcomes, strict=True):
        if outcome in "AL":
            mark(person, event, "present" if outcome == "A" else "late")
        elif outcome == "x":
            mark(person, event, "absent")
        elif outcome == "E":
            mark(person, event, "excused")
        elif outcome == "V":
            change = mark(person, event, "present")
            corrections.void(
                attendance_id=change.attendance_id,
                correction=corrections.Correction(actor=ADMIN, reason="scanned twice"),
            )


def evaluate(rules: AlertRules = ALERTS, now: datetime | None = None) -> dict[str, int]:
    return evaluation.evaluate_people(
        student_ids=evaluation.everyone(), now=now or utcnow(), rules=rules
    )


def alerts_of(person: Student, rule: str | None = None) -> list[Alert]:
    query = select(Alert).where(Alert.student_id == person.id).order_by(Alert.id)
    if rule is not None:
        query = query.where(Alert.rule == rule)
    return list(db.session.scalars(query))


def holds(person: Student, rule: str) -> bool | None:
    return db.session.scalar(
        select(AlertRuleState.holds).where(
            AlertRuleState.student_id == person.id, AlertRuleState.rule == rule
        )
    )


# --- the consecutive absences rule --------------------------------------------------------------


def test_three_misses_in_a_row_raise_one_alert_with_the_missed_events(app):
    with app.app_context():
        person = make_student()
        events = ended_events(5)
        record(person, events, "AA-xV")  # no mark, marked absent, a voided check-in
        evaluate()
        [alert] = alerts_of(person, CONSECUTIVE_ABSENCES)
        assert alert.figures == {"absences": 3, "threshold": 3}
        assert alert.event_ids == [e.id for e in events[2:]]
        assert alert.acknowledged_at is None


@pytest.mark.parametrize(
    ("outcomes", "fires"),
    [
        ("-A-A-", False),  # misses, but never two in a row
        ("A-E-", False),  # an excused one does not count as a miss: two, not three
        ("--E-", True),  # ... and does not break the run either
        ("---A", False),  # attended last
        ("-L--", False),  # late is attended
        ("A---", True),
    ],
)
def test_the_run_of_misses_skips_excused_and_ends_at_an_attended_one(app, outcomes, fires):
    with app.app_context():
        person = make_student()
        record(person, ended_events(len(outcomes)), outcomes)
        evaluate(AlertRules(min_expected=100))  # the rate rule kept out of the way
        assert len(alerts_of(person, CONSECUTIVE_ABSENCES)) == (1 if fires else 0)
        assert alerts_of(person, ATTENDANCE_RATE) == []


def test_only_ended_active_uncancelled_expected_events_count(app):
    with app.app_context():
        person = make_student()
        missed = ended_events(2)
        record(person, missed, "--")
        running = make_event(start_time=utcnow() - timedelta(minutes=30), end_time=at_hour())
        cancelled, inactive = ended_events(2, days_ago=0.5)
        no_end = make_event(start_time=utcnow() - timedelta(days=2))
        enrol(person, [running, cancelled, inactive, no_end])
        with write_transaction():
            db.session.get(Event, cancelled.id).is_cancelled = True
            db.session.get(Event, inactive.id).is_active = False
        not_expected = ended_events(1, days_ago=0.1)  # nobody enrolled: not expected
        assert not_expected
        evaluate(AlertRules(min_expected=100))
        assert alerts_of(person) == []
        # An explicit absent mark makes the person expected without an enrolment.
        other = make_event(
            start_time=utcnow() - timedelta(minutes=40), end_time=utcnow() - timedelta(minutes=10)
        )
        mark(person, other, "absent")
        evaluate(AlertRules(min_expected=100))
        [alert] = alerts_of(person)
        assert alert.event_ids == [missed[0].id, missed[1].id, other.id]


def at_hour() -> datetime:
    return utcnow() + timedelta(hours=1)


# --- the attendance rate rule -------------------------------------------------------------------


def test_a_rate_below_75_percent_over_four_expected_events_raises_an_alert(app):
    with app.app_context():
        person = make_student()
        events = ended_events(5)
        record(person, events, "-AA-E")  # excused: out of the denominator
        evaluate(AlertRules(consecutive_absences=100))
        [alert] = alerts_of(person, ATTENDANCE_RATE)
        assert alert.figures == {
            "rate": 0.5,
            "attended": 2,
            "expected": 4,
            "threshold": 0.75,
            "period_days": 30,
        }
        assert alert.event_ids == [events[0].id, events[3].id]


@pytest.mark.parametrize(
    ("outcomes", "fires"),
    [
        ("---", False),  # under the minimum of four
        ("AAA-", False),  # exactly 75 %: not below
        ("AAAL-", False),  # 80 %
        ("AA--", True),  # 50 %
        ("AAA-E-", True),  # 60 %: the excused one left out
    ],
)
def test_the_rate_needs_the_minimum_and_a_rate_below_the_threshold(app, outcomes, fires):
    with app.app_context():
        person = make_student()
        record(person, ended_events(len(outcomes)), outcomes)
        evaluate(AlertRules(consecutive_absences=100))
        assert len(alerts_of(person, ATTENDANCE_RATE)) == (1 if fires else 0)


def test_events_older_than_the_period_are_left_out_of_the_rate(app):
    with app.app_context():
        person = make_student()
        record(person, ended_events(4, days_ago=40), "----")
        record(person, ended_events(4), "AAAA")
        evaluate(AlertRules(consecutive_absences=100))
        assert alerts_of(person) == []
        evaluate(AlertRules(consecutive_absences=100, period_days=60))
        [alert] = alerts_of(person, ATTENDANCE_RATE)
        assert alert.figures["expected"] == 8 and alert.figures["period_days"] == 60


def test_a_deactivated_person_gets_no_alerts(app):
    with app.app_context():
        person = make_student()
        record(person, ended_events(4), "----")
        service.remove_person(person.id)
        evaluation.evaluate_people(student_ids=[person.id], now=utcnow(), rules=ALERTS)
        assert alerts_of(person) == []
        assert person.id not in evaluation.everyone()


# --- corrected truth ----------------------------------------------------------------------------


def test_a_voided_check_in_becomes_an_absence_and_an_approved_excuse_stops_counting(app):
    with app.app_context():
        person = make_student()
        events = ended_events(3)
        record(person, events, "--A")
        rules = AlertRules(min_expected=100)
        evaluation.evaluate_changed(now=utcnow(), rules=rules)
        assert alerts_of(person) == []
        attended = db.session.scalar(
            select(Attendance.id).where(
                Attendance.student_id == person.id, Attendance.event_id == events[2].id
            )
        )
        corrections.void(
            attendance_id=attended,
            correction=corrections.Correction(actor=ADMIN, reason="not really there"),
        )
        # The job finds the person from the correction's history entry.
        assert evaluation.evaluate_changed(now=utcnow(), rules=rules)["alerts"] == 1
        assert holds(person, CONSECUTIVE_ABSENCES) is True
        excuse = excuses.submit(
            person_id=person.id, event_id=events[1].id, reason="ill", actor="person"
        )
        excuses.approve(excuse_id=excuse.id, actor=ADMIN, note=None, rules=RULES)
        counts = evaluation.evaluate_changed(now=utcnow(), rules=rules)
        assert counts["reset"] == 1 and counts["alerts"] == 0
        assert holds(person, CONSECUTIVE_ABSENCES) is False
        assert len(alerts_of(person)) == 1  # the alert raised stays, for the record


def test_the_job_looks_only_at_people_who_might_have_changed(app):
    with app.app_context():
        quiet, missing = make_student(), make_student()
        record(quiet, ended_events(3), "AAA")
        first = evaluation.evaluate_changed(now=utcnow(), rules=ALERTS)
        assert first["people"] == 2 and first["alerts"] == 0  # the first run: everyone
        assert state.get(evaluation.WATERMARK_KEY)
        # Within the overlap margin recent changes are read again; past it, nobody is.
        later = utcnow() + timedelta(hours=1)
        assert evaluation.evaluate_changed(now=later, rules=ALERTS)["alerts"] == 0
        assert evaluation.evaluate_changed(now=later, rules=ALERTS)["people"] == 0
        # Events that end after the last run bring their expected people in.
        record(missing, ended_events(3, now=later + timedelta(hours=3)), "---")
        counts = evaluation.evaluate_changed(now=later + timedelta(hours=3), rules=ALERTS)
        assert counts["alerts"] == 1 and counts["people"] == 1


def test_the_evaluate_alerts_job_is_in_the_table_and_runs(make_app):
    app = make_app()
    assert "evaluate_alerts" in jobs.JOB_IDS
    assert jobs.JOBS_BY_ID["evaluate_alerts"].interval_setting == "ALERT_EVALUATE_INTERVAL"
    with app.app_context():
        person = make_student()
        record(person, ended_events(3), "---")
        result = jobs.trigger(app, "evaluate_alerts")
        assert result["alerts"] == 1
        assert jobs.trigger(app, "evaluate_alerts")["alerts"] == 0


# --- one alert each time a rule starts to hold --------------------------------------------------


def test_evaluating_twice_gives_one_alert_and_holding_again_gives_a_second(app):
    with app.app_context():
        person = make_student()
        record(person, ended_events(3, days_ago=3), "---")
        rules = AlertRules(min_expected=100)
        assert evaluate(rules)["alerts"] == 1
        assert evaluate(rules)["alerts"] == 0
        assert len(alerts_of(person)) == 1
        record(person, ended_events(1, days_ago=2), "A")  # came back: the run ends
        assert evaluate(rules)["reset"] == 1
        assert holds(person, CONSECUTIVE_ABSENCES) is False
        record(person, ended_events(3), "x--")  # and stopped again
        assert evaluate(rules)["alerts"] == 1
        first, second = alerts_of(person)
        assert first.figures["absences"] == 3 and second.figures["absences"] == 3
        assert second.event_ids != first.event_ids


def _subscribe_to_alerts(app) -> None:
    answer = app.test_client().post(
        "/api/webhooks",
        json={"name": "Alerts", "url": "http://127.0.0.1:9/alerts", "event_type": ALERT_CREATED},
        headers=KEY,
    )
    assert answer.status_code == 201, answer.get_json()


def _alert_outbox(app) -> list[OutboxEntry]:
    with app.app_context():
        return list(
            db.session.scalars(select(OutboxEntry).where(OutboxEntry.event_type == ALERT_CREATED))
        )


def test_alert_created_is_announced_with_the_alert(app):
    _subscribe_to_alerts(app)
    with app.app_context():
        person = make_student(first_name="Ada", last_name="Byron")
        events = ended_events(3)
        record(person, events, "---")
        evaluate(AlertRules(min_expected=100))
        [alert] = alerts_of(person)
    [entry] = _alert_outbox(app)
    [data] = json.loads(entry.items)
    assert data == {
        "alert_id": alert.id,
        "rule": "consecutive_absences",
        "student_id": person.id,
        "student_identifier": person.identifier,
        "student_email": person.email,
        "student_name": "Ada Byron",
        "figures": {"absences": 3, "threshold": 3},
        "event_ids": [e.id for e in events],
        "created_at": data["created_at"],
    }
    assert data["created_at"].endswith("Z")


def test_two_stale_evaluations_raise_one_alert(app):
    """Both read the person before either writes (as two processes may): the state row's
    conditional change lets one raise it."""
    with app.app_context():
        person = make_student()
        record(person, ended_events(3), "---")
        now = utcnow()
        first = evaluation._read([person.id], now=now, rules=ALERTS)
        second = evaluation._read([person.id], now=now, rules=ALERTS)
        assert evaluation._write(first, now=now) == (1, 0)
        assert evaluation._write(second, now=now) == (0, 0)
        assert len(alerts_of(person)) == 1


def test_two_workers_at_once_and_a_restart_raise_one_alert(make_app):
    first_app, second_app = make_app(), make_app()
    _subscribe_to_alerts(first_app)
    with first_app.app_context():
        people = [make_student() for _ in range(30)]
        for person in people:
            record(person, ended_events(3), "---")
        ids = [person.id for person in people]
    barrier = threading.Barrier(2)
    results: list[dict[str, int]] = []
    failures: list[BaseException] = []

    def work(app) -> None:
        try:
            with app.app_context():
                barrier.wait(timeout=30)
                now = utcnow()
                results.append(
                    evaluation.evaluate_people(
                        student_ids=ids, now=now, rules=AlertRules(min_expected=100)
                    )
                )
                db.session.remove()
        except BaseException as error:  # noqa: BLE001 - reported below
            failures.append(error)

    threads = [threading.Thread(target=work, args=(a,)) for a in (first_app, second_app)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not failures, failures
    assert sum(result["alerts"] for result in results) == 30
    with first_app.app_context():
        assert db.session.query(Alert).count() == 30
    entries = _alert_outbox(first_app)
    assert sum(len(json.loads(e.items)) for e in entries) == 30
    assert len({item["alert_id"] for e in entries for item in json.loads(e.items)}) == 30
    restarted = make_app()
    with restarted.app_context():
        again = evaluation.evaluate_people(
            student_ids=ids, now=utcnow(), rules=AlertRules(min_expected=100)
        )
        assert again["alerts"] == 0
        assert db.session.query(Alert).count() == 30
    assert len(_alert_outbox(restarted)) == len(entries)


# --- settings -----------------------------------------------------------------------------------


def test_the_settings_have_documented_defaults_and_refuse_bad_values(tmp_path):
    config = load_config({}, instance_path=str(tmp_path))
    assert config["ALERT_CONSECUTIVE_ABSENCES"] == 3
    assert config["ALERT_RATE_BELOW"] == 75
    assert config["ALERT_PERIOD"] == 30
    assert config["ALERT_MIN_EXPECTED"] == 4
    assert config["ALERT_EVALUATE_INTERVAL"] == 60
    assert load_config({"ALERT_PERIOD": "14d"}, instance_path="")["ALERT_PERIOD"] == 14
    for name, value in [
        ("ALERT_PERIOD", "a month"),
        ("ALERT_PERIOD", "0"),
        ("ALERT_RATE_BELOW", "120"),
        ("ALERT_CONSECUTIVE_ABSENCES", "0"),
        ("ALERT_MIN_EXPECTED", "many"),
        ("ALERT_EVALUATE_INTERVAL", "0"),
    ]:
        with pytest.raises(ConfigError, match=name):
            load_config({name: value}, instance_path="")


# --- the API ------------------------------------------------------------------------------------


def _raise_alerts(app, count: int) -> list[int]:
    """`count` people with three misses in a row each, evaluated: their alerts' ids."""
    with app.app_context():
        people = [make_student() for _ in range(count)]
        for person in people:
            record(person, ended_events(3), "---")
        evaluate(AlertRules(min_expected=100))
        return [alert.id for person in people for alert in alerts_of(person)]


def test_the_api_lists_pages_and_acknowledges_alerts(app, client):
    ids = _raise_alerts(app, 3)
    listed = client.get("/api/v1/alerts", headers=KEY)
    assert listed.status_code == 200
    page = listed.get_json()["data"]
    assert page["total"] == 3
    assert [a["id"] for a in page["alerts"]] == sorted(ids, reverse=True)  # newest first
    first = page["alerts"][-1]
    assert first["rule"] == "consecutive_absences" and first["person_name"].startswith("Test ")
    assert first["person_identifier"] and first["figures"] == {"absences": 3, "threshold": 3}
    second_page = client.get("/api/v1/alerts?limit=2&offset=2", headers=KEY).get_json()["data"]
    assert [a["id"] for a in second_page["alerts"]] == [min(ids)]
    done = client.post(f"/api/v1/alerts/{ids[0]}/acknowledge", json={"note": "called"}, headers=KEY)
    assert done.status_code == 200, done.get_json()
    acknowledged = done.get_json()["data"]
    assert acknowledged["acknowledged"] is True
    assert acknowledged["acknowledged_by"] == "checkout_key"
    assert acknowledged["acknowledgement_note"] == "called"
    open_ids = [
        a["id"] for a in client.get("/api/v1/alerts", headers=KEY).get_json()["data"]["alerts"]
    ]
    assert ids[0] not in open_ids and len(open_ids) == 2
    seen = client.get("/api/v1/alerts?state=acknowledged", headers=KEY).get_json()["data"]
    assert [a["id"] for a in seen["alerts"]] == [ids[0]]
    assert client.get("/api/v1/alerts?state=all", headers=KEY).get_json()["data"]["total"] == 3


def test_acknowledging_twice_is_409_and_names_the_first(app, client, auth):
    [alert_id] = _raise_alerts(app, 1)
    auth.register(email="boss@example.com", name="Boss")
    with app.app_context():
        accounts.set_web_role(email="boss@example.com", role="admin")
    admin = auth.headers(email="boss@example.com", name="Boss")
    first = client.post(f"/api/v1/alerts/{alert_id}/acknowledge", headers=admin)
    assert first.status_code == 200, first.get_json()
    by = first.get_json()["data"]["acknowledged_by"]
    assert by.startswith("account:")
    again = client.post(
        f"/api/v1/alerts/{alert_id}/acknowledge", json={"note": "me too"}, headers=KEY
    )
    assert again.status_code == 409
    body = again.get_json()
    assert body["success"] is False and by in body["error"]
    with app.app_context():
        alert = db.session.get(Alert, alert_id)
        assert alert.acknowledged_by == by and alert.acknowledgement_note is None


def test_the_api_refuses_what_does_not_fit(app, client, auth):
    _raise_alerts(app, 1)
    assert client.post("/api/v1/alerts/999/acknowledge", headers=KEY).status_code == 404
    for query in ("state=closed", "limit=0", "limit=501", "offset=-1", "limit=abc"):
        answer = client.get(f"/api/v1/alerts?{query}", headers=KEY)
        assert answer.status_code == 422, query
        assert answer.get_json()["success"] is False
    bad_note = client.post("/api/v1/alerts/1/acknowledge", json={"note": 5}, headers=KEY)
    assert bad_note.status_code == 422
    not_json = client.post(
        "/api/v1/alerts/1/acknowledge", data="note", headers={**KEY, "Content-Type": "text/plain"}
    )
    assert not_json.status_code == 422
    assert client.get("/api/v1/alerts").status_code == 401
    assert client.post("/api/v1/alerts/1/acknowledge").status_code == 401
    assert client.get("/api/v1/alerts", headers={"x-checkout-key": "wrong"}).status_code == 401
    plain = auth.headers()
    refused = client.get("/api/v1/alerts", headers=plain)
    assert refused.status_code == 403
    assert "Only admins may read and acknowledge alerts" in refused.get_json()["error"]
    assert client.post("/api/v1/alerts/1/acknowledge", headers=plain).status_code == 403
    with app.app_context():
        assert db.session.get(Alert, 1).acknowledged_at is None


# --- the dashboard ------------------------------------------------------------------------------


def _token(page: str) -> str:
    return re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)


def test_the_dashboard_panel_lists_open_alerts_and_acknowledges_with_the_token(make_app):
    site = make_app(SECRET_KEY=DASHBOARD_SECRET)
    with site.app_context():
        accounts.register_user(email="boss@example.com", name="Boss", password=PASSWORD)
        accounts.set_web_role(email="boss@example.com", role="admin")
        person = make_student(first_name="Grace", last_name="Hopper")
        record(person, ended_events(3), "---")
        evaluate(AlertRules(min_expected=100))
        [alert] = alerts_of(person)
    client = site.test_client()
    login = client.get("/dashboard/login").get_data(as_text=True)
    signed_in = client.post(
        "/dashboard/login",
        data={"email": "boss@example.com", "password": PASSWORD, "csrf_token": _token(login)},
    )
    assert signed_in.status_code == 302
    page = client.get("/dashboard/").get_data(as_text=True)
    assert "Absence alerts" in page and "Grace Hopper" in page
    assert "3 expected events missed in a row" in page
    target = f"/dashboard/alerts/{alert.id}/acknowledge"
    assert target in page
    forged = client.post(target, data={"note": "no token"})
    assert forged.status_code == 302
    with site.app_context():
        assert db.session.get(Alert, alert.id).acknowledged_at is None
    done = client.post(target, data={"note": "phoned", "csrf_token": _token(page)})
    assert done.status_code == 302
    with site.app_context():
        stored = db.session.get(Alert, alert.id)
        assert stored.acknowledged_at is not None and stored.acknowledgement_note == "phoned"
        assert stored.acknowledged_by.startswith("account:")
    after = client.get("/dashboard/").get_data(as_text=True)
    assert f"Alert {alert.id} acknowledged" in after and "None open." in after
    twice = client.post(target, data={"csrf_token": _token(after)})
    assert twice.status_code == 302
    assert "already acknowledged" in client.get("/dashboard/").get_data(as_text=True)
