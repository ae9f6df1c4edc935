"""A detector pass: every rule over what was stored since the last pass, after commit.

Nothing here runs in a check-in's request. The leader's `detect_findings` job runs a pass
every FRAUD_DETECT_INTERVAL; a pass reads check-ins by id past its cursor, and the
time-window rules from the cursor's time less their window. A check-in is read again until
it is FRAUD_SETTLE old (a PostgreSQL transaction may commit a lower id after a higher
one), so a pass sees each pattern whole, and `Finding.dedupe_key` and the merge below make
a pattern seen twice one finding: each new finding is announced once (`fraud.detected`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import select

from autocheckin import state
from autocheckin.attendance import signals
from autocheckin.attendance.models import Attendance
from autocheckin.database import dialect_insert, highest_id_before, write_transaction
from autocheckin.extensions import db
from autocheckin.findings import rules as rule_set
from autocheckin.findings.models import OPEN, Finding
from autocheckin.findings.rules import MAX_EVIDENCE_IDS, FindingRules, Hit
from autocheckin.times import iso, parse_iso

log = logging.getLogger("autocheckin.findings")

CURSOR_KEY = "findings.cursor"
MAX_FOLLOWING = 20  # decided findings one pattern may follow in one pass (a bound, not a rule)
FINDINGS = Finding.__table__
ATTENDANCES = Attendance.__table__


@dataclass(frozen=True)
class PassResult:
    seen: int
    created: int
    merged: int
    after_attendance_id: int


def detect(*, now: datetime, rules: FindingRules, since: datetime | None = None) -> PassResult:
    """One pass; `since` overrides the cursor (a first pass looks FRAUD_FIRST_PASS_LOOKBACK
    back, a benchmark or an operator may look further)."""
    cursor = state.get(CURSOR_KEY) or {}
    if since is None and cursor:
        since, after_id = parse_iso(cursor["scanned_until"]), int(cursor["after_attendance_id"])
    else:
        since = since or now - rules.first_pass_lookback
        after_id = highest_id_before(ATTENDANCES.c.id, ATTENDANCES.c.created_at, since)
    connection = db.session.connection()
    hits: list[Hit] = []
    hits += rule_set.shared_client(connection, since - rules.shared_client_window, now, rules)
    hits += rule_set.overlap(connection, after_id, rules)
    hits += rule_set.clock_skew(connection, after_id, rules)
    hits += rule_set.unknown_ids(connection, since - rules.unknown_window, now, rules)
    settled = now - rules.settle
    next_after_id = highest_id_before(
        ATTENDANCES.c.id, ATTENDANCES.c.created_at, settled, after=after_id
    )
    created, merged = _save(hits, now=now)
    state.set(
        CURSOR_KEY,
        {"scanned_until": iso(max(since, settled)), "after_attendance_id": next_after_id},
    )
    if created:
        log.info("findings: %d new (%d seen again)", len(created), merged)
    return PassResult(len(hits), len(created), merged, next_after_id)


def _save(hits: list[Hit], *, now: datetime) -> tuple[list[int], int]:
    """Insert each new pattern, add to the finding of one seen before; one transaction."""
    created: list[dict[str, Any]] = []
    merged = 0
    with write_transaction() as session:
        for hit in hits:
            made = _save_one(session, hit, now=now)
            if made is None:
                merged += 1
            else:
                created.append(made)
        if created:
            signals.findings_created.send(session, findings=created)
    return [item["finding_id"] for item in created], merged


def _save_one(session: Any, hit: Hit, *, now: datetime) -> dict[str, Any] | None:
    """The hit added to its open finding (None), or a new finding's announcement.

    A decided finding is never changed: what a hit adds to it (check-ins or requests it
    does not name) becomes a new finding that follows it, and gathers what comes next
    until it is decided in turn. A pattern seen again with nothing new makes nothing.
    """
    earlier = _earlier(session, hit)
    original = hit.key[:250]
    for _ in range(MAX_FOLLOWING):
        if earlier is None:
            break
        if earlier.state == OPEN:
            if _merge(session, earlier, hit):
                return None
            # Decided between our look and our write: read it again, as decided.
            earlier = session.execute(select(FINDINGS).where(FINDINGS.c.id == earlier.id)).first()
            continue
        hit = _beyond(hit, earlier, key=f"{original}:after:{earlier.id}")
        if hit is None:
            return None
        earlier = session.execute(select(FINDINGS).where(FINDINGS.c.dedupe_key == hit.key)).first()
    else:
        return None
    inserted = session.execute(
        dialect_insert(session)(FINDINGS)
        .values(
            rule=hit.rule,
            subject=hit.subject[:200],
            dedupe_key=hit.key[:300],
            first_seen_at=hit.first_seen,
            last_seen_at=hit.last_seen,
            evidence=hit.evidence,
            attendance_ids=hit.attendance_ids,
            state=OPEN,
            created_at=now,
        )
        .on_conflict_do_nothing(index_elements=["dedupe_key"])
        .returning(FINDINGS.c.id)
    ).scalar()
    if inserted is None:
        return None
    return announced(inserted, hit, created_at=now)


def _named(rule: str, attendance_ids: list[int] | None, evidence: dict[str, Any] | None) -> set:
    """What a finding is about: its check-ins, or for unknown_ids the requests."""
    if rule == rule_set.UNKNOWN_IDS:
        return {request_id for request_id, _ in (evidence or {}).get("requests", [])}
    return set(attendance_ids or [])


def _beyond(hit: Hit, decided: Any, *, key: str) -> Hit | None:
    """The part of `hit` a decided finding does not name, as a finding that follows it."""
    fresh = _named(hit.rule, hit.attendance_ids, hit.evidence) - _named(
        decided.rule, decided.attendance_ids, decided.evidence
    )
    if not fresh:
        return None
    evidence = {**hit.evidence, "follows_finding": decided.id}
    if hit.rule == rule_set.UNKNOWN_IDS:
        requests = [[id_, n] for id_, n in hit.evidence["requests"] if id_ in fresh]
        evidence.update(requests=requests, unknown=sum(n for _, n in requests))
    ids = [id_ for id_ in hit.attendance_ids if id_ in fresh]
    return replace(hit, key=key, attendance_ids=ids, evidence=evidence, merge_window=None)


def _earlier(session: Any, hit: Hit) -> Any:
    """The finding this hit is the same pattern as: the same key, or for a burst the same
    subject seen within the rule's window."""
    row = session.execute(select(FINDINGS).where(FINDINGS.c.dedupe_key == hit.key[:300])).first()
    if row is not None or hit.merge_window is None:
        return row
    return session.execute(
        select(FINDINGS)
        .where(
            FINDINGS.c.rule == hit.rule,
            FINDINGS.c.subject == hit.subject[:200],
            FINDINGS.c.last_seen_at >= hit.first_seen - hit.merge_window,
            FINDINGS.c.first_seen_at <= hit.last_seen + hit.merge_window,
        )
        .order_by(FINDINGS.c.last_seen_at.desc())
        .limit(1)
    ).first()


def _merge(session: Any, earlier: Any, hit: Hit) -> bool:
    """Add the hit to an open finding; False when it was decided meanwhile (unchanged)."""
    ids = sorted(set(earlier.attendance_ids or []) | set(hit.attendance_ids))[:MAX_EVIDENCE_IDS]
    evidence = merged_evidence(hit.rule, dict(earlier.evidence or {}), hit.evidence, ids)
    if "follows_finding" in (earlier.evidence or {}):
        evidence["follows_finding"] = earlier.evidence["follows_finding"]
    changed = session.execute(
        FINDINGS.update()
        .where(FINDINGS.c.id == earlier.id, FINDINGS.c.state == OPEN)
        .values(
            attendance_ids=ids,
            evidence=evidence,
            first_seen_at=min(earlier.first_seen_at, hit.first_seen),
            last_seen_at=max(earlier.last_seen_at, hit.last_seen),
        )
    )
    return changed.rowcount == 1


def merged_evidence(
    rule: str, old: dict[str, Any], new: dict[str, Any], ids: list[int]
) -> dict[str, Any]:
    """One finding's evidence after a pass saw more of its pattern (or the same again)."""
    if rule == rule_set.SHARED_CLIENT:
        people = sorted(set(old.get("people", [])) | set(new.get("people", [])))
        return {
            **new,
            "people": people[:MAX_EVIDENCE_IDS],
            "people_count": max(len(people), old.get("people_count", 0)),
            "check_ins": max(len(ids), old.get("check_ins", 0), new.get("check_ins", 0)),
        }
    if rule == rule_set.CLOCK_SKEW:
        largest = max(
            old.get("largest_skew_seconds", 0), new.get("largest_skew_seconds", 0), key=abs
        )
        count = max(len(ids), old.get("count", 0), new.get("count", 0))
        return {**new, "count": count, "largest_skew_seconds": largest}
    if rule == rule_set.UNKNOWN_IDS:
        requests = dict(map(tuple, old.get("requests", []))) | dict(map(tuple, new["requests"]))
        return {
            **new,
            "requests": sorted([id_, count] for id_, count in requests.items())[:MAX_EVIDENCE_IDS],
            "unknown": max(sum(requests.values()), old.get("unknown", 0), new.get("unknown", 0)),
        }
    return new


def announced(finding_id: int, hit: Hit, *, created_at: datetime) -> dict[str, Any]:
    """A new finding as `fraud.detected` data."""
    return {
        "finding_id": finding_id,
        "rule": hit.rule,
        "subject": hit.subject,
        "state": OPEN,
        "first_seen_at": iso(hit.first_seen),
        "last_seen_at": iso(hit.last_seen),
        "attendance_ids": hit.attendance_ids,
        "evidence": hit.evidence,
        "created_at": iso(created_at),
    }
