"""`flask users …` and `flask discord admin …`: the operator grants and removes admin
rights of web and Discord accounts; no webhook can."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from autocheckin.attendance.models import WEB_ADMIN, WEB_USER
from autocheckin.auth import accounts
from autocheckin.errors import ServiceError

users = AppGroup("users", help="Web users' roles.")


def _set_role(email: str, role: str) -> None:
    try:
        user = accounts.set_web_role(email=email, role=role)
    except ServiceError as error:
        raise click.ClickException(error.message) from None
    click.echo(f"{user.email}: {user.web_role}")


@users.command("promote")
@click.argument("email")
def promote_command(email: str) -> None:
    """Make the web user with EMAIL an admin (may edit every event)."""
    _set_role(email, WEB_ADMIN)


@users.command("demote")
@click.argument("email")
def demote_command(email: str) -> None:
    """Make the web user with EMAIL a plain user again."""
    _set_role(email, WEB_USER)


discord = AppGroup("discord", help="Discord accounts.")
discord_admin = AppGroup("admin", help="Admins of the bot's commands.")
discord.add_command(discord_admin)


def _set_discord_role(discord_user_id: str, role: str) -> None:
    try:
        user = accounts.set_discord_role(discord_user_id=discord_user_id, role=role)
    except ServiceError as error:
        raise click.ClickException(error.message) from None
    click.echo(f"{user.discord_user_id} ({user.name}): {user.web_role}")


@discord_admin.command("grant")
@click.argument("discord_user_id")
def grant_command(discord_user_id: str) -> None:
    """Let the Discord user create events, list users and check others in."""
    _set_discord_role(discord_user_id, WEB_ADMIN)


@discord_admin.command("revoke")
@click.argument("discord_user_id")
def revoke_command(discord_user_id: str) -> None:
    """Make the Discord user a plain user again."""
    _set_discord_role(discord_user_id, WEB_USER)
