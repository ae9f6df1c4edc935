"""Database plumbing shared by every domain: UTC times, SQLite tuning, PostgreSQL timeouts,
write transactions, the health probe."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import weakref
from collections.abc import Iterator, Mapping
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import UTC, datetime
from typing import Any

from flask import Flask
from sqlalchemy import JSON, Connection, DateTime, Engine, event, func, select
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session
from sqlalchemy.types import TypeDecorator

from autocheckin.extensions import db

try:
    import fcntl
except ImportError:  # not on Windows: SQLite's busy handler alone queues the writers there
    fcntl = None

logger = logging.getLogger(__name__)

_BEGIN_IMMEDIATE = "autocheckin_begin_immediate"
_UNBOUNDED = "autocheckin_unbounded_statements"
_FRESH = "autocheckin_fresh_connection"
# Ids and counters are INTEGER columns: PostgreSQL refuses anything larger.
MAX_DB_INTEGER = 2**31 - 1

# JSON everywhere, JSONB where PostgreSQL offers it.
JSONValue = JSON().with_variant(JSONB(), "postgresql")
# The same, with None stored as SQL NULL (not the JSON text `null`): nothing to serialize.
NullableJSON = JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")


def bound_time(moment: datetime, *, sqlite: bool) -> Any:
    """A time as `UTCDateTime` binds it, for a statement run on the driver's own cursor:
    UTC, and on SQLite the naive text SQLAlchemy stores (`2026-12-04 09:00:00.000000`)."""
    if moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC)
    return moment.replace(tzinfo=None).isoformat(" ", "microseconds") if sqlite else moment


class UTCDateTime(TypeDecorator):
    """Aware UTC datetimes in, aware UTC datetimes out, on SQLite (naive storage) and PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column; attach a timezone first")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def configure_sqlite(app: Flask) -> None:
    """WAL, busy timeout, foreign keys, synchronous=NORMAL; BEGIN IMMEDIATE for write transactions.

    pysqlite's own transaction handling is switched off so SQLAlchemy emits BEGIN itself:
    a write transaction then takes the write lock up front and cannot fail later with
    SQLITE_BUSY on a stale read snapshot.
    """
    with app.app_context():
        engine = db.engine
    if engine.dialect.name != "sqlite":
        return
    busy_ms = int(app.config["SQLITE_BUSY_TIMEOUT"] * 1000)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {busy_ms}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        immediate = connection.get_execution_options().get(_BEGIN_IMMEDIATE)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    database = engine.url.database
    if fcntl is not None and database and database != ":memory:" and "mode=memory" not in database:
        _WRITER_GATES[engine] = WriterGate(os.path.abspath(database) + "-writer.lock")


# --- PostgreSQL: a hung or unreachable server answers within seconds ------------------------


def engine_options(config: Mapping[str, Any]) -> dict[str, Any]:
    """SQLAlchemy engine options for the database in `config`: on PostgreSQL, libpq's
    connect timeout, TCP keepalives and user timeout, the server's statement and lock
    timeouts, and the pool's wait (settings DATABASE_*; see autocheckin/config.py)."""
    if not config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
        return {"pool_pre_ping": False}  # a SQLite file is never dropped under us
    keepalive = max(1, round(config["DATABASE_TCP_KEEPALIVE"]))
    statement_ms = round(config["DATABASE_STATEMENT_TIMEOUT"] * 1000)
    lock_ms = round(config["DATABASE_LOCK_TIMEOUT"] * 1000)
    return {
        # The checkout ping of configure_postgres replaces SQLAlchemy's, which has no deadline.
        "pool_pre_ping": False,
        "pool_timeout": config["DATABASE_POOL_TIMEOUT"],
        "connect_args": {
            "connect_timeout": config["DATABASE_CONNECT_TIMEOUT"],
            "keepalives": 1,
            "keepalives_idle": keepalive,
            "keepalives_interval": max(1, keepalive // 3),
            "keepalives_count": 3,
            "tcp_user_timeout": round(config["DATABASE_TCP_USER_TIMEOUT"] * 1000),
            "options": f"-c statement_timeout={statement_ms} -c lock_timeout={lock_ms}",
        },
    }


class StatementDeadlines:
    """A client-side deadline on each statement and checkout ping, one watcher thread a process.

    A frozen server (SIGSTOP, a stuck disk) cannot run its own statement_timeout, and while
    its kernel still acknowledges, neither keepalives nor tcp_user_timeout ever fire: psycopg
    would wait for as long as it hangs. Past the deadline the watcher shuts the connection's
    socket down; psycopg then raises OperationalError (a disconnect: the pool drops the
    connection) and the request answers 503 database_unavailable. Keyed by thread: a thread
    runs one statement at a time. The rows a server-side cursor fetches later are not timed.
    """

    TICK = 0.25  # the watcher's granularity while a deadline is armed

    def __init__(self) -> None:
        self._reset()
        os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self._condition = threading.Condition()
        self._armed: dict[int, tuple[float, Any, float]] = {}
        self._watcher: threading.Thread | None = None
        self._watcher_idle = False

    def arm(self, dbapi_connection: Any, seconds: float) -> None:
        entry = (time.monotonic() + seconds, dbapi_connection, seconds)
        with self._condition:
            self._armed[threading.get_ident()] = entry
            if self._watcher is None:
                self._watcher = threading.Thread(
                    target=self._watch, name="db-deadlines", daemon=True
                )
                self._watcher.start()
            elif self._watcher_idle:
                self._condition.notify()

    def disarm(self) -> bool:
        """End this thread's deadline; False when it had already fired."""
        with self._condition:
            return self._armed.pop(threading.get_ident(), None) is not None

    def forget(self, dbapi_connection: Any) -> None:
        """A connection back in the pool is nobody's statement any more."""
        with self._condition:
            for thread_id, (_, armed, _) in list(self._armed.items()):
                if armed is dbapi_connection:
                    del self._armed[thread_id]

    def _watch(self) -> None:
        with self._condition:
            while True:
                self._watcher_idle = not self._armed
                self._condition.wait(None if self._watcher_idle else self.TICK)
                now = time.monotonic()
                for thread_id, (deadline, dbapi_connection, seconds) in list(self._armed.items()):
                    if deadline <= now:
                        del self._armed[thread_id]
                        _shut_down(dbapi_connection, seconds)


def _shut_down(dbapi_connection: Any, seconds: float) -> None:
    try:
        descriptor = dbapi_connection.pgconn.socket
        with socket.socket(fileno=os.dup(descriptor)) as connection_socket:
            connection_socket.shutdown(socket.SHUT_RDWR)
    except Exception as error:  # noqa: BLE001 - closed meanwhile: nothing left to wake
        logger.debug("database deadline: connection already gone: %s", error)
        return
    logger.warning("database did not answer within %gs; its connection was closed", seconds)


_DEADLINES = StatementDeadlines()


def configure_postgres(app: Flask) -> None:
    """Deadlines on every statement and on the ping taking a pooled connection (see
    StatementDeadlines); a ping that finds the connection dropped gets a new one."""
    with app.app_context():
        engine = db.engine
    if engine.dialect.name != "postgresql":
        return
    statement_seconds = app.config["DATABASE_STATEMENT_TIMEOUT"] + 1
    ping_seconds = float(app.config["DATABASE_CONNECT_TIMEOUT"])
    no_answer = engine.dialect.loaded_dbapi.OperationalError

    @event.listens_for(engine, "connect")
    def _fresh(_dbapi_connection: Any, record: Any) -> None:
        record.info[_FRESH] = True

    @event.listens_for(engine, "checkout")
    def _ping(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        if record.info.pop(_FRESH, False):
            return
        _DEADLINES.arm(dbapi_connection, ping_seconds)
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as error:
            if not _DEADLINES.disarm():
                raise no_answer(f"the database did not answer within {ping_seconds:g}s") from None
            raise sa_exc.DisconnectionError(str(error)) from error  # dropped: reconnect
        _DEADLINES.disarm()

    def _arm(connection: Connection, *_args: Any) -> None:
        # An invalidated connection (a deadline fired) is rolled back without the network.
        if not connection.invalidated and not connection.info.get(_UNBOUNDED):
            _DEADLINES.arm(connection.connection.dbapi_connection, statement_seconds)

    def _disarm(*_args: Any) -> None:
        _DEADLINES.disarm()

    # A statement from sending it to its answer; COMMIT and ROLLBACK (no "after" event: the
    # next BEGIN or the return to the pool ends theirs), and the pool's rollback on return.
    for armed_by in ("before_cursor_execute", "commit", "rollback"):
        event.listen(engine, armed_by, _arm)
    for disarmed_by in ("after_cursor_execute", "handle_error", "begin"):
        event.listen(engine, disarmed_by, _disarm)

    @event.listens_for(engine, "reset")
    def _resetting(dbapi_connection: Any, _record: Any, _state: Any) -> None:
        _DEADLINES.arm(dbapi_connection, statement_seconds)

    @event.listens_for(engine, "checkin")
    def _returned(dbapi_connection: Any, _record: Any) -> None:
        if dbapi_connection is not None:
            _DEADLINES.forget(dbapi_connection)


@contextmanager
def statements_unbounded(connection: Connection) -> Iterator[None]:
    """No statement or lock timeout on this connection while inside: a migration may copy
    a large table or wait for another replica's migration. Restored on the way out."""
    if connection.dialect.name != "postgresql":
        yield
        return
    connection.exec_driver_sql("SET statement_timeout = 0")
    connection.exec_driver_sql("SET lock_timeout = 0")
    connection.commit()
    connection.info[_UNBOUNDED] = True
    try:
        yield
    finally:
        connection.info.pop(_UNBOUNDED, None)
        connection.rollback()
        connection.exec_driver_sql("RESET statement_timeout")
        connection.exec_driver_sql("RESET lock_timeout")
        connection.commit()


class _HealthProbe:
    """`SELECT 1` on a thread of its own: a hung database holds that thread (until the
    deadlines above end it), never the request's. Callers while one is out share it."""

    def __init__(self) -> None:
        self._reset()
        os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._pending: weakref.WeakKeyDictionary[Engine, Future] = weakref.WeakKeyDictionary()

    def check(self, engine: Engine, timeout: float) -> str | None:
        with self._lock:
            future = self._pending.get(engine)
            if future is None or future.done():
                future = self._pending[engine] = Future()
                threading.Thread(
                    target=_probe, args=(engine, future), name="db-health", daemon=True
                ).start()
        try:
            future.result(timeout)
        except FutureTimeout:
            return f"TimeoutError: the database did not answer within {timeout:g}s"
        except Exception as error:  # noqa: BLE001 - any failure means unreachable
            return outage_summary(error)
        return None


def _probe(engine: Engine, future: Future) -> None:
    try:
        with engine.connect() as connection:
            connection.exec_driver_sql("SELECT 1")
    except BaseException as error:  # noqa: BLE001 - handed to the waiting request
        future.set_exception(error)
    else:
        future.set_result(None)


_HEALTH_PROBE = _HealthProbe()


def database_problem(engine: Engine, *, timeout: float) -> str | None:
    """None when the database answers `SELECT 1` within `timeout` seconds, else one line
    saying what went wrong; never waits longer, whatever the database does."""
    return _HEALTH_PROBE.check(engine, timeout)


class WriterGate:
    """Queues every SQLite writer of this machine on a lock file, ahead of BEGIN IMMEDIATE.

    SQLite's own busy handler polls, sleeping 1, 2, 5 … 100 ms between tries, so under load
    a waiting writer sleeps on long after the lock is free (p99 about 1 s at 32 connections,
    BENCHMARKS.md). A thread lock and a blocking `flock` wake the next writer at once. The
    kernel drops the flock when a process dies, so a killed worker never holds it.
    """

    def __init__(self, path: str):
        self.path = path
        self._reset()
        os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        """A new process starts with its own lock and its own open file: a descriptor
        inherited over fork would share the parent's flock."""
        self._thread_lock = threading.RLock()
        self._depth = 0
        self._fd: int | None = None

    def _descriptor(self) -> int:
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        return self._fd

    @contextmanager
    def held(self) -> Iterator[None]:
        """Re-entrant in a thread (a second session in the same thread then waits on SQLite's
        busy timeout, as without the gate), exclusive across threads and processes."""
        with self._thread_lock:
            self._depth += 1
            locked = False
            try:
                if self._depth == 1:
                    locked = self._lock_file()
                yield
            finally:
                self._depth -= 1
                if locked:
                    fcntl.flock(self._descriptor(), fcntl.LOCK_UN)

    def _lock_file(self) -> bool:
        """Take the file lock; False when the file cannot be opened (its directory is gone):
        then SQLite itself says what is wrong with the database, as an OperationalError."""
        try:
            descriptor = self._descriptor()
        except OSError:
            return False
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        return True


_WRITER_GATES: weakref.WeakKeyDictionary[Any, WriterGate] = weakref.WeakKeyDictionary()


def writer_gate_held(engine: Any) -> AbstractContextManager[None]:
    """The SQLite file's writer gate held (nothing on PostgreSQL, or SQLite in memory): a
    `flask db upgrade` takes it before connecting, so several started at once queue on it
    and the later ones find the schema at head, where they failed with "database is
    locked" (PostgreSQL: env.py's advisory lock)."""
    gate = _WRITER_GATES.get(engine)
    return gate.held() if gate is not None else nullcontext()


@contextmanager
def write_transaction() -> Iterator[Session]:
    """One unit of work in one write transaction, committed on success, rolled back on error.

    A read transaction already open in the session is ended first, so the write
    transaction starts fresh (and, on SQLite, with the write lock held). Nested use
    joins the outer transaction, so services can call each other. Never call out over
    the network inside one: the write lock would be held for the whole call.
    """
    session = db.session()
    if session.info.get(_BEGIN_IMMEDIATE):
        yield session
        session.flush()  # as a commit would: ids assigned, constraints checked
        return
    if session.in_transaction():
        if session.new or session.dirty or session.deleted:
            raise RuntimeError("changes made outside write_transaction(); make them inside it")
        session.commit()
    gate = _WRITER_GATES.get(session.get_bind())
    with gate.held() if gate is not None else nullcontext():
        session.connection(execution_options={_BEGIN_IMMEDIATE: True})
        session.info[_BEGIN_IMMEDIATE] = True
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.info.pop(_BEGIN_IMMEDIATE, None)


# Errors that mean "the database cannot be reached or used right now", not a bug.
UNAVAILABLE_ERRORS = (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.TimeoutError)


def outage_summary(error: BaseException) -> str:
    """One line for a log: what kind of failure, and the driver's first line about it."""
    original = getattr(error, "orig", None) or error
    first_line = (str(original).strip().splitlines() or [""])[0]
    return f"{type(original).__name__}: {first_line[:200]}"


def dialect_insert(bind: Session | Connection) -> Any:
    """The dialect's `insert` (it has `on_conflict_do_*`): SQLite's or PostgreSQL's."""
    dialect = bind.dialect if isinstance(bind, Connection) else bind.get_bind().dialect
    return postgresql.insert if dialect.name == "postgresql" else sqlite.insert


def upsert(
    session: Session,
    table: Any,
    values: dict[str, Any],
    *,
    key: list[str],
    returning: Any = None,
) -> Any:
    """INSERT … ON CONFLICT (key) DO UPDATE on SQLite and PostgreSQL; optionally RETURNING."""
    statement = dialect_insert(session)(table).values(**values)
    updates = {name: statement.excluded[name] for name in values if name not in key}
    statement = statement.on_conflict_do_update(index_elements=key, set_=updates)
    if returning is not None:
        return session.execute(statement.returning(returning)).scalar_one()
    session.execute(statement)
    return None


def highest_id_before(id_column: Any, time_column: Any, moment: Any, *, after: int = 0) -> int:
    """The highest id past `after` whose time is before `moment` (else `after`): a cursor
    that stays behind rows a transaction may still commit. A range on the primary key, so a
    table read this way needs no index on its time."""
    found = db.session.scalar(
        select(func.max(id_column)).where(id_column > after, time_column < moment)
    )
    return max(after, found or 0)
