"""`flask users …` and `flask discord admin …`: the operator grants and removes admin
rights of web and Discord accounts; no webhook can."""

from __future__ import annotations

import click
from flask.cli import AppGroup, with_appcontext

from autocheckin.attendance import history
from autocheckin.attendance.errors import AlreadyExists
from autocheckin.auth import accounts, api_keys
from autocheckin.auth.models import ROLE_ADMIN, ROLE_USER
from autocheckin.auth.passwords import weakness
from autocheckin.errors import ServiceError
from autocheckin.times import iso

users = AppGroup("users", help="Accounts: roles, active or not, and the person each records for.")


def _set_role(email: str, role: str) -> None:
    try:
        user = accounts.set_web_role(email=email, role=role)
    except ServiceError as error:
        raise click.ClickException(error.message) from None
    click.echo(f"{user.email}: {user.role}")


@users.command("promote")
@click.argument("email")
def promote_command(email: str) -> None:
    """Make the web user with EMAIL an admin (may edit every event)."""
    _set_role(email, ROLE_ADMIN)


@users.command("demote")
@click.argument("email")
def demote_command(email: str) -> None:
    """Make the web user with EMAIL a plain user again."""
    _set_role(email, ROLE_USER)


def _account_name(account) -> str:
    return account.email or f"Discord {account.discord_user_id}"


@users.command("link")
@click.argument("account")
@click.argument("person")
def link_command(account: str, person: str) -> None:
    """Link ACCOUNT (an email or a Discord id) to the roster PERSON (identifier or email).

    The operator's verified link: from now on the account's web and Discord check-ins are
    that person's. The person the account made for itself, if any, is merged in.
    """
    try:
        linked, moved, dropped = accounts.link_person(
            account_ref=account, person_ref=person, actor=history.cli_actor()
        )
    except ServiceError as error:
        raise click.ClickException(error.message) from None
    click.echo(
        f"{_account_name(linked)} now records for {linked.person.name or person} "
        f"({moved} check-ins moved over, {dropped} voided as duplicates)"
    )


@users.command("unlink")
@click.argument("account")
def unlink_command(account: str) -> None:
    """ACCOUNT stops recording for its person; the person and their check-ins stay."""
    try:
        unlinked = accounts.unlink_person(account_ref=account)
    except ServiceError as error:
        raise click.ClickException(error.message) from None
    click.echo(f"{_account_name(unlinked)}: no person")


def _set_active(account: str, active: bool) -> None:
    try:
        changed = accounts.set_active(ref=account, active=active)
    except ServiceError as error:
        raise click.ClickException(error.message) from None
    click.echo(f"{_account_name(changed)}: {'active' if changed.is_active else 'inactive'}")


@users.command("deactivate")
@click.argument("account")
def deactivate_command(account: str) -> None:
    """Stop ACCOUNT (email or Discord id) signing in or acting; its person's attendance stays."""
    _set_active(account, False)


@users.command("activate")
@click.argument("account")
def activate_command(account: str) -> None:
    """Let ACCOUNT (email or Discord id) sign in and act again."""
    _set_active(account, True)


people = AppGroup("people", help="People on the roster.")


@people.command("remove")
@click.argument("person")
def remove_person_command(person: str) -> None:
    """Remove PERSON (id, identifier or email): anonymised and deactivated, never deleted.

    Their attendances, history and excuses stay (under their id), so every count and the
    audit chain stay true; accounts that recorded for them are unlinked.
    """
    try:
        removed, unlinked = accounts.remove_person(person)
    except ServiceError as error:
        raise click.ClickException(error.message) from None
    click.echo(f"Person {removed.id} removed ({unlinked} accounts unlinked); history kept")


discord = AppGroup("discord", help="Discord accounts.")
discord_admin = AppGroup("admin", help="Admins of the bot's commands.")
discord.add_command(discord_admin)


def _set_discord_role(discord_user_id: str, role: str) -> None:
    try:
        user = accounts.set_discord_role(discord_user_id=discord_user_id, role=role)
    except ServiceError as error:
        raise click.ClickException(error.message) from None
    click.echo(f"{user.discord_user_id} ({user.name}): {user.role}")


@discord_admin.command("grant")
@click.argument("discord_user_id")
def grant_command(discord_user_id: str) -> None:
    """Let the Discord user create events, list users and check others in."""
    _set_discord_role(discord_user_id, ROLE_ADMIN)


@discord_admin.command("revoke")
@click.argument("discord_user_id")
def revoke_command(discord_user_id: str) -> None:
    """Make the Discord user a plain user again."""
    _set_discord_role(discord_user_id, ROLE_USER)


keys = AppGroup("keys", help="Integration API keys (accepted as x-checkout-key).")


@keys.command("create")
@click.argument("name")
def create_key_command(name: str) -> None:
    """Create a key named NAME and print it: it is shown this once, and stored as a hash."""
    try:
        record, key = api_keys.create_key(name)
    except ServiceError as error:
        raise click.ClickException(error.message) from None
    click.echo(f"{record.name}: {key}")
    click.echo("Keep it now: only its hash is stored.", err=True)


@keys.command("list")
def list_keys_command() -> None:
    """Every key: name, first characters, created, last used, revoked."""
    for record in api_keys.list_keys():
        click.echo(
            f"{record.name}\t{record.hint}…\tcreated {iso(record.created_at)}\t"
            f"last used {iso(record.last_used_at) or 'never'}\t"
            f"{'revoked ' + iso(record.revoked_at) if record.revoked_at else 'live'}"
        )


@keys.command("revoke")
@click.argument("name")
def revoke_key_command(name: str) -> None:
    """Revoke the key named NAME: it stops working at once."""
    try:
        record = api_keys.revoke_key(name)
    except ServiceError as error:
        raise click.ClickException(error.message) from None
    click.echo(f"{record.name}: revoked {iso(record.revoked_at)}")


@click.command("create-admin")
@with_appcontext
@click.argument("email")
@click.option("--name", help="The admin's name (default: the email's local part).")
@click.password_option(help="Prompted for (twice) when not given.")
def create_admin_command(email: str, name: str | None, password: str) -> None:
    """Create a web admin with EMAIL (the password is prompted for), or promote that user."""
    problem = weakness(password)
    if problem:
        raise click.ClickException(f"password {problem}")
    try:
        accounts.register_user(email=email, name=name or email.split("@")[0], password=password)
    except AlreadyExists:
        click.echo(f"{email} has an account already; making it an admin", err=True)
    except ServiceError as error:
        raise click.ClickException(error.message) from None
    _set_role(email, ROLE_ADMIN)
