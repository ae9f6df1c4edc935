"""The Moodle CSV export over HTTP: 1,000,000 attendance rows, rows/s and the server's
peak memory, side by side with a bare Flask app streaming the same number of CSV rows
under the same gunicorn.

    .venv/bin/python bench/export.py [--rows 1000000] [--database-url postgresql://…/scratch]

AutoCheckin is started as the Procfile's `web:` line says (migrations, then gunicorn);
the rows are inserted directly (students × events), then the export is read with
`requests` in 64 KB chunks. Peak memory is each gunicorn worker's VmHWM (the kernel's
high-water mark of its resident set), read from /proc after the export: the largest one
is the worker that served it.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.ingest import (  # noqa: E402
    BIN,
    free_port,
    procfile_web_command,
    server_env,
    serving,
    wipe_database,
)

API_KEY = "bench-api-key-0123456789"
EVENTS = 500
TARGET_PEAK_MB = 150


def insert_people_and_events(
    connection: Any, *, students: int, events: int, prefix: str, now: datetime
) -> None:
    """`students` people (identifier `<P>0000001`, an email) and `events` ended events named
    `<prefix> <n>`, an hour apart from 30 days ago, in two bulk inserts."""
    from sqlalchemy import insert

    from autocheckin.attendance.models import Event, Student

    letter = prefix[0].upper()
    connection.execute(
        insert(Student),
        [
            {
                "identifier": f"{letter}{n:07d}",
                "identifier_key": f"{letter.lower()}{n:07d}",
                "email": f"{letter.lower()}{n}@example.com",
                "email_key": f"{letter.lower()}{n}@example.com",
                "first_name": "Bench",
                "last_name": str(n),
                "created_at": now,
                "updated_at": now,
            }
            for n in range(students)
        ],
    )
    start = now - timedelta(days=30)
    connection.execute(
        insert(Event),
        [
            {
                "name": f"{prefix} {n}",
                "start_time": start + timedelta(hours=n),
                "end_time": start + timedelta(hours=n, minutes=50),
                "created_at": now,
                "updated_at": now,
            }
            for n in range(events)
        ],
    )


def seed(database_url: str, rows: int) -> int:
    """`rows` check-ins: rows/EVENTS students × EVENTS ended events, inserted in bulk."""
    from sqlalchemy import create_engine, func, insert, literal, select

    from autocheckin.attendance.models import Attendance, Event, Student
    from autocheckin.config import database_uri
    from autocheckin.database import JSONValue, UTCDateTime

    engine = create_engine(database_uri({"DATABASE_URL": database_url}, ""))
    now = datetime.now(UTC)
    with engine.begin() as connection:
        insert_people_and_events(
            connection, students=-(-rows // EVENTS), events=EVENTS, prefix="Export", now=now
        )
        pairs = (
            select(
                Student.id,
                Event.id,
                Event.start_time,
                literal("present"),
                literal("bench"),
                literal({}, JSONValue),
                literal(now, UTCDateTime),
            )
            .select_from(Student)
            .join(Event, Event.name.like("Export %"))
            .limit(rows)
        )
        columns = [
            "student_id",
            "event_id",
            "checked_in_at",
            "status",
            "source",
            "metadata",
            "created_at",
        ]
        connection.execute(insert(Attendance.__table__).from_select(columns, pairs))
        stored = connection.scalar(select(func.count()).select_from(Attendance))
    engine.dispose()
    return stored


def peak_rss_mb(master_pid: int) -> float:
    """The largest VmHWM among the master's children (the workers), in MB."""
    peaks = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(
                line.split(":", 1) for line in status.read_text().splitlines() if ":" in line
            )
        except OSError:
            continue
        if fields.get("PPid", "").strip() == str(master_pid) and "VmHWM" in fields:
            peaks.append(int(fields["VmHWM"].split()[0]) / 1024)
    return max(peaks, default=0.0)


def read_export(url: str, headers: dict[str, str]) -> tuple[int, float, float]:
    """(rows, seconds, seconds to the first bytes) of one streamed CSV download."""
    started = time.perf_counter()
    first = None
    lines = 0
    with requests.get(url, headers=headers, stream=True, timeout=600) as response:
        response.raise_for_status()
        for chunk in response.iter_content(64 * 1024):
            first = first or time.perf_counter() - started
            lines += chunk.count(b"\n")
    return lines - 1, time.perf_counter() - started, first or 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--database-url", help="a PostgreSQL database it may wipe")
    parser.add_argument("--json", type=Path, help="also write the rows here (bench/summary.py)")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="autocheckin-export-"))
    database_url = args.database_url or f"sqlite:///{workdir / 'export.db'}"
    if args.database_url and not wipe_database(database_url):
        return
    bare_pids: dict[str, int] = {}
    our_pids: dict[str, int] = {}
    bare_port, app_port = free_port(), free_port()
    with serving(
        [str(BIN / "gunicorn"), "bench.bare_app:app", "-c", "gunicorn.conf.py"],
        server_env(bare_port),
        "/api/v1/state",
        workdir / "bare.log",
        bare_pids,
    ) as bare:
        bare_rows, bare_seconds, bare_first = read_export(f"{bare}/export.csv?rows={args.rows}", {})
        bare_peak = peak_rss_mb(bare_pids["server"])
    env = server_env(app_port, DATABASE_URL=database_url, CHECKOUT_API_KEY=API_KEY)
    with serving(
        ["bash", "-c", procfile_web_command()], env, "/health", workdir / "app.log", our_pids
    ) as ours:
        started = time.perf_counter()
        stored = seed(database_url, args.rows)
        print(f"seeded {stored:,} attendances in {time.perf_counter() - started:.1f} s")
        rows, seconds, first = read_export(
            f"{ours}/api/integrations/lms/moodle/export", {"x-checkout-key": API_KEY}
        )
        peak = peak_rss_mb(our_pids["server"])
    backend = "postgresql" if database_url.startswith("postgres") else "sqlite"
    ours_rate, bare_rate = rows / seconds, bare_rows / bare_seconds
    print(f"moodle export on {backend}: {rows:,} rows")
    print(
        f"  bare app      {bare_rate:>10,.0f} rows/s  first bytes {bare_first * 1000:.0f} ms"
        f"  worker peak RSS {bare_peak:.0f} MB"
    )
    print(
        f"  autocheckin   {ours_rate:>10,.0f} rows/s  first bytes {first * 1000:.0f} ms"
        f"  worker peak RSS {peak:.0f} MB  ratio {ours_rate / bare_rate:.2f}x"
    )
    verdict = "met" if peak < TARGET_PEAK_MB else "NOT met"
    print(f"  peak RSS target < {TARGET_PEAK_MB} MB: {verdict}")
    if args.json:
        row = {
            "bench": "export",
            "database": backend,
            "phase": f"moodle export, {rows:,} rows",
            "unit": "rows/s",
            "bare": round(bare_rate),
            "autocheckin": round(ours_rate),
            "ratio": round(ours_rate / bare_rate, 3),
            "peak_rss_mb": round(peak),
        }
        args.json.write_text(json.dumps([row], indent=2))


if __name__ == "__main__":
    main()
