"""An A/B of the batch path without HTTP: 40 batch requests of 1,000 distinct check-ins
through Flask's test client, in one thread, on a fresh schema (dropped and created).

    .venv/bin/python bench/batch_inprocess.py <tree> <database-url>

`<tree>` is a checkout (`git worktree add /work/wt-base <commit>`), imported instead of this
one, so the same interpreter times two commits; give each its own database (the schemas
differ). Prints check-ins per second. What it leaves out (wrk, gunicorn's two workers, the
socket) is what `bench/ingest.py` measures.
"""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime, timedelta

CHECK_INS, EVENTS = 1000, 40


def main(tree: str, url: str) -> None:
    sys.path.insert(0, tree)
    from sqlalchemy import insert, select

    from autocheckin import create_app
    from autocheckin.attendance.models import Event, Student
    from autocheckin.extensions import db

    app = create_app(
        {
            "DATABASE_URL": url,
            "SCHEDULER_ENABLED": "false",
            "OUTBOUND_SENDER_ENABLED": "false",
            "WEBHOOK_REQUIRE_SIGNATURE": "false",
        }
    )
    now = datetime.now(UTC)
    with app.app_context():
        db.drop_all()
        db.create_all()
        people = [
            {
                "identifier": f"S{n:05d}",
                "identifier_key": f"s{n:05d}",
                "email": f"s{n}@example.com",
                "email_key": f"s{n}@example.com",
                "first_name": "Bench",
                "last_name": str(n),
                "created_at": now,
                "updated_at": now,
            }
            for n in range(CHECK_INS)
        ]
        db.session.execute(insert(Student), people)
        events = [
            {
                "name": f"Batch {n}",
                "start_time": now - timedelta(minutes=5),
                "end_time": now + timedelta(hours=3),
                "created_at": now,
                "updated_at": now,
            }
            for n in range(EVENTS)
        ]
        db.session.execute(insert(Event), events)
        db.session.commit()
        event_ids = list(db.session.scalars(select(Event.id).order_by(Event.id)))
    client = app.test_client()
    bodies = [
        json.dumps(
            {
                "items": [
                    {"student_identifier": f"S{n:05d}", "event_identifier": str(event_id)}
                    for n in range(CHECK_INS)
                ]
            }
        )
        for event_id in event_ids
    ]
    started = time.perf_counter()
    for body in bodies:
        answer = client.post(
            "/api/webhook/attendance/batch",
            data=body,
            headers={"Content-Type": "application/json"},
        )
        if answer.status_code != 200:
            raise SystemExit(f"{answer.status_code}: {answer.get_json()}")
    seconds = time.perf_counter() - started
    print(f"{tree}: {CHECK_INS * EVENTS / seconds:,.0f} check-ins/s")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    main(sys.argv[1], sys.argv[2])
