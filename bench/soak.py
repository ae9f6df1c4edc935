"""A mixed soak: check-ins, state polls, the dashboard and the Moodle export against the
Procfile's web command for --minutes (30 by default), recording each gunicorn worker's RSS
against the rows stored, so memory that grows without the data shows.

    .venv/bin/python bench/soak.py [--minutes 30] [--database-url postgresql://…/scratch]

The mix runs at a steady, bounded rate (it is a soak, not a load test): single check-ins
through the signed legacy webhook, `/api/v1/state` polls with and without `If-None-Match`,
a signed-in admin reading the dashboard and an event page, and the Moodle CSV of one event.
Every --sample seconds it reads each worker's VmRSS from /proc and the attendances and
history entries stored. At the end it prints the samples and, per worker, the growth in MB
per 1,000 check-ins in the first and second halves: a worker whose memory follows the data
grows alike in both; one that leaks keeps growing when the data does not explain it. A
final read-only stretch (--read-only-minutes, polls and pages, no check-ins) shows whether
memory stays flat when nothing is added. Servers listen on 127.0.0.1 only and are stopped
on exit.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.ingest import (  # noqa: E402
    API_KEY,
    PATHS,
    SECRET,
    dumps,
    free_port,
    procfile_web_command,
    seed,
    server_env,
    serving,
    sign,
    student_ids,
    wipe_database,
)

ADMIN_EMAIL, ADMIN_PASSWORD = "soak-admin@bench.test", "soak admin passphrase 0123456789"
SECRET_KEY = "soak-secret-key-" + "0" * 32


def worker_rss_mb(master_pid: int) -> dict[int, float]:
    """VmRSS of each child of the gunicorn master, in MB, by pid."""
    found = {}
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(
                line.split(":", 1) for line in status.read_text().splitlines() if ":" in line
            )
        except OSError:
            continue
        if fields.get("PPid", "").strip() == str(master_pid) and "VmRSS" in fields:
            found[int(status.parent.name)] = int(fields["VmRSS"].split()[0]) / 1024
    return found


def stored(database_url: str) -> tuple[int, int]:
    from sqlalchemy import create_engine, text

    from autocheckin.config import database_uri

    engine = create_engine(database_uri({"DATABASE_URL": database_url}, ""))
    try:
        with engine.connect() as connection:
            return (
                connection.execute(text("SELECT count(*) FROM attendances")).scalar_one(),
                connection.execute(text("SELECT count(*) FROM attendance_history")).scalar_one(),
            )
    finally:
        engine.dispose()


def create_admin(database_url: str) -> None:
    from autocheckin import create_app
    from autocheckin.auth import accounts

    app = create_app({"DATABASE_URL": database_url, "SCHEDULER_ENABLED": "false"})
    with app.app_context():
        accounts.register_user(email=ADMIN_EMAIL, name="Soak", password=ADMIN_PASSWORD)
        accounts.set_web_role(email=ADMIN_EMAIL, role="admin")


class Mix:
    """The traffic, each kind on its own thread at its own pace, until `stop` is set."""

    def __init__(self, base: str, students: list[str], events: list[str]):
        self.base, self.students, self.events = base, students, events
        self.stop = threading.Event()
        self.check_ins_on = threading.Event()
        self.check_ins_on.set()
        self.counts = {"check_in": 0, "state": 0, "dashboard": 0, "export": 0, "errors": 0}
        self._lock = threading.Lock()

    def _count(self, kind: str, ok: bool) -> None:
        with self._lock:
            self.counts[kind if ok else "errors"] += 1

    def check_ins(self, every: float) -> None:
        session = requests.Session()
        pairs = ((s, e) for e in self.events for s in self.students)
        while not self.stop.wait(every):
            if not self.check_ins_on.is_set():
                continue
            student, event = next(pairs)
            body = dumps(
                {"student_identifier": student, "event_identifier": event, "source": "soak"}
            )
            answer = session.post(
                self.base + PATHS["legacy"], data=body, headers=sign(body), timeout=30
            )
            self._count("check_in", answer.status_code == 201)

    def state(self, every: float) -> None:
        session = requests.Session()
        headers = {"x-checkout-key": API_KEY}
        etag = None
        while not self.stop.wait(every):
            sent = {**headers, **({"If-None-Match": etag} if etag else {})}
            answer = session.get(self.base + "/api/v1/state", headers=sent, timeout=30)
            etag = answer.headers.get("ETag") or etag
            self._count("state", answer.status_code in (200, 304))

    def dashboard(self, every: float, event_id: int) -> None:
        session = requests.Session()
        page = session.get(self.base + "/dashboard/login", timeout=30).text
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)[1]
        session.post(
            self.base + "/dashboard/login",
            data={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "csrf_token": token},
            timeout=30,
        )
        paths = ["/dashboard/", f"/dashboard/events/{event_id}", "/dashboard/recent.json"]
        turn = 0
        while not self.stop.wait(every):
            answer = session.get(self.base + paths[turn % len(paths)], timeout=30)
            turn += 1
            self._count("dashboard", answer.status_code == 200)

    def export(self, every: float, event_id: int) -> None:
        session = requests.Session()
        headers = {"x-checkout-key": API_KEY}
        url = f"{self.base}/api/integrations/lms/moodle/export?event_id={event_id}"
        while not self.stop.wait(every):
            answer = session.get(url, headers=headers, timeout=60)
            self._count("export", answer.status_code == 200)


def growth(samples: list[dict], pid: int) -> tuple[float, float]:
    """MB per 1,000 check-ins added, in the first and the second half of the samples."""
    half = len(samples) // 2

    def slope(part: list[dict]) -> float:
        rows = part[-1]["attendances"] - part[0]["attendances"]
        mb = part[-1]["rss_mb"].get(pid, 0) - part[0]["rss_mb"].get(pid, 0)
        return mb / rows * 1000 if rows else 0.0

    return slope(samples[: half + 1]), slope(samples[half:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--read-only-minutes", type=float, default=3)
    parser.add_argument("--sample", type=float, default=30, help="seconds between samples")
    parser.add_argument("--check-ins-per-second", type=float, default=20)
    parser.add_argument("--students", type=int, default=2000)
    parser.add_argument("--events", type=int, default=40)
    parser.add_argument("--database-url", help="a PostgreSQL database it may wipe")
    parser.add_argument("--json", type=Path, help="also write the samples here")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="autocheckin-soak-"))
    database_url = args.database_url or f"sqlite:///{workdir / 'soak.db'}"
    if args.database_url and not wipe_database(database_url):
        raise SystemExit(f"no database answers at {args.database_url}")
    students = student_ids(args.students)
    events = [f"Soak {number}" for number in range(args.events)]
    samples: list[dict] = []
    with ExitStack() as stack:
        port = free_port()
        env = server_env(
            port,
            DATABASE_URL=database_url,
            WEBHOOK_SECRET=SECRET,
            CHECKOUT_API_KEY=API_KEY,
            SECRET_KEY=SECRET_KEY,
        )
        pids: dict[str, int] = {}
        base = stack.enter_context(
            serving(
                ["bash", "-c", procfile_web_command()], env, "/health", workdir / "app.log", pids
            )
        )
        seed(base, students, events)
        create_admin(database_url)
        listed = requests.get(f"{base}/events/", timeout=30).json()
        event_id = next(e["id"] for e in listed if e["title"] == events[0])
        mix = Mix(base, students, events)
        threads = [
            threading.Thread(target=mix.check_ins, args=(1 / args.check_ins_per_second,)),
            threading.Thread(target=mix.state, args=(0.5,)),
            threading.Thread(target=mix.dashboard, args=(1.0, event_id)),
            threading.Thread(target=mix.export, args=(5.0, event_id)),
        ]
        for thread in threads:
            thread.daemon = True
            thread.start()
        started = time.monotonic()
        total = (args.minutes + args.read_only_minutes) * 60
        print(
            f"soak on {database_url.split('@')[-1]} for {args.minutes} + "
            f"{args.read_only_minutes} read-only minutes",
            flush=True,
        )
        try:
            while True:
                elapsed = time.monotonic() - started
                if elapsed >= args.minutes * 60 and mix.check_ins_on.is_set():
                    mix.check_ins_on.clear()
                attendances, entries = stored(database_url)
                sample = {
                    "seconds": round(elapsed),
                    "phase": "mixed" if mix.check_ins_on.is_set() else "read-only",
                    "attendances": attendances,
                    "history": entries,
                    "rss_mb": worker_rss_mb(pids["server"]),
                    **mix.counts,
                }
                samples.append(sample)
                rss = ", ".join(f"{mb:.0f}" for _, mb in sorted(sample["rss_mb"].items()))
                print(
                    f"{sample['seconds']:>5} s  {sample['phase']:<9} attendances "
                    f"{attendances:>7,}  workers {rss} MB  requests {mix.counts}",
                    flush=True,
                )
                if elapsed >= total:
                    break
                time.sleep(min(args.sample, max(0.0, total - elapsed)))
        finally:
            mix.stop.set()
            for thread in threads:
                thread.join(timeout=60)
    mixed = [s for s in samples if s["phase"] == "mixed"]
    read_only = [s for s in samples if s["phase"] == "read-only"] or samples[-1:]
    print("\nper worker: MB per 1,000 check-ins (first half, second half); read-only drift")
    for pid in sorted(mixed[0]["rss_mb"]) if mixed else []:
        first, second = growth(mixed, pid)
        drift = read_only[-1]["rss_mb"].get(pid, 0) - mixed[-1]["rss_mb"].get(pid, 0)
        start_mb, end_mb = mixed[0]["rss_mb"].get(pid, 0), mixed[-1]["rss_mb"].get(pid, 0)
        print(
            f"  worker {pid}: {start_mb:.0f} → {end_mb:.0f} MB over "
            f"{mixed[-1]['attendances'] - mixed[0]['attendances']:,} check-ins; "
            f"{first:.2f} / {second:.2f} MB per 1,000; read-only {drift:+.1f} MB"
        )
    if args.json:
        args.json.write_text(
            json.dumps(
                [{**s, "rss_mb": {str(k): v for k, v in s["rss_mb"].items()}} for s in samples],
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
