"""A webhook receiver on 127.0.0.1 for the outbound tests: records every request, answers
as told (status, headers, body, a delay), and waits for conditions with a deadline."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float  # time.monotonic() when it arrived


@dataclass
class Answer:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b'{"ok": true}'
    delay: float = 0.0


class Receiver:
    """`answer(received) -> Answer` decides each response; the default is 200. `port`: a
    fixed one, to come back on after an outage."""

    def __init__(self, answer: Callable[[Received], Answer] | None = None, *, port: int = 0):
        self.answer = answer or (lambda _received: Answer())
        self.received: list[Received] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                length = int(self.headers.get("Content-Length") or 0)
                got = Received(
                    path=self.path,
                    headers={name.lower(): value for name, value in self.headers.items()},
                    body=self.rfile.read(length),
                    at=time.monotonic(),
                )
                with receiver._lock:
                    receiver.received.append(got)
                answer = receiver.answer(got)
                if answer.delay:
                    time.sleep(answer.delay)
                try:
                    self.send_response(answer.status)
                    for name, value in answer.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(answer.body)))
                    self.end_headers()
                    self.wfile.write(answer.body)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True  # the sender gave up, or died

            def log_message(self, *_args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.server.handle_error = lambda _request, _address: None  # a sender that hung up
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def start(self) -> Receiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)

    def snapshot(self) -> list[Received]:
        with self._lock:
            return list(self.received)


def wait_until(condition: Callable[[], Any], *, seconds: float = 10, what: str = "") -> Any:
    """Poll `condition` until it is truthy; fail after `seconds`. No fixed sleeps."""
    deadline = time.monotonic() + seconds
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(
                f"not within {seconds} s: {what() if callable(what) else what or condition}"
            )
        time.sleep(0.02)


class DripReceiver:
    """A receiver that reads the request, then answers one byte every `interval` seconds:
    each read the sender makes gets a byte well within any read timeout. `held` has, per
    connection, how long the sender stayed on it (until a write found it gone)."""

    ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok"

    def __init__(self, interval: float = 0.4):
        import socket

        self.interval = interval
        self.held: list[float] = []
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        self._socket.listen(16)
        self._socket.settimeout(0.05)
        self.url = f"http://127.0.0.1:{self._socket.getsockname()[1]}"
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def start(self) -> DripReceiver:
        self._thread.start()
        return self

    def _serve(self) -> None:
        while not self._stopping.is_set():
            try:
                connection, _address = self._socket.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._drip, args=(connection,), daemon=True).start()

    def _drip(self, connection: Any) -> None:
        accepted = time.monotonic()
        with connection:
            connection.settimeout(5)
            request = b""
            try:
                while b"\r\n\r\n" not in request:
                    chunk = connection.recv(65536)
                    if not chunk:
                        return
                    request += chunk
                for byte in self.ANSWER:
                    if self._stopping.wait(self.interval):
                        return
                    connection.sendall(bytes([byte]))
            except OSError:
                pass  # the sender hung up
        with self._lock:
            self.held.append(time.monotonic() - accepted)

    def stop(self) -> None:
        self._stopping.set()
        self._socket.close()
        self._thread.join(timeout=5)
