"""Accounts: web logins, Discord users and admins, apart from the people on the roster.

Only registration, the Discord register route, the dashboard and the CLI reach these
functions; no webhook or sync writes an account, so no check-in app can grant a power or
take over a login. An account records attendance for its linked person: its first
check-in creates one for it (named from the account, with no identifier or email, so no
scanner or sync can ever address it); an operator may link it to a roster person instead
(`flask users link`), the one verified path. A matching email links nothing.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from autocheckin.attendance import corrections, excuses, origins
from autocheckin.attendance import service as people
from autocheckin.attendance.checkins import CheckIn, Recorded, record_check_in
from autocheckin.attendance.errors import AlreadyExists, Invalid, NotFound
from autocheckin.attendance.models import Attendance, Excuse, Student, normalize_key
from autocheckin.attendance.windows import CheckInRules
from autocheckin.auth.errors import Forbidden
from autocheckin.auth.models import ROLE_ADMIN, ROLE_USER, ROLES, Account, AccountSession
from autocheckin.database import write_transaction
from autocheckin.extensions import db
from autocheckin.times import utcnow

# Verified against when the email is unknown, so both failures cost the same time.
_DUMMY_HASH = generate_password_hash("not-a-real-password")


def new_token_key() -> str:
    return secrets.token_hex(16)


def _end_every_session(session: Session, account: Account) -> None:
    """A new token key (every bearer token issued before stops working) and every signed-in
    browser of the account revoked: after a password change, a lost role or a
    deactivation, nothing issued before can speak for the account again."""
    account.token_key = new_token_key()
    session.execute(
        update(AccountSession)
        .where(AccountSession.account_id == account.id, AccountSession.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )


def split_name(name: str) -> tuple[str, str]:
    first, _, last = name.strip().partition(" ")
    return first, last.strip()


# --- web logins -------------------------------------------------------------------------------


def register_user(*, email: str, name: str, password: str) -> Account:
    """A web account; an email another account signs in with raises AlreadyExists.

    A roster person with the same email is not looked at: the two stay apart.
    """
    try:
        with write_transaction() as session:
            if session.scalar(select(Account.id).where(Account.email_key == normalize_key(email))):
                raise AlreadyExists("Email already registered", code="email_taken")
            account = Account(
                email=email,
                name=name.strip(),
                password_hash=generate_password_hash(password),
                role=ROLE_USER,
                token_key=new_token_key(),
            )
            session.add(account)
    except IntegrityError:
        raise AlreadyExists("Email already registered", code="email_taken") from None
    return account


def authenticate(*, email: str, password: str) -> Account | None:
    """The active account with this email and password, else None (same cost either way);
    a success stamps its last login."""
    account = db.session.scalar(select(Account).where(Account.email_key == normalize_key(email)))
    if account is None or not account.password_hash:
        check_password_hash(_DUMMY_HASH, password)
        return None
    if not check_password_hash(account.password_hash, password) or not account.is_active:
        return None
    with write_transaction():
        account.last_login_at = utcnow()
    return account


def get_account(account_id: int) -> Account | None:
    return db.session.get(Account, account_id)


SENSITIVE_FIELDS = ("email", "password")


def update_profile(
    *, account_id: int, changes: dict[str, Any], current_password: str | None = None
) -> Account:
    """Change the sent fields of the account's own profile: name, email, password,
    discord_username. The email and the password need the current password (a stolen token
    must not become the account for good); a new password ends every other token and
    session. Its linked person, if any, is roster data and stays as it is."""
    with write_transaction() as session:
        account = session.get(Account, account_id)
        if account is None:
            raise NotFound("User not found", code="user_not_found")
        if any(field in changes for field in SENSITIVE_FIELDS):
            _require_password(account, current_password)
        if "email" in changes and normalize_key(changes["email"]) != account.email_key:
            taken = session.scalar(
                select(Account.id).where(Account.email_key == normalize_key(changes["email"]))
            )
            if taken:
                raise AlreadyExists("Email already registered", code="email_taken")
            account.email = changes["email"]
        if "name" in changes:
            account.name = changes["name"].strip()
        if "password" in changes:
            account.password_hash = generate_password_hash(changes["password"])
            _end_every_session(session, account)
        if "discord_username" in changes:
            account.discord_username = changes["discord_username"]
    return account


def _require_password(account: Account, password: str | None) -> None:
    if not password:
        raise Forbidden(
            "Changing the email or the password needs current_password", code="password_required"
        )
    if not account.password_hash or not check_password_hash(account.password_hash, password):
        raise Forbidden("current_password is wrong", code="bad_current_password")


def _role(role: str) -> str:
    if role not in ROLES:
        raise Invalid(f"role must be {ROLE_USER} or {ROLE_ADMIN}")
    return role


def _web_account(session: Session, email: str) -> Account:
    account = session.scalar(select(Account).where(Account.email_key == normalize_key(email)))
    if account is None or not account.password_hash:
        raise NotFound(f"No web user with email {email}", code="user_not_found")
    return account


def set_web_role(*, email: str, role: str) -> Account:
    """Make a web account an admin or a plain user again (the operator's CLI)."""
    role = _role(role)
    with write_transaction() as session:
        account = _web_account(session, email)
        _change_role(session, account, role)
    return account


def _change_role(session: Session, account: Account, role: str) -> None:
    """A role taken away ends what was issued under it, so giving it back revives nothing."""
    if account.role == ROLE_ADMIN and role != ROLE_ADMIN:
        _end_every_session(session, account)
    account.role = role


def set_active(*, ref: str, active: bool) -> Account:
    """Let an account act again, or stop it (its tokens and sessions stop working at once);
    its person and their attendance stay."""
    with write_transaction() as session:
        account = _account_by_ref(session, ref)
        if account.is_active and not active:
            _end_every_session(session, account)
        account.is_active = active
    return account


# --- Discord ----------------------------------------------------------------------------------


def find_discord_account(discord_user_id: str) -> Account | None:
    return db.session.scalar(select(Account).where(Account.discord_user_id == discord_user_id))


def register_discord_account(
    *, discord_user_id: str, name: str, discord_username: str | None
) -> tuple[Account, bool]:
    """A Discord account, no email or password needed: (the account, whether it is new). A
    known Discord id gets the name and username it sends now (people rename themselves)."""
    with write_transaction() as session:
        existing = session.scalar(select(Account).where(Account.discord_user_id == discord_user_id))
        if existing is not None:
            existing.name = name.strip()
            if discord_username is not None:
                existing.discord_username = discord_username
            return existing, False
    try:
        with write_transaction() as session:
            account = Account(
                discord_user_id=discord_user_id,
                discord_username=discord_username,
                name=name.strip(),
            )
            session.add(account)
    except IntegrityError:
        # A concurrent registration of the same Discord id won: return that account.
        found = find_discord_account(discord_user_id)
        if found is None:
            raise
        return found, False
    return account, True


def set_discord_role(*, discord_user_id: str, role: str) -> Account:
    """Make a Discord account an admin of the bot's commands, or a plain user again."""
    role = _role(role)
    with write_transaction() as session:
        account = session.scalar(select(Account).where(Account.discord_user_id == discord_user_id))
        if account is None:
            raise NotFound(
                f"No Discord user with id {discord_user_id}", code="discord_user_not_registered"
            )
        _change_role(session, account, role)
    return account


def find_discord_accounts_by_name(name: str) -> list[Account]:
    """Discord accounts whose name or Discord username is `name` (case-insensitive)."""
    wanted = name.strip().lower()
    return list(
        db.session.scalars(
            select(Account)
            .where(
                Account.discord_user_id.is_not(None),
                or_(
                    func.lower(func.trim(Account.name)) == wanted,
                    func.lower(Account.discord_username) == wanted,
                ),
            )
            .order_by(Account.id)
        )
    )


# --- every account ----------------------------------------------------------------------------


def list_accounts(*, skip: int, limit: int) -> tuple[list[Account], int]:
    """Every account, oldest first, and their total."""
    total = db.session.scalar(select(func.count()).select_from(Account)) or 0
    page = db.session.scalars(select(Account).order_by(Account.id).offset(skip).limit(limit))
    return list(page), total


def _account_by_ref(session: Session, ref: str) -> Account:
    """An account by its email, or by its Discord id (all digits)."""
    text = ref.strip()
    if text.isascii() and text.isdigit():
        account = session.scalar(select(Account).where(Account.discord_user_id == text))
    else:
        account = session.scalar(select(Account).where(Account.email_key == normalize_key(text)))
    if account is None:
        raise NotFound(f"No account with email or Discord id {ref}", code="account_not_found")
    return account


def discord_usernames_of(person_ids: set[int]) -> dict[int, str | None]:
    """The Discord username of each person's account, for attendee lists."""
    if not person_ids:
        return {}
    rows = db.session.execute(
        select(Account.person_id, Account.discord_username).where(Account.person_id.in_(person_ids))
    )
    return {person_id: username for person_id, username in rows}


# --- the account's person and its check-ins ---------------------------------------------------


def _own_person(session: Session, account_id: int) -> int:
    """The account's person id, creating and linking one on first use (inside the caller's
    transaction, with the account's row locked, so two first check-ins make one person)."""
    account = session.scalar(select(Account).where(Account.id == account_id).with_for_update())
    if account is None:
        raise NotFound("User not found", code="user_not_found")
    if account.person_id is None:
        first_name, last_name = split_name(account.name)
        person = Student(
            first_name=first_name,
            last_name=last_name,
            source="discord" if account.discord_user_id and not account.email else "web",
        )
        session.add(person)
        session.flush()
        account.person_id = person.id
    return account.person_id


def check_in(
    *,
    account_id: int,
    event_id: int,
    at: datetime,
    rules: CheckInRules,
    source: str,
    metadata: dict[str, Any] | None = None,
    actor: str | None = None,
    origin: origins.Origin | None = None,
) -> Recorded:
    """Check the account's person in to an event, by the one rule every door shares.

    The history names `actor`, else the account itself (`account:<id>`); `origin`, the
    client that sent it, is kept beside the check-in for the suspicious-check-in rules.
    """
    with write_transaction() as session:
        person_id = _own_person(session, account_id)
        recorded = record_check_in(
            CheckIn(person_id=person_id, event_id=event_id, source=source, metadata=metadata or {}),
            arrived_at=at,
            rules=rules,
            actor=actor or f"account:{account_id}",
        )
        if origin is not None:
            origins.record(
                session,
                attendance_id=recorded.attendance_id,
                origin=origin,
                account_id=account_id,
                recorded_at=at,
            )
        return recorded


def submit_excuse(
    *, account_id: int, event_id: int, reason: str | None, actor: str | None = None
) -> Excuse:
    """The account's person's excuse for an event (a person is made on first use, as for a
    check-in); the history of the decision names `actor`, else the account."""
    with write_transaction() as session:
        person_id = _own_person(session, account_id)
        return excuses.submit(
            person_id=person_id,
            event_id=event_id,
            reason=reason,
            actor=actor or f"account:{account_id}",
        )


def excuses_of(account: Account) -> list[Excuse]:
    """The account's person's excuses, newest first."""
    if account.person_id is None:
        return []
    found, _ = excuses.list_excuses(excuses.ExcuseFilter(person_id=account.person_id, limit=500))
    return found


def link_person(
    *, account_ref: str, person_ref: str, actor: str = "cli"
) -> tuple[Account, int, int]:
    """Link the account to the roster person `person_ref` (identifier or email): the
    operator's verified path. The account's own person, if it had one that no scanner or
    sync can address, is merged in: its check-ins move over where the roster person has
    none for that event, the others are voided (the roster person's own mark is the one
    kept), each change in the history, by `actor`. The merged person is deactivated, never
    deleted, when a voided mark still names it. Returns the account, the check-ins moved
    and the ones voided as duplicates.
    """
    with write_transaction() as session:
        account = _account_by_ref(session, account_ref)
        person = people.resolve_student(person_ref)
        if account.person_id == person.id:
            return account, 0, 0
        moved = dropped = 0
        previous = session.get(Student, account.person_id) if account.person_id else None
        account.person_id = None
        session.flush()
        if previous is not None and not previous.identifier_key and not previous.email_key:
            moved, dropped = _merge_person(session, source=previous, into=person, actor=actor)
        account.person_id = person.id
    return account, moved, dropped


def _merge_person(
    session: Session, *, source: Student, into: Student, actor: str
) -> tuple[int, int]:
    """Move `source`'s marks to `into` (through the corrections path, so each is in the
    history); delete `source` when nothing names it any more, else deactivate it."""
    source_id, into_id = source.id, into.id
    moved, voided = corrections.move_marks(
        session,
        from_person=source_id,
        to_person=into_id,
        actor=actor,
        reason=f"account linked to person {into_id}: person {source_id} merged into it",
    )
    left = session.scalar(
        select(func.count()).select_from(Attendance).where(Attendance.student_id == source_id)
    )
    remaining = session.get(Student, source_id)
    if left or _has_excuses(session, source_id):
        remaining.deactivated_at = remaining.deactivated_at or utcnow()
    else:
        session.delete(remaining)
    return moved, voided


def _has_excuses(session: Session, person_id: int) -> bool:
    return (
        session.scalar(select(Excuse.id).where(Excuse.student_id == person_id).limit(1)) is not None
    )


def remove_person(person_ref: str) -> tuple[Student, int]:
    """Remove a person (`service.remove_person`: anonymised, deactivated, nothing recorded
    lost) and unlink every account that recorded for them. Returns the person and how many
    accounts were unlinked."""
    with write_transaction() as session:
        person = people.resolve_person(person_ref)
        unlinked = session.execute(
            update(Account)
            .where(Account.person_id == person.id)
            .values(person_id=None)
            .execution_options(synchronize_session=False)
        ).rowcount
        people.remove_person(person.id)
    return person, unlinked or 0


def unlink_person(*, account_ref: str) -> Account:
    """The account stops recording for its person; the person and their check-ins stay."""
    with write_transaction() as session:
        account = _account_by_ref(session, account_ref)
        account.person_id = None
    return account


# --- signed-in browsers (the dashboard) ---------------------------------------------------------


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def open_session(*, account_id: int, lifetime: timedelta) -> str:
    """A new signed-in browser for the account: the random token the cookie keeps (only its
    hash is stored)."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    with write_transaction() as session:
        session.add(
            AccountSession(
                account_id=account_id,
                token_sha256=_digest(token),
                created_at=now,
                expires_at=now + lifetime,
            )
        )
    return token


def session_account(token: str | None) -> Account | None:
    """The active account a live (not revoked, not expired) session token belongs to."""
    if not token or not isinstance(token, str):
        return None
    found = db.session.execute(
        select(Account)
        .join(AccountSession, AccountSession.account_id == Account.id)
        .where(
            AccountSession.token_sha256 == _digest(token),
            AccountSession.revoked_at.is_(None),
            AccountSession.expires_at > utcnow(),
            Account.is_active.is_(True),
        )
    ).scalar_one_or_none()
    return found


def close_session(token: str | None) -> None:
    """Sign-out: the session stops working at once, in every worker and replica."""
    if not token or not isinstance(token, str):
        return
    with write_transaction() as session:
        session.execute(
            update(AccountSession)
            .where(AccountSession.token_sha256 == _digest(token))
            .values(revoked_at=utcnow())
        )
