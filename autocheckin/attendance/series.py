"""Recurring events: a series' rule, its occurrences in local time, and their edits.

A rule is RFC 5545's RRULE restricted to FREQ=DAILY|WEEKLY with INTERVAL, BYDAY and UNTIL
or COUNT, parsed by `dateutil.rrule`. It is expanded in naive local wall time, and each
occurrence is then placed in the series' IANA zone with `zoneinfo`: 10:00 Europe/London is
10:00 local in winter and in summer. A local time that does not exist (the spring gap) is
read with the offset before the change, as PEP 495 says (02:30 becomes 03:30); one that
happens twice (the autumn fold) is its first. Occurrences are events keyed by the local
start the rule gave them, inserted with ON CONFLICT DO NOTHING: generating twice (two job
runs, two replicas) makes each once.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from dateutil.rrule import rrule, rrulestr
from sqlalchemy import func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from autocheckin.attendance import signals
from autocheckin.attendance.errors import Conflict, NotFound, Unprocessable
from autocheckin.attendance.models import (
    Attendance,
    Enrolment,
    Event,
    EventSeries,
    SeriesEnrolment,
)
from autocheckin.attendance.service import find_student
from autocheckin.database import write_transaction
from autocheckin.extensions import db
from autocheckin.times import EARLIEST, LATEST, utcnow

SUPPORTED_PARTS = ("FREQ", "INTERVAL", "BYDAY", "UNTIL", "COUNT")
FREQUENCIES = ("DAILY", "WEEKLY")
WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
MAX_INTERVAL = 366
LOCAL_FORMAT = "%Y-%m-%dT%H:%M:%S"
_UNTIL = re.compile(r"^(\d{8})(?:T(\d{6})(Z?))?$")
ENROLMENT_SOURCE = "series"


@dataclass(frozen=True)
class SeriesRules:
    """The series settings, from config."""

    default_timezone: str = "UTC"
    horizon: timedelta = timedelta(days=90)
    max_occurrences: int = 500

    @classmethod
    def from_config(cls, config: Any) -> SeriesRules:
        return cls(
            default_timezone=config["SERIES_DEFAULT_TIMEZONE"],
            horizon=timedelta(seconds=config["SERIES_HORIZON"]),
            max_occurrences=config["SERIES_MAX_OCCURRENCES"],
        )


def invalid_rule(message: str) -> Unprocessable:
    return Unprocessable(message, code="invalid_rule")


# --- time zones and local times ---------------------------------------------------------------


@functools.cache
def _known_zones() -> frozenset[str]:
    return frozenset(available_timezones())


def zone(name: str) -> ZoneInfo:
    """The IANA zone `name`; 422 for an unknown one (a folder such as `Europe` too)."""
    try:
        if name not in _known_zones():
            raise ZoneInfoNotFoundError(name)
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError, OSError):
        raise Unprocessable(
            f"Unknown time zone {name!r}: use an IANA name like Europe/London",
            code="unknown_timezone",
        ) from None


def local_text(moment: datetime) -> str:
    return moment.strftime(LOCAL_FORMAT)


def parse_local(text: str) -> datetime:
    return datetime.strptime(text, LOCAL_FORMAT)  # noqa: DTZ007 - naive local wall time


def to_utc(local: datetime, tz: ZoneInfo) -> datetime:
    """A naive local wall time in `tz` as an aware UTC instant (PEP 495: fold 0)."""
    return local.replace(tzinfo=tz).astimezone(UTC)


def to_local(moment: datetime, tz: ZoneInfo) -> datetime:
    """An aware instant as naive local wall time in `tz`."""
    return moment.astimezone(tz).replace(tzinfo=None)


# --- the rule ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """A parsed rule; `until` is naive local time in the series' zone."""

    freq: str
    interval: int = 1
    byday: tuple[str, ...] = ()
    until: datetime | None = None
    count: int | None = None

    @property
    def is_open(self) -> bool:
        return self.until is None and self.count is None

    def text(self) -> str:
        """The stored form (UNTIL local, no Z): what `parse_stored` reads back."""
        parts = [f"FREQ={self.freq}", f"INTERVAL={self.interval}"]
        if self.byday:
            parts.append("BYDAY=" + ",".join(self.byday))
        if self.until is not None:
            parts.append("UNTIL=" + self.until.strftime("%Y%m%dT%H%M%S"))
        if self.count is not None:
            parts.append(f"COUNT={self.count}")
        return ";".join(parts)

    def ical(self, tz: ZoneInfo) -> dict[str, Any]:
        """For an iCalendar RRULE: UNTIL in UTC, as RFC 5545 wants with a TZID start."""
        recur: dict[str, Any] = {"FREQ": self.freq, "INTERVAL": self.interval}
        if self.byday:
            recur["BYDAY"] = list(self.byday)
        if self.until is not None:
            recur["UNTIL"] = to_utc(self.until, tz)
        if self.count is not None:
            recur["COUNT"] = self.count
        return recur

    def expand(self, start_local: datetime) -> rrule:
        """The dateutil rule over naive local times from `start_local`."""
        text = ";".join(part for part in self.text().split(";") if not part.startswith("UNTIL="))
        expanded = rrulestr(text, dtstart=start_local)
        if self.until is not None:
            expanded = expanded.replace(until=self.until)
        return expanded


def parse_rule(text: str, *, tz: ZoneInfo) -> Rule:
    """An RRULE as a client sends it ("FREQ=WEEKLY;BYDAY=TU,TH;COUNT=10", "RRULE:" allowed);
    422 naming the part that is malformed or unsupported."""
    body = text.strip()
    if body.upper().startswith("RRULE:"):
        body = body[len("RRULE:") :]
    if not body:
        raise invalid_rule("The rule is empty: send e.g. FREQ=WEEKLY;BYDAY=TU;COUNT=10")
    parts: dict[str, str] = {}
    for part in body.split(";"):
        name, equals, value = part.partition("=")
        name, value = name.strip().upper(), value.strip().upper()
        if not equals or not name or not value:
            raise invalid_rule(f"Rule part {part!r} is not NAME=VALUE")
        if name not in SUPPORTED_PARTS:
            raise invalid_rule(
                f"Rule part {name} is not supported (supported: {', '.join(SUPPORTED_PARTS)})"
            )
        if name in parts:
            raise invalid_rule(f"Rule part {name} is given twice")
        parts[name] = value
    if "FREQ" not in parts:
        raise invalid_rule("The rule needs FREQ (DAILY or WEEKLY)")
    if parts["FREQ"] not in FREQUENCIES:
        raise invalid_rule(f"FREQ={parts['FREQ']} is not supported (DAILY or WEEKLY)")
    if "UNTIL" in parts and "COUNT" in parts:
        raise invalid_rule("UNTIL and COUNT may not both be given (RFC 5545)")
    rule = Rule(
        freq=parts["FREQ"],
        interval=_whole(parts, "INTERVAL", 1, MAX_INTERVAL) or 1,
        byday=_weekdays(parts.get("BYDAY")),
        until=_until(parts.get("UNTIL"), tz),
        count=_whole(parts, "COUNT", 1, None),
    )
    try:  # dateutil is the judge of the whole; the checks above name the part
        rule.expand(datetime(2000, 1, 1))  # noqa: DTZ001 - naive local wall time
    except ValueError as error:
        raise invalid_rule(f"The rule cannot be read: {error}") from None
    return rule


def parse_stored(text: str) -> Rule:
    """A rule as `Rule.text` stored it."""
    return parse_rule(text, tz=ZoneInfo("UTC"))


def _whole(parts: dict[str, str], name: str, minimum: int, maximum: int | None) -> int | None:
    if name not in parts:
        return None
    value = parts[name]
    if not value.isascii() or not value.isdigit():
        raise invalid_rule(f"{name}={value} is not a whole number")
    number = int(value)
    if number < minimum or (maximum is not None and number > maximum):
        bound = f"from {minimum} to {maximum}" if maximum else f"at least {minimum}"
        raise invalid_rule(f"{name}={value} is out of range ({bound})")
    return number


def _weekdays(value: str | None) -> tuple[str, ...]:
    if value is None:
        return ()
    days = [day.strip() for day in value.split(",")]
    for day in days:
        if day not in WEEKDAYS:
            raise invalid_rule(
                f"BYDAY={value}: {day or 'an empty day'} is not one of {','.join(WEEKDAYS)} "
                "(numbered days such as 1MO are not supported)"
            )
    if len(set(days)) != len(days):
        raise invalid_rule(f"BYDAY={value} names a day twice")
    return tuple(sorted(days, key=WEEKDAYS.index))


def _until(value: str | None, tz: ZoneInfo) -> datetime | None:
    """UNTIL as RFC 5545 writes it: a date (that whole local day), a local date-time, or a
    UTC one (`Z`); naive local time in `tz` back."""
    if value is None:
        return None
    match = _UNTIL.match(value)
    if not match:
        raise invalid_rule(f"UNTIL={value} is not YYYYMMDD, YYYYMMDDTHHMMSS or YYYYMMDDTHHMMSSZ")
    day, clock, is_utc = match.groups()
    try:
        if clock is None:
            return datetime.strptime(day, "%Y%m%d").replace(hour=23, minute=59, second=59)  # noqa: DTZ007
        moment = datetime.strptime(day + clock, "%Y%m%d%H%M%S")  # noqa: DTZ007
    except ValueError:
        raise invalid_rule(f"UNTIL={value} is not a real date and time") from None
    if is_utc:
        return to_local(moment.replace(tzinfo=UTC), tz)
    return moment


# --- occurrences ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Occurrence:
    key: str  # the local start the rule gave it
    start_time: datetime  # aware UTC
    end_time: datetime


def expand(series: EventSeries, *, until: datetime | None = None, limit: int | None = None):
    """The series' occurrences by its rule, earliest first, starting at or before `until`
    (all of them when None), at most `limit` (then one more, to tell "too many")."""
    tz = zone(series.timezone)
    duration = timedelta(seconds=series.duration_seconds)
    found: list[Occurrence] = []
    for local in parse_stored(series.rule).expand(parse_local(series.starts_local)):
        start = to_utc(local, tz)
        if until is not None and start > until:
            break
        found.append(Occurrence(local_text(local), start, start + duration))
        if limit is not None and len(found) > limit:
            break
    return found


def pattern_of(series: EventSeries, key: str) -> Occurrence:
    """Where the rule puts the occurrence keyed `key` (what an untouched one looks like)."""
    start = to_utc(parse_local(key), zone(series.timezone))
    return Occurrence(key, start, start + timedelta(seconds=series.duration_seconds))


def occurrences_of(series_id: int, *, with_cancelled: bool = True) -> list[Event]:
    query = select(Event).where(Event.series_id == series_id)
    if not with_cancelled:
        query = query.where(Event.is_cancelled.is_(False))
    return list(db.session.scalars(query.order_by(Event.occurrence_key)))


def _insert_ignoring_duplicates(session: Session, model: Any, rows: list[dict], keys: list[str]):
    dialect = session.get_bind().dialect.name
    build = postgresql_insert if dialect == "postgresql" else sqlite_insert
    return build(model).values(rows).on_conflict_do_nothing(index_elements=keys)


def generate(session: Session, series: EventSeries, *, until: datetime) -> list[int]:
    """Make the occurrences starting up to `until` that do not exist yet, enrol the series'
    students in them, announce them; the new events' ids. Idempotent."""
    existing = set(
        session.scalars(select(Event.occurrence_key).where(Event.series_id == series.id))
    )
    wanted = [o for o in expand(series, until=until) if o.key not in existing]
    now = utcnow()
    rows = [
        {
            "name": series.name,
            "event_type": series.event_type,
            "points": series.points,
            "description": series.description,
            "location": series.location,
            "start_time": occurrence.start_time,
            "end_time": occurrence.end_time,
            "source": series.source,
            "discord_channel_id": series.discord_channel_id,
            "is_active": True,
            "is_cancelled": False,
            "created_by_id": series.created_by_id,
            "series_id": series.id,
            "occurrence_key": occurrence.key,
            "created_at": now,
            "updated_at": now,
        }
        for occurrence in wanted
    ]
    made: list[int] = []
    for first in range(0, len(rows), 200):
        statement = _insert_ignoring_duplicates(
            session, Event, rows[first : first + 200], ["series_id", "occurrence_key"]
        ).returning(Event.id)
        made.extend(session.execute(statement).scalars())
    if made:
        _enrol_in(session, series.id, made)
        signals.occurrences_created.send(session, event_ids=sorted(made))
    if series.generated_until is None or series.generated_until < until:
        series.generated_until = until
    return sorted(made)


def _enrol_in(session: Session, series_id: int, event_ids: Iterable[int]) -> None:
    students = list(
        session.scalars(
            select(SeriesEnrolment.student_id).where(SeriesEnrolment.series_id == series_id)
        )
    )
    rows = [
        {"student_id": s, "event_id": e, "source": ENROLMENT_SOURCE, "created_at": utcnow()}
        for e in event_ids
        for s in students
    ]
    for first in range(0, len(rows), 500):
        session.execute(
            _insert_ignoring_duplicates(
                session, Enrolment, rows[first : first + 500], ["student_id", "event_id"]
            )
        )


def generate_all(*, now: datetime, rules: SeriesRules) -> dict[str, int]:
    """The job: every series' occurrences up to now + horizon, one transaction per series."""
    until = now + rules.horizon
    ids = list(
        db.session.scalars(
            select(EventSeries.id).where(
                (EventSeries.generated_until.is_(None)) | (EventSeries.generated_until < until)
            )
        )
    )
    made = 0
    for series_id in ids:
        with write_transaction() as session:
            series = session.get(EventSeries, series_id)
            if series is not None:
                made += len(generate(session, series, until=until))
    return {"series": len(ids), "occurrences": made}


# --- creating ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Created:
    series: EventSeries
    occurrences: list[Event]
    notice: str | None  # said when the rule was capped at the horizon


def create_series(
    *,
    name: str,
    start_time: datetime,
    duration: timedelta,
    rule: str,
    timezone: str | None,
    rules: SeriesRules,
    now: datetime,
    description: str = "",
    location: str = "",
    event_type: str = "General",
    points: int = 0,
    discord_channel_id: str | None = None,
    source: str | None = None,
    created_by_id: int | None = None,
) -> Created:
    """A series whose first occurrence is the rule's first at or after `start_time` (read as
    wall time in `timezone`); its occurrences up to the horizon are made at once."""
    tz = zone(timezone or rules.default_timezone)
    if duration <= timedelta(0):
        raise Unprocessable("The duration must be more than zero", code="invalid_duration")
    if duration > timedelta(days=1):
        raise Unprocessable("The duration may be at most one day", code="invalid_duration")
    parsed = parse_rule(rule, tz=tz)
    notice = None
    if parsed.is_open:
        cap = to_local(now + rules.horizon, tz)
        parsed = replace(parsed, until=cap)
        days = rules.horizon.days
        notice = (
            f"The rule has neither UNTIL nor COUNT: it is capped at the horizon "
            f"(SERIES_HORIZON, {days} days), UNTIL={cap.strftime('%Y%m%dT%H%M%S')} local"
        )
    start_local = to_local(start_time, tz).replace(microsecond=0)
    first = next(iter(parsed.expand(start_local)), None)
    if first is None:
        raise invalid_rule("The rule gives no occurrence at or after start_time")
    series = EventSeries(
        name=name,
        event_type=event_type,
        points=points,
        description=description,
        location=location,
        timezone=tz.key,
        starts_local=local_text(first),
        duration_seconds=int(duration.total_seconds()),
        rule=parsed.text(),
        is_capped=notice is not None,
        discord_channel_id=discord_channel_id,
        source=source,
        created_by_id=created_by_id,
    )
    _check_bounds(series, rules)
    with write_transaction() as session:
        session.add(series)
        session.flush()
        generate(session, series, until=now + rules.horizon)
    return Created(series, occurrences_of(series.id), notice)


def _check_bounds(series: EventSeries, rules: SeriesRules) -> None:
    """At most `max_occurrences`, every one within the instants the service stores."""
    everything = expand(series, limit=rules.max_occurrences)
    if len(everything) > rules.max_occurrences:
        raise Unprocessable(
            f"The rule has more than {rules.max_occurrences} occurrences "
            "(SERIES_MAX_OCCURRENCES): give an earlier UNTIL or a smaller COUNT",
            code="too_many_occurrences",
        )
    if everything and not EARLIEST <= everything[0].start_time <= everything[-1].end_time < LATEST:
        raise Unprocessable("The series' dates are out of range", code="invalid_rule")


# --- reading ----------------------------------------------------------------------------------


def get_series(series_id: int) -> EventSeries:
    series = db.session.get(EventSeries, series_id)
    if series is None:
        raise NotFound("Series not found", code="series_not_found")
    return series


def list_series(*, skip: int = 0, limit: int = 100) -> list[EventSeries]:
    query = select(EventSeries).order_by(EventSeries.id).offset(skip).limit(limit)
    return list(db.session.scalars(query))


def get_occurrence(series_id: int, event_id: int) -> Event:
    event = db.session.get(Event, event_id)
    if event is None or event.series_id != series_id:
        raise NotFound("Occurrence not found in this series", code="occurrence_not_found")
    return event


def attendance_counts(event_ids: list[int]) -> dict[int, int]:
    """Live marks (not voided) per event: what an edit must not move silently."""
    if not event_ids:
        return {}
    rows = db.session.execute(
        select(Attendance.event_id, func.count())
        .where(Attendance.event_id.in_(event_ids), Attendance.voided_at.is_(None))
        .group_by(Attendance.event_id)
    )
    return {event_id: int(number) for event_id, number in rows}


def enrolment_counts(event_ids: list[int]) -> dict[int, int]:
    if not event_ids:
        return {}
    rows = db.session.execute(
        select(Enrolment.event_id, func.count())
        .where(Enrolment.event_id.in_(event_ids))
        .group_by(Enrolment.event_id)
    )
    return {event_id: int(number) for event_id, number in rows}


# --- edits ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Changes:
    """What an edit changes; None leaves it. `start_time`/`end_time` move one occurrence;
    `local_time`/`duration` move the occurrences of a series (or of its following part)."""

    name: str | None = None
    description: str | None = None
    location: str | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None
    local_time: time | None = None
    duration: timedelta | None = None

    def texts(self) -> dict[str, str]:
        fields = {"name": self.name, "description": self.description, "location": self.location}
        return {field: value for field, value in fields.items() if value is not None}


@dataclass(frozen=True)
class Edited:
    series: EventSeries
    changed: list[Event]
    kept: list[Event]  # had check-ins, would have moved, left as they were (keep=true)


def _describe(events: Iterable[Event]) -> str:
    return ", ".join(f"#{event.id} ({event.occurrence_key} local)" for event in events)


def _refuse_moving_checked_in(moving: list[Event], keep: bool) -> list[Event]:
    """The occurrences among `moving` that have check-ins: 409 naming them, unless `keep`
    (then they are the ones to leave as they are)."""
    counted = attendance_counts([event.id for event in moving])
    checked_in = [event for event in moving if counted.get(event.id)]
    if checked_in and not keep:
        raise Conflict(
            f"These occurrences have check-ins and would move: {_describe(checked_in)}; "
            "send keep=true to leave them as they are",
            code="occurrences_have_checkins",
        )
    return checked_in


def _apply_texts(event: Event, texts: dict[str, str]) -> list[str]:
    changed = [field for field, value in texts.items() if getattr(event, field) != value]
    for field in changed:
        setattr(event, field, texts[field])
    return changed


def edit_occurrence(
    *, series_id: int, event_id: int, changes: Changes, keep: bool, rules: SeriesRules
) -> Edited:
    """Change one occurrence: it becomes an override of its series (RECURRENCE-ID)."""
    if changes.local_time is not None or changes.duration is not None:
        raise Unprocessable(
            "One occurrence moves by start_time and end_time; local_time and "
            "duration_minutes are for the series or this and the following",
            code="invalid_changes",
        )
    with write_transaction() as session:
        series = get_series(series_id)
        event = get_occurrence(series_id, event_id)
        start = changes.start_time or event.start_time
        end = changes.end_time or (
            start + (event.end_time - event.start_time) if changes.start_time else event.end_time
        )
        if end is not None and end <= start:
            raise Unprocessable("end_time must be after start_time", code="invalid_time_range")
        moves = (start, end) != (event.start_time, event.end_time)
        kept = _refuse_moving_checked_in([event], keep) if moves else []
        if kept:
            return Edited(series, [], kept)
        changed = _apply_texts(event, changes.texts())
        if moves:
            event.start_time, event.end_time = start, end
            changed += ["start_time", "end_time"]
        if changed:
            signals.event_updated.send(session, event=event, changed=changed)
    return Edited(series, [event] if changed else [], [])


def edit_series(
    *,
    series_id: int,
    changes: Changes,
    keep: bool,
    rules: SeriesRules,
    from_event_id: int | None = None,
) -> Edited:
    """Change the whole series, or (`from_event_id`) that occurrence and the following ones:
    those are split off into a new series with the changes, the old one ends before it."""
    if changes.start_time is not None or changes.end_time is not None:
        raise Unprocessable(
            "A series moves by local_time and duration_minutes; start_time and end_time "
            "move one occurrence",
            code="invalid_changes",
        )
    with write_transaction() as session:
        series = get_series(series_id)
        occurrences = occurrences_of(series.id)
        if from_event_id is not None:
            pivot = get_occurrence(series_id, from_event_id)
            if pivot.occurrence_key != occurrences[0].occurrence_key:
                series, occurrences = _split(session, series, pivot, occurrences, rules)
        edited = _edit_all(session, series, occurrences, changes, keep, rules)
    return edited


def _edit_all(
    session: Session,
    series: EventSeries,
    occurrences: list[Event],
    changes: Changes,
    keep: bool,
    rules: SeriesRules,
) -> Edited:
    tz = zone(series.timezone)
    old_start = parse_local(series.starts_local)
    shift = timedelta(0)
    if changes.local_time is not None:
        new_start = datetime.combine(old_start.date(), changes.local_time.replace(tzinfo=None))
        shift = new_start - old_start
    duration = changes.duration or timedelta(seconds=series.duration_seconds)
    if duration <= timedelta(0) or duration > timedelta(days=1):
        raise Unprocessable(
            "The duration must be more than zero and at most one day", code="invalid_duration"
        )
    # Where each occurrence goes: its new key, and its start and end by the new pattern.
    plan: dict[int, tuple[str, datetime, datetime]] = {}
    for event in occurrences:
        key = local_text(parse_local(event.occurrence_key) + shift)
        start = to_utc(parse_local(key), tz)
        if shift == timedelta(0) and event.start_time != pattern_of(series, key).start_time:
            start = event.start_time  # an override moved by hand keeps its own start
        plan[event.id] = (key, start, start + duration)
    moving = [e for e in occurrences if (e.start_time, e.end_time) != plan[e.id][1:]]
    kept = _refuse_moving_checked_in(moving, keep)
    kept_ids = {event.id for event in kept}
    series.starts_local = local_text(old_start + shift)
    series.duration_seconds = int(duration.total_seconds())
    rule = parse_stored(series.rule)
    if rule.until is not None and shift:
        series.rule = replace(rule, until=rule.until + shift).text()
    for field, value in changes.texts().items():
        setattr(series, field, value)
    changed_events = []
    for event in occurrences:
        key, start, end = plan[event.id]
        event.occurrence_key = key  # a kept one too: its RECURRENCE-ID is the new pattern's
        if event.id in kept_ids:
            continue
        changed = _apply_texts(event, changes.texts())
        if (start, end) != (event.start_time, event.end_time):
            event.start_time, event.end_time = start, end
            changed += ["start_time", "end_time"]
        if changed:
            changed_events.append(event)
            signals.event_updated.send(session, event=event, changed=changed)
    session.flush()
    return Edited(series, changed_events, kept)


def _split(
    session: Session,
    series: EventSeries,
    pivot: Event,
    occurrences: list[Event],
    rules: SeriesRules,
) -> tuple[EventSeries, list[Event]]:
    """End `series` before `pivot`; a new series, the same but starting there, takes the
    occurrences from `pivot` on (and the series' students)."""
    rule = parse_stored(series.rule)
    pivot_local = parse_local(pivot.occurrence_key)
    before = [o for o in expand(series) if o.key < pivot.occurrence_key]
    later_rule = replace(rule, count=rule.count - len(before)) if rule.count else rule
    series.rule = replace(rule, count=None, until=pivot_local - timedelta(seconds=1)).text()
    split = EventSeries(
        name=series.name,
        event_type=series.event_type,
        points=series.points,
        description=series.description,
        location=series.location,
        timezone=series.timezone,
        starts_local=pivot.occurrence_key,
        duration_seconds=series.duration_seconds,
        rule=later_rule.text(),
        is_capped=series.is_capped,
        generated_until=series.generated_until,
        discord_channel_id=series.discord_channel_id,
        source=series.source,
        created_by_id=series.created_by_id,
        split_from_id=series.id,
    )
    session.add(split)
    session.flush()
    moved = [event for event in occurrences if event.occurrence_key >= pivot.occurrence_key]
    session.execute(
        update(Event)
        .where(Event.id.in_([event.id for event in moved]))
        .values(series_id=split.id)
        .execution_options(synchronize_session="fetch")
    )
    students = session.scalars(
        select(SeriesEnrolment.student_id).where(SeriesEnrolment.series_id == series.id)
    ).all()
    if students:
        session.execute(
            insert(SeriesEnrolment),
            [{"series_id": split.id, "student_id": s, "created_at": utcnow()} for s in students],
        )
    return split, moved


def cancel_occurrence(*, series_id: int, event_id: int) -> Event:
    """Cancel one occurrence: inactive, an EXDATE in calendars, never counted absent. One
    with check-ins is refused (409 naming it): what was recorded there stays true."""
    with write_transaction() as session:
        get_series(series_id)
        event = get_occurrence(series_id, event_id)
        if event.is_cancelled:
            return event
        if attendance_counts([event.id]):
            raise Conflict(
                f"Occurrence {_describe([event])} has check-ins and cannot be cancelled",
                code="occurrences_have_checkins",
            )
        event.is_cancelled, event.is_active = True, False
        signals.event_updated.send(session, event=event, changed=["is_active"])
    return event


# --- enrolments -------------------------------------------------------------------------------


def enrol(*, series_id: int, student_refs: list[str], now: datetime) -> tuple[int, list[str]]:
    """Enrol students (by identifier or email) in the series: in each occurrence that has
    not ended yet, and in every one generated later. The count enrolled, the refs unknown."""
    with write_transaction() as session:
        get_series(series_id)
        found, unknown = [], []
        for ref in student_refs:
            student = find_student(ref)
            if student is None:
                unknown.append(ref)
            else:
                found.append(student.id)
        if unknown:
            raise NotFound(f"Students not found: {', '.join(unknown)}", code="student_not_found")
        rows = [{"series_id": series_id, "student_id": s, "created_at": now} for s in set(found)]
        if rows:
            session.execute(
                _insert_ignoring_duplicates(
                    session, SeriesEnrolment, rows, ["series_id", "student_id"]
                )
            )
        coming = session.scalars(
            select(Event.id).where(
                Event.series_id == series_id,
                Event.is_cancelled.is_(False),
                (Event.end_time.is_(None)) | (Event.end_time >= now),
            )
        ).all()
        _enrol_in(session, series_id, coming)
    return len(set(found)), unknown


def series_students(series_id: int) -> Iterator[int]:
    yield from db.session.scalars(
        select(SeriesEnrolment.student_id).where(SeriesEnrolment.series_id == series_id)
    )
