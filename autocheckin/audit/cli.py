"""`flask attendance …` (corrections by the operator) and `flask audit verify`.

The actor of a command's corrections is `cli:<the operating-system user>`; like every
correction, each needs a reason and lands in the attendance's hash-chained history.
"""

from __future__ import annotations

import json
import time
from datetime import datetime

import click
from flask.cli import AppGroup

from autocheckin import settings
from autocheckin.attendance import corrections, history, service
from autocheckin.attendance.models import STATUSES
from autocheckin.errors import ServiceError
from autocheckin.extensions import db
from autocheckin.times import parse_iso, to_utc

attendance = AppGroup("attendance", help="Correct attendance (each change needs a reason).")
audit = AppGroup("audit", help="Check the attendance history's hash chains.")

REASON = click.option("--reason", required=True, help="Why (kept in the history).")
IF_VERSION = click.option(
    "--if-version", type=int, default=None, help="Refuse unless the attendance is at this version."
)


def _time(text: str) -> datetime:
    try:
        return to_utc(parse_iso(text))
    except ValueError:
        raise click.BadParameter(f"{text!r} is not an ISO 8601 time") from None


def _correction(reason: str, if_version: int | None = None) -> corrections.Correction:
    return corrections.Correction(
        actor=history.cli_actor(), reason=reason, expected_version=if_version
    )


def _done(change: corrections.Change) -> None:
    after = change.after
    voided = " (voided)" if after["voided"] else ""
    click.echo(
        f"attendance {change.attendance_id} v{change.version}: {change.action}, now "
        f"{after['status']}{voided}"
    )


def _run(action) -> None:  # noqa: ANN001 - a thunk
    try:
        action()
    except ServiceError as error:
        raise click.ClickException(error.message) from None


@attendance.command("status")
@click.argument("event_id", type=int)
@click.argument("person")
@click.argument("status", type=click.Choice(STATUSES))
@REASON
@IF_VERSION
@click.option("--at", "at", default=None, help="The check-in time (ISO 8601), if there was one.")
def status_command(
    event_id: int, person: str, status: str, reason: str, if_version: int | None, at: str | None
) -> None:
    """Set PERSON's (id, identifier or email) STATUS at EVENT_ID, with or without a check-in."""

    def run() -> None:
        _done(
            corrections.set_status(
                event_id=event_id,
                person_id=service.resolve_person(person).id,
                status=status,
                correction=_correction(reason, if_version),
                rules=settings.current().rules,
                checked_in_at=_time(at) if at else None,
            )
        )

    _run(run)


@attendance.command("void")
@click.argument("attendance_id", type=int)
@REASON
@IF_VERSION
def void_command(attendance_id: int, reason: str, if_version: int | None) -> None:
    """Void a check-in: it stays in the history and stops counting."""
    _run(
        lambda: _done(
            corrections.void(
                attendance_id=attendance_id, correction=_correction(reason, if_version)
            )
        )
    )


@attendance.command("restore")
@click.argument("attendance_id", type=int)
@REASON
@IF_VERSION
def restore_command(attendance_id: int, reason: str, if_version: int | None) -> None:
    """Restore a voided check-in."""
    _run(
        lambda: _done(
            corrections.restore(
                attendance_id=attendance_id, correction=_correction(reason, if_version)
            )
        )
    )


@attendance.command("time")
@click.argument("attendance_id", type=int)
@click.argument("checked_in_at")
@REASON
@IF_VERSION
def time_command(
    attendance_id: int, checked_in_at: str, reason: str, if_version: int | None
) -> None:
    """Move a check-in to CHECKED_IN_AT (ISO 8601); late follows unless the status was set."""
    _run(
        lambda: _done(
            corrections.change_time(
                attendance_id=attendance_id,
                checked_in_at=_time(checked_in_at),
                correction=_correction(reason, if_version),
                rules=settings.current().rules,
            )
        )
    )


@attendance.command("mark-unmarked")
@click.argument("event_id", type=int)
@click.argument("status", type=click.Choice(corrections.BULK_STATUSES))
@REASON
def mark_unmarked_command(event_id: int, status: str, reason: str) -> None:
    """Mark everyone enrolled at EVENT_ID with no mark yet as STATUS."""

    def run() -> None:
        changes = corrections.mark_unmarked(
            event_id=event_id,
            status=status,
            correction=_correction(reason),
            rules=settings.current().rules,
        )
        click.echo(f"{len(changes)} marked {status} at event {event_id}")

    _run(run)


@attendance.command("history")
@click.argument("attendance_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per entry.")
def history_command(attendance_id: int, as_json: bool) -> None:
    """Every change to an attendance, oldest first."""
    entries = history.entries_of(db.session.connection(), attendance_id)
    if not entries:
        raise click.ClickException(f"Attendance {attendance_id} has no history (or does not exist)")
    for entry in entries:
        if as_json:
            row = dict(entry._mapping)
            row["recorded_at"] = history.timestamp(row["recorded_at"])
            click.echo(json.dumps(row, sort_keys=True))
            continue
        before = entry.before["status"] if entry.before else "-"
        click.echo(
            f"{entry.seq:>3} {history.timestamp(entry.recorded_at)} {entry.action:<12} "
            f"{before} -> {entry.after['status']}{' (voided)' if entry.after['voided'] else ''} "
            f"by {entry.actor}{': ' + entry.reason if entry.reason else ''}"
        )


@audit.command("verify")
@click.option("--batch", default=10_000, show_default=True, type=click.IntRange(100, 1_000_000))
def verify_command(batch: int) -> None:
    """Recompute every attendance's hash chain; name the first entry that does not match.

    Exits 1 when anything does not match (an entry edited, removed or reordered behind the
    service's back, or an attendance row that differs from its last entry).
    """
    started = time.perf_counter()
    result = history.verify(db.session.connection(), batch=batch)
    seconds = time.perf_counter() - started
    summary = f"{result.entries} entries over {result.attendances} attendances in {seconds:.1f} s"
    first = result.first
    if first is None:
        click.echo(f"ok: {summary}")
        return
    click.echo(f"FAILED: {summary}; {len(result.findings)} problems", err=True)
    click.echo(f"first entry that does not match: {first.describe()}", err=True)
    for finding in result.findings[:20]:
        click.echo(f"  {finding.describe()}", err=True)
    raise SystemExit(1)
