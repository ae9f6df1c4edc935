"""Web and Discord user accounts on the person table every way in shares.

A web login is the password hash, `web_role` and `token_key` of a student row: only these
functions write them, never a webhook or the sync, so no check-in app can grant web powers
or take over a login.
"""

from __future__ import annotations

import secrets
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from werkzeug.security import check_password_hash, generate_password_hash

from autocheckin.attendance.errors import AlreadyExists, Invalid, NotFound
from autocheckin.attendance.models import WEB_ADMIN, WEB_USER, Student, normalize_key
from autocheckin.database import write_transaction
from autocheckin.extensions import db

# Verified against when the email is unknown, so both failures cost the same time.
_DUMMY_HASH = generate_password_hash("not-a-real-password")


def new_token_key() -> str:
    return secrets.token_hex(16)


def split_name(name: str) -> tuple[str, str]:
    first, _, last = name.strip().partition(" ")
    return first, last.strip()


def register_user(*, email: str, name: str, password: str) -> Student:
    """A web user; an email already taken raises AlreadyExists."""
    first_name, last_name = split_name(name)
    try:
        with write_transaction() as session:
            if session.scalar(select(Student.id).where(Student.email_key == normalize_key(email))):
                raise AlreadyExists("Email already registered", code="email_taken")
            student = Student(
                email=email,
                first_name=first_name,
                last_name=last_name,
                password_hash=generate_password_hash(password),
                web_role=WEB_USER,
                token_key=new_token_key(),
                source="web",
            )
            session.add(student)
    except IntegrityError:
        raise AlreadyExists("Email already registered", code="email_taken") from None
    return student


def authenticate(*, email: str, password: str) -> Student | None:
    """The active user with this email and password, else None (same cost either way)."""
    student = db.session.scalar(select(Student).where(Student.email_key == normalize_key(email)))
    if student is None or not student.password_hash:
        check_password_hash(_DUMMY_HASH, password)
        return None
    if not check_password_hash(student.password_hash, password) or not student.is_active:
        return None
    return student


def get_user(user_id: int) -> Student | None:
    return db.session.get(Student, user_id)


def update_profile(*, user_id: int, changes: dict[str, Any]) -> Student:
    """Change the sent fields of the user's own profile: name, email, password, discord_username."""
    with write_transaction() as session:
        student = session.get(Student, user_id)
        if student is None:
            raise NotFound("User not found", code="user_not_found")
        if "email" in changes and normalize_key(changes["email"]) != student.email_key:
            taken = session.scalar(
                select(Student.id).where(Student.email_key == normalize_key(changes["email"]))
            )
            if taken:
                raise AlreadyExists("Email already registered", code="email_taken")
            student.email = changes["email"]
        if "name" in changes:
            student.first_name, student.last_name = split_name(changes["name"])
        if "password" in changes:
            student.password_hash = generate_password_hash(changes["password"])
            student.token_key = new_token_key()  # every token issued before now stops working
        if "discord_username" in changes:
            student.discord_username = changes["discord_username"]
    return student


def set_web_role(*, email: str, role: str) -> Student:
    """Make a web user an admin or a plain user again (the operator's CLI)."""
    if role not in (WEB_USER, WEB_ADMIN):
        raise Invalid(f"role must be {WEB_USER} or {WEB_ADMIN}")
    with write_transaction() as session:
        student = session.scalar(select(Student).where(Student.email_key == normalize_key(email)))
        if student is None or not student.password_hash:
            raise NotFound(f"No web user with email {email}", code="user_not_found")
        student.web_role = role
    return student


def find_discord_user(discord_user_id: str) -> Student | None:
    return db.session.scalar(select(Student).where(Student.discord_user_id == discord_user_id))


def register_discord_user(
    *, discord_user_id: str, name: str, discord_username: str | None
) -> tuple[Student, bool]:
    """A Discord user, no email or password needed: (the user, whether it is new). A known
    Discord id gets the name and username it sends now (people rename themselves)."""
    first_name, last_name = split_name(name)
    with write_transaction() as session:
        existing = session.scalar(select(Student).where(Student.discord_user_id == discord_user_id))
        if existing is not None:
            existing.first_name, existing.last_name = first_name, last_name
            if discord_username is not None:
                existing.discord_username = discord_username
            return existing, False
    try:
        with write_transaction() as session:
            student = Student(
                discord_user_id=discord_user_id,
                discord_username=discord_username,
                first_name=first_name,
                last_name=last_name,
                source="discord",
            )
            session.add(student)
    except IntegrityError:
        # A concurrent registration of the same Discord id won: return that user.
        found = find_discord_user(discord_user_id)
        if found is None:
            raise
        return found, False
    return student, True


def set_discord_role(*, discord_user_id: str, role: str) -> Student:
    """Make a Discord user an admin of the bot's commands, or a plain user again."""
    if role not in (WEB_USER, WEB_ADMIN):
        raise Invalid(f"role must be {WEB_USER} or {WEB_ADMIN}")
    with write_transaction() as session:
        student = session.scalar(select(Student).where(Student.discord_user_id == discord_user_id))
        if student is None:
            raise NotFound(
                f"No Discord user with id {discord_user_id}", code="discord_user_not_registered"
            )
        student.web_role = role
    return student


def list_accounts(*, skip: int, limit: int) -> tuple[list[Student], int]:
    """People who can act here (a web login or a Discord id), oldest first, and their total."""
    is_account = or_(Student.password_hash.is_not(None), Student.discord_user_id.is_not(None))
    total = db.session.scalar(select(func.count()).select_from(Student).where(is_account)) or 0
    page = db.session.scalars(
        select(Student).where(is_account).order_by(Student.id).offset(skip).limit(limit)
    )
    return list(page), total


def find_by_name(name: str) -> list[Student]:
    """Discord users whose full name or Discord username is `name` (case-insensitive)."""
    wanted = name.strip().lower()
    full_name = func.lower(func.trim(Student.first_name + " " + Student.last_name))
    return list(
        db.session.scalars(
            select(Student)
            .where(
                Student.discord_user_id.is_not(None),
                or_(full_name == wanted, func.lower(Student.discord_username) == wanted),
            )
            .order_by(Student.id)
        )
    )
