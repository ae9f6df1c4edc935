"""`flask users …`: the operator grants and removes web admin rights; nothing else can."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from autocheckin.attendance.errors import DomainError
from autocheckin.attendance.models import WEB_ADMIN, WEB_USER
from autocheckin.auth import accounts

users = AppGroup("users", help="Web users' roles.")


def _set_role(email: str, role: str) -> None:
    try:
        user = accounts.set_web_role(email=email, role=role)
    except DomainError as error:
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
