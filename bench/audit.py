"""`flask audit verify` over 1,000,000 history entries: time and peak memory, beside its
ceiling, the same rows streamed through the same driver with no hashing (the read alone).

    .venv/bin/python bench/audit.py [--entries 1000000] [--database-url postgresql://…/scratch]

The database is migrated with `flask db upgrade`, then filled in bulk: entries/2 check-ins
(students × events), each with two entries (its first mark, then a correction to late),
hashed by the service's own `history.entry`. Both runs are separate processes, so each
one's peak RSS (ru_maxrss from wait4) is its own; the ratio is the ceiling's seconds over
verify's, each timed inside its process (start-up and imports left out).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.export import insert_people_and_events  # noqa: E402
from bench.ingest import BIN, wipe_database  # noqa: E402

EVENTS = 500
BATCH = 20_000


def _env(database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATABASE_URL")}
    env.update(
        {"DATABASE_URL": database_url, "SCHEDULER_ENABLED": "false", "PYTHONPATH": str(ROOT)}
    )
    return env


def migrate(env: dict[str, str]) -> None:
    """`flask db upgrade` on the database `env` names, as the Procfile's release step runs it."""
    subprocess.run(
        [str(BIN / "flask"), "--app", "autocheckin", "db", "upgrade"],
        env=env,
        check=True,
        capture_output=True,
    )


def seed(database_url: str, entries: int) -> int:
    """entries/2 attendances at version 2, each with its two chained entries."""
    from sqlalchemy import create_engine, insert, literal, select, update

    from autocheckin.attendance import history
    from autocheckin.attendance.models import Attendance, Event, Student
    from autocheckin.config import database_uri
    from autocheckin.database import JSONValue, UTCDateTime

    attendances = entries // 2
    engine = create_engine(database_uri({"DATABASE_URL": database_url}, ""))
    now = datetime.now(UTC)
    table = Attendance.__table__
    with engine.begin() as connection:
        insert_people_and_events(
            connection, students=-(-attendances // EVENTS), events=EVENTS, prefix="Audit", now=now
        )
        pairs = (
            select(
                Student.id,
                Event.id,
                Event.start_time,
                literal("late"),
                literal("bench"),
                literal({}, JSONValue),
                literal(now, UTCDateTime),
                literal(2),
                literal(True),
            )
            .select_from(Student)
            .join(Event, Event.name.like("Audit %"))
            .limit(attendances)
        )
        columns = [
            "student_id",
            "event_id",
            "checked_in_at",
            "status",
            "source",
            "metadata",
            "created_at",
            "version",
            "status_explicit",
        ]
        connection.execute(insert(table).from_select(columns, pairs))
        connection.execute(update(table).values(updated_at=now))
    written = 0
    last_id = 0
    with engine.connect() as reader:
        while True:
            rows = reader.execute(
                select(table.c.id, table.c.student_id, table.c.event_id, table.c.checked_in_at)
                .where(table.c.id > last_id)
                .order_by(table.c.id)
                .limit(BATCH // 2)
            ).all()
            if not rows:
                break
            last_id = rows[-1].id
            batch = []
            for row in rows:
                marked = history.state(
                    student_id=row.student_id,
                    status="present",
                    checked_in_at=row.checked_in_at,
                    voided=False,
                    status_explicit=False,
                )
                first = history.entry(
                    attendance_id=row.id,
                    seq=1,
                    event_id=row.event_id,
                    action=history.MARKED,
                    before=None,
                    after=marked,
                    actor="webhook:onetap:bench",
                    reason=None,
                    previous_hash=history.GENESIS,
                    recorded_at=now,
                )
                batch.append(first)
                batch.append(
                    history.entry(
                        attendance_id=row.id,
                        seq=2,
                        event_id=row.event_id,
                        action=history.STATUS_SET,
                        before=marked,
                        after={**marked, "status": "late", "status_explicit": True},
                        actor="api_key:bench",
                        reason="came in after the roll call",
                        previous_hash=first["entry_hash"],
                        recorded_at=now,
                    )
                )
            with engine.begin() as connection:
                connection.execute(history.HISTORY.insert(), batch)
            written += len(batch)
    engine.dispose()
    return written


FLOOR = """
import sys
import time
from sqlalchemy import create_engine
from autocheckin.attendance import history
from autocheckin.config import database_uri
engine = create_engine(database_uri({"DATABASE_URL": sys.argv[1]}, ""))
with engine.connect() as connection:
    started = time.perf_counter()
    result = connection.execution_options(yield_per=10_000).execute(history._CHAIN)
    count = sum(len(partition) for partition in result.partitions())
print(count, time.perf_counter() - started)
"""


def timed(command: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """(seconds, peak RSS in MB, output) of one child process."""
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    output = process.stdout.read().decode() if process.stdout else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{output}")
    return seconds, usage.ru_maxrss / 1024, output.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--database-url", help="a PostgreSQL database it may wipe")
    parser.add_argument("--json", help="also write the row here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="autocheckin-audit-") as folder:
        database_url = args.database_url or f"sqlite:///{folder}/audit.db"
        if args.database_url and not wipe_database(args.database_url):
            raise SystemExit(f"no database answers at {args.database_url}")
        env = _env(database_url)
        migrate(env)
        started = time.perf_counter()
        written = seed(database_url, args.entries)
        print(f"seeded {written:,} entries in {time.perf_counter() - started:.1f} s")
        _, floor_mb, floor_said = timed([str(BIN / "python"), "-c", FLOOR, database_url], env)
        counted, floor_s = floor_said.split()[-2], float(floor_said.split()[-1])
        process_s, verify_mb, said = timed(
            [str(BIN / "flask"), "--app", "autocheckin", "audit", "verify"], env
        )
        verify_s = float(re.search(r" in ([0-9.]+) s", said)[1])
        dialect = "postgresql" if database_url.startswith("postgres") else "sqlite"
        print(
            f"ceiling (the same rows streamed, no hashing): {counted} rows in {floor_s:.1f} s, "
            f"peak {floor_mb:.0f} MB"
        )
        print(f"flask audit verify: {said}; the process {process_s:.1f} s, peak {verify_mb:.0f} MB")
        print(f"ratio {floor_s / verify_s:.2f}x, {written / verify_s:,.0f} entries/s")
        row = {
            "bench": "audit",
            "database": dialect,
            "phase": f"verify {written:,} entries",
            "ratio": floor_s / verify_s,
            "seconds": verify_s,
            "peak_mb": verify_mb,
            "ceiling_seconds": floor_s,
        }
        if args.json:
            Path(args.json).write_text(json.dumps([row], indent=2))


if __name__ == "__main__":
    main()
