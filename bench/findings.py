"""A detector pass (`findings.detector.detect`) over 100,000 stored check-ins: time and peak
memory, beside its ceiling, the same rows the rules read streamed with no rule at all.

    .venv/bin/python bench/findings.py [--check-ins 100000] [--database-url postgresql://…]

The database is migrated with `flask db upgrade`, then filled in bulk: ended events an hour
apart in seven rooms, students × events check-ins each with its first history entry (a
webhook door's), one in a hundred dated 40 minutes before it arrived; a tenth of them came
through the web, each person from their own address, and two groups of four share one
phone at every tenth event; two people also checked in to ten parallel events in another
room; and 2,000 unmatched webhook requests from 40 addresses, and one client guessing.
The pass looks back over everything (`since` before the first row), as a first pass after
downtime would. Both
runs are separate processes, so each one's peak RSS (ru_maxrss from wait4) is its own; the
ratio is the ceiling's seconds over the pass's, each timed inside its process.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.audit import _env, migrate, timed  # noqa: E402
from bench.ingest import BIN, wipe_database  # noqa: E402

EVENTS = 500
ROOMS = 7


def seed(database_url: str, check_ins: int) -> dict[str, int]:
    from sqlalchemy import bindparam, create_engine, func, insert, literal, select, update

    from autocheckin.attendance.models import (
        Attendance,
        AttendanceChange,
        CheckInOrigin,
        Event,
        Student,
    )
    from autocheckin.config import database_uri
    from autocheckin.database import JSONValue
    from autocheckin.webhooks.models import UNMATCHED, WebhookRequest

    engine = create_engine(database_uri({"DATABASE_URL": database_url}, ""))
    now = datetime.now(UTC)
    start = now - timedelta(days=30)
    students = -(-check_ins // EVENTS)
    attendances = Attendance.__table__
    with engine.begin() as connection:
        connection.execute(
            insert(Student),
            [
                {
                    "identifier": f"F{n:07d}",
                    "identifier_key": f"f{n:07d}",
                    "email": f"f{n}@example.com",
                    "email_key": f"f{n}@example.com",
                    "first_name": "Bench",
                    "last_name": str(n),
                    "created_at": now,
                    "updated_at": now,
                }
                for n in range(students)
            ],
        )
        events = [
            {
                "name": f"Findings {n}",
                "start_time": start + timedelta(hours=n),
                "end_time": start + timedelta(hours=n, minutes=50),
                "location": f"Room {n % ROOMS}",
                "created_at": now,
                "updated_at": now,
            }
            for n in range(EVENTS)
        ]
        events += [  # parallel sessions in the annex, beside every 50th event
            {
                "name": f"Annex {n}",
                "start_time": start + timedelta(hours=n),
                "end_time": start + timedelta(hours=n, minutes=50),
                "location": "Annex",
                "created_at": now,
                "updated_at": now,
            }
            for n in range(0, EVENTS, 50)
        ]
        connection.execute(insert(Event), events)
        pairs = (
            select(
                Student.id,
                Event.id,
                Event.start_time,
                literal("present"),
                literal("scanner"),
                literal({}, JSONValue),
                Event.start_time,
            )
            .select_from(Student)
            .join(Event, Event.name.like("Findings %"))
            .order_by(Event.id, Student.id)
            .limit(check_ins)
        )
        columns = ["student_id", "event_id", "checked_in_at", "status", "source", "metadata"]
        connection.execute(insert(attendances).from_select([*columns, "created_at"], pairs))
        annex = select(Event.id, Event.start_time).where(Event.name.like("Annex %"))
        rows = [
            {
                "student_id": person,
                "event_id": event.id,
                "checked_in_at": event.start_time,
                "status": "present",
                "source": "scanner",
                "metadata": {},
                "created_at": event.start_time,
            }
            for event in connection.execute(annex)
            for person in (1, 2)
        ]
        connection.execute(insert(attendances), rows)
        # One in a hundred dated 40 minutes before it arrived.
        skewed = connection.execute(
            select(attendances.c.id, attendances.c.checked_in_at).where(attendances.c.id % 100 == 7)
        ).all()
        connection.execute(
            update(attendances)
            .where(attendances.c.id == bindparam("row_id"))
            .values(created_at=bindparam("arrived")),
            [{"row_id": id_, "arrived": at + timedelta(minutes=40)} for id_, at in skewed],
        )
        entries = select(
            attendances.c.id,
            literal(1),
            attendances.c.event_id,
            attendances.c.created_at,
            literal("marked"),
            literal({"bench": True}, JSONValue),
            literal("webhook:attendance:bench"),
            literal("0" * 64),
            literal("0" * 64),
        )
        connection.execute(
            insert(AttendanceChange.__table__).from_select(
                [
                    "attendance_id",
                    "seq",
                    "event_id",
                    "recorded_at",
                    "action",
                    "after",
                    "actor",
                    "previous_hash",
                    "entry_hash",
                ],
                entries,
            )
        )
        # A tenth came through the web, each person from their own address; and two groups
        # of four people who share one phone checked in through it at every 10th event.
        origins = [
            {
                "attendance_id": row.id,
                "door": "web",
                "client": (
                    f"10.200.0.{row.student_id // 4 % 250}"
                    if row.student_id % 100 < 4
                    else f"10.{row.student_id // 250 % 250}.{row.student_id % 250}.9"
                ),
                "user_agent": "Bench/1.0",
                "account_id": row.student_id,
                "recorded_at": row.created_at,
            }
            for row in connection.execute(
                select(attendances.c.id, attendances.c.student_id, attendances.c.created_at).where(
                    (attendances.c.id % 10 == 3)
                    | ((attendances.c.student_id % 100 < 4) & (attendances.c.event_id % 10 == 0))
                )
            )
        ]
        for chunk in range(0, len(origins), 10_000):
            connection.execute(insert(CheckInOrigin), origins[chunk : chunk + 10_000])
        requests = [
            {
                "endpoint": "attendance",
                "received_at": start + timedelta(minutes=3 * n),
                "client_address": f"10.77.0.{n % 40}",
                "headers": {},
                "body": b"{}",
                "body_sha256": f"{n:064d}",
                "outcome": UNMATCHED,
                "status_code": 404,
                "response_body": {"error": "Student not found", "code": "student_not_found"},
                "attempts": 1,
                "is_replayable": True,
            }
            for n in range(2_000)
        ]
        requests += [  # someone guessing: 30 identifiers in a minute
            {
                **requests[0],
                "received_at": start + timedelta(days=3, seconds=2 * n),
                "client_address": "10.66.6.6",
                "body_sha256": f"g{n:063d}",
            }
            for n in range(30)
        ]
        connection.execute(insert(WebhookRequest), requests)
        total = connection.execute(select(func.count()).select_from(attendances)).scalar()
    engine.dispose()
    return {"check_ins": total, "origins": len(origins), "requests": len(requests)}


PASS = """
import sys
import time
from datetime import timedelta
from autocheckin import create_app, settings
from autocheckin.findings import detector
from autocheckin.times import utcnow
app = create_app({"DATABASE_URL": sys.argv[1], "SCHEDULER_ENABLED": "false",
                  "OUTBOUND_SENDER_ENABLED": "false"})
with app.app_context():
    started = time.perf_counter()
    result = detector.detect(now=utcnow(), rules=settings.of(app).findings,
                             since=utcnow() - timedelta(days=60))
    took = time.perf_counter() - started
    from collections import Counter
    from autocheckin.extensions import db
    from autocheckin.findings.models import Finding
    print(dict(Counter(db.session.scalars(db.select(Finding.rule)))))
    print(result.seen, result.created, took)
"""

# The ceiling: the rows the rules read, streamed through the same driver, nothing judged.
FLOOR = """
import sys
import time
from sqlalchemy import create_engine, select
from autocheckin.attendance.models import Attendance, CheckInOrigin, Event
from autocheckin.config import database_uri
from autocheckin.webhooks.models import WebhookRequest
engine = create_engine(database_uri({"DATABASE_URL": sys.argv[1]}, ""))
statements = [
    select(Attendance.__table__, Event.__table__.c.start_time, Event.__table__.c.end_time,
           Event.__table__.c.location).join(Event.__table__),
    select(CheckInOrigin.__table__),
    select(WebhookRequest.__table__.c.id, WebhookRequest.__table__.c.client_address,
           WebhookRequest.__table__.c.received_at, WebhookRequest.__table__.c.response_body),
]
with engine.connect() as connection:
    started = time.perf_counter()
    count = 0
    for statement in statements:
        streamed = connection.execution_options(stream_results=True, yield_per=1000)
        result = streamed.execute(statement)
        count += sum(len(partition) for partition in result.partitions())
print(count, time.perf_counter() - started)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check-ins", type=int, default=100_000)
    parser.add_argument("--database-url", help="a PostgreSQL database it may wipe")
    parser.add_argument("--json", help="also write the row here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="autocheckin-findings-") as folder:
        database_url = args.database_url or f"sqlite:///{folder}/findings.db"
        if args.database_url and not wipe_database(args.database_url):
            raise SystemExit(f"no database answers at {args.database_url}")
        env = {**_env(database_url), "OUTBOUND_SENDER_ENABLED": "false"}
        migrate(env)
        started = time.perf_counter()
        seeded = seed(database_url, args.check_ins)
        print(f"seeded {seeded} in {time.perf_counter() - started:.1f} s")
        _, floor_mb, floor_said = timed([str(BIN / "python"), "-c", FLOOR, database_url], env)
        read, floor_s = floor_said.split()[-2], float(floor_said.split()[-1])
        _, pass_mb, said = timed([str(BIN / "python"), "-c", PASS, database_url], env)
        by_rule = said.splitlines()[-2]
        seen, created, pass_s = said.split()[-3:]
        pass_s = float(pass_s)
        dialect = "postgresql" if database_url.startswith("postgres") else "sqlite"
        print(
            f"ceiling (the rows streamed, nothing judged): {read} rows in {floor_s:.2f} s, "
            f"peak {floor_mb:.0f} MB"
        )
        print(
            f"detector pass: {seen} patterns seen, {created} findings made ({by_rule}) in "
            f"{pass_s:.2f} s, peak {pass_mb:.0f} MB"
        )
        print(f"ratio {floor_s / pass_s:.2f}x, {seeded['check_ins'] / pass_s:,.0f} check-ins/s")
        row = {
            "bench": "findings",
            "database": dialect,
            "phase": f"detector pass over {seeded['check_ins']:,} check-ins",
            "ratio": floor_s / pass_s,
            "seconds": pass_s,
            "peak_mb": pass_mb,
            "ceiling_seconds": floor_s,
            "findings": int(created),
        }
        if args.json:
            Path(args.json).write_text(json.dumps([row], indent=2))


if __name__ == "__main__":
    main()
