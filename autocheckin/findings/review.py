"""An admin's review of findings: read them, confirm one (its check-ins are voided through
the corrections path, with the finding as the reason) or dismiss it. A decision is final:
deciding again is a conflict, and changes nothing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from autocheckin.attendance import corrections
from autocheckin.attendance.errors import Conflict, NotFound, Unprocessable
from autocheckin.attendance.models import Attendance
from autocheckin.database import write_transaction
from autocheckin.extensions import db
from autocheckin.findings.models import CONFIRMED, DISMISSED, OPEN, Finding
from autocheckin.times import utcnow

MAX_REASON = 2000


@dataclass(frozen=True)
class FindingFilter:
    state: str | None = OPEN  # None: every state
    rule: str | None = None
    limit: int = 50
    skip: int = 0


def list_findings(filters: FindingFilter) -> tuple[list[Finding], int]:
    """One page, newest first, and how many match."""
    query = select(Finding)
    if filters.state is not None:
        query = query.where(Finding.state == filters.state)
    if filters.rule is not None:
        query = query.where(Finding.rule == filters.rule)
    total = db.session.scalar(select(func.count()).select_from(query.subquery()))
    page = db.session.scalars(
        query.order_by(Finding.created_at.desc(), Finding.id.desc())
        .limit(filters.limit)
        .offset(filters.skip)
    )
    return list(page), total or 0


def get_finding(finding_id: int) -> Finding:
    finding = db.session.get(Finding, finding_id)
    if finding is None:
        raise NotFound(f"Finding {finding_id} not found", code="finding_not_found")
    return finding


def _open_locked(session, finding_id: int) -> Finding:
    finding = session.scalar(select(Finding).where(Finding.id == finding_id).with_for_update())
    if finding is None:
        raise NotFound(f"Finding {finding_id} not found", code="finding_not_found")
    if finding.state != OPEN:
        raise Conflict(
            f"Finding {finding_id} is already {finding.state} by {finding.decided_by}",
            code="already_decided",
            details={"state": finding.state, "decided_by": finding.decided_by},
        )
    return finding


def _reason(reason: str | None) -> str:
    text = (reason or "").strip()
    if not text:
        raise Unprocessable("A reason is required", code="reason_required")
    return text[:MAX_REASON]


def confirm(
    *,
    finding_id: int,
    actor: str,
    reason: str | None,
    attendance_ids: list[int] | None = None,
    now: datetime | None = None,
) -> Finding:
    """Confirm the finding and void the check-ins it names (all, or the `attendance_ids`
    among them), each through a correction whose reason names the finding. A check-in
    voided already is left as it is. All or nothing, in one transaction."""
    note = _reason(reason)
    with write_transaction() as session:
        finding = _open_locked(session, finding_id)
        named = list(finding.attendance_ids or [])
        chosen = named if attendance_ids is None else list(dict.fromkeys(attendance_ids))
        strangers = sorted(set(chosen) - set(named))
        if strangers:
            raise Unprocessable(
                f"Finding {finding_id} does not name attendance {strangers[0]}",
                code="not_in_finding",
                details={"not_named": strangers},
            )
        live = set(
            session.scalars(
                select(Attendance.id)
                .where(Attendance.id.in_(chosen), Attendance.voided_at.is_(None))
                .with_for_update()  # a void beside ours waits, and is seen as done
            )
        )
        correction = corrections.Correction(
            actor=actor, reason=f"finding {finding.id} ({finding.rule}) confirmed: {note}"
        )
        for attendance_id in sorted(live):
            corrections.void(attendance_id=attendance_id, correction=correction)
        _decide(finding, CONFIRMED, actor, note, now)
        finding.voided_ids = sorted(live)
    return finding


def dismiss(*, finding_id: int, actor: str, reason: str | None, now=None) -> Finding:
    """Dismiss the finding: nothing is changed but the finding."""
    note = _reason(reason)
    with write_transaction() as session:
        finding = _open_locked(session, finding_id)
        _decide(finding, DISMISSED, actor, note, now)
    return finding


def _decide(finding: Finding, decision: str, actor: str, note: str, now) -> None:
    finding.state = decision
    finding.decided_by = actor
    finding.decided_at = now or utcnow()
    finding.decision_reason = note


def describe(finding: Finding) -> str:
    """The finding in one plain sentence, for the review queue."""
    evidence = finding.evidence or {}
    if finding.rule == "shared_client":
        return (
            f"{evidence.get('people_count')} different people checked in through the "
            f"{evidence.get('door')} door from one client ({evidence.get('client')}, the same "
            f"browser) within {int(evidence.get('window_seconds', 0) // 60)} minutes"
        )
    if finding.rule == "overlap":
        places = " and ".join(
            f"{entry.get('location')} (event {entry.get('event_id')})"
            for entry in evidence.get("check_ins", [])
        )
        return f"Person {evidence.get('person_id')} was checked in at {places} at the same time"
    if finding.rule == "clock_skew":
        minutes = abs(evidence.get("largest_skew_seconds", 0)) / 60
        return (
            f"{evidence.get('count')} check-ins from {evidence.get('source') or 'an app'} "
            f"({evidence.get('door')}) were dated up to {minutes:.0f} minutes away from "
            "when they arrived"
        )
    if finding.rule == "unknown_ids":
        return (
            f"{evidence.get('client')} sent {evidence.get('unknown')} check-ins naming unknown "
            f"people or events within {int(evidence.get('window_seconds', 0) // 60)} minutes"
        )
    return finding.rule
