"""Real server processes for end-to-end tests: start on 127.0.0.1, wait, always stop."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_env(port: int, database_url: str, **extra: str) -> dict[str, str]:
    """The environment a deployed process would have; nothing inherited that could leak in."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(
            ("CHECKOUT_", "WEBHOOK_", "DATABASE_URL", "GUNICORN_", "WEB_", "DISCORD_", "JWT_")
        )
    }
    defaults = {
        "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        "PORT": str(port),
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "DATABASE_URL": database_url,
        "CHECKOUT_API_KEY": "live-key",
        "WEBHOOK_REQUIRE_SIGNATURE": "false",
        "DISCORD_ALLOW_KEYLESS": "true",
        "SCHEDULER_ENABLED": "false",
        "WEB_CONCURRENCY": "2",
        "GUNICORN_THREADS": "4",
        "LOG_LEVEL": "WARNING",
    }
    env.update({**defaults, **extra})
    return env


def wait_for(url: str, process: subprocess.Popen, seconds: float = 30) -> requests.Response:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited with {process.returncode}")
        try:
            return requests.get(url, timeout=2)
        except (requests.ConnectionError, requests.Timeout):
            # Not listening yet, or listening while the workers still import the app.
            time.sleep(0.1)
    raise AssertionError(f"{url} did not answer within {seconds}s")


def stop(process: subprocess.Popen) -> None:
    """SIGTERM the whole process group, SIGKILL it if it lingers."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@contextmanager
def serving(app: Any) -> Iterator[str]:
    """`app` over real HTTP on 127.0.0.1 in this process (a threaded Werkzeug server)."""
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=5)


@contextmanager
def running(
    command: list[str], env: dict[str, str], health_url: str, log: Any = None
) -> Iterator[str]:
    """Start `command` in its own process group, wait until `health_url` answers, yield.
    `log`: an open file for its output (discarded by default)."""
    output = log if log is not None else subprocess.DEVNULL
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdout=output,
        stderr=output,
        start_new_session=True,
    )
    try:
        wait_for(health_url, process)
        yield health_url
    finally:
        stop(process)


@contextmanager
def gunicorn(database_url: str, log: Any = None, **extra: str) -> Iterator[str]:
    """`gunicorn main:app -c gunicorn.conf.py` on 127.0.0.1; yields the base URL. `log`: an
    open file that gets its output (access log included)."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = server_env(port, database_url, **extra)
    command = [str(BIN / "gunicorn"), "main:app", "-c", "gunicorn.conf.py"]
    with running(command, env, f"{base}/health", log):
        yield base
