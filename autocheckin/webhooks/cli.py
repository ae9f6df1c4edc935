"""`flask webhooks …`: the operator's view of the webhook request log."""

from __future__ import annotations

import json
from datetime import timedelta

import click
from flask import current_app
from flask.cli import AppGroup

from autocheckin import settings
from autocheckin.errors import ServiceError
from autocheckin.webhooks import receive, request_log
from autocheckin.webhooks.models import OUTCOMES
from autocheckin.webhooks.schemas import WebhookRequestView

webhooks = AppGroup("webhooks", help="List, replay, resolve and prune recorded webhook requests.")


def _options() -> receive.WebhookOptions:
    return settings.current().webhooks


@webhooks.command("list")
@click.option("--failed", is_flag=True, help="Only failed and unmatched requests.")
@click.option("--status", type=click.Choice(OUTCOMES), help="Only requests with this outcome.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 1000))
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line, with bodies.")
def list_command(failed: bool, status: str | None, limit: int, as_json: bool) -> None:
    """Newest first."""
    outcome = "failed" if failed else status
    for record in request_log.list_requests(outcome=outcome, limit=limit):
        if as_json:
            click.echo(json.dumps(WebhookRequestView.of(record)))
            continue
        click.echo(
            f"{record.id:>6}  {record.received_at:%Y-%m-%d %H:%M:%S}  {record.endpoint:<17} "
            f"{record.outcome:<10} {record.status_code or '-':>3}  {record.error or ''}"
        )


@webhooks.command("replay")
@click.argument("request_id", type=int)
def replay_command(request_id: int) -> None:
    """Process a recorded request again (as of when it first arrived)."""
    try:
        record = receive.replay(request_id, _options())
    except ServiceError as error:
        raise click.ClickException(error.message) from None
    click.echo(f"{record.id}: {record.outcome} ({record.status_code}) {record.error or ''}".strip())
    if record.outcome not in ("succeeded", "resolved"):
        raise SystemExit(1)


@webhooks.command("resolve")
def resolve_command() -> None:
    """Replay every unmatched check-in; those that now resolve are recorded."""
    tally = receive.resolve_unmatched(_options())
    click.echo(" ".join(f"{key}={value}" for key, value in tally.items()))


@webhooks.command("prune")
def prune_command() -> None:
    """Delete records older than WEBHOOK_LOG_RETENTION_DAYS."""
    days = current_app.config["WEBHOOK_LOG_RETENTION_DAYS"]
    deleted = request_log.prune(retention=timedelta(days=days))
    click.echo(f"deleted {deleted} webhook requests older than {days} days")
