"""Single check-ins in process, timed or under cProfile: where one request's time goes.

    .venv/bin/python bench/profile_checkin.py [--requests 3000] [--profile]

Legacy-webhook check-ins (unsigned, the open setup) through Flask's test client in one
thread, on a fresh SQLite file: 2,000 people, distinct (person, event) pairs. `--profile`
prints the 40 most expensive calls by cumulative time instead of the rate.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PEOPLE = 2000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    from sqlalchemy import insert, select

    from autocheckin import create_app
    from autocheckin.attendance.models import Event, Student
    from autocheckin.extensions import db

    folder = tempfile.mkdtemp(prefix="autocheckin-profile-")
    app = create_app(
        {
            "DATABASE_URL": f"sqlite:///{folder}/profile.db",
            "SCHEDULER_ENABLED": "false",
            "OUTBOUND_SENDER_ENABLED": "false",
            "WEBHOOK_REQUIRE_SIGNATURE": "false",
        }
    )
    now = datetime.now(UTC)
    events = -(-args.requests // PEOPLE)
    with app.app_context():
        db.create_all()
        db.session.execute(
            insert(Student),
            [
                {
                    "identifier": f"S{n:05d}",
                    "identifier_key": f"s{n:05d}",
                    "first_name": "Bench",
                    "last_name": str(n),
                    "created_at": now,
                    "updated_at": now,
                }
                for n in range(PEOPLE)
            ],
        )
        db.session.execute(
            insert(Event),
            [
                {
                    "name": f"Profile {n}",
                    "start_time": now - timedelta(minutes=5),
                    "end_time": now + timedelta(hours=3),
                    "created_at": now,
                    "updated_at": now,
                }
                for n in range(events)
            ],
        )
        db.session.commit()
        event_ids = list(db.session.scalars(select(Event.id)))
    bodies = [
        json.dumps({"student_identifier": f"S{n:05d}", "event_identifier": str(event_id)})
        for event_id in event_ids
        for n in range(PEOPLE)
    ][: args.requests]
    client = app.test_client()

    def run() -> None:
        for body in bodies:
            answer = client.post(
                "/api/webhook/attendance/", data=body, headers={"Content-Type": "application/json"}
            )
            if answer.status_code != 201:
                raise SystemExit(f"{answer.status_code}: {answer.get_json()}")

    if args.profile:
        profiler = cProfile.Profile()
        profiler.runcall(run)
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(40)
        return
    started = time.perf_counter()
    run()
    seconds = time.perf_counter() - started
    print(f"{len(bodies) / seconds:,.0f} check-ins/s, {1000 * seconds / len(bodies):.2f} ms each")


if __name__ == "__main__":
    main()
