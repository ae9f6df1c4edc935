"""Integration API keys: one per integrator, accepted as `x-checkout-key` beside
CHECKOUT_API_KEY, stored only as SHA-256 hashes, each with its last use.

The key is shown once, when created. A key is 256 random bits, so its unsalted SHA-256 is
as hard to reverse as the key is to guess, and lets a presented key be found by an index.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import String, select, update
from sqlalchemy.orm import Mapped, mapped_column

from autocheckin.attendance.errors import AlreadyExists, Invalid, NotFound
from autocheckin.auth.keys import key_matches
from autocheckin.database import UTCDateTime, write_transaction
from autocheckin.extensions import db
from autocheckin.times import utcnow

PREFIX = "ack_"
# Last use is written at most this often per key: never a write on every request.
LAST_USED_EVERY = timedelta(minutes=1)
CHECKOUT_KEY = "checkout_key"  # `holder_of` CHECKOUT_API_KEY


class ApiKey(db.Model):
    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    key_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    hint: Mapped[str] = mapped_column(String(16))  # the key's first characters, to tell keys apart
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def create_key(name: str) -> tuple[ApiKey, str]:
    """A new key named `name`, and the key itself (shown once, never stored)."""
    name = name.strip()
    if not name or len(name) > 100:
        raise Invalid("A key's name must be 1 to 100 characters")
    if db.session.scalar(select(ApiKey.id).where(ApiKey.name == name)) is not None:
        raise AlreadyExists(f"A key named {name} exists already")
    key = PREFIX + secrets.token_urlsafe(32)
    with write_transaction() as session:
        record = ApiKey(name=name, key_sha256=_digest(key), hint=key[:10])
        session.add(record)
    return record, key


def list_keys() -> list[ApiKey]:
    return list(db.session.scalars(select(ApiKey).order_by(ApiKey.id)))


def revoke_key(name: str) -> ApiKey:
    with write_transaction() as session:
        record = session.scalar(select(ApiKey).where(ApiKey.name == name))
        if record is None:
            raise NotFound(f"No key named {name}", code="key_not_found")
        record.revoked_at = record.revoked_at or utcnow()
    return record


def find_live(presented: str) -> ApiKey | None:
    """The live key `presented` is, noting its use at most once a minute."""
    if not presented.startswith(PREFIX):
        return None
    record = db.session.scalar(
        select(ApiKey).where(ApiKey.key_sha256 == _digest(presented), ApiKey.revoked_at.is_(None))
    )
    if record is None:
        return None
    now = utcnow()
    if record.last_used_at is None or now - record.last_used_at >= LAST_USED_EVERY:
        with write_transaction() as session:
            session.execute(update(ApiKey).where(ApiKey.id == record.id).values(last_used_at=now))
    return record


def is_valid(presented: str | None, configured: str | None) -> bool:
    """`presented` is CHECKOUT_API_KEY (constant-time) or a live stored key."""
    if not presented:
        return False
    if key_matches(presented, configured):
        return True
    return find_live(presented) is not None


def holder_of(presented: str | None, configured: str | None) -> str | None:
    """Which key `presented` is: "checkout_key" (CHECKOUT_API_KEY), "api_key:<id>" (a live
    stored key) or None. Asked only after `api.security.key_accepted`, which counts wrong
    keys; this counts nothing."""
    if not presented:
        return None
    if key_matches(presented, configured):
        return CHECKOUT_KEY
    record = find_live(presented)
    return f"api_key:{record.id}" if record is not None else None


def any_live() -> bool:
    """Whether a stored key could open the door (asked only when a key was refused)."""
    return (
        db.session.scalar(select(ApiKey.id).where(ApiKey.revoked_at.is_(None)).limit(1)) is not None
    )
