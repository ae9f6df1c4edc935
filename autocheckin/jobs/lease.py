"""Database leases: one holder at a time, taken with one atomic UPDATE, lost when not renewed.

`acquire` runs `UPDATE leases SET holder = me … WHERE name = :name AND (expires_at < now OR
holder = me)`: the row lock makes it atomic on PostgreSQL, BEGIN IMMEDIATE on SQLite. A
holder that dies simply stops renewing, and another process takes over within one TTL.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import or_, select, update

from autocheckin.database import dialect_insert, write_transaction
from autocheckin.extensions import db
from autocheckin.jobs.models import Lease
from autocheckin.times import utcnow


def acquire(name: str, holder: str, ttl: timedelta, *, now: datetime | None = None) -> bool:
    """Take or renew the lease `name` for `holder`; False when someone else holds it."""
    now = now or utcnow()
    with write_transaction() as session:
        taken = session.execute(
            update(Lease)
            .where(Lease.name == name, or_(Lease.expires_at < now, Lease.holder == holder))
            .values(holder=holder, expires_at=now + ttl)
        )
        if taken.rowcount:
            return True
        if session.scalar(select(Lease.name).where(Lease.name == name)) is not None:
            return False
        inserted = session.execute(
            dialect_insert(session)(Lease.__table__)
            .values(name=name, holder=holder, acquired_at=now, expires_at=now + ttl)
            .on_conflict_do_nothing(index_elements=["name"])
        )
        return bool(inserted.rowcount)


def release(name: str, holder: str) -> None:
    """Give the lease up at once (clean shutdown), so another process need not wait a TTL."""
    with write_transaction() as session:
        session.execute(
            update(Lease)
            .where(Lease.name == name, Lease.holder == holder)
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )


def current(name: str, *, now: datetime | None = None) -> Lease | None:
    """The live lease `name`, or None when nobody holds it."""
    lease = db.session.get(Lease, name)
    if lease is None or lease.expires_at < (now or utcnow()):
        return None
    return lease
