"""Refresh N users against the fake CheckOut with latency L at concurrency C.

Prints the wall time of `refresh_all` and its ratio to the ideal N·L/C (every upstream
call overlapped perfectly, zero local work). In the same invocation it also times a
baseline: the same N `GET /sessions` calls through the same kind of client and thread
pool with no database work, the floor this machine reaches. The fake upstream runs in
its own process so that it does not share the GIL with the code under test.

    .venv/bin/python bench/refresh.py --users 5000 --latency 0.02 --concurrency 16
    .venv/bin/python bench/refresh.py --database-url postgresql://postgres@127.0.0.1:5432/bench
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from autocheckin import create_app  # noqa: E402
from autocheckin.extensions import db  # noqa: E402
from autocheckin.sync import connection, sessions, users  # noqa: E402
from autocheckin.sync.client import CheckOutClient, CheckOutSettings  # noqa: E402

KEY = "bench-key"


def start_upstream(users: int, sessions: int, latency: float) -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.fake_checkout", str(users), str(sessions), str(latency), KEY],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    url = process.stdout.readline().strip()
    return process, url


def upstream_calls(client: CheckOutClient) -> int:
    return sum(client._call("GET", "/_calls")["calls"].values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=5000)
    parser.add_argument("--latency", type=float, default=0.02, help="seconds per upstream call")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--sessions", type=int, default=200, help="distinct upstream sessions")
    parser.add_argument("--database-url", help="an empty database (default: a temp SQLite file)")
    parser.add_argument("--json", type=Path, help="also write the rows here (bench/summary.py)")
    args = parser.parse_args()

    workdir = tempfile.TemporaryDirectory()
    database_url = args.database_url or f"sqlite:///{workdir.name}/bench.db"
    upstream, url = start_upstream(args.users, args.sessions, args.latency)
    try:
        app = create_app(
            {
                "DATABASE_URL": database_url,
                "CHECKOUT_API_URL": url,
                "CHECKOUT_API_KEY": KEY,
                "REFRESH_CONCURRENCY": str(args.concurrency),
                "SCHEDULER_ENABLED": "false",
            }
        )
        bare = CheckOutClient(
            CheckOutSettings(base_url=url, api_key=KEY, pool_size=args.concurrency)
        )
        with app.app_context():
            db.drop_all()
            db.create_all()
            client = connection.client_for(app)
            users.fetch_users(client)
            emails = [email for _, email, _ in users.roster()]

            started = time.perf_counter()
            with ThreadPoolExecutor(args.concurrency) as pool:
                list(pool.map(bare.sessions, emails))
            baseline = time.perf_counter() - started

            runs = []
            for label in ("first refresh (+ POST /log)", "steady refresh"):
                calls = upstream_calls(bare)
                started = time.perf_counter()
                result = sessions.refresh_all(app, client, concurrency=args.concurrency)
                seconds = time.perf_counter() - started
                runs.append((label, seconds, upstream_calls(bare) - calls - 1, result.counts))
            db.drop_all()
            db.engine.dispose()
    finally:
        upstream.terminate()
        upstream.wait()

    ideal = args.users * args.latency / args.concurrency
    backend = "postgresql" if database_url.startswith("postgres") else "sqlite"
    print(f"refresh N={args.users} L={args.latency * 1000:.0f}ms C={args.concurrency} on {backend}")
    print(f"  ideal N*L/C                  {ideal:6.2f} s")
    print(f"  baseline: bare GET /sessions {baseline:6.2f} s  ({baseline / ideal:.2f}x ideal)")
    for label, seconds, calls, counts in runs:
        print(
            f"  {label:<28} {seconds:6.2f} s  ({seconds / ideal:.2f}x ideal, "
            f"{seconds / baseline:.2f}x baseline; {calls} upstream calls; {counts})"
        )
    if args.json:
        rows = [
            {"bench": "refresh", "database": backend, "phase": label, "unit": "s",
             "seconds": round(seconds, 2), "ideal": round(ideal, 2),
             "ratio": round(ideal / seconds, 3)}
            for label, seconds, _, _ in runs
        ]  # fmt: skip
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
