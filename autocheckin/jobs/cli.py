"""`flask fetch-users`, `flask refresh [--email]`, `flask prune`: the jobs, by hand, under
the same locks and run records as the scheduler's and the API's triggers."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import with_appcontext

from autocheckin import jobs
from autocheckin.errors import ServiceError
from autocheckin.jobs.runner import run_recorded
from autocheckin.sync import connection, sessions, users


def _app():
    return current_app._get_current_object()  # type: ignore[attr-defined]


def _run(job_id: str, work) -> object:
    try:
        return run_recorded(job_id, work, trigger="manual", holder="cli")
    except ServiceError as error:
        raise click.ClickException(error.message) from None


@click.command("fetch-users")
@with_appcontext
def fetch_users_command() -> None:
    """Fetch CheckOut's user list now (the fetch_users job)."""
    app = _app()
    counts = _run("fetch_users", lambda: users.fetch_users(connection.client_for(app)))
    click.echo(f"{counts['users']} users: {counts['created']} new, {counts['updated']} updated")


@click.command("refresh")
@with_appcontext
@click.option("--email", help="Refresh this one user only.")
def refresh_command(email: str | None) -> None:
    """Refresh every user's check-in sessions now (the refresh_sessions job), with progress."""
    app = _app()
    if email:
        refreshed = _run(
            "refresh_session",
            lambda: sessions.refresh_one(connection.client_for(app), email),
        )
        click.echo(f"{refreshed.email}: {len(refreshed.sessions)} sessions, ok={refreshed.ok}")
        return
    total = len(users.roster())
    with click.progressbar(length=total, label="Refreshing users", show_pos=True) as bar:
        result = _run(
            "refresh_sessions",
            lambda: sessions.refresh_all(
                app,
                connection.client_for(app),
                concurrency=app.config["REFRESH_CONCURRENCY"],
                breaker_threshold=app.config["REFRESH_BREAKER_THRESHOLD"],
                on_progress=bar.update,
            ),
        )
    why = f" ({result.error})" if result.error else ""
    click.echo(f"{result.outcome}: {result.counts}{why}")
    if result.outcome == sessions.FAILED:
        raise SystemExit(1)


@click.command("prune")
@with_appcontext
def prune_command() -> None:
    """Drop webhook requests and job runs past their retention now (the prune job)."""
    app = _app()
    counts = _run("prune", lambda: jobs.JOBS_BY_ID["prune"].run(app))
    click.echo(", ".join(f"{name}: {count} removed" for name, count in counts.items()))


COMMANDS = (fetch_users_command, refresh_command, prune_command)
