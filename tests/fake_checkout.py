"""A fake CheckOut API over real HTTP on 127.0.0.1, in a thread: the DESIGN.md contract.

Configurable users and sessions, latency, queued or permanent failure modes, and call
counters. Used by the tests and by bench/refresh.py.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter, deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

PREFIX = "/api/autocheckin"
# Failure modes: an HTTP status (int), or one of these words.
GARBLED, HANG, SUCCESS_FALSE, DROP = "garbled", "hang", "success_false", "drop"


class FakeCheckOut:
    def __init__(self, api_key: str = "upstream-key"):
        self.api_key = api_key
        self.users: list[dict[str, Any]] = []
        self.sessions: dict[str, list[dict[str, Any]]] = {}
        self.latency = 0.0
        self.hang_seconds = 5.0
        self.failures: dict[str, deque[Any]] = {}
        self.failing: dict[str, Any] = {}
        self.retry_after: str | None = None
        # A path whose calls wait here until the test sets the event (bounded, 30 s).
        self.gates: dict[str, threading.Event] = {}
        self.calls: Counter[str] = Counter()
        self.logs: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- set-up -----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}{PREFIX}"

    def fail_next(self, path: str, *modes: Any) -> None:
        """Answer the next calls to `path` ("/users", …) with these failure modes, in order."""
        self.failures.setdefault(path, deque()).extend(modes)

    def add_user(self, email: str, sessions: list[dict[str, Any]] | None = None, **fields: Any):
        self.users.append({"email": email, **fields})
        self.sessions[email] = sessions or []

    def start(self) -> FakeCheckOut:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # One segment per response, no Nagle: else delayed ACKs add ~40 ms a call.
            disable_nagle_algorithm = True
            wbufsize = 64 * 1024

            def log_message(self, *_args: Any) -> None:
                return

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                fake._handle(self, "GET")

            def do_POST(self) -> None:  # noqa: N802
                fake._handle(self, "POST")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    # --- serving ----------------------------------------------------------------------------

    def _next_failure(self, path: str) -> Any:
        with self._lock:
            queued = self.failures.get(path)
            if queued:
                return queued.popleft()
        return self.failing.get(path)

    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        parts = urlsplit(handler.path)
        path = parts.path.removeprefix(PREFIX)
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        with self._lock:
            self.calls[path] += 1
            self.headers.append({k.lower(): v for k, v in handler.headers.items()})
        gate = self.gates.get(path)
        if gate is not None:
            gate.wait(timeout=30)
        if self.latency:
            time.sleep(self.latency)
        if handler.headers.get("x-checkout-key") != self.api_key:
            return self._send(handler, 401, {"success": False, "message": "invalid key"})
        failure = self._next_failure(path)
        if failure == HANG:
            time.sleep(self.hang_seconds)
        elif failure == DROP:
            handler.close_connection = True
            handler.wfile.write(b"")
            return None
        elif failure == GARBLED:
            return self._send_raw(handler, 200, b"<html>upstream proxy error</html>")
        elif failure == SUCCESS_FALSE:
            return self._send(handler, 200, {"success": False, "message": "maintenance"})
        elif isinstance(failure, int):
            return self._send(handler, failure, {"success": False, "message": f"error {failure}"})
        query = parse_qs(parts.query)
        if method == "GET" and path == "/_calls":
            with self._lock:
                return self._send(handler, 200, {"success": True, "calls": dict(self.calls)})
        if method == "GET" and path == "/test":
            return self._send(handler, 200, {"success": True})
        if method == "GET" and path == "/users":
            return self._send(handler, 200, {"success": True, "autoCheckinUsers": self.users})
        if method == "GET" and path == "/sessions":
            email = (query.get("email") or [""])[0]
            return self._send(
                handler, 200, {"success": True, "sessions": self.sessions.get(email, [])}
            )
        if method == "POST" and path == "/log":
            with self._lock:
                self.logs.append(json.loads(raw or b"{}"))
            return self._send(handler, 200, {"success": True})
        return self._send(handler, 404, {"success": False, "message": "not found"})

    def _send(self, handler: BaseHTTPRequestHandler, status: int, body: dict) -> None:
        self._send_raw(handler, status, json.dumps(body).encode(), "application/json")

    def _send_raw(
        self,
        handler: BaseHTTPRequestHandler,
        status: int,
        body: bytes,
        content_type: str = "text/html",
    ) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(body)))
        if status == 429 and self.retry_after is not None:
            handler.send_header("Retry-After", self.retry_after)
        handler.end_headers()
        handler.wfile.write(body)


def serve_catalogue(users: int, sessions: int, latency: float, api_key: str) -> None:
    """Run a fake with `users` users (two of `sessions` shared sessions each) until killed.

    For bench/refresh.py, which runs it in its own process so that the fake's threads
    do not compete with the code under test for the GIL. Prints its URL, then serves.
    """
    from datetime import UTC, datetime, timedelta

    fake = FakeCheckOut(api_key=api_key)
    now = datetime.now(UTC).replace(microsecond=0)
    catalogue = [
        {
            "id": f"s{n}",
            "name": f"Session {n}",
            "start_time": (now + timedelta(hours=n % 48)).isoformat(),
            "end_time": (now + timedelta(hours=n % 48, minutes=50)).isoformat(),
        }
        for n in range(sessions)
    ]
    for n in range(users):
        picks = [catalogue[n % sessions], catalogue[(n * 7 + 3) % sessions]]
        fake.add_user(f"user{n}@example.com", picks, student_identifier=f"u{n:06d}")
    fake.latency = latency
    fake.start()
    print(fake.url, flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    import sys

    serve_catalogue(int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), sys.argv[4])
