"""Delivering: one HTTP attempt (`attempt`), and the sender that runs them (`Sender`).

Each process that sends runs one dispatcher thread and a bounded pool of
OUTBOUND_CONCURRENCY threads. The dispatcher alone talks to the database — one
transaction records finished attempts, renews the claims it holds, fans the outbox out
and claims due deliveries, a few per worker ahead — and hands claims to the pool; a
subscription never runs on more than half the pool nor holds more than half the claims,
so a slow receiver delays only its own deliveries. It is woken right after a commit that
announced something in this process and after each finished attempt (then gathers for
GATHER_SECONDS, so a burst costs one transaction), and otherwise polls every
OUTBOUND_POLL_INTERVAL (a read first, so an idle poll takes no write lock).
"""

from __future__ import annotations

import atexit
import email.utils
import heapq
import logging
import queue
import socket
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import requests
from flask import Flask
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import HTTPError as Urllib3Error

from autocheckin.attendance.errors import Invalid
from autocheckin.database import UNAVAILABLE_ERRORS, outage_summary
from autocheckin.extensions import db
from autocheckin.outbound import dispatch, outbox, ssrf
from autocheckin.outbound.dispatch import FAILURE, GONE, SUCCESS, AttemptResult, Backoff, Claimed
from autocheckin.outbound.signing import signed_headers
from autocheckin.processes import process_identity
from autocheckin.times import utcnow

log = logging.getLogger("autocheckin.outbound")

PREVIEW_BYTES = 1024
PRUNE_EVERY = 3600.0
GATHER_SECONDS = 0.02
# How long a stopping sender waits for its attempts under way, unless told (gunicorn's
# default graceful timeout is 30 s; ours, GUNICORN_GRACEFUL_TIMEOUT, 20 s).
DRAIN_SECONDS = 15.0


# --- one attempt --------------------------------------------------------------------------------


class AttemptDeadline:
    """The whole attempt's bound: `requests`' read timeout is per read, so a receiver that
    drips a byte a little more often than that would hold a sender thread for as long as it
    likes. At the deadline the socket is shut down, which ends whatever read or write is
    blocked on it (connecting is bounded by the connect timeout already)."""

    def __init__(self, seconds: float):
        self.ends_at = time.monotonic() + seconds
        self.is_expired = False
        self.is_over = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    def __enter__(self) -> AttemptDeadline:
        _watched.deadline = self
        _WATCHDOG.watch(self)
        return self

    def __exit__(self, *_exc: object) -> None:
        with self._lock:
            self.is_over = True
        _watched.deadline = None

    def watch(self, sock: socket.socket | None) -> None:
        if sock is None:
            return
        with self._lock:
            self._sockets.append(sock)
            is_expired = self.is_expired
        if is_expired:
            _shut(sock)

    def expire(self) -> None:
        with self._lock:
            if self.is_over:
                return
            self.is_expired = True
            sockets = list(self._sockets)
        for sock in sockets:
            _shut(sock)


class _Watchdog:
    """One thread per process ends the attempts whose deadline passed (a timer thread per
    attempt cost a fifth of the throughput of 1,000 deliveries)."""

    def __init__(self) -> None:
        self._due: list[tuple[float, int, AttemptDeadline]] = []
        self._count = 0
        self._condition = threading.Condition()
        self._thread: threading.Thread | None = None

    def watch(self, deadline: AttemptDeadline) -> None:
        with self._condition:
            self._count += 1
            heapq.heappush(self._due, (deadline.ends_at, self._count, deadline))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="outbound-deadlines", daemon=True
                )
                self._thread.start()
            self._condition.notify()

    def _run(self) -> None:
        while True:
            with self._condition:
                while self._due and self._due[0][2].is_over:
                    heapq.heappop(self._due)
                if not self._due:
                    self._condition.wait()
                    continue
                wait = self._due[0][0] - time.monotonic()
                if wait > 0:
                    self._condition.wait(wait)
                    continue
                _ends_at, _count, deadline = heapq.heappop(self._due)
            deadline.expire()


_WATCHDOG = _Watchdog()


def _shut(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # closed already


_watched = threading.local()  # the attempt this thread is making: its AttemptDeadline


class _Watched:
    """A connection that hands its socket to the attempt's deadline: a new one as it is
    made, a kept-alive one as a request starts on it."""

    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()  # type: ignore[misc]
        _watch(sock)
        return sock

    def request(self, *args: Any, **kwargs: Any) -> None:
        _watch(self.sock)  # type: ignore[attr-defined]
        super().request(*args, **kwargs)  # type: ignore[misc]


def _watch(sock: socket.socket | None) -> None:
    deadline = getattr(_watched, "deadline", None)
    if deadline is not None:
        deadline.watch(sock)


class _WatchedHTTPConnection(_Watched, HTTPConnection):
    pass


class _WatchedHTTPSConnection(_Watched, HTTPSConnection):
    pass


class _WatchedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


class PinnedAdapter(HTTPAdapter):
    """Connects to the address `ssrf.destination` checked, never to a fresh DNS answer.

    TLS still names and verifies the URL's host (SNI and certificate), and the Host header
    carries it, so the receiver sees an ordinary request for its name.
    """

    def build_connection_pool_key_attributes(
        self, request: requests.PreparedRequest, verify: Any, cert: Any = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(
            request, verify, cert
        )
        pinned = getattr(request, "pinned_address", None)
        if pinned is None:
            raise ValueError("no checked address to connect to")
        if host_params["scheme"] == "https":
            pool_kwargs["server_hostname"] = host_params["host"]
            pool_kwargs["assert_hostname"] = host_params["host"]
        host_params["host"] = pinned
        return host_params, pool_kwargs

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        # urllib3's documented hook for the pool (and so connection) classes of a scheme.
        self.poolmanager.pool_classes_by_scheme = {
            "http": _WatchedHTTPPool,
            "https": _WatchedHTTPSPool,
        }


def http_session(pool_size: int) -> requests.Session:
    """No proxies from the environment, no retries of its own: every attempt is ours."""
    session = requests.Session()
    session.trust_env = False
    adapter = PinnedAdapter(pool_connections=pool_size, pool_maxsize=pool_size, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """Retry-After as seconds or an HTTP date; None when absent or unreadable."""
    if not value or not value.strip():
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(int(value))
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - now).total_seconds())


def _host_header(target: ssrf.Destination) -> str:
    host = f"[{target.host}]" if ":" in target.host else target.host
    is_default_port = target.port == ssrf.SCHEMES[target.scheme]
    return host if is_default_port else f"{host}:{target.port}"


def attempt(claimed: Claimed, *, http: requests.Session, allow_private: bool) -> AttemptResult:
    """POST the delivery once, signed, to the checked address; never raises."""
    started_at = utcnow()
    started = time.perf_counter()

    def result(outcome: str, **fields: Any) -> AttemptResult:
        return AttemptResult(
            delivery_id=claimed.delivery_id,
            subscription_id=claimed.subscription_id,
            attempt=claimed.attempt,
            max_attempts=claimed.max_attempts,
            started_at=started_at,
            duration_ms=round((time.perf_counter() - started) * 1000, 2),
            outcome=outcome,
            **fields,
        )

    try:
        target = ssrf.destination(claimed.url, allow_private=allow_private)
    except (Invalid, ssrf.RefusedDestination) as error:
        return result(FAILURE, error=error.message)
    body = claimed.body.encode("utf-8")
    headers = {
        **claimed.headers,
        **signed_headers(
            body=body,
            secret=claimed.secret,
            message_id=claimed.message_id,
            event_type=claimed.event_type,
            timestamp=int(started_at.timestamp()),
        ),
        "Host": _host_header(target),
    }
    prepared = requests.Request("POST", claimed.url, data=body, headers=headers).prepare()
    prepared.pinned_address = target.address  # type: ignore[attr-defined]
    timeout = claimed.timeout_seconds
    timed_out = f"timed out after {timeout:g} s"
    with AttemptDeadline(timeout) as deadline:
        try:
            response = http.send(
                prepared,
                allow_redirects=False,
                timeout=(timeout, timeout),
                stream=True,
                verify=True,
            )
        except requests.Timeout:
            return result(FAILURE, error=timed_out)
        except (requests.RequestException, Urllib3Error, OSError, ValueError) as error:
            if deadline.is_expired:
                return result(FAILURE, error=timed_out)
            return result(FAILURE, error=f"{type(error).__name__}: {error}"[:500])
        preview, is_read_whole, is_cut_short = b"", False, False
        try:
            preview = response.raw.read(PREVIEW_BYTES + 1, decode_content=True) or b""
            is_read_whole = len(preview) <= PREVIEW_BYTES
        except (requests.RequestException, Urllib3Error, OSError):
            is_cut_short = True
    # The deadline is over now (it shuts no socket any more): only now may a connection go
    # back to the pool, and only one the deadline never touched.
    if is_read_whole and not deadline.is_expired:
        response.raw.release_conn()  # read to the end: the connection can be reused
    else:
        response.close()
    if is_cut_short and deadline.is_expired:
        return result(FAILURE, error=timed_out)
    status = response.status_code
    fields: dict[str, Any] = {
        "status_code": status,
        "response_body": preview[:PREVIEW_BYTES].decode("utf-8", errors="replace"),
    }
    if 200 <= status < 300:
        return result(SUCCESS, **fields)
    if status == 410:
        return result(GONE, error="410 Gone: the subscription is disabled", **fields)
    if 300 <= status < 400:
        where = response.headers.get("Location", "")
        return result(FAILURE, error=f"redirect {status} to {where[:200]!r} not followed", **fields)
    retry_after = None
    if status in (429, 503):
        retry_after = retry_after_seconds(response.headers.get("Retry-After"), utcnow())
    return result(FAILURE, error=f"HTTP {status}", retry_after=retry_after, **fields)


# --- the sender ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class SenderSettings:
    concurrency: int
    poll_interval: float
    allow_private: bool
    backoff: Backoff
    retention: timedelta
    lease_seconds: float

    @classmethod
    def from_config(cls, config: Any) -> SenderSettings:
        return cls(
            concurrency=config["OUTBOUND_CONCURRENCY"],
            poll_interval=config["OUTBOUND_POLL_INTERVAL"],
            allow_private=config["OUTBOUND_WEBHOOKS_ALLOW_PRIVATE"],
            backoff=Backoff(
                schedule=tuple(config["OUTBOUND_RETRY_SCHEDULE"]),
                disable_after=config["OUTBOUND_DISABLE_AFTER"],
            ),
            lease_seconds=config["OUTBOUND_CLAIM_LEASE"],
            retention=timedelta(days=config["OUTBOUND_RETENTION_DAYS"]),
        )


class Sender:
    """One process's dispatcher thread and worker pool."""

    def __init__(self, app: Flask, *, holder: str | None = None, clock=utcnow):
        self.app = app
        self.settings = SenderSettings.from_config(app.config)
        self.holder = holder or f"{process_identity()}:outbound"
        self.clock = clock
        self.per_subscription = max(1, self.settings.concurrency // 2)
        if self.settings.lease_seconds < 3 * self.settings.poll_interval:
            log.warning(
                "outbound: OUTBOUND_CLAIM_LEASE (%g s) is under three OUTBOUND_POLL_INTERVALs "
                "(%g s): a claim may lapse while its attempt runs, and the delivery go twice",
                self.settings.lease_seconds,
                self.settings.poll_interval,
            )
        self._wake = threading.Event()
        self._draining = threading.Event()  # `stop` began: claim nothing more
        self._stopping = threading.Event()  # the dispatcher ends now
        self._results: queue.SimpleQueue[AttemptResult] = queue.SimpleQueue()
        # Claims are taken a few per worker ahead, so workers never wait for the dispatcher;
        # one subscription may hold at most half of them.
        self.buffer = 8 * self.settings.concurrency
        self._held: dict[int, int] = {}  # claimed and not finished: delivery → subscription
        self._running: dict[int, int] = {}  # attempts under way, by subscription
        self._waiting: dict[int, deque[Claimed]] = {}  # claimed, waiting for a slot
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(self.settings.concurrency, thread_name_prefix="outbound")
        self._http = http_session(self.settings.concurrency)
        self._thread: threading.Thread | None = None
        self._forget_wake = None
        self._pruned_at = float("-inf")
        self._was_unavailable = False

    def start(self) -> Sender:
        self._forget_wake = outbox.on_commit_wake(self.notify)
        self._thread = threading.Thread(target=self.run, name="outbound-dispatcher", daemon=True)
        self._thread.start()
        return self

    def notify(self) -> None:
        self._wake.set()

    def run(self) -> None:
        """The dispatcher loop, until `stop`; a database outage is one log line a cycle.
        While draining it claims nothing, and ends once every attempt it holds is recorded."""
        is_woken = True
        while not self._stopping.is_set():
            if self._draining.is_set() and self._is_idle():
                return
            with self.app.app_context():
                try:
                    self.cycle(is_woken=is_woken)
                    self._was_unavailable = False
                except UNAVAILABLE_ERRORS as error:
                    if not self._was_unavailable:
                        log.error("outbound: database unavailable: %s", outage_summary(error))
                    self._was_unavailable = True
                except Exception:  # noqa: BLE001 - the sender must outlive any one bad cycle
                    log.exception("outbound: dispatcher cycle failed")
                finally:
                    db.session.remove()
            if self._draining.is_set() and self._is_idle():
                return
            is_woken = self._wake.wait(self.settings.poll_interval)
            if is_woken:
                # Let a burst of commits and finished attempts gather: one transaction then
                # serves them all, instead of one each competing with ingest for the lock.
                self._stopping.wait(GATHER_SECONDS)
            self._wake.clear()

    def cycle(self, *, is_woken: bool) -> None:
        """Record what finished, renew what is held, fan out, claim what fits; again while
        there is more. An idle poll with nothing held is one read."""
        self._prune_now_and_then()
        if not (is_woken or self._held or not self._results.empty()):
            if not dispatch.has_work(now=self.clock()):
                return
        while not self._stopping.is_set():
            results = self._drain()
            with self._lock:
                held = dict(self._held)
            by_subscription = Counter(held.values())
            free = 0 if self._draining.is_set() else max(0, self.buffer - len(held))
            busy = {sid for sid, n in by_subscription.items() if n >= self.buffer // 2}
            try:
                exchanged = dispatch.exchange(
                    results,
                    holder=self.holder,
                    claim_limit=free,
                    busy_subscriptions=busy,
                    backoff=self.settings.backoff,
                    now=self.clock(),
                    renew=list(held),
                    lease_seconds=self.settings.lease_seconds,
                )
            except Exception:
                for result in results:  # recorded by the next cycle that reaches the database
                    self._results.put(result)
                raise
            for subscription_id in exchanged.disabled:
                log.warning("outbound: subscription %s disabled", subscription_id)
            self._start_attempts(exchanged.claimed)
            is_more_due = free > 0 and len(exchanged.claimed) == free
            if not (is_more_due or exchanged.fanned_out):
                return

    def _is_idle(self) -> bool:
        with self._lock:
            return not self._held and self._results.empty()

    def _drain(self) -> list[AttemptResult]:
        results = []
        while True:
            try:
                results.append(self._results.get_nowait())
            except queue.Empty:
                return results

    def _start_attempts(self, claimed: list[Claimed]) -> None:
        """Hand claims to the pool, at most `per_subscription` running each; the rest wait
        here, still claimed, for their subscription's next free slot."""
        for delivery in claimed:
            subscription_id = delivery.subscription_id
            with self._lock:
                self._held[delivery.delivery_id] = subscription_id
                running = self._running.get(subscription_id, 0)
                if running >= self.per_subscription:
                    self._waiting.setdefault(subscription_id, deque()).append(delivery)
                    continue
                self._running[subscription_id] = running + 1
            self._pool.submit(self._attempt, delivery)

    def _attempt(self, claimed: Claimed) -> None:
        try:
            result = attempt(claimed, http=self._http, allow_private=self.settings.allow_private)
        except Exception as error:  # noqa: BLE001 - a bug here must still end the claim
            log.exception("outbound: attempt at delivery %s failed", claimed.delivery_id)
            result = AttemptResult(
                delivery_id=claimed.delivery_id,
                subscription_id=claimed.subscription_id,
                attempt=claimed.attempt,
                max_attempts=claimed.max_attempts,
                started_at=utcnow(),
                duration_ms=0.0,
                outcome=FAILURE,
                error=f"internal error: {type(error).__name__}",
            )
        subscription_id = claimed.subscription_id
        with self._lock:
            self._held.pop(claimed.delivery_id, None)
            waiting = self._waiting.get(subscription_id)
            following = waiting.popleft() if waiting else None
            if waiting is not None and not waiting:
                del self._waiting[subscription_id]
            if following is None:
                left = self._running.get(subscription_id, 1) - 1
                if left > 0:
                    self._running[subscription_id] = left
                else:
                    self._running.pop(subscription_id, None)
        if following is not None:
            self._pool.submit(self._attempt, following)
        self._results.put(result)
        self._wake.set()

    def _prune_now_and_then(self) -> None:
        if time.monotonic() - self._pruned_at < PRUNE_EVERY:
            return
        self._pruned_at = time.monotonic()
        removed = dispatch.prune(retention=self.settings.retention, now=self.clock())
        if removed:
            log.info("outbound: pruned %s finished deliveries", removed)

    def stop(self, *, timeout: float = DRAIN_SECONDS) -> None:
        """Claim nothing more, give back the claims not started, and wait up to `timeout`
        for the attempts under way, recording each as it ends (the dispatcher keeps renewing
        their claims meanwhile). An attempt still running after that is abandoned: its claim
        expires within OUTBOUND_CLAIM_LEASE and the delivery goes again, same webhook-id."""
        if self._draining.is_set():
            return
        deadline = time.monotonic() + timeout
        self._draining.set()
        if self._forget_wake is not None:
            self._forget_wake()
        with self._lock:
            unstarted = [d.delivery_id for queued in self._waiting.values() for d in queued]
            self._waiting.clear()
            for delivery_id in unstarted:
                self._held.pop(delivery_id, None)
        if unstarted:
            self._in_app(lambda: dispatch.release(unstarted, holder=self.holder), "release")
        self._wake.set()
        if self._thread is not None:
            self._thread.join(max(0.0, deadline - time.monotonic()))
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(1.0)
        self._pool.shutdown(wait=False, cancel_futures=True)
        results = self._drain()
        if results:
            self._in_app(
                lambda: dispatch.exchange(
                    results,
                    holder=self.holder,
                    claim_limit=0,
                    busy_subscriptions=set(),
                    backoff=self.settings.backoff,
                    now=self.clock(),
                ),
                f"record {len(results)} attempts",
            )
        with self._lock:
            abandoned = len(self._held)
        if abandoned:
            log.warning(
                "outbound: stopped with %s attempts still running; their claims expire "
                "within %g s and they go again",
                abandoned,
                self.settings.lease_seconds,
            )
        self._http.close()

    def _in_app(self, work: Callable[[], Any], what: str) -> None:
        with self.app.app_context():
            try:
                work()
            except Exception:  # noqa: BLE001 - best effort at exit; claims expire anyway
                log.warning("outbound: could not %s at exit", what)
            finally:
                db.session.remove()


class _Process:
    lock = threading.Lock()
    sender: Sender | None = None


def start_sender(app: Flask) -> Sender | None:
    """This process's sender, started once, when OUTBOUND_SENDER_ENABLED."""
    if not app.config["OUTBOUND_SENDER_ENABLED"]:
        log.info("outbound sender disabled (OUTBOUND_SENDER_ENABLED=false)")
        return None
    with _Process.lock:
        if _Process.sender is None:
            _Process.sender = Sender(app).start()
            atexit.register(stop_sender)
            log.info("outbound sender started as %s", _Process.sender.holder)
        return _Process.sender


def stop_sender(timeout: float = DRAIN_SECONDS) -> None:
    """Stop this process's sender, waiting up to `timeout` for the attempts under way
    (gunicorn.conf.py's worker_exit gives it what is left of the graceful timeout)."""
    with _Process.lock:
        sender, _Process.sender = _Process.sender, None
    if sender is not None:
        sender.stop(timeout=timeout)
