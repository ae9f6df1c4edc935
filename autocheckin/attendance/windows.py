"""Check-in windows and event status: pure functions of an event, a moment and the rules."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from autocheckin.attendance.errors import Invalid, OutsideWindow
from autocheckin.attendance.models import STATUS_LATE, STATUS_PRESENT, Event

UPCOMING, ACTIVE, ENDED = "upcoming", "active", "ended"


@dataclass(frozen=True)
class CheckInRules:
    """The check-in policy, from config: window opening, lateness, and client clock bounds."""

    opens_before: timedelta = timedelta(minutes=15)
    late_after: timedelta = timedelta(minutes=10)
    max_future: timedelta = timedelta(minutes=5)
    max_backdate: timedelta | None = None

    @classmethod
    def from_config(cls, config: Any) -> CheckInRules:
        backdate = config.get("CHECKIN_MAX_BACKDATE")
        return cls(
            opens_before=timedelta(seconds=config["CHECKIN_OPENS_BEFORE"]),
            late_after=timedelta(seconds=config["LATE_AFTER"]),
            max_future=timedelta(seconds=config["CHECKIN_MAX_FUTURE"]),
            max_backdate=None if backdate is None else timedelta(seconds=backdate),
        )


@dataclass(frozen=True)
class EventStatus:
    status: str
    can_attend: bool
    seconds_until_start: int
    seconds_until_end: int | None


def window_contains(event: Event, moment: datetime, rules: CheckInRules) -> bool:
    """Only events with an end_time have a window; both ends are included."""
    if event.end_time is None:
        return False
    return event.start_time - rules.opens_before <= moment <= event.end_time


def pick_event(candidates: Sequence[Any], moment: datetime, rules: CheckInRules) -> Any:
    """Of events sharing a name: first those no account made (check-in apps, the sync, the
    operator), so a web user's same-named decoy never takes a scanner's check-ins; then the
    one whose window contains `moment`, else the one whose start is nearest to it. Two that
    are equally good are refused with their ids, never settled silently (by age, say)."""
    if len(candidates) == 1:
        return candidates[0]

    def rank(event: Any) -> tuple[bool, bool, float]:
        return (
            event.created_by_id is not None,
            not window_contains(event, moment, rules),
            abs((event.start_time - moment).total_seconds()),
        )

    ranked = sorted(candidates, key=lambda event: (rank(event), event.id))
    if rank(ranked[0]) == rank(ranked[1]):
        tied = [event.id for event in ranked if rank(event) == rank(ranked[0])]
        raise Invalid(
            f"Several events are named {ranked[0].name} (ids {', '.join(map(str, tied))}); "
            "send the event's id as event_identifier",
            code="ambiguous_event",
        )
    return ranked[0]


def check_window(event: Event, moment: datetime, rules: CheckInRules) -> None:
    """Raise OutsideWindow when `moment` is outside the event's check-in window."""
    if event.end_time is None:
        return
    if moment < event.start_time - rules.opens_before:
        minutes = math.ceil((event.start_time - moment).total_seconds() / 60)
        raise OutsideWindow(
            f"Event hasn't started yet. Starts in {minutes} minutes", code="event_not_started"
        )
    if moment > event.end_time:
        raise OutsideWindow("Event has already ended", code="event_ended")


def attendance_status(event: Event, moment: datetime, rules: CheckInRules) -> str:
    return STATUS_LATE if moment > event.start_time + rules.late_after else STATUS_PRESENT


def event_status(event: Event, now: datetime, rules: CheckInRules) -> EventStatus:
    """upcoming / active / ended, judged on the check-in window; both boundaries are active."""
    until_start = math.ceil((event.start_time - now).total_seconds())
    until_end = (
        None if event.end_time is None else math.ceil((event.end_time - now).total_seconds())
    )
    if event.end_time is None:
        status = ACTIVE if now >= event.start_time - rules.opens_before else UPCOMING
    elif now < event.start_time - rules.opens_before:
        status = UPCOMING
    elif now > event.end_time:
        status = ENDED
    else:
        status = ACTIVE
    return EventStatus(
        status=status,
        can_attend=status == ACTIVE or event.end_time is None,
        seconds_until_start=max(0, until_start),
        seconds_until_end=None if until_end is None else max(0, until_end),
    )
