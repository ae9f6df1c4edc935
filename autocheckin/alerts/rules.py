"""The two absence rules, as pure functions over one person's expected events.

An expected event is one that ended, is active and not cancelled, and where the person
has an enrolment or any mark. Its outcome is read from the current mark (corrected truth):
`attended` (a live present or late mark), `excused` (a live excused mark: neither an
absence nor attendance, left out of both rules) or `absent` (no mark, `absent`, or voided).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from autocheckin.alerts.models import ATTENDANCE_RATE, CONSECUTIVE_ABSENCES
from autocheckin.attendance.models import ATTENDED_STATUSES, STATUS_EXCUSED

ATTENDED, EXCUSED, ABSENT = "attended", "excused", "absent"


@dataclass(frozen=True)
class AlertRules:
    """ALERT_CONSECUTIVE_ABSENCES, ALERT_RATE_BELOW (percent), ALERT_PERIOD (days) and
    ALERT_MIN_EXPECTED, as the rules read them."""

    consecutive_absences: int = 3
    rate_below_percent: int = 75
    period_days: int = 30
    min_expected: int = 4

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> AlertRules:
        return cls(
            consecutive_absences=config["ALERT_CONSECUTIVE_ABSENCES"],
            rate_below_percent=config["ALERT_RATE_BELOW"],
            period_days=config["ALERT_PERIOD"],
            min_expected=config["ALERT_MIN_EXPECTED"],
        )

    @property
    def period(self) -> timedelta:
        return timedelta(days=self.period_days)


@dataclass(frozen=True)
class Expected:
    """One expected event of a person and what its current mark says."""

    event_id: int
    ended_at: datetime
    outcome: str


@dataclass(frozen=True)
class Verdict:
    """Whether a rule holds for a person now, with the figures and missed events behind it."""

    rule: str
    holds: bool
    figures: dict[str, Any] = field(default_factory=dict)
    event_ids: list[int] = field(default_factory=list)


def outcome_of(status: str | None, voided_at: datetime | None) -> str:
    """A mark's outcome: no mark (None) or a voided one is an absence."""
    if status is None or voided_at is not None:
        return ABSENT
    if status in ATTENDED_STATUSES:
        return ATTENDED
    return EXCUSED if status == STATUS_EXCUSED else ABSENT


def consecutive_absences(expected: Sequence[Expected], rules: AlertRules) -> Verdict:
    """The run of absences at the end of `expected` (oldest first); excused ones skipped."""
    streak: list[int] = []
    for item in reversed(expected):
        if item.outcome == EXCUSED:
            continue
        if item.outcome == ATTENDED:
            break
        streak.append(item.event_id)
    streak.reverse()
    return Verdict(
        rule=CONSECUTIVE_ABSENCES,
        holds=len(streak) >= rules.consecutive_absences,
        figures={"absences": len(streak), "threshold": rules.consecutive_absences},
        event_ids=streak,
    )


def attendance_rate(expected: Sequence[Expected], rules: AlertRules, *, now: datetime) -> Verdict:
    """Attended over expected (excused left out) among the events that ended in the period."""
    since = now - rules.period
    counted = [item for item in expected if item.ended_at >= since and item.outcome != EXCUSED]
    attended = sum(1 for item in counted if item.outcome == ATTENDED)
    total = len(counted)
    # Whole numbers, so that exactly 75 % is not below 75 % by a float's rounding.
    holds = total >= rules.min_expected and attended * 100 < rules.rate_below_percent * total
    return Verdict(
        rule=ATTENDANCE_RATE,
        holds=holds,
        figures={
            "rate": round(attended / total, 4) if total else None,
            "attended": attended,
            "expected": total,
            "threshold": rules.rate_below_percent / 100,
            "period_days": rules.period_days,
        },
        event_ids=[item.event_id for item in counted if item.outcome == ABSENT],
    )


def verdicts(expected: Sequence[Expected], rules: AlertRules, *, now: datetime) -> list[Verdict]:
    """Both rules for one person (`expected` oldest first)."""
    return [consecutive_absences(expected, rules), attendance_rate(expected, rules, now=now)]
