"""The suspicious-check-in rules: each reads what is stored, after commit, and says what it
saw as `Hit`s. Each rule is one plain sentence in the README; its setting is here.

- shared_client: one client (a web address and browser, or the Discord account that asked)
  checked in SHARED_CLIENT_PEOPLE different people within SHARED_CLIENT_WINDOW through the
  personal doors. Check-in apps are never counted here: a scanner at a door checks in a
  queue of different people by design.
- overlap: one person checked in to two events at different locations while both were on
  (the events overlap by at least OVERLAP_MINIMUM, and both check-ins fall inside it).
- clock_skew: a check-in app's `check_in_time` was CLOCK_SKEW or more away from when its
  request arrived (a back-dated scan, or a scanner whose clock is wrong); one finding per
  app source and hour, however many check-ins.
- unknown_ids: one client sent UNKNOWN_IDS or more check-ins naming people or events we do
  not know within UNKNOWN_WINDOW (someone guessing identifiers, or a scanner on the wrong
  roster). A request sent again (the same body) counts once.

Rows are streamed in order, so a pass holds one client's window at a time, not the table.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, func, or_, select
from sqlalchemy.orm import aliased

from autocheckin.attendance.models import (
    ATTENDED_STATUSES,
    Attendance,
    AttendanceChange,
    CheckInOrigin,
    Event,
)
from autocheckin.times import iso
from autocheckin.webhooks.models import RESOLVED, UNMATCHED, WebhookRequest

SHARED_CLIENT, OVERLAP, CLOCK_SKEW, UNKNOWN_IDS = (
    "shared_client",
    "overlap",
    "clock_skew",
    "unknown_ids",
)
RULES = (SHARED_CLIENT, OVERLAP, CLOCK_SKEW, UNKNOWN_IDS)
PERSONAL_DOORS = ("web", "discord")  # an admin's Discord check-in is a decision, not a door
STREAM_ROWS = 1000
MAX_EVIDENCE_IDS = 500  # a finding names at most this many check-ins (the count is exact)

ATTENDANCES = Attendance.__table__
EVENTS = Event.__table__
ORIGINS = CheckInOrigin.__table__
HISTORY = AttendanceChange.__table__
REQUESTS = WebhookRequest.__table__


@dataclass(frozen=True)
class FindingRules:
    shared_client_people: int
    shared_client_window: timedelta
    trusted_networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
    overlap_minimum: timedelta
    clock_skew: timedelta
    unknown_ids: int
    unknown_window: timedelta
    settle: timedelta
    first_pass_lookback: timedelta

    @classmethod
    def from_config(cls, config: Any) -> FindingRules:
        return cls(
            shared_client_people=config["FRAUD_SHARED_CLIENT_PEOPLE"],
            shared_client_window=timedelta(seconds=config["FRAUD_SHARED_CLIENT_WINDOW"]),
            trusted_networks=tuple(config["FRAUD_TRUSTED_NETWORKS"]),
            overlap_minimum=timedelta(seconds=config["FRAUD_OVERLAP_MINIMUM"]),
            clock_skew=timedelta(seconds=config["FRAUD_CLOCK_SKEW"]),
            unknown_ids=config["FRAUD_UNKNOWN_IDS"],
            unknown_window=timedelta(seconds=config["FRAUD_UNKNOWN_WINDOW"]),
            settle=timedelta(seconds=config["FRAUD_SETTLE"]),
            first_pass_lookback=timedelta(seconds=config["FRAUD_FIRST_PASS_LOOKBACK"]),
        )

    @property
    def widest_window(self) -> timedelta:
        return max(self.shared_client_window, self.unknown_window)


@dataclass
class Hit:
    """What one rule saw once. `key` names it for good (the same pattern seen again has the
    same key); `merge_window`, when set, lets a later hit on the same subject that starts
    within it join the earlier finding instead (a burst seen from a later start)."""

    rule: str
    subject: str
    key: str
    first_seen: datetime
    last_seen: datetime
    attendance_ids: list[int] = field(default_factory=list)
    evidence: dict[str, Any] = field(default_factory=dict)
    merge_window: timedelta | None = None


def _stream(connection: Connection, statement: Any) -> Iterator[Any]:
    yield from connection.execution_options(stream_results=True, yield_per=STREAM_ROWS).execute(
        statement
    )


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _is_trusted(client: str, networks: tuple[Any, ...]) -> bool:
    if not networks or client.startswith("discord:"):
        return False
    try:
        address = ipaddress.ip_network(client, strict=False)
    except ValueError:
        return False
    return any(
        address.subnet_of(network) for network in networks if network.version == address.version
    )


# --- shared_client ------------------------------------------------------------------------------


@dataclass
class _Burst:
    first: datetime
    last: datetime
    rows: dict[int, tuple[int, datetime]] = field(default_factory=dict)  # attendance: person, at


def shared_client(connection: Connection, start: datetime, end: datetime, rules: FindingRules):
    """Personal-door check-ins in [start, end], one client (and browser) at a time."""
    window, needed = rules.shared_client_window, rules.shared_client_people
    statement = (
        select(
            ORIGINS.c.door,
            ORIGINS.c.client,
            ORIGINS.c.user_agent,
            ORIGINS.c.recorded_at,
            ORIGINS.c.attendance_id,
            ATTENDANCES.c.student_id,
        )
        .join(ATTENDANCES, ATTENDANCES.c.id == ORIGINS.c.attendance_id)
        .where(
            ORIGINS.c.recorded_at >= start,
            ORIGINS.c.recorded_at <= end,
            ORIGINS.c.door.in_(PERSONAL_DOORS),
            ATTENDANCES.c.voided_at.is_(None),
        )
        .order_by(
            ORIGINS.c.client, ORIGINS.c.user_agent, ORIGINS.c.recorded_at, ORIGINS.c.attendance_id
        )
    )
    group: tuple[str, str] | None = None
    recent: deque[Any] = deque()
    bursts: list[_Burst] = []
    door = ""

    def finish() -> Iterator[Hit]:
        client, agent = group or ("", "")
        for burst in bursts:
            people = sorted({person for person, _ in burst.rows.values()})
            subject = f"{door}:{client}|{_digest(agent)}"
            yield Hit(
                rule=SHARED_CLIENT,
                subject=subject,
                key=f"{SHARED_CLIENT}:{_digest(subject)}:{iso(burst.first)}",
                first_seen=burst.first,
                last_seen=burst.last,
                attendance_ids=sorted(burst.rows)[:MAX_EVIDENCE_IDS],
                evidence={
                    "door": door,
                    "client": client,
                    "user_agent": agent,
                    "people": people[:MAX_EVIDENCE_IDS],
                    "people_count": len(people),
                    "check_ins": len(burst.rows),
                    "window_seconds": window.total_seconds(),
                    "threshold": needed,
                },
                merge_window=window,
            )

    for row in _stream(connection, statement):
        if (row.client, row.user_agent) != group:
            if group is not None:
                yield from finish()
            group, door, bursts = (row.client, row.user_agent), row.door, []
            recent.clear()
        if _is_trusted(row.client, rules.trusted_networks):
            continue
        recent.append(row)
        while row.recorded_at - recent[0].recorded_at > window:
            recent.popleft()
        if len({item.student_id for item in recent}) < needed:
            continue
        if bursts and row.recorded_at - bursts[-1].last <= window:
            burst = bursts[-1]
        else:
            burst = _Burst(first=recent[0].recorded_at, last=row.recorded_at)
            bursts.append(burst)
        burst.last = row.recorded_at
        for item in recent:
            burst.rows[item.attendance_id] = (item.student_id, item.recorded_at)
    if group is not None:
        yield from finish()


# --- overlap ------------------------------------------------------------------------------------


def _place(location: str | None) -> str:
    return " ".join((location or "").lower().split())


@dataclass(frozen=True)
class _Span:
    event_id: int
    start: datetime
    end: datetime
    location: str


def _parallel_events(
    connection: Connection, after_id: int, minimum: timedelta
) -> dict[int, dict[int, tuple]]:
    """Events at different places that overlap by `minimum` or more, among those the
    check-ins after `after_id` went to and the events running beside them: for each, its
    partners and the stretch both are on. One sweep in start order over the events between
    the first start and the last end of those events, not over the whole table."""
    placed = and_(EVENTS.c.end_time.is_not(None), func.trim(EVENTS.c.location) != "")
    touched_ids = select(ATTENDANCES.c.event_id).where(ATTENDANCES.c.id > after_id).distinct()
    bounds = connection.execute(
        select(func.min(EVENTS.c.start_time), func.max(EVENTS.c.end_time)).where(
            EVENTS.c.id.in_(touched_ids), placed
        )
    ).one()
    if bounds[0] is None:
        return {}
    touched = set(
        connection.execute(
            select(EVENTS.c.id).where(EVENTS.c.id.in_(touched_ids), placed)
        ).scalars()
    )
    statement = (
        select(EVENTS.c.id, EVENTS.c.start_time, EVENTS.c.end_time, EVENTS.c.location)
        .where(placed, EVENTS.c.start_time < bounds[1], EVENTS.c.end_time > bounds[0])
        .order_by(EVENTS.c.start_time, EVENTS.c.id)
    )
    partners: dict[int, dict[int, tuple]] = {}
    running: list[_Span] = []
    for row in _stream(connection, statement):
        span = _Span(row.id, row.start_time, row.end_time, _place(row.location))
        running = [other for other in running if other.end - span.start >= minimum]
        for other in running:
            if span.event_id not in touched and other.event_id not in touched:
                continue
            both_on = (span.start, min(span.end, other.end))
            if other.location != span.location and both_on[1] - both_on[0] >= minimum:
                partners.setdefault(span.event_id, {})[other.event_id] = both_on
                partners.setdefault(other.event_id, {})[span.event_id] = both_on
        running.append(span)
    return partners


def overlap(connection: Connection, after_id: int, rules: FindingRules) -> Iterator[Hit]:
    """Each check-in stored after `after_id` at an event with a parallel one elsewhere,
    against the same person's live check-in there."""
    partners = _parallel_events(connection, after_id, rules.overlap_minimum)
    if not partners:
        return
    other = aliased(ATTENDANCES)
    parallel = list(partners)
    counted = and_(ATTENDANCES.c.voided_at.is_(None), ATTENDANCES.c.status.in_(ATTENDED_STATUSES))
    seen: set[tuple[int, int]] = set()
    for chunk in range(0, len(parallel), STREAM_ROWS):
        events = parallel[chunk : chunk + STREAM_ROWS]
        elsewhere = sorted({partner for event in events for partner in partners[event]})
        statement = (
            select(
                ATTENDANCES.c.id.label("a_id"),
                ATTENDANCES.c.student_id,
                ATTENDANCES.c.event_id.label("a_event"),
                ATTENDANCES.c.checked_in_at.label("a_at"),
                other.c.id.label("b_id"),
                other.c.event_id.label("b_event"),
                other.c.checked_in_at.label("b_at"),
            )
            .join(
                other,
                and_(
                    other.c.student_id == ATTENDANCES.c.student_id,
                    other.c.event_id.in_(elsewhere),
                    other.c.id != ATTENDANCES.c.id,
                    other.c.voided_at.is_(None),
                    other.c.status.in_(ATTENDED_STATUSES),
                    other.c.checked_in_at.is_not(None),
                ),
            )
            .where(
                ATTENDANCES.c.id > after_id,
                ATTENDANCES.c.event_id.in_(events),
                ATTENDANCES.c.checked_in_at.is_not(None),
                counted,
            )
            .order_by(ATTENDANCES.c.id, other.c.id)
        )
        for row in _stream(connection, statement):
            both_on = partners[row.a_event].get(row.b_event)
            pair = (min(row.a_id, row.b_id), max(row.a_id, row.b_id))
            if both_on is None or pair in seen:
                continue
            seen.add(pair)
            if not all(both_on[0] <= at <= both_on[1] for at in (row.a_at, row.b_at)):
                continue
            yield _overlap_hit(connection, row, pair, both_on, rules)


def _overlap_hit(connection: Connection, row: Any, pair: tuple[int, int], both_on, rules) -> Hit:
    places = dict(
        connection.execute(
            select(EVENTS.c.id, EVENTS.c.location).where(
                EVENTS.c.id.in_((row.a_event, row.b_event))
            )
        ).all()
    )
    return Hit(
        rule=OVERLAP,
        subject=f"person:{row.student_id}",
        key=f"{OVERLAP}:{pair[0]}:{pair[1]}",
        first_seen=min(row.a_at, row.b_at),
        last_seen=max(row.a_at, row.b_at),
        attendance_ids=list(pair),
        evidence={
            "person_id": row.student_id,
            "check_ins": [
                {
                    "attendance_id": attendance_id,
                    "event_id": event_id,
                    "location": places.get(event_id),
                    "checked_in_at": iso(at),
                }
                for attendance_id, event_id, at in sorted(
                    [(row.a_id, row.a_event, row.a_at), (row.b_id, row.b_event, row.b_at)]
                )
            ],
            "both_on": [iso(both_on[0]), iso(both_on[1])],
            "minimum_overlap_seconds": rules.overlap_minimum.total_seconds(),
        },
    )


# --- clock_skew ---------------------------------------------------------------------------------


def clock_skew(connection: Connection, after_id: int, rules: FindingRules) -> Iterator[Hit]:
    """Check-in apps' check-ins stored after `after_id`, grouped by source and hour.

    Only a check-in app's own first mark counts: its first history entry names a webhook
    door, and not a replay (a replay runs a request received long ago, on its own time).
    """
    first = HISTORY
    statement = (
        select(
            ATTENDANCES.c.id,
            ATTENDANCES.c.source,
            ATTENDANCES.c.checked_in_at,
            ATTENDANCES.c.created_at,
            first.c.actor,
        )
        .join(first, and_(first.c.attendance_id == ATTENDANCES.c.id, first.c.seq == 1))
        .where(
            ATTENDANCES.c.id > after_id,
            ATTENDANCES.c.checked_in_at.is_not(None),
            ATTENDANCES.c.voided_at.is_(None),
            first.c.actor.like("webhook:%"),
            ~first.c.actor.like("%:replay of request %"),
        )
        .order_by(ATTENDANCES.c.id)
    )
    groups: dict[str, Hit] = {}
    for row in _stream(connection, statement):
        skew = (row.checked_in_at - row.created_at).total_seconds()
        if abs(skew) < rules.clock_skew.total_seconds():
            continue
        door = row.actor.split(":", 2)[1]
        source = row.source or "-"
        hour = row.created_at.replace(minute=0, second=0, microsecond=0)
        key = f"{CLOCK_SKEW}:{_digest(door + chr(0) + source)}:{iso(hour)}"
        hit = groups.get(key)
        if hit is None:
            hit = groups[key] = Hit(
                rule=CLOCK_SKEW,
                subject=f"source:{door}:{source}"[:200],
                key=key,
                first_seen=row.created_at,
                last_seen=row.created_at,
                evidence={
                    "door": door,
                    "source": row.source,
                    "threshold_seconds": rules.clock_skew.total_seconds(),
                    "count": 0,
                    "largest_skew_seconds": 0.0,
                    "examples": [],
                },
            )
        hit.last_seen = max(hit.last_seen, row.created_at)
        hit.evidence["count"] += 1
        if abs(skew) > abs(hit.evidence["largest_skew_seconds"]):
            hit.evidence["largest_skew_seconds"] = skew
        if len(hit.attendance_ids) < MAX_EVIDENCE_IDS:
            hit.attendance_ids.append(row.id)
        if len(hit.evidence["examples"]) < 5:
            hit.evidence["examples"].append(
                {
                    "attendance_id": row.id,
                    "check_in_time": iso(row.checked_in_at),
                    "arrived_at": iso(row.created_at),
                }
            )
    yield from groups.values()


# --- unknown_ids --------------------------------------------------------------------------------


def _unknown_in(body: Any) -> int:
    """How many check-ins a logged answer refused as unknown: a batch says, one is one."""
    if isinstance(body, dict) and isinstance(body.get("totals"), dict):
        count = body["totals"].get("not_found", 0)
        return count if isinstance(count, int) else 0
    return 1


def unknown_ids(connection: Connection, start: datetime, end: datetime, rules: FindingRules):
    """Webhook requests received in [start, end] that named someone or something unknown."""
    window, needed = rules.unknown_window, rules.unknown_ids
    statement = (
        select(
            REQUESTS.c.id,
            REQUESTS.c.client_address,
            REQUESTS.c.endpoint,
            REQUESTS.c.received_at,
            REQUESTS.c.body_sha256,
            REQUESTS.c.response_body,
        )
        .where(
            REQUESTS.c.received_at >= start,
            REQUESTS.c.received_at <= end,
            REQUESTS.c.client_address.is_not(None),
            or_(REQUESTS.c.outcome == UNMATCHED, REQUESTS.c.outcome == RESOLVED),
        )
        .order_by(REQUESTS.c.client_address, REQUESTS.c.received_at, REQUESTS.c.id)
    )
    client: str | None = None
    recent: deque[tuple[datetime, int, int]] = deque()  # received, request id, unknown count
    in_window = 0
    bodies: set[str] = set()
    burst: dict[str, Any] | None = None
    bursts: list[dict[str, Any]] = []

    def finish() -> Iterator[Hit]:
        for found in bursts:
            yield Hit(
                rule=UNKNOWN_IDS,
                subject=f"client:{client}",
                key=f"{UNKNOWN_IDS}:{_digest(client or '')}:{iso(found['first'])}",
                first_seen=found["first"],
                last_seen=found["last"],
                evidence={
                    "client": client,
                    "unknown": found["unknown"],
                    "requests": sorted([id_, n] for id_, n in found["requests"].items())[
                        :MAX_EVIDENCE_IDS
                    ],
                    "window_seconds": window.total_seconds(),
                    "threshold": needed,
                },
                merge_window=window,
            )

    for row in _stream(connection, statement):
        if row.client_address != client:
            if client is not None:
                yield from finish()
            client, bursts, burst, in_window = row.client_address, [], None, 0
            recent.clear()
            bodies = set()
        if row.body_sha256 in bodies:
            continue  # the same request again (an app's retry): its unknowns counted once
        bodies.add(row.body_sha256)
        unknown = _unknown_in(row.response_body)
        recent.append((row.received_at, row.id, unknown))
        in_window += unknown
        while row.received_at - recent[0][0] > window:
            in_window -= recent.popleft()[2]
        if in_window < needed:
            continue
        if burst is not None and row.received_at - burst["last"] <= window:
            burst["last"] = row.received_at
        else:
            burst = {"first": recent[0][0], "last": row.received_at, "requests": {}, "unknown": 0}
            bursts.append(burst)
        for _received, request_id, count in recent:
            if request_id not in burst["requests"]:
                burst["requests"][request_id] = count
                burst["unknown"] += count
    if client is not None:
        yield from finish()
