"""`flask demo`: a realistic data set, so that a fresh `make run` shows a living service.

Students on the roster, events that ended, one running now and some to come, a weekly
series in Europe/London with one occurrence cancelled and one moved, enrolments, check-ins
(some late, some missing), corrections (a voided check-in, a manual mark, an approved
excuse and a pending one, each in the hash-chained history), and a few webhook requests
that failed or wait unmatched. Written through the same services and webhook pipeline as
real traffic. And an admin to sign in to the dashboard with, whose password is random and
printed once: no deployment ever has a known demo password.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import random
import secrets
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import insert, select

from autocheckin import settings
from autocheckin.alerts import evaluation as alerts
from autocheckin.attendance import corrections, excuses, history, series, service
from autocheckin.attendance.errors import AlreadyExists
from autocheckin.attendance.models import Attendance, Event, Student
from autocheckin.auth import accounts
from autocheckin.database import write_transaction
from autocheckin.extensions import db
from autocheckin.findings import detector
from autocheckin.sync.models import Enrolment, RosterEntry
from autocheckin.times import iso, utcnow

FIRST = ["Ana", "Ben", "Chloé", "Dev", "Emma", "Farid", "Grace", "Hugo", "Ines", "Jon"]
LAST = ["Silva", "Okafor", "Martin", "Patel", "Kim", "Haddad", "Lee", "Moreau", "Costa", "Berg"]
EVENTS = [  # (name, hours from now to its start, length in hours, location)
    ("Intro to Databases", -72, 2, "Room 101"),
    ("Networks Lab", -48, 3, "Lab B"),
    ("Career Talk", -24, 1, "Auditorium"),
    ("Algorithms Seminar", -0.25, 1.5, "Room 204"),
    ("Project Kick-off", 24, 2, "Room 101"),
    ("Security Workshop", 72, 3, "Lab B"),
]
STUDENTS = 40
DEMO_ADMIN = "admin@demo.example"
SERIES_TIMEZONE = "Europe/London"


@click.command("demo")
@click.option("--seed", default=7, show_default=True, help="The random seed: same data each time.")
@click.option(
    "--on-a-deployment",
    is_flag=True,
    help="Fill it even where RAILWAY_ENVIRONMENT says this is a deployment.",
)
@with_appcontext
def demo_command(seed: int, on_a_deployment: bool) -> None:
    """Fill a realistic demo data set (refused when it is there already)."""
    if os.environ.get("RAILWAY_ENVIRONMENT") and not on_a_deployment:
        raise click.ClickException(
            "RAILWAY_ENVIRONMENT is set, so this looks like a deployment: the demo would add "
            "made-up students and check-ins and an admin account to it. Pass "
            "--on-a-deployment to fill it anyway."
        )
    if db.session.scalar(select(Student.id).where(Student.identifier_key == "demo0001")):
        raise click.ClickException("the demo data is there already")
    chance = random.Random(seed)  # noqa: S311 - demo data, repeatable on purpose
    now = utcnow()
    steps = (
        "students",
        "events",
        "series",
        "enrolments",
        "check-ins",
        "corrections",
        "webhooks",
        "findings",
        "admin",
    )
    with click.progressbar(steps, label="Filling the demo", item_show_func=str) as bar:
        for step in bar:
            if step == "students":
                students = _students()
            elif step == "events":
                events = _events(now)
            elif step == "series":
                weekly = _series(students, now)
            elif step == "enrolments":
                _enrol(students, events)
            elif step == "check-ins":
                counts = _check_ins(chance, students, events, now)
            elif step == "corrections":
                corrected = _corrections(students, events, now)
            elif step == "webhooks":
                webhooks = _webhooks(events)
            elif step == "findings":
                found = _findings(events)
            else:
                admin_password = _admin()
    click.echo(
        f"{len(students)} students, {len(events)} events, {counts['present']} present, "
        f"{counts['late']} late, {counts['absent']} absent; {corrected}; {webhooks}"
    )
    click.echo(weekly)
    click.echo(found)
    click.echo(_absence_alerts(students, now))
    if admin_password:
        click.echo(
            f"Dashboard: /dashboard/ as {DEMO_ADMIN} with the password {admin_password} "
            "(shown this once; `flask create-admin` makes your own)"
        )


def _students() -> list[Student]:
    made = []
    for n in range(1, STUDENTS + 1):
        # A different surname for each pass through the first names: no two students alike.
        first, last = FIRST[n % len(FIRST)], LAST[(n * 3 + n // len(FIRST)) % len(LAST)]
        made.append(
            service.create_student(
                identifier=f"DEMO{n:04d}",
                email=f"{first.lower()}.{last.lower()}{n}@demo.example",
                first_name=first,
                last_name=last,
                source="demo",
            )
        )
    with write_transaction() as session:
        session.execute(
            insert(RosterEntry),
            [
                {"student_id": s.id, "position": i, "listed_at": utcnow()}
                for i, s in enumerate(made)
            ],
        )
    return made


def _events(now) -> list[Event]:
    return [
        service.create_event(
            name=name,
            start_time=now + timedelta(hours=start),
            end_time=now + timedelta(hours=start + length),
            location=location,
            description=f"{name}: a demo event",
            source="demo",
        )
        for name, start, length, location in EVENTS
    ]


def _series(students: list[Student], now: datetime) -> str:
    """A weekly series at 10:00 London time (across a DST change when the dates fall so),
    begun two weeks ago: one coming occurrence cancelled, the next moved to 11:00."""
    tz = ZoneInfo(SERIES_TIMEZONE)
    first_day = (now - timedelta(days=14)).astimezone(tz).date()
    created = series.create_series(
        name="Weekly Lab Meeting",
        start_time=datetime.combine(first_day, time(10), tzinfo=tz),
        duration=timedelta(hours=1),
        rule="FREQ=WEEKLY;COUNT=12",
        timezone=SERIES_TIMEZONE,
        rules=settings.current().series,
        now=now,
        location="Lab B",
        description="Weekly Lab Meeting: a demo series",
        source="demo",
    )
    coming = [event for event in created.occurrences if event.start_time > now]
    cancelled, edited = coming[0], coming[1]
    series.cancel_occurrence(series_id=created.series.id, event_id=cancelled.id)
    series.edit_occurrence(
        series_id=created.series.id,
        event_id=edited.id,
        changes=series.Changes(
            start_time=edited.start_time + timedelta(hours=1),
            end_time=edited.end_time + timedelta(hours=1),
            location="Auditorium",
        ),
        keep=False,
        rules=settings.current().series,
    )
    series.enrol(
        series_id=created.series.id,
        student_refs=[student.identifier or "" for student in students[:20]],
        now=now,
    )
    return (
        f"series #{created.series.id} 'Weekly Lab Meeting' (weekly, 10:00 {SERIES_TIMEZONE}): "
        f"{len(created.occurrences)} occurrences, #{cancelled.id} cancelled, #{edited.id} "
        "moved to 11:00 in the Auditorium"
    )


def _enrol(students: list[Student], events: list[Event]) -> None:
    with write_transaction() as session:
        session.execute(
            insert(Enrolment),
            [
                {"student_id": s.id, "event_id": e.id, "source": "demo", "created_at": utcnow()}
                for s in students
                for e in events
            ],
        )


def _check_ins(chance, students, events, now) -> dict[str, int]:
    """Ended events: most present, some late, some absent; the running one: half so far."""
    late_after = timedelta(seconds=current_app.config["LATE_AFTER"])
    counts = {"present": 0, "late": 0, "absent": 0}
    rows = []
    for event in events:
        if event.start_time > now:
            continue
        running = event.end_time > now
        for student in students:
            roll = chance.random()
            if running and roll > 0.5 or not running and roll > 0.85:
                counts["absent"] += 0 if running else 1
                continue
            is_late = not running and roll > 0.75
            minutes = chance.uniform(12, 30) if is_late else chance.uniform(-5, 8)
            moment = min(event.start_time + timedelta(minutes=minutes), now)
            status = "late" if moment - event.start_time > late_after else "present"
            counts[status] += 1
            rows.append(
                {
                    "student_id": student.id,
                    "event_id": event.id,
                    "checked_in_at": moment,
                    "status": status,
                    "source": chance.choice(["onetap_checkin", "scanner_app", "web", "discord"]),
                    "check_in_metadata": {},
                    "created_at": moment,
                }
            )
    with write_transaction() as session:
        ids = session.scalars(
            insert(Attendance).returning(Attendance.id, sort_by_parameter_order=True), rows
        ).all()
        connection = session.connection()
        history.write(
            connection,
            [
                history.entry(
                    attendance_id=attendance_id,
                    seq=1,
                    event_id=row["event_id"],
                    action=history.MARKED,
                    before=None,
                    after=history.state(
                        student_id=row["student_id"],
                        status=row["status"],
                        checked_in_at=row["checked_in_at"],
                        voided=False,
                        status_explicit=False,
                    ),
                    actor=f"webhook:{row['source']}:demo",
                    reason=None,
                    previous_hash=history.GENESIS,
                    recorded_at=row["created_at"],
                )
                for attendance_id, row in zip(ids, rows, strict=True)
            ],
        )
    return counts


def _corrections(students, events, now) -> str:
    """What an admin's week looks like: a double scan voided, a mark the scanner missed, an
    excuse approved and one waiting, all through the corrections path (so in the history)."""
    rules = settings.current().rules
    admin = "demo:admin"
    ended = [event for event in events if event.end_time and event.end_time < now]
    first = db.session.scalars(
        select(Attendance).where(Attendance.event_id == ended[0].id).order_by(Attendance.id)
    ).first()
    corrections.void(
        attendance_id=first.id,
        correction=corrections.Correction(actor=admin, reason="scanned twice by the door app"),
    )
    marked = {
        a.student_id
        for a in db.session.scalars(select(Attendance).where(Attendance.event_id == ended[1].id))
    }
    missed = next(s for s in students if s.id not in marked)
    corrections.set_status(
        event_id=ended[1].id,
        person_id=missed.id,
        status="present",
        correction=corrections.Correction(actor=admin, reason="the scanner was offline"),
        rules=rules,
    )
    upcoming = next(event for event in events if event.start_time > now)
    approved = excuses.submit(
        person_id=students[2].id,
        event_id=upcoming.id,
        reason="medical appointment",
        actor=f"person:{students[2].id}",
    )
    excuses.approve(excuse_id=approved.id, actor=admin, note="note seen", rules=rules)
    excuses.submit(
        person_id=students[3].id,
        event_id=upcoming.id,
        reason="family visit",
        actor=f"person:{students[3].id}",
    )
    return "1 check-in voided, 1 manual mark, 1 excuse approved and 1 pending"


def _webhooks(events: list[Event]) -> str:
    """A few requests as a scanner would send them: unknown students wait unmatched, a
    malformed one failed. Signed with WEBHOOK_SECRET when one is set."""
    client = current_app.test_client()
    secret = current_app.config["WEBHOOK_SECRET"]
    bodies = [
        {"student_identifier": "NEWSTUDENT1", "event_identifier": str(events[3].id)},
        {"student_identifier": "NEWSTUDENT2", "event_identifier": str(events[3].id)},
        {"student_identifier": "DEMO0001", "event_identifier": "No such event"},
        {"student_identifier": "DEMO0002"},
    ]
    answered = []
    for body in bodies:
        raw = json.dumps(body).encode()
        headers = {"Content-Type": "application/json"}
        if secret:
            digest = hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
            headers["X-Webhook-Signature"] = f"sha256={digest}"
        answered.append(client.post("/api/webhook/attendance/", data=raw, headers=headers))
    refused = sum(1 for answer in answered if answer.status_code >= 400)
    return f"{refused} webhook requests failed or wait unmatched (at {iso(utcnow())})"


def _findings(events: list[Event]) -> str:
    """A gate scanner whose clock runs 25 minutes slow sends two check-ins to the event
    running now, through the webhook pipeline; a detector pass, as the leader's job runs
    it, finds them (the clock_skew rule) for the dashboard's review queue."""
    running = next(event for event in events if event.name == "Algorithms Seminar")
    checked_in = set(
        db.session.scalars(select(Attendance.student_id).where(Attendance.event_id == running.id))
    )
    absent = db.session.scalars(
        select(Student).where(Student.id.not_in(checked_in)).order_by(Student.id).limit(2)
    ).all()
    client = current_app.test_client()
    secret = current_app.config["WEBHOOK_SECRET"]
    slow_clock = iso(utcnow() - timedelta(minutes=25))
    for student in absent:
        body = {
            "student_identifier": student.identifier,
            "event_identifier": str(running.id),
            "check_in_time": slow_clock,
            "source": "gate-scanner-2",
        }
        raw = json.dumps(body).encode()
        headers = {"Content-Type": "application/json"}
        if secret:
            digest = hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
            headers["X-Webhook-Signature"] = f"sha256={digest}"
        client.post("/api/webhook/attendance/", data=raw, headers=headers)
    result = detector.detect(now=utcnow(), rules=settings.current().findings)
    return f"{result.created} suspicious check-in finding(s) open for review"


def _admin() -> str | None:
    """The demo's admin, with a fresh random password; None when the account exists."""
    password = secrets.token_urlsafe(12)
    try:
        accounts.register_user(email=DEMO_ADMIN, name="Demo admin", password=password)
    except AlreadyExists:
        return None
    accounts.set_web_role(email=DEMO_ADMIN, role="admin")
    return password


def _absence_alerts(students: list[Student], now: datetime) -> str:
    """A person who stopped coming: enrolled in three tutorials that ended today and at none
    of them. Then the alert rules over everyone, as the evaluate_alerts job's first run."""
    person = students[-1]
    tutorials = [
        service.create_event(
            name=f"Tutorial {n}",
            start_time=now - timedelta(hours=hours),
            end_time=now - timedelta(hours=hours - 1),
            location="Room 12",
            description=f"Tutorial {n}: a demo event",
            source="demo",
        )
        for n, hours in enumerate((21, 15, 9), start=1)
    ]
    with write_transaction() as session:
        session.execute(
            insert(Enrolment),
            [
                {"student_id": person.id, "event_id": e.id, "source": "demo", "created_at": now}
                for e in tutorials
            ],
        )
    counts = alerts.evaluate_changed(now=utcnow(), rules=settings.current().alerts)
    return (
        f"{counts['alerts']} absence alerts raised ({person.name} missed {len(tutorials)} "
        "tutorials in a row)"
    )
