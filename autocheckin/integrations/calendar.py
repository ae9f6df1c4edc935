"""Events as iCalendar (RFC 5545), built with the `icalendar` library, and the feeds
that serve them to calendar apps by a secret URL."""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterable
from datetime import datetime, timedelta

from icalendar import Calendar, vText
from icalendar import Event as VEvent
from sqlalchemy import and_, or_, select, update

from autocheckin.attendance import series
from autocheckin.attendance.errors import NotFound
from autocheckin.attendance.models import Event, EventSeries
from autocheckin.database import write_transaction
from autocheckin.extensions import db
from autocheckin.integrations.models import CalendarFeed
from autocheckin.times import utcnow

CALENDAR_NAME = "AutoCheckin events"
# An event with no end (a webhook-style event) is shown this long.
DEFAULT_DURATION = timedelta(hours=1)
# A feed's last use is written at most this often: calendar apps poll every few minutes.
LAST_USED_EVERY = timedelta(minutes=1)


def events_between(start: datetime | None, end: datetime | None) -> list[Event]:
    """Events that overlap [start, end] (either bound open), earliest first."""
    query = select(Event).where(Event.is_active.is_(True))
    if start is not None:
        query = query.where(
            or_(
                Event.start_time >= start,
                and_(Event.end_time.is_not(None), Event.end_time >= start),
            )
        )
    if end is not None:
        query = query.where(Event.start_time <= end)
    return list(db.session.scalars(query.order_by(Event.start_time, Event.id)))


def uid_of(event: Event) -> str:
    """Stable across exports and feeds: the same event always has the same UID."""
    return f"event-{event.id}@autocheckin"


_OTHER_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def _text(value: str) -> vText:
    """A TEXT value: line breaks as iCalendar escapes them, other control characters gone
    (RFC 5545 allows none in a content line)."""
    return vText(_OTHER_CONTROLS.sub("", value.replace("\r\n", "\n").replace("\r", "\n")))


def series_uid_of(series: EventSeries) -> str:
    return f"series-{series.id}@autocheckin"


def _single(event: Event) -> VEvent:
    entry = VEvent()
    entry.add("uid", uid_of(event))
    entry.add("dtstamp", event.updated_at or event.created_at)
    entry.add("dtstart", event.start_time)
    entry.add("dtend", event.end_time or event.start_time + DEFAULT_DURATION)
    _describe(entry, event)
    return entry


def _describe(entry: VEvent, item: Event | EventSeries) -> None:
    entry.add("summary", _text(item.name))
    if item.description:
        entry.add("description", _text(item.description))
    if item.location:
        entry.add("location", _text(item.location))


def _series_components(found: EventSeries) -> list[VEvent]:
    """One VEVENT with the RRULE (its TZID start, EXDATE for the cancelled or inactive
    occurrences), then one RECURRENCE-ID override per occurrence that differs from it."""
    tz = series.zone(found.timezone)
    main = VEvent()
    main.add("uid", series_uid_of(found))
    main.add("dtstamp", found.updated_at or found.created_at)
    main.add("dtstart", series.parse_local(found.starts_local).replace(tzinfo=tz))
    main.add("duration", timedelta(seconds=found.duration_seconds))
    main.add("rrule", series.parse_stored(found.rule).ical(tz))
    _describe(main, found)
    overrides = []
    for event in series.occurrences_of(found.id):
        original = series.parse_local(event.occurrence_key).replace(tzinfo=tz)
        if not event.is_active:
            main.add("exdate", original)
            continue
        pattern = series.pattern_of(found, event.occurrence_key)
        same = (event.name, event.description, event.location) == (
            found.name,
            found.description,
            found.location,
        )
        if same and (event.start_time, event.end_time) == (pattern.start_time, pattern.end_time):
            continue
        override = VEvent()
        override.add("uid", series_uid_of(found))
        override.add("dtstamp", event.updated_at or event.created_at)
        override.add("recurrence-id", original)
        override.add("dtstart", event.start_time.astimezone(tz))
        end = event.end_time or event.start_time + DEFAULT_DURATION
        override.add("dtend", end.astimezone(tz))
        _describe(override, event)
        overrides.append(override)
    return [main, *overrides]


def ical(events: Iterable[Event], *, calendar_name: str = CALENDAR_NAME) -> bytes:
    """Events as one calendar: a single event as a VEVENT; the occurrences of a series as
    its one VEVENT with RRULE, EXDATE and RECURRENCE-ID overrides (and its VTIMEZONE)."""
    calendar = Calendar()
    calendar.add("prodid", "-//AutoCheckin//Attendance events//EN")
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    # As TEXT, escaped: a feed's name is an admin's input, and a raw line break in it would
    # start a property of its own (or fail the whole feed).
    calendar.add("x-wr-calname", _text(calendar_name))
    series_ids: list[int] = []
    for event in events:
        if event.series_id is None:
            calendar.add_component(_single(event))
        elif event.series_id not in series_ids:
            series_ids.append(event.series_id)
    for series_id in series_ids:
        for component in _series_components(series.get_series(series_id)):
            calendar.add_component(component)
    if series_ids:
        calendar.add_missing_timezones()
    return calendar.to_ical()


# --- feeds ----------------------------------------------------------------------------------


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_feed(name: str) -> tuple[CalendarFeed, str]:
    """A new feed and its token, which is shown this once and stored only as a hash."""
    token = secrets.token_urlsafe(32)
    with write_transaction() as session:
        feed = CalendarFeed(name=name, token_sha256=_digest(token))
        session.add(feed)
    return feed, token


def list_feeds() -> list[CalendarFeed]:
    return list(db.session.scalars(select(CalendarFeed).order_by(CalendarFeed.id)))


def revoke_feed(feed_id: int) -> CalendarFeed:
    with write_transaction() as session:
        feed = session.get(CalendarFeed, feed_id)
        if feed is None:
            raise NotFound(f"Calendar feed {feed_id} not found", code="feed_not_found")
        feed.revoked_at = feed.revoked_at or utcnow()
    return feed


def feed_for(token: str) -> CalendarFeed | None:
    """The live feed this token opens, noting its use (at most once a minute)."""
    feed = db.session.scalar(
        select(CalendarFeed).where(
            CalendarFeed.token_sha256 == _digest(token), CalendarFeed.revoked_at.is_(None)
        )
    )
    if feed is None:
        return None
    now = utcnow()
    if feed.last_used_at is None or now - feed.last_used_at >= LAST_USED_EVERY:
        with write_transaction() as session:
            session.execute(
                update(CalendarFeed).where(CalendarFeed.id == feed.id).values(last_used_at=now)
            )
    return feed
