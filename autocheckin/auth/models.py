"""Accounts: who may sign in or act (a web login, a Discord user, an admin).

An account is not a person on the roster. It may be linked to one `students` row, the
person whose attendance it records when it checks in through the web or Discord; a link
is made only by a verified path (the account's own first check-in creates its person,
an operator links it to a roster person), never because two emails match.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from autocheckin.attendance.models import Student, TimestampMixin, normalize_key
from autocheckin.database import UTCDateTime
from autocheckin.extensions import db

ROLE_USER, ROLE_ADMIN = "user", "admin"
ROLES = (ROLE_USER, ROLE_ADMIN)


class Account(TimestampMixin, db.Model):
    """A login (email and password), a Discord identity, or both; `role` is its power."""

    __tablename__ = "accounts"
    __table_args__ = (
        CheckConstraint("email_key IS NOT NULL OR discord_user_id IS NOT NULL", name="has_login"),
        CheckConstraint("role IN ('user', 'admin')", name="known_role"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str | None] = mapped_column(String(254))
    email_key: Mapped[str | None] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str | None] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16), default=ROLE_USER)
    # Random per account, new on every password change: tokens and dashboard sessions carry
    # it, so they die with the password and never speak for a later account on a reused id.
    token_key: Mapped[str | None] = mapped_column(String(64))
    discord_user_id: Mapped[str | None] = mapped_column(String(32), unique=True)
    discord_username: Mapped[str | None] = mapped_column(String(100))
    is_active: Mapped[bool] = mapped_column(default=True)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Several accounts may record for one person (a web login and a Discord account).
    person_id: Mapped[int | None] = mapped_column(
        ForeignKey("students.id", ondelete="SET NULL"), index=True
    )

    person: Mapped[Student | None] = relationship()

    @validates("email")
    def _keep_email_key(self, _field: str, value: str | None) -> str | None:
        value = value.strip() if value else None
        self.email_key = normalize_key(value)
        return value or None

    @property
    def is_admin(self) -> bool:
        return self.role == ROLE_ADMIN


class AccountSession(db.Model):
    """A signed-in browser (the dashboard): the cookie holds a random id, this row its hash.

    The server can end it at once, in every worker: sign-out revokes this row; a demotion, a
    password change or a deactivation revokes every row of the account. It lasts until
    `expires_at` from sign-in, however often it is used.
    """

    __tablename__ = "account_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
