"""Check-in ingest over HTTP, side by side with a bare Flask app under the same gunicorn.

In one invocation: AutoCheckin starts exactly as the Procfile's `web:` line says, and the
bare app of `bench/bare_app.py` under the same `gunicorn.conf.py`; the database is seeded
through the public webhooks (students × events); then wrk drives both with the same
distinct, signed `record_attendance` requests and prints req/s, p50, p99, non-2xx and the
ratio for each phase:

- `onetap`: `POST /api/webhook/onetap/` (action record_attendance);
- `legacy`: `POST /api/webhook/attendance/` (the flat payload);
- `secure`: `POST /api/webhook/attendance/secure/` (HMAC required);
- `batch`: `POST /api/webhook/attendance/batch/`, 1,000 items a request (check-ins/s);
- `state`: `GET /api/v1/state` with --attendances check-ins stored and every student on
  the roster (the whole roster is in the answer).
- `state304`: the same poll with `If-None-Match` of the answer's ETag: 304, no body.

With --outbound-subscriber, a receiver (the bare app under its own one-worker gunicorn) is
subscribed to `attendance.marked` before the phases, so every check-in also writes its
outbox row and the workers' senders deliver while wrk runs; after each phase it waits for
the deliveries to drain (so the next bare run has the CPU to itself) and prints how long
that took and how many succeeded.

    .venv/bin/python bench/ingest.py
    .venv/bin/python bench/ingest.py --database-url postgresql://postgres@127.0.0.1:5432/bench

The PostgreSQL database must be one the benchmark may wipe: it drops every table first
(and creates the database when missing; when no server answers, it says so and stops).
Servers listen on 127.0.0.1 only and are stopped on exit; wrk runs for --duration seconds.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BIN = Path(sys.executable).parent
SECRET = "bench-webhook-secret-0123456789abcdef"
API_KEY = "bench-checkout-key"
LUA = ROOT / "bench" / "wrk_requests.lua"
PHASES = ("onetap", "legacy", "secure", "batch", "state", "state304")
PATHS = {
    "onetap": "/api/webhook/onetap/",
    "legacy": "/api/webhook/attendance/",
    "secure": "/api/webhook/attendance/secure/",
    "batch": "/api/webhook/attendance/batch/",
}


@dataclass(frozen=True)
class WrkResult:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    requests: int
    non_2xx: int
    errors: int


# --- servers ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def procfile_web_command() -> str:
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.startswith("web:"):
            return line.removeprefix("web:").strip()
    raise SystemExit("Procfile has no web: line")


def server_env(port: int, **extra: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("CHECKOUT_", "WEBHOOK_", "DATABASE_URL", "DISCORD_"))
    }
    env.update(
        {
            "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}",
            "PORT": str(port),
            "GUNICORN_BIND": f"127.0.0.1:{port}",
            "SCHEDULER_ENABLED": "false",
            "LOG_LEVEL": "WARNING",
            **extra,
        }
    )
    return env


@contextmanager
def background(command: list[str], env: dict[str, str], log_path: Path):
    """Start a process in its own process group; always stop it (TERM, then KILL)."""
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=log_file, stderr=log_file, start_new_session=True
        )
        try:
            yield process
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()


@contextmanager
def serving(
    command: list[str],
    env: dict[str, str],
    probe_path: str,
    log_path: Path,
    pids: dict[str, int] | None = None,
):
    """Start a server in the background, wait until it answers, always stop it.

    `pids["server"]` gets the server's process id (gunicorn's master after the `exec`)."""
    base = f"http://127.0.0.1:{env['PORT']}"
    with background(command, env, log_path) as process:
        if pids is not None:
            pids["server"] = process.pid
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise SystemExit(f"{command} exited with {process.returncode}; see {log_path}")
            try:
                requests.get(base + probe_path, timeout=2)
                break
            except requests.RequestException:
                if time.monotonic() > deadline:
                    raise SystemExit(f"{base} did not answer in 60 s; see {log_path}") from None
                time.sleep(0.1)
        yield base


def wipe_database(database_url: str) -> bool:
    """Drop every table so the Procfile's `flask db upgrade` starts from nothing; create the
    database when it does not exist. False when no server answers."""
    from sqlalchemy import MetaData, create_engine
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import OperationalError

    from autocheckin.config import database_uri

    url = make_url(database_uri({"DATABASE_URL": database_url}, ""))
    engine = create_engine(url)
    try:
        engine.connect().close()
    except OperationalError as error:
        if "does not exist" not in str(error):
            print(f"PostgreSQL not reachable, skipped: {error}".splitlines()[0], file=sys.stderr)
            return False
        admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{url.database}"')
        admin.dispose()
    metadata = MetaData()
    metadata.reflect(engine)
    metadata.drop_all(engine)
    engine.dispose()
    return True


# --- payloads --------------------------------------------------------------------------------


def sign(body: bytes) -> dict[str, str]:
    digest = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    return {"Content-Type": "application/json", "X-Webhook-Signature": f"sha256={digest}"}


def dumps(payload: dict) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


def student_ids(count: int) -> list[str]:
    return [f"B{number:07d}" for number in range(count)]


def event_names(phase: str, count: int) -> list[str]:
    return [f"Bench {phase} {number}" for number in range(count)]


def checkin_payload(phase: str, student: str, event: str) -> dict:
    item = {"student_identifier": student, "event_identifier": event, "source": "bench"}
    if phase == "onetap":
        return {"action": "record_attendance", "source": "bench", "data": item}
    return item


def seed(base: str, students: list[str], events: list[str]) -> None:
    """Create the roster and the events through the public OneTap webhook."""
    start = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    payloads = [
        {
            "action": "create_student",
            "data": {
                "student_identifier": identifier,
                "email": f"{identifier.lower()}@bench.test",
                "first_name": "Bench",
                "last_name": identifier,
            },
        }
        for identifier in students
    ] + [
        {"action": "create_event", "data": {"event_name": name, "event_date": start}}
        for name in events
    ]
    session = requests.Session()

    def post(payload: dict) -> None:
        body = dumps(payload)
        response = session.post(base + PATHS["onetap"], data=body, headers=sign(body), timeout=30)
        if response.status_code != 201:
            raise SystemExit(f"seeding failed: {response.status_code} {response.text}")

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(post, payloads))


def write_requests(path: Path, method: str, target: str, bodies: list[bytes], headers) -> None:
    """The wrk script's file: METHOD, PATH, headers, body; tab-separated, a request a line."""
    with open(path, "w") as out:
        for body in bodies:
            header_text = "\x1f".join(f"{name}: {value}" for name, value in headers(body).items())
            out.write(f"{method}\t{target}\t{header_text}\t{body.decode()}\n")


def checkin_bodies(phase: str, students: list[str], events: list[str]) -> list[bytes]:
    """Every (student, event) pair once, events interleaved so neighbours differ."""
    return [
        dumps(checkin_payload(phase, student, event)) for student in students for event in events
    ]


def batch_bodies(students: list[str], events: list[str], size: int) -> list[bytes]:
    items = [
        {"student_identifier": student, "event_identifier": event, "source": "bench"}
        for event in events
        for student in students
    ]
    return [dumps({"items": items[at : at + size]}) for at in range(0, len(items), size)]


# --- wrk -------------------------------------------------------------------------------------


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    print("wrk is missing; installing it with apt-get", file=sys.stderr)
    subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], check=True, capture_output=True)
    return shutil.which("wrk") or "wrk"


def parse_wrk(output: str) -> WrkResult:
    def duration_ms(text: str) -> float:
        number, unit = re.match(r"([\d.]+)(us|ms|s|m)", text).groups()
        return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]

    percentiles = dict(re.findall(r"^\s+(\d+)%\s+(\S+)\s*$", output, re.MULTILINE))
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return WrkResult(
        requests_per_second=float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
        p50_ms=duration_ms(percentiles["50"]),
        p99_ms=duration_ms(percentiles["99"]),
        requests=int(re.search(r"(\d+) requests in", output).group(1)),
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        errors=sum(int(number) for number in errors.groups()) if errors else 0,
    )


def run_wrk(wrk: str, base: str, requests_file: Path, args, connections: int) -> WrkResult:
    threads = min(args.wrk_threads, connections)
    env = {**os.environ, "WRK_REQUESTS": str(requests_file), "WRK_THREADS": str(threads)}
    command = [
        wrk,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{args.duration}s",
        "--timeout",
        "10s",
        "--latency",
        "-s",
        str(LUA),
        base,
    ]
    completed = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    try:
        return parse_wrk(completed.stdout)
    except (AttributeError, KeyError):
        raise SystemExit(f"could not read wrk's output:\n{completed.stdout}") from None


# --- phases ----------------------------------------------------------------------------------


def report(name: str, unit: str, bare: WrkResult, ours: WrkResult, per_request: int = 1) -> dict:
    row = {
        "bench": "ingest",
        "phase": name,
        "unit": unit,
        "bare": round(bare.requests_per_second * per_request),
        "autocheckin": round(ours.requests_per_second * per_request),
        "ratio": round(ours.requests_per_second / bare.requests_per_second, 3),
        "bare_p99_ms": round(bare.p99_ms, 1),
        "p50_ms": round(ours.p50_ms, 1),
        "p99_ms": round(ours.p99_ms, 1),
        "requests": ours.requests,
        "non_2xx": ours.non_2xx,
        "socket_errors": ours.errors,
    }
    print(
        f"{name:<8} bare {row['bare']:>8,} {unit}  autocheckin {row['autocheckin']:>8,} {unit}  "
        f"ratio {row['ratio']:.2f}x  p50 {row['p50_ms']:.1f} ms  p99 {row['p99_ms']:.1f} ms  "
        f"(bare p99 {row['bare_p99_ms']:.1f} ms)  non-2xx {ours.non_2xx}/{ours.requests}  "
        f"socket errors {ours.errors}",
        flush=True,
    )
    return row


def stored_attendances(database_url: str) -> int:
    from sqlalchemy import create_engine, func, select

    from autocheckin.attendance.models import Attendance
    from autocheckin.config import database_uri

    engine = create_engine(database_uri({"DATABASE_URL": database_url}, ""))
    with engine.connect() as connection:
        total = connection.scalar(select(func.count()).select_from(Attendance))
    engine.dispose()
    return total


def top_up_attendances(database_url: str, total: int, phase_events: list[str]) -> int:
    """Insert check-ins directly (students × the state phase's events) up to `total`."""
    from sqlalchemy import create_engine, func, insert, literal, select

    from autocheckin.attendance.models import Attendance, Event, Student
    from autocheckin.config import database_uri
    from autocheckin.database import JSONValue, UTCDateTime

    engine = create_engine(database_uri({"DATABASE_URL": database_url}, ""))
    now = datetime.now(UTC)
    with engine.begin() as connection:
        missing = total - connection.scalar(select(func.count()).select_from(Attendance))
        if missing > 0:
            pairs = (
                select(
                    Student.id,
                    Event.id,
                    literal(now, UTCDateTime),
                    literal("present"),
                    literal("bench"),
                    literal({}, JSONValue),
                    literal(now, UTCDateTime),
                )
                .select_from(Student)
                .join(Event, Event.name.in_(phase_events))
                .limit(missing)
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
        seed_job_history(connection, now)
    # Settle the bulk insert before measuring reads: without this the checkpoint that
    # follows it stalls the disk (and every process logging to it) mid-run.
    settle = (
        ["VACUUM ANALYZE", "CHECKPOINT"]
        if engine.dialect.name == "postgresql"
        else ["PRAGMA wal_checkpoint(TRUNCATE)"]
    )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        for statement in settle:
            connection.exec_driver_sql(statement)
    engine.dispose()
    return stored


def fill_roster(database_url: str) -> int:
    """Every student on the CheckOut roster, as a fetch would leave it; the roster's size."""
    from sqlalchemy import create_engine, delete, func, insert, select

    from autocheckin.attendance.models import Student
    from autocheckin.config import database_uri
    from autocheckin.sync.models import RosterEntry

    engine = create_engine(database_uri({"DATABASE_URL": database_url}, ""))
    now = datetime.now(UTC)
    with engine.begin() as connection:
        connection.execute(delete(RosterEntry))
        ids = connection.execute(select(Student.id).order_by(Student.id)).scalars().all()
        connection.execute(
            insert(RosterEntry),
            [{"student_id": i, "position": n, "listed_at": now} for n, i in enumerate(ids)],
        )
        size = connection.scalar(select(func.count()).select_from(RosterEntry))
    engine.dispose()
    return size


def subscribe_receiver(base: str, receiver: str) -> None:
    """Subscribe the receiver to attendance.marked through the public API."""
    body = {
        "name": "bench receiver",
        "url": f"{receiver}/api/webhook/outbound",
        "event_type": "attendance.marked",
        "retry_count": 10,
    }
    answer = requests.post(
        f"{base}/api/webhooks", json=body, headers={"x-checkout-key": API_KEY}, timeout=10
    )
    if answer.status_code != 201:
        raise SystemExit(f"subscribing failed: {answer.status_code} {answer.text}")


def outbound_backlog(database_url: str) -> dict[str, int]:
    """Deliveries by status, and outbox rows not fanned out yet."""
    from sqlalchemy import create_engine, func, select

    from autocheckin.config import database_uri
    from autocheckin.outbound.models import Delivery, OutboxEntry

    engine = create_engine(database_uri({"DATABASE_URL": database_url}, ""))
    with engine.connect() as connection:
        by_status = select(Delivery.status, func.count()).group_by(Delivery.status)
        tally = dict(connection.execute(by_status).all())
        tally["outbox rows"] = connection.scalar(select(func.count()).select_from(OutboxEntry))
    engine.dispose()
    return tally


def wait_for_deliveries(database_url: str, seconds: float = 900) -> None:
    if os.environ.get("OUTBOUND_SENDER_ENABLED", "").lower() == "false":
        print(f"outbound senders off; backlog: {outbound_backlog(database_url)}", flush=True)
        return
    started = time.perf_counter()
    while True:
        tally = outbound_backlog(database_url)
        is_drained = not tally.get("pending") and not tally["outbox rows"]
        if is_drained or time.perf_counter() - started > seconds:
            break
        time.sleep(1)
    waited = time.perf_counter() - started
    state = "drained" if is_drained else "NOT drained"
    print(f"outbound deliveries {state} {waited:.0f} s after the phase: {tally}", flush=True)


# A week of the default schedule's runs (JOB_RUN_RETENTION_DAYS=7): what the state
# endpoint reads each job's health from. Every tenth refresh failed, one fetch was partial.
JOB_HISTORY = {"connection_check": 60, "refresh_sessions": 900, "fetch_users": 3600, "prune": 3600}


def seed_job_history(connection: Any, now: datetime) -> None:
    from sqlalchemy import func, insert, select

    from autocheckin.jobs.models import JobRun

    if connection.scalar(select(func.count()).select_from(JobRun)):
        return
    rows = []
    for job, every in JOB_HISTORY.items():
        for n in reversed(range(7 * 24 * 3600 // every)):  # oldest first, as ids grow
            started = now - timedelta(seconds=n * every)
            failed = job == "refresh_sessions" and n % 10 == 3
            rows.append(
                {
                    "job": job,
                    "trigger": "schedule",
                    "holder": "bench",
                    "status": "failed" if failed else ("partial" if n == 5 else "ok"),
                    "started_at": started,
                    "finished_at": started + timedelta(seconds=1),
                    "counts": {},
                    "error": "upstream unreachable" if failed else None,
                }
            )
    connection.execute(insert(JobRun.__table__), rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--database-url",
        help="a PostgreSQL database it may wipe, created when missing (default: temp SQLite)",
    )
    parser.add_argument("--duration", type=int, default=8, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--batch-connections", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--wrk-threads", type=int, default=2)
    parser.add_argument("--students", type=int, default=2000)
    parser.add_argument("--events", type=int, default=20, help="events per single-ingest phase")
    parser.add_argument("--batch-events", type=int, default=150)
    parser.add_argument("--attendances", type=int, default=100_000, help="stored for `state`")
    parser.add_argument("--phases", default=",".join(PHASES), help="comma-separated subset")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    parser.add_argument(
        "--outbound-subscriber",
        action="store_true",
        help="subscribe a local receiver to attendance.marked (deliveries run during the phases)",
    )
    parser.add_argument(
        "--outbound-worker",
        action="store_true",
        help="with --outbound-subscriber: deliver from `nice python -m autocheckin.outbound`, "
        "not from the web workers",
    )
    args = parser.parse_args()
    phases = [phase.strip() for phase in args.phases.split(",") if phase.strip()]
    unknown = set(phases) - set(PHASES)
    if unknown:
        parser.error(f"unknown phases: {', '.join(sorted(unknown))}")

    wrk = ensure_wrk()
    workdir = Path(tempfile.mkdtemp(prefix="autocheckin-bench-"))
    database_url = args.database_url or f"sqlite:///{workdir / 'bench.db'}"
    if args.database_url and not wipe_database(database_url):
        return
    students = student_ids(args.students)
    events = {phase: event_names(phase, args.events) for phase in ("onetap", "legacy", "secure")}
    events["batch"] = event_names("batch", args.batch_events)
    state_events = event_names("state", -(-args.attendances // args.students))
    print(
        f"database {database_url.split('@')[-1]}; gunicorn workers "
        f"{os.environ.get('WEB_CONCURRENCY', 'default')} threads "
        f"{os.environ.get('GUNICORN_THREADS', 'default')}; wrk {args.wrk_threads} threads, "
        f"{args.duration} s a run",
        flush=True,
    )

    rows = []
    with ExitStack() as stack:
        bare_port, app_port = free_port(), free_port()
        bare = stack.enter_context(
            serving(
                [str(BIN / "gunicorn"), "bench.bare_app:app", "-c", "gunicorn.conf.py"],
                server_env(bare_port),
                "/api/v1/state",
                workdir / "bare.log",
            )
        )
        app_env = server_env(
            app_port,
            DATABASE_URL=database_url,
            WEBHOOK_SECRET=SECRET,
            CHECKOUT_API_KEY=API_KEY,
            OUTBOUND_WEBHOOKS_ALLOW_PRIVATE="true",  # the receiver is on 127.0.0.1
            **({"OUTBOUND_SENDER_ENABLED": "false"} if args.outbound_worker else {}),
        )
        ours = stack.enter_context(
            serving(["bash", "-c", procfile_web_command()], app_env, "/health", workdir / "app.log")
        )
        started = time.perf_counter()
        seed(ours, students, [name for names in events.values() for name in names] + state_events)
        print(
            f"seeded {len(students)} students and {sum(map(len, events.values()))} events "
            f"through the webhook in {time.perf_counter() - started:.1f} s",
            flush=True,
        )
        if args.outbound_subscriber:
            receiver_port = free_port()
            receiver = stack.enter_context(
                serving(
                    [str(BIN / "gunicorn"), "bench.bare_app:app", "-c", "gunicorn.conf.py"],
                    server_env(receiver_port, WEB_CONCURRENCY="1"),
                    "/api/v1/state",
                    workdir / "receiver.log",
                )
            )
            subscribe_receiver(ours, receiver)
            print(f"subscribed {receiver} to attendance.marked", flush=True)
        if args.outbound_worker:
            worker_env = {**app_env, "OUTBOUND_SENDER_ENABLED": "true"}
            command = ["nice", "-n", "10", str(BIN / "python"), "-m", "autocheckin.outbound"]
            stack.enter_context(background(command, worker_env, workdir / "worker.log"))
            print("delivering from a separate, niced `python -m autocheckin.outbound`", flush=True)

        for phase in ("onetap", "legacy", "secure"):
            if phase not in phases:
                continue
            requests_file = workdir / f"{phase}.requests"
            bodies = checkin_bodies(phase, students, events[phase])
            write_requests(requests_file, "POST", PATHS[phase], bodies, sign)
            bare_result = run_wrk(wrk, bare, requests_file, args, args.connections)
            our_result = run_wrk(wrk, ours, requests_file, args, args.connections)
            rows.append(report(phase, "req/s", bare_result, our_result))
            if args.outbound_subscriber:
                wait_for_deliveries(database_url)  # the next bare run must not share the CPU

        if "batch" in phases:
            requests_file = workdir / "batch.requests"
            bodies = batch_bodies(students, events["batch"], args.batch_size)
            write_requests(requests_file, "POST", PATHS["batch"], bodies, sign)
            bare_result = run_wrk(wrk, bare, requests_file, args, args.batch_connections)
            our_result = run_wrk(wrk, ours, requests_file, args, args.batch_connections)
            rows.append(report("batch", "check-ins/s", bare_result, our_result, args.batch_size))
            if args.outbound_subscriber:
                wait_for_deliveries(database_url)

        if "state" in phases or "state304" in phases:
            stored = top_up_attendances(database_url, args.attendances, state_events)
            roster = fill_roster(database_url)
            label = f"{stored // 1000}k attendances, {roster:,} on the roster"
        if "state" in phases:
            requests_file = workdir / "state.requests"
            # The same GET for every wrk thread: a thread given no line sends nothing at all.
            write_requests(
                requests_file,
                "GET",
                "/api/v1/state",
                [b""] * args.wrk_threads,
                lambda _: {"x-checkout-key": API_KEY},
            )
            bare_result = run_wrk(wrk, bare, requests_file, args, args.connections)
            our_result = run_wrk(wrk, ours, requests_file, args, args.connections)
            rows.append(report(f"state ({label})", "req/s", bare_result, our_result))
        if "state304" in phases:
            etag = requests.get(
                f"{ours}/api/v1/state", headers={"x-checkout-key": API_KEY}, timeout=30
            ).headers["ETag"]
            requests_file = workdir / "state304.requests"
            write_requests(
                requests_file,
                "GET",
                "/api/v1/state",
                [b""] * args.wrk_threads,
                lambda _: {"x-checkout-key": API_KEY, "If-None-Match": etag},
            )
            bare_result = run_wrk(wrk, bare, requests_file, args, args.connections)
            our_result = run_wrk(wrk, ours, requests_file, args, args.connections)
            rows.append(report(f"state 304 ({label})", "req/s", bare_result, our_result))

    print(f"attendances stored at the end: {stored_attendances(database_url):,}")
    if args.json:
        backend = "postgresql" if database_url.startswith("postgres") else "sqlite"
        args.json.write_text(json.dumps([{**row, "database": backend} for row in rows], indent=2))
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
