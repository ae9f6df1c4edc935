"""Database plumbing shared by every domain: UTC times, SQLite tuning, write transactions."""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import UTC, datetime
from typing import Any

from flask import Flask
from sqlalchemy import JSON, Connection, DateTime, event
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

_BEGIN_IMMEDIATE = "autocheckin_begin_immediate"
# Ids and counters are INTEGER columns: PostgreSQL refuses anything larger.
MAX_DB_INTEGER = 2**31 - 1

# JSON everywhere, JSONB where PostgreSQL offers it.
JSONValue = JSON().with_variant(JSONB(), "postgresql")


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
