"""Request and answer models of the series routes (`/events/series…`, the Discord repeat)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, WithJsonSchema, model_validator

from autocheckin.api.representations import EventOut, Representation
from autocheckin.api.schemas_web import EventCreate, _Body
from autocheckin.attendance import series
from autocheckin.attendance.models import Event, EventSeries
from autocheckin.attendance.windows import CheckInRules
from autocheckin.times import EARLIEST, LATEST, IsoTime


def _moment(value: Any) -> Any:
    """An ISO 8601 date-time; naive stays naive (wall time in the series' zone)."""
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        raise ValueError("must be an ISO 8601 date-time")
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError("must be an ISO 8601 date-time like 2027-03-02T10:00:00") from None
    check = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    if not EARLIEST <= check <= LATEST:
        raise ValueError(f"must be between {EARLIEST.year} and {LATEST.year}")
    return moment


# Naive: wall time in the series' time zone; with Z or an offset: that instant.
LocalOrInstant = Annotated[
    datetime,
    BeforeValidator(_moment),
    WithJsonSchema(
        {"type": "string", "format": "date-time", "pattern": r"^(19\d\d|[2-8]\d{3})-\d\d-\d\d"},
        mode="validation",
    ),
]
RULE_DESCRIPTION = (
    "RFC 5545 RRULE: FREQ=DAILY|WEEKLY with INTERVAL, BYDAY (MO..SU), UNTIL or COUNT; "
    "neither UNTIL nor COUNT: capped at SERIES_HORIZON"
)
TIMEZONE_DESCRIPTION = "IANA time zone (default SERIES_DEFAULT_TIMEZONE)"


class SeriesCreate(_Body):
    title: str = Field(min_length=1, max_length=200)
    description: str = Field("", max_length=10_000)
    location: str = Field("", max_length=200)
    discord_channel_id: str | None = Field(None, max_length=32)
    start_time: LocalOrInstant = Field(
        description="the first occurrence (or the rule's first after it); naive is local"
    )
    end_time: LocalOrInstant | None = Field(None, description="or duration_minutes")
    duration_minutes: int | None = Field(None, ge=1, le=1440)
    timezone: str | None = Field(
        None, min_length=1, max_length=64, description=TIMEZONE_DESCRIPTION
    )
    rrule: str = Field(min_length=1, max_length=300, description=RULE_DESCRIPTION)

    @model_validator(mode="after")
    def _one_length(self) -> SeriesCreate:
        if (self.end_time is None) == (self.duration_minutes is None):
            raise ValueError("give end_time or duration_minutes (one of them)")
        return self

    def start_and_duration(self, tz_name: str) -> tuple[datetime, timedelta]:
        tz = series.zone(tz_name)
        start = self.start_time if self.start_time.tzinfo else self.start_time.replace(tzinfo=tz)
        if self.duration_minutes is not None:
            return start.astimezone(UTC), timedelta(minutes=self.duration_minutes)
        end = self.end_time if self.end_time.tzinfo else self.end_time.replace(tzinfo=tz)
        return start.astimezone(UTC), end.astimezone(UTC) - start.astimezone(UTC)

    def fields(self) -> dict[str, Any]:
        return {
            "name": self.title,
            "description": self.description,
            "location": self.location,
            "discord_channel_id": self.discord_channel_id,
            "rule": self.rrule,
        }


class DiscordEventCreate(EventCreate):
    """The Discord bot's event, with an optional repeat rule: then a series."""

    repeat: str | None = Field(None, min_length=1, max_length=300, description=RULE_DESCRIPTION)
    timezone: str | None = Field(
        None, min_length=1, max_length=64, description=TIMEZONE_DESCRIPTION
    )


class SeriesEdit(_Body):
    """What to change; omitted fields stay. `keep=true`: occurrences with check-ins that
    would move are left as they are (else 409 naming them)."""

    title: str | None = Field(None, min_length=1, max_length=200)
    description: str | None = Field(None, max_length=10_000)
    location: str | None = Field(None, max_length=200)
    local_time: time | None = Field(None, description="new wall time of day, HH:MM[:SS]")
    duration_minutes: int | None = Field(None, ge=1, le=1440)
    keep: bool = False

    def changes(self) -> series.Changes:
        return series.Changes(
            name=self.title,
            description=self.description,
            location=self.location,
            local_time=self.local_time,
            duration=None
            if self.duration_minutes is None
            else timedelta(minutes=self.duration_minutes),
        )


class OccurrenceEdit(SeriesEdit):
    """`scope=this`: this occurrence only (start_time / end_time move it); `following`:
    this and the following ones (split off into a new series; local_time / duration)."""

    scope: str = Field("this", pattern="^(this|following)$")
    start_time: LocalOrInstant | None = Field(None, description="naive is the series' local")
    end_time: LocalOrInstant | None = None

    def moment_changes(self, tz_name: str) -> series.Changes:
        tz = series.zone(tz_name)

        def instant(value: datetime | None) -> datetime | None:
            if value is None:
                return None
            return (value if value.tzinfo else value.replace(tzinfo=tz)).astimezone(UTC)

        base = self.changes()
        return series.Changes(
            name=base.name,
            description=base.description,
            location=base.location,
            local_time=base.local_time,
            duration=base.duration,
            start_time=instant(self.start_time),
            end_time=instant(self.end_time),
        )


class CancelBody(_Body):
    pass


class SeriesEnrol(_Body):
    students: list[str] = Field(
        min_length=1, max_length=1000, description="identifiers or emails of students"
    )


class SeriesQuery(_Body):
    skip: int = Field(0, ge=0, le=1_000_000)
    limit: int = Field(100, ge=1, le=500)


# --- answers ------------------------------------------------------------------------------------


class OccurrenceOut(EventOut):
    occurrence_key: str | None = Field(description="the local start its series' rule gave it")
    is_cancelled: bool


class SeriesOut(Representation):
    id: int
    title: str
    description: str
    location: str
    timezone: str
    starts_local: str = Field(description="the first occurrence's local start")
    duration_minutes: float
    rrule: str = Field(description="as stored: UNTIL in the series' local time")
    is_capped: bool = Field(description="the rule had neither UNTIL nor COUNT")
    generated_until: IsoTime | None
    discord_channel_id: str | None
    created_by: int | None
    split_from: int | None
    created_at: IsoTime
    notice: str | None = None
    occurrences: list[OccurrenceOut]

    @classmethod
    def of(
        cls,
        found: EventSeries,
        occurrences: list[Event],
        *,
        now: datetime,
        rules: CheckInRules,
        notice: str | None = None,
    ) -> SeriesOut:
        return cls(
            id=found.id,
            title=found.name,
            description=found.description,
            location=found.location,
            timezone=found.timezone,
            starts_local=found.starts_local,
            duration_minutes=found.duration_seconds / 60,
            rrule=found.rule,
            is_capped=found.is_capped,
            generated_until=found.generated_until,
            discord_channel_id=found.discord_channel_id,
            created_by=found.created_by_id,
            split_from=found.split_from_id,
            created_at=found.created_at,
            notice=notice,
            occurrences=[
                OccurrenceOut.model_validate(
                    {
                        **EventOut.of(event, now=now, rules=rules).model_dump(),
                        "occurrence_key": event.occurrence_key,
                        "is_cancelled": event.is_cancelled,
                    }
                )
                for event in occurrences
            ],
        )


class SeriesBrief(Representation):
    id: int
    title: str = Field(validation_alias="name")
    timezone: str
    starts_local: str
    rrule: str = Field(validation_alias="rule")
    is_capped: bool


class SeriesBriefList(Representation):
    series: list[SeriesBrief]


class SeriesEdited(Representation):
    series: SeriesOut = Field(description="the series the edit landed in (a split: the new)")
    changed: list[int] = Field(description="ids of the occurrences changed")
    kept: list[int] = Field(description="with check-ins, left as they were (keep=true)")


class SeriesEnrolled(Representation):
    series_id: int
    enrolled: int


class DiscordEventCreated(EventOut):
    """The first occurrence when `repeat` made a series, with the series' facts."""

    occurrence_count: int | None = None
    rrule: str | None = None
    timezone: str | None = None
    notice: str | None = None
